import { createLocalJWKSet, decodeProtectedHeader, exportJWK, generateKeyPair, jwtVerify, type JWK } from 'jose';
import { apiKeys, createIssuer, hashApiKey, type Issuer, type IssuerOptions } from '@oidc2/issuer';
import { clock, keyPair, popToken, T0 } from './helpers';

const ISSUER = 'https://op.example.com';
const clk = clock();
beforeEach(() => clk.set(T0));

const workload = apiKeys({ keys: [{ hash: hashApiKey('key'), subject: 'w', contexts: ['c'] }] });

async function make(extra: Partial<IssuerOptions> = {}): Promise<Issuer> {
  return createIssuer({ issuer: ISSUER, now: clk.now, authenticators: [workload], ...extra });
}

async function issue(issuer: Issuer): Promise<string> {
  const pop = await popToken(await keyPair(), { iss: 'w', sub: 'w', aud: ISSUER }, { now: clk.now() });
  const res = await issuer.handle({
    method: 'POST',
    url: '/ict',
    headers: { authorization: ['ApiKey key'], 'content-type': ['application/jwt+pop'] },
    body: new TextEncoder().encode(pop),
  });
  expect(res.status).toBe(201);
  return JSON.parse(new TextDecoder().decode(res.body)).identity_certification_token;
}

async function kids(issuer: Issuer): Promise<string[]> {
  const res = await issuer.handle({ method: 'GET', url: '/jwks', headers: {} });
  return (JSON.parse(new TextDecoder().decode(res.body)) as { keys: JWK[] }).keys.map((k) => k.kid!);
}

async function privateJwk(alg: 'ES256' | 'EdDSA', kid: string): Promise<JWK> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  return { ...(await exportJWK(privateKey)), kid, alg };
}

describe('signing key rotation', () => {
  test('rotateKeys adds a new signing key; the old one stays until its ICTs have expired', async () => {
    const issuer = await make({ ictLifetime: 300, maxIctLifetime: 600, clockTolerance: 60 });
    const [k1] = await kids(issuer);
    const oldIct = await issue(issuer);
    const { kid: k2 } = await issuer.rotateKeys();
    expect(k2).not.toBe(k1);
    expect(await kids(issuer)).toEqual([k2, k1]);
    const newIct = await issue(issuer);
    expect(decodeProtectedHeader(newIct).kid).toBe(k2);
    // Both ICTs still verify against the published set while the old one is valid.
    clk.advance(299);
    const set = createLocalJWKSet({ keys: (await issuer.jwks()).keys });
    for (const ict of [oldIct, newIct]) await jwtVerify(ict, set, { currentDate: new Date(clk.now() * 1000) });
    // Retention is maxIctLifetime + clockTolerance after retirement.
    clk.set(T0 + 660 - 1);
    expect(await kids(issuer)).toEqual([k2, k1]);
    clk.set(T0 + 660);
    expect(await kids(issuer)).toEqual([k2]);
  });

  test('timed rotation replaces the signing key on the first request after the interval', async () => {
    const issuer = await make({ keyRotationInterval: 86400, maxIctLifetime: 3600 });
    const [k1] = await kids(issuer);
    clk.advance(86399);
    expect(decodeProtectedHeader(await issue(issuer)).kid).toBe(k1);
    clk.advance(1);
    const k2 = decodeProtectedHeader(await issue(issuer)).kid;
    expect(k2).not.toBe(k1);
    expect(await kids(issuer)).toEqual([k2, k1]);
    clk.advance(3600 + 60);
    expect(await kids(issuer)).toEqual([k2]);
  });

  test('configured keys: the first signs, the others are published until retention ends', async () => {
    const a = await privateJwk('EdDSA', 'a');
    const b = await privateJwk('ES256', 'b');
    const issuer = await make({ signingKeys: [a, b] });
    const ict = await issue(issuer);
    expect(decodeProtectedHeader(ict)).toMatchObject({ kid: 'a', alg: 'EdDSA', typ: 'ict+jwt' });
    const published = (await issuer.jwks()).keys;
    expect(published.map((k) => k.kid)).toEqual(['a', 'b']);
    for (const k of published) expect(k.d).toBeUndefined();
    expect((await issuer.metadata()).ict_signing_alg_values_supported).toEqual(['EdDSA', 'ES256']);
    clk.advance(3600 + 60);
    expect(await kids(issuer)).toEqual(['a']);
  });

  test('rotateKeys with a given key, and refusals of unusable keys', async () => {
    const issuer = await make();
    const next = await privateJwk('ES256', 'next');
    expect(await issuer.rotateKeys(next)).toEqual({ kid: 'next' });
    expect(decodeProtectedHeader(await issue(issuer)).kid).toBe('next');
    await expect(issuer.rotateKeys(next)).rejects.toThrow(TypeError);
    const { d: _d, ...pub } = await privateJwk('ES256', 'pub');
    await expect(issuer.rotateKeys(pub)).rejects.toThrow(TypeError);
  });
});
