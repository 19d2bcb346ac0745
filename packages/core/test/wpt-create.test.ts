// createWpt, the caller's side of draft-ietf-wimse-wpt-02: every proof it makes is accepted by
// verifyWpt for the request it was made for, and refused for any other (another WIT, audience,
// Txn-Token or key), so the two sides agree on every claim.
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { createWitVerifier, createWpt, importKey, isOidc2Error, MemoryReplayStore, verifyWpt, wimseTokenHash, type VerifiedWit, type WptVerifyOptions } from '../src/index';
import { newKey, type TestKey } from '../../../test/support/credentials';
import { newTrustDomain, type TestTrustDomain } from './support/wit';

const T = 1_790_000_000;
const now = () => T;
const AUD = 'https://inventory.example.com/items';

let td: TestTrustDomain;

beforeAll(async () => {
  td = await newTrustDomain('workloads.example');
});

async function holder(alg: 'ES256' | 'Ed25519' | 'PS256' = 'ES256'): Promise<{ key: TestKey; wit: string; verified: VerifiedWit }> {
  const key = await newKey(alg);
  const wit = await td.mint(key, { now: T - 10 });
  const verified = await createWitVerifier({ trustDomains: [{ trustDomain: td.trustDomain, jwks: td.jwks }], now }).verify(wit);
  return { key, wit, verified };
}

function verifyOptions(h: { wit: string; verified: VerifiedWit }, extra: Partial<WptVerifyOptions> = {}): WptVerifyOptions {
  return { wit: h.verified, witToken: h.wit, audience: [AUD], now: T, replayStore: new MemoryReplayStore(), ...extra };
}

async function code(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'accepted';
  } catch (error) {
    if (isOidc2Error(error)) return error.code;
    if (error instanceof TypeError) return (error as TypeError & { code: string }).code;
    throw error;
  }
}

describe('createWpt', () => {
  it.each(['ES256', 'Ed25519', 'PS256'] as const)('%s: makes the claims of wpt-02, which verifyWpt accepts', async (alg) => {
    const h = await holder(alg);
    const wpt = await createWpt({ wit: h.wit, key: h.key.signer, audience: `${AUD}?page=2#top`, now });
    expect(decodeProtectedHeader(wpt)).toEqual({ typ: 'wpt+jwt', alg });
    const claims = decodeJwt(wpt);
    expect(Object.keys(claims).sort()).toEqual(['aud', 'exp', 'jti', 'wth']);
    expect(claims).toMatchObject({ aud: AUD, exp: T + 60, wth: await wimseTokenHash(h.wit) });
    expect(claims.jti).toMatch(/^[A-Za-z0-9_-]{22}$/);
    await expect(verifyWpt(wpt, verifyOptions(h))).resolves.toEqual({ jti: claims.jti, exp: T + 60 });
  });

  it('binds the Txn-Token (tth), an access token (ath) and other tokens (oth) it is given', async () => {
    const h = await holder();
    const wpt = await createWpt({ wit: h.wit, key: h.key.signer, audience: AUD, transactionToken: 'txn.token.x', accessToken: 'at', otherTokens: { 'urn:example:t': 'other' }, now, expiresIn: 300, jti: 'j-1' });
    expect(decodeJwt(wpt)).toMatchObject({ exp: T + 300, jti: 'j-1', tth: await wimseTokenHash('txn.token.x'), ath: await wimseTokenHash('at'), oth: { 'urn:example:t': await wimseTokenHash('other') } });
    const bound = { transactionToken: 'txn.token.x', accessToken: 'at', otherTokens: { 'urn:example:t': 'other' } };
    expect(await code(verifyWpt(wpt, verifyOptions(h, bound)))).toBe('accepted');
    // The same proof for a request without the Txn-Token, or with another one, is refused.
    expect(await code(verifyWpt(wpt, verifyOptions(h, { ...bound, transactionToken: undefined })))).toBe('wpt_invalid');
    expect(await code(verifyWpt(wpt, verifyOptions(h, { ...bound, transactionToken: 'txn.token.y' })))).toBe('wpt_invalid');
    // A proof without tth does not cover a Txn-Token sent beside it.
    const plain = await createWpt({ wit: h.wit, key: h.key.signer, audience: AUD, now });
    expect(await code(verifyWpt(plain, verifyOptions(h, { transactionToken: 'txn.token.x' })))).toBe('wpt_invalid');
  });

  it('is refused for another audience, another WIT, or when replayed', async () => {
    const h = await holder();
    const other = await holder();
    const replayStore = new MemoryReplayStore();
    const wpt = await createWpt({ wit: h.wit, key: h.key.signer, audience: AUD, now });
    expect(await code(verifyWpt(wpt, verifyOptions(h, { audience: ['https://inventory.example.com/other'] })))).toBe('wpt_invalid');
    expect(await code(verifyWpt(wpt, verifyOptions(other)))).toBe('wpt_invalid');
    expect(await code(verifyWpt(wpt, verifyOptions(h, { replayStore })))).toBe('accepted');
    expect(await code(verifyWpt(wpt, verifyOptions(h, { replayStore })))).toBe('wpt_invalid');
  });

  it('takes its alg from the WIT: an EdDSA-bound WIT gets EdDSA proofs from an Ed25519 key handle', async () => {
    const key = await newKey('Ed25519');
    const wit = await td.mint({ ...key, alg: 'EdDSA' as never }, { now: T - 10 });
    const verified = await createWitVerifier({ trustDomains: [{ trustDomain: td.trustDomain, jwks: td.jwks }], now }).verify(wit);
    const wpt = await createWpt({ wit, key: await importKey(key.privateJwk, 'Ed25519', 'sign'), audience: AUD, now });
    expect(decodeProtectedHeader(wpt).alg).toBe('EdDSA');
    expect(await code(verifyWpt(wpt, verifyOptions({ wit, verified })))).toBe('accepted');
  });

  it('refuses bad options with a TypeError code, before signing anything', async () => {
    const h = await holder();
    const es384 = await newKey('ES384');
    const base = { wit: h.wit, key: h.key.signer, audience: AUD, now };
    expect(await code(createWpt({ ...base, extra: 1 } as never))).toBe('ERR_UNKNOWN_OPTION');
    expect(await code(createWpt({ ...base, wit: 'not-a-jwt' }))).toBe('ERR_INVALID_ARG_VALUE');
    expect(await code(createWpt({ ...base, wit: await td.mint(h.key, { now: T, claims: { cnf: { jwk: h.key.publicJwk } } }) }))).toBe('ERR_INVALID_ARG_VALUE');
    expect(await code(createWpt({ ...base, key: es384.signer }))).toBe('ERR_INVALID_ARG_VALUE');
    expect(await code(createWpt({ ...base, key: await importKey(h.key.publicJwk, 'ES256', 'verify') }))).toBe('ERR_INVALID_ARG_VALUE');
    expect(await code(createWpt({ ...base, audience: '' }))).toBe('ERR_INVALID_ARG_VALUE');
    expect(await code(createWpt({ ...base, expiresIn: 301 }))).toBe('ERR_INVALID_ARG_VALUE');
    expect(await code(createWpt({ ...base, expiresIn: 0 }))).toBe('ERR_INVALID_ARG_VALUE');
    expect(await code(createWpt({ ...base, jti: '' }))).toBe('ERR_INVALID_ARG_VALUE');
    expect(await code(createWpt({ ...base, transactionToken: 7 as never }))).toBe('ERR_INVALID_ARG_TYPE');
    expect(await code(createWpt({ ...base, otherTokens: { a: 1 } as never }))).toBe('ERR_INVALID_ARG_TYPE');
  });
});
