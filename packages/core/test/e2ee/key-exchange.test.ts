// The key exchanges of end-to-end encryption, both sides: handshake and rekey on x25519 and p256
// agree on every key, bodies encrypted under them round-trip, and every binding the transcript
// carries (nonce, audience, key share, identities, session) changes the keys when it changes.
import { acceptHandshake, acceptRekey, chooseSuite, completeHandshake, completeRekey, type ExchangeBinding } from '../../src/e2ee/key-exchange';
import { hpkeSuite, type HpkeKeyPair } from '../../src/e2ee/hpke';
import { parseRequestKeyShare, serializeRequestKeyShare, type KeyShare, type SuiteName } from '../../src/e2ee/fields';
import { decryptBody, encryptBody } from '../../src/e2ee/aes128gcm';
import { requestKey, responseKey } from '../../src/e2ee/transcript';
import { utf8 } from '../../src/lib/base64';
import { codeOf } from '../../../../test/support/error-code';

const caller = { iss: 'https://op.example.com', sub: 'alice', jkt: new Uint8Array(32).fill(1) };
const service = { iss: 'https://attestation.example.com', sub: 'orders', jkt: new Uint8Array(32).fill(2) };

async function offer(suites: SuiteName[]): Promise<{ keyPairs: Map<SuiteName, HpkeKeyPair>; shares: KeyShare[]; ks: string }> {
  const keyPairs = new Map<SuiteName, HpkeKeyPair>();
  const shares: KeyShare[] = [];
  for (const suite of suites) {
    const pair = await hpkeSuite(suite).generateKeyPair();
    keyPairs.set(suite, pair);
    shares.push({ suite, key: await hpkeSuite(suite).serializePublicKey(pair.publicKey) });
  }
  return { keyPairs, shares, ks: serializeRequestKeyShare(shares) };
}

const binding = (ks: string, extra: Partial<ExchangeBinding> = {}): ExchangeBinding => ({
  keyShare: ks,
  nonce: 'n0n0n0n0n0n0n0n0n0n0n0',
  audience: 'https://api.example.com/orders',
  caller,
  service,
  ...extra,
});

describe.each(['x25519', 'p256'] as const)('%s', (suite) => {
  it('handshake: both sides derive the same root, session id and response key; the response body round-trips', async () => {
    const { keyPairs, ks } = await offer([suite]);
    const chosen = chooseSuite(parseRequestKeyShare([ks]), ['x25519', 'p256']);
    const served = await acceptHandshake(chosen, binding(ks));
    expect(served.enc.length).toBe(suite === 'x25519' ? 32 : 65);
    const held = await completeHandshake({ suite, key: served.enc }, keyPairs, binding(ks));
    expect(held).toEqual({ suite, rk: served.rk, sid: served.sid, responseKey: served.responseKey });
    expect(held.sid.length).toBe(16);
    const body = await encryptBody(served.responseKey, utf8('{"ok":true}'));
    expect(new TextDecoder().decode(await decryptBody(held.responseKey, body))).toBe('{"ok":true}');
  });

  it('rekey: the PSK-mode exchange gives a new root and response key, keeps the session id, and needs the old root', async () => {
    const first = await offer([suite]);
    const served = await acceptHandshake(first.shares[0]!, binding(first.ks));
    const session = { rk: served.rk, sid: served.sid };
    const next = await offer([suite]);
    const rekeyed = await acceptRekey(next.shares[0]!, binding(next.ks, { nonce: 'r1r1r1r1r1r1r1r1r1r1r1' }), session);
    const held = await completeRekey({ suite, key: rekeyed.enc }, next.keyPairs, binding(next.ks, { nonce: 'r1r1r1r1r1r1r1r1r1r1r1' }), session);
    expect(held.rk).toEqual(rekeyed.rk);
    expect(held.responseKey).toEqual(rekeyed.responseKey);
    expect(held.sid).toEqual(session.sid);
    expect(held.rk).not.toEqual(session.rk);
    // Forward direction: whoever holds only the old root cannot open the rekey response.
    const body = await encryptBody(rekeyed.responseKey, utf8('secret'));
    const wrongRoot = await completeRekey({ suite, key: rekeyed.enc }, next.keyPairs, binding(next.ks, { nonce: 'r1r1r1r1r1r1r1r1r1r1r1' }), { rk: new Uint8Array(32).fill(9), sid: session.sid });
    expect(await codeOf(() => decryptBody(wrongRoot.responseKey, body))).toBe('e2ee_decrypt_failed');
  });

  it('session message keys agree on both sides and differ per nonce, method, audience and status', async () => {
    const { keyPairs, ks } = await offer([suite]);
    const s = await acceptHandshake({ suite, key: await hpkeSuite(suite).serializePublicKey(keyPairs.get(suite)!.publicKey) }, binding(ks));
    const c = await completeHandshake({ suite, key: s.enc }, keyPairs, binding(ks));
    const req = (over: object = {}) => ({ rk: c.rk, sid: c.sid, nonce: 'q1q1q1q1q1q1q1q1q1q1q1', method: 'POST', audience: 'https://api.example.com/orders', ...over });
    expect(await requestKey(req())).toEqual(await requestKey({ ...req(), rk: s.rk, sid: s.sid }));
    const base = await requestKey(req());
    for (const over of [{ nonce: 'q2q2q2q2q2q2q2q2q2q2q2' }, { method: 'PUT' }, { audience: 'https://api.example.com/other' }]) {
      expect(await requestKey(req(over))).not.toEqual(base);
    }
    const ok = await responseKey({ rk: c.rk, sid: c.sid, nonce: 'q1q1q1q1q1q1q1q1q1q1q1', status: 200 });
    expect(await responseKey({ rk: c.rk, sid: c.sid, nonce: 'q1q1q1q1q1q1q1q1q1q1q1', status: 201 })).not.toEqual(ok);
    expect(ok).not.toEqual(base);
  });
});

