// RFC 9458 Appendix A: the response key of Oblivious HTTP, an HPKE export mixed with a fresh
// response nonce. The profile composes its response keys the same way (an exporter secret, then a
// fresh RFC 8188 salt), so the IETF's own example checks the pattern end to end: the export through
// the facade, then HKDF and AES-128-GCM through lib/crypto.ts on both crypto paths.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as HPKE from 'hpke';
import { testing } from '../src/e2ee/hpke';
import { aes128GcmOpen, aes128GcmSeal, hkdfExpand, hkdfExtract, useWebCrypto } from '../src/lib/crypto';

const V = JSON.parse(readFileSync(join(__dirname, 'fixtures', 'e2ee', 'rfc9458.json'), 'utf8'));
const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const concat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));

/** The encapsulated request: key id (1), kem, kdf, aead (2 each), enc (32), then the sealed request. */
const HEADER = 7;
const ENC = 32;

describe('RFC 9458 Appendix A', () => {
  it('recovers the gateway and client public keys from their private keys', async () => {
    const r = await testing.keyPairFromPrivateKey('x25519', hex(V.skR));
    const e = await testing.keyPairFromPrivateKey('x25519', hex(V.skE));
    const suite = testing.suite('x25519');
    expect(toHex(await suite.serializePublicKey(r.publicKey))).toBe(V.pkR);
    expect(toHex(await suite.serializePublicKey(e.publicKey))).toBe(V.pkE);
  });

  it('the gateway opens the request and exports the response secret (facade, AES-128-GCM suite)', async () => {
    const request = hex(V.encapsulatedRequest);
    const hdr = request.subarray(0, HEADER);
    const enc = request.subarray(HEADER, HEADER + ENC);
    expect(toHex(enc)).toBe(V.pkE);
    // On both engines of the facade; the Open below needs the `hpke` engine's key pair.
    for (const engine of ['node', 'hpke'] as const) {
      const pair = await testing.keyPairFromPrivateKey('x25519', hex(V.skR), engine);
      const exporter = await testing.suite('x25519', { aead: 'aes-128-gcm', engine }).setupBaseR(enc, pair, hex(V.info));
      expect(toHex(await exporter.export(utf8(V.exportContext), V.exportLength))).toBe(V.secret);
    }
    const kpR = await testing.keyPairFromPrivateKey('x25519', hex(V.skR), 'hpke');

    // The request itself, opened with the engine directly (the facade has no Open by design); the
    // header is bound through info, and the AAD is empty (RFC 9458 section 4.3).
    const suite = new HPKE.CipherSuite(HPKE.KEM_DHKEM_X25519_HKDF_SHA256, HPKE.KDF_HKDF_SHA256, HPKE.AEAD_AES_128_GCM);
    const ctx = await suite.SetupRecipient(kpR.pair as HPKE.KeyPair<HPKE.CryptoKey>, new Uint8Array(enc), { info: hex(V.info) });
    expect(toHex(await ctx.Open(new Uint8Array(request.subarray(HEADER + ENC))))).toBe(V.requestPlaintext);
    expect(toHex(hdr)).toBe(V.info.slice(-HEADER * 2));
  });

  describe.each([
    ['node:crypto', false],
    ['WebCrypto', true],
  ])('response key composition on %s', (_path, web) => {
    beforeAll(() => useWebCrypto(web));
    afterAll(() => useWebCrypto(false));

    it('salt = enc || response_nonce; PRK, key, nonce; seals and opens the response', async () => {
      const salt = concat(hex(V.pkE), hex(V.responseNonce));
      expect(toHex(salt)).toBe(V.salt);
      const prk = await hkdfExtract(salt, hex(V.secret));
      expect(toHex(prk)).toBe(V.prk);
      const key = await hkdfExpand(prk, utf8('key'), 16);
      const nonce = await hkdfExpand(prk, utf8('nonce'), 12);
      expect(toHex(key)).toBe(V.key);
      expect(toHex(nonce)).toBe(V.nonce);
      const sealed = await aes128GcmSeal(key, nonce, hex(V.responsePlaintext));
      expect(toHex(concat(hex(V.responseNonce), sealed))).toBe(V.encapsulatedResponse);
      const response = hex(V.encapsulatedResponse);
      const opened = await aes128GcmOpen(key, nonce, response.subarray(16));
      expect(opened && toHex(opened)).toBe(V.responsePlaintext);
      const tampered = response.slice(16);
      tampered[0]! ^= 1;
      expect(await aes128GcmOpen(key, nonce, tampered)).toBeUndefined();
    });
  });
});
