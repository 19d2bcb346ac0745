// The byte-exact compositions of end-to-end encryption that need no HPKE: lp, id(P), TH and info of
// the handshake and the rekey, psk_id, and the message keys. Expected values were computed with an
// independent implementation (Python hashlib/hmac) from the formulas in docs/protocol.md, and
// HKDF-Expand is held to RFC 5869 A.1.
import {
  E2EE_LABELS,
  handshakeInfo,
  handshakeTranscript,
  handshakeTranscriptInput,
  lp,
  macKeys,
  partyId,
  rekeyInfo,
  rekeyPskId,
  rekeyTranscript,
  requestKey,
  requestKeyInfo,
  responseKey,
  responseKeyInfo,
  type PartyIdentity,
} from '../../src/e2ee/transcript';
import { hkdfExpandSha256 } from '../../src/e2ee/transcript';
import { parseRequestKeyShare } from '../../src/e2ee/fields';
import { syncCodeOf, codeOf } from '../../../../test/support/error-code';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const range = (from: number, to: number): Uint8Array => Uint8Array.from({ length: to - from }, (_, i) => from + i);

const caller: PartyIdentity = { iss: 'https://op.example', sub: 'alice', jkt: range(0, 32) };
const service: PartyIdentity = { iss: '', sub: 'spiffe://example.org/api', jkt: range(32, 64) };
const sid = range(0xa0, 0xb0);
const rk = new Uint8Array(32).fill(0x11);
const KS = 'x25519=:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:, p256=:BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:';

describe('HKDF-Expand (RFC 5869)', () => {
  it('reproduces RFC 5869 A.1, the expand step', async () => {
    const prk = hex('077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5');
    const okm = await hkdfExpandSha256(prk, hex('f0f1f2f3f4f5f6f7f8f9'), 42);
    expect(toHex(okm)).toBe('3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865');
  });

  it('reproduces RFC 5869 A.3 (empty info), and is a prefix for shorter lengths', async () => {
    const prk = hex('19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04');
    const okm = await hkdfExpandSha256(prk, new Uint8Array(0), 42);
    expect(toHex(okm)).toBe('8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8');
    expect(toHex(await hkdfExpandSha256(prk, new Uint8Array(0), 32))).toBe(toHex(okm.subarray(0, 32)));
  });

  it('refuses a short PRK and lengths outside 1 to 8160', async () => {
    expect(await codeOf(() => hkdfExpandSha256(new Uint8Array(31), new Uint8Array(0), 32))).toBe('TypeError');
    expect(await codeOf(() => hkdfExpandSha256(rk, new Uint8Array(0), 0))).toBe('TypeError');
    expect(await codeOf(() => hkdfExpandSha256(rk, new Uint8Array(0), 255 * 32 + 1))).toBe('TypeError');
    expect((await hkdfExpandSha256(rk, new Uint8Array(0), 255 * 32)).length).toBe(8160);
  });
});

describe('lp and id(P)', () => {
  it('prefixes the UTF-8 length as two big-endian octets', () => {
    expect(toHex(lp(''))).toBe('0000');
    expect(toHex(lp('ab'))).toBe('00026162');
    expect(toHex(lp('é'))).toBe('0002c3a9');
    expect(toHex(lp(new Uint8Array(300)).subarray(0, 2))).toBe('012c');
    expect(lp(new Uint8Array(65535)).length).toBe(65537);
    expect(syncCodeOf(() => lp(new Uint8Array(65536)))).toBe('TypeError');
  });

  it('composes lp(iss) || lp(sub) || lp(jkt), with an empty iss for a credential without one', () => {
    expect(toHex(partyId(service))).toBe('0000' + '0018' + Buffer.from('spiffe://example.org/api').toString('hex') + '0020' + toHex(range(32, 64)));
    expect(syncCodeOf(() => partyId({ ...caller, jkt: new Uint8Array(31) }))).toBe('TypeError');
  });
});