describe('bindings', () => {
  it('a response bound to another nonce, audience, key share, caller or service does not decrypt', async () => {
    const { keyPairs, ks } = await offer(['x25519']);
    const served = await acceptHandshake(parseRequestKeyShare([ks]).shares[0]!, binding(ks));
    const body = await encryptBody(served.responseKey, utf8('for alice only'));
    const other = await offer(['x25519']);
    for (const over of [
      { nonce: 'zzzzzzzzzzzzzzzzzzzzzz' },
      { audience: 'https://api.example.com/elsewhere' },
      { keyShare: other.ks },
      { caller: { ...caller, sub: 'mallory' } },
      { service: { ...service, jkt: new Uint8Array(32).fill(3) } },
    ]) {
      const held = await completeHandshake({ suite: 'x25519', key: served.enc }, keyPairs, binding(ks, over));
      expect(await codeOf(() => decryptBody(held.responseKey, body))).toBe('e2ee_decrypt_failed');
    }
  });

  it('unknown key share: a victim share replayed under the attacker identity yields keys the victim cannot use', async () => {
    const victim = await offer(['x25519']);
    // The attacker sends the victim's share in a request signed with the attacker's own credential.
    const mallory = { ...caller, sub: 'mallory', jkt: new Uint8Array(32).fill(7) };
    const served = await acceptHandshake(victim.shares[0]!, binding(victim.ks, { caller: mallory }));
    const body = await encryptBody(served.responseKey, utf8('meant for mallory'));
    // Forwarded to the victim, whose transcript names the victim: no shared key.
    const held = await completeHandshake({ suite: 'x25519', key: served.enc }, victim.keyPairs, binding(victim.ks));
    expect(await codeOf(() => decryptBody(held.responseKey, body))).toBe('e2ee_decrypt_failed');
  });
});

describe('suite choice and invalid shares', () => {
  it("picks the first of the service's suites that the caller offered", async () => {
    const { ks } = await offer(['x25519', 'p256']);
    const offered = parseRequestKeyShare([ks]);
    expect(chooseSuite(offered, ['p256', 'x25519']).suite).toBe('p256');
    expect(chooseSuite(offered, ['x25519', 'p256']).suite).toBe('x25519');
    const onlyP256 = parseRequestKeyShare([(await offer(['p256'])).ks]);
    expect(await codeOf(() => chooseSuite(onlyP256, ['x25519']))).toBe('e2ee_kem_unsupported');
  });

  it('refuses an invalid share with e2ee_key_share_invalid and a suite the caller never offered with e2ee_response_suite_mismatch', async () => {
    const { keyPairs, ks } = await offer(['x25519']);
    expect(await codeOf(() => acceptHandshake({ suite: 'x25519', key: new Uint8Array(32) }, binding(ks)))).toBe('e2ee_key_share_invalid');
    const offCurve = new Uint8Array(65).fill(1);
    offCurve[0] = 4;
    expect(await codeOf(() => acceptHandshake({ suite: 'p256', key: offCurve }, binding(ks)))).toBe('e2ee_key_share_invalid');
    const p256 = await offer(['p256']);
    const served = await acceptHandshake(p256.shares[0]!, binding(p256.ks));
    expect(await codeOf(() => completeHandshake({ suite: 'p256', key: served.enc }, keyPairs, binding(ks)))).toBe('e2ee_response_suite_mismatch');
  });
});