describe('transcripts and info', () => {
  const input = { suite: 'x25519', keyShare: KS, nonce: 'n-1', audience: 'https://api.example', caller, service };

  it('takes KS from the parsed request share', () => {
    expect(parseRequestKeyShare([' x25519=:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:,p256=:BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:']).canonical).toBe(KS);
  });

  it('hashes the handshake transcript byte for byte', async () => {
    const th = await handshakeTranscript(input);
    expect(toHex(th)).toBe('4ffa7767e1b709711cbd75dee74675c5acb24f0efb0c68e4224b626d15eaa6a1');
    const raw = handshakeTranscriptInput(input);
    expect(Buffer.from(raw.subarray(0, 25)).toString('latin1')).toBe('\x00\x17oidc2-e2ee-v1 handshake');
    const info = handshakeInfo(th);
    expect(info.length).toBe(56);
    expect(toHex(info)).toBe(Buffer.from('oidc2-e2ee-v1 handshake').toString('hex') + '00' + toHex(th));
  });

  it('hashes the rekey transcript with lp(sid) appended', async () => {
    const th = await rekeyTranscript({ ...input, suite: 'p256', nonce: 'n-2', sid });
    expect(toHex(th)).toBe('d06c00023a1ef86bf62796f0f241a974f041240eb86a6a3a6de3a6a8d5ccdd37');
    expect(toHex(rekeyInfo(th))).toBe(Buffer.from('oidc2-e2ee-v1 rekey').toString('hex') + '00' + toHex(th));
    expect(toHex(rekeyPskId(sid))).toBe(Buffer.from('oidc2-e2ee-v1 psk').toString('hex') + toHex(sid));
  });

  it('changes with every input', async () => {
    const base = toHex(await handshakeTranscript(input));
    const variants = [
      { ...input, suite: 'p256' },
      { ...input, keyShare: KS.replace('x25519', 'X25519') },
      { ...input, nonce: 'n-2' },
      { ...input, audience: 'https://api.example/' },
      { ...input, caller: { ...caller, sub: 'bob' } },
      { ...input, service: { ...service, iss: 'x' } },
      // lp keeps the boundaries: moving a character from one field to the next changes TH
      { ...input, caller: { ...caller, iss: 'https://op.exampl', sub: 'ealice' } },
    ];
    for (const variant of variants) expect(toHex(await handshakeTranscript(variant))).not.toBe(base);
  });

  it('refuses info from a hash of the wrong length and a sid of the wrong length', async () => {
    expect(syncCodeOf(() => handshakeInfo(new Uint8Array(31)))).toBe('TypeError');
    expect(syncCodeOf(() => rekeyPskId(new Uint8Array(15)))).toBe('TypeError');
    expect(await codeOf(() => rekeyTranscript({ ...input, sid: new Uint8Array(17) }))).toBe('TypeError');
  });

  it('names the exporter contexts exactly', () => {
    expect(E2EE_LABELS.exportSession).toBe('oidc2-e2ee-v1 session');
    expect(E2EE_LABELS.exportSid).toBe('oidc2-e2ee-v1 sid');
    expect(E2EE_LABELS.exportResponse).toBe('oidc2-e2ee-v1 response');
  });
});

describe('message keys', () => {
  it('derives K_req and K_rsp from rk, sid, the nonce and the method, audience or status', async () => {
    const req = { rk, sid, nonce: 'n-1', method: 'POST', audience: 'https://api.example' };
    expect(toHex(await requestKey(req))).toBe('b7692e413257b531949e34b28cb57ccc5036b988472f8e0caf380fbda2636335');
    expect(toHex(await responseKey({ rk, sid, nonce: 'n-1', status: 200 }))).toBe('372da42e393e748daf450cca27ae4cd9eba1de5f145c6b280ef66077b762b65b');
    expect(Buffer.from(requestKeyInfo(req).subarray(0, 22)).toString('latin1')).toBe('oidc2-e2ee-v1 request\x00');
    expect(Buffer.from(responseKeyInfo({ sid, nonce: 'n-1', status: 200 })).toString('latin1').endsWith('\x00\x03200')).toBe(true);
    expect(toHex(await requestKey({ ...req, method: 'PUT' }))).not.toBe(toHex(await requestKey(req)));
    expect(toHex(await responseKey({ rk, sid, nonce: 'n-1', status: 201 }))).not.toBe(toHex(await responseKey({ rk, sid, nonce: 'n-1', status: 200 })));
  });

  it('derives K_c2s and K_s2c', async () => {
    const keys = await macKeys(rk, sid);
    expect(toHex(keys.c2s)).toBe('5f9f47170df35cc0506f67b20f8468dfec09cbaa53bef705242252ddf3561cf5');
    expect(toHex(keys.s2c)).toBe('b347124d5682c1ae9a2273ba3227dc1408b4f0d1c46c802fc0a891e667977cd7');
  });

  it('refuses a root or sid of the wrong length and a status that is not three digits', async () => {
    expect(await codeOf(() => requestKey({ rk: new Uint8Array(16), sid, nonce: 'n', method: 'GET', audience: 'a' }))).toBe('TypeError');
    expect(await codeOf(() => responseKey({ rk, sid: new Uint8Array(8), nonce: 'n', status: 200 }))).toBe('TypeError');
    for (const status of [99, 1000, 200.5, Number.NaN]) expect(await codeOf(() => responseKey({ rk, sid, nonce: 'n', status }))).toBe('TypeError');
  });
});
