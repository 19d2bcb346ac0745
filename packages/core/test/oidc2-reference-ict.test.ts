// ICTs as the OIDC² draft and its reference OpenID Provider issue them verify here: `typ` jwt+ict,
// an RS256 (or ES384) issuer key, a `ctx` claim, and the claims the reference OP adds.
//  - the draft's own example (draft-openid-oidc2 section 4.5, Fig. 8 with the key of Fig. 9);
//  - a token shaped exactly as JonasPrimbs/oidc-e2ea-server (commit 5f4854a, go/api_default.go,
//    GenerateIct) emits it: golang-jwt with a map of claims, so header and claims are in sorted key
//    order; `nonce` and `jti` are base64url of 24 random bytes; `aud` is the client ID (with
//    with_audience); `iat` = `nbf`; the default lifetime 3600 s; `cnf.jwk` is the jwk header of the
//    client's PoP token as sent; the userinfo claims beside; `ctx` is null when no context was granted.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { importJWK, type JWK } from 'jose';
import { createAuthenticator, createIctVerifier, isOidc2Error, signRequest } from '../src/index';
import { encodeBase64Url, utf8 } from '../src/lib/base64';
import { newKey } from '../../../test/support/credentials';
import draft from './fixtures/oidc2-draft-ict.json';

const RS256_ISSUER = JSON.parse(readFileSync(join(__dirname, 'fixtures', 'issuer-rs256.jwk.json'), 'utf8')) as JWK;
const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...RS256_PUBLIC } = RS256_ISSUER;
const OP = 'https://op.oidc2.example/realms/oidc2';
const T = 1_790_000_000;

describe('the OIDC² draft example ICT (Fig. 8)', () => {
  it('verifies: typ jwt+ict, ES384, ctx, aud of the client', async () => {
    const verifier = createIctVerifier({ issuers: [{ issuer: 'https://op.example.com', jwks: { keys: [draft.opPublicKey] } }], now: () => 1691712100 });
    const ict = await verifier.verify(draft.ict);
    expect(ict).toMatchObject({ issuer: 'https://op.example.com', subject: '1234567890', contexts: ['email'], alg: 'ES384' });
    expect(ict.header.typ).toBe('jwt+ict');
    expect(ict.payload).toMatchObject({ aud: 'exampleclient', name: 'John Smith' });
    // Past its five minutes it is expired, and another OP key does not verify it.
    await expect(createIctVerifier({ issuers: [{ issuer: 'https://op.example.com', jwks: { keys: [draft.opPublicKey] } }], now: () => 1691712400 }).verify(draft.ict)).rejects.toMatchObject({ code: 'ict_expired' });
  });
});

/** Signs like golang-jwt v4 with jwt.MapClaims: JSON of Go maps, keys sorted. */
async function goJwt(header: Record<string, unknown>, claims: Record<string, unknown>, key: JWK): Promise<string> {
  const sorted = (o: Record<string, unknown>) => JSON.stringify(Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1))));
  const input = `${encodeBase64Url(utf8(sorted(header)))}.${encodeBase64Url(utf8(sorted(claims)))}`;
  const signer = (await importJWK(key, 'RS256')) as CryptoKey;
  const signature = new Uint8Array(await crypto.subtle.sign('RSASSA-PKCS1-v1_5', signer, utf8(input) as Uint8Array<ArrayBuffer>));
  return `${input}.${encodeBase64Url(signature)}`;
}

async function referenceIct(cnfJwk: JWK, ctx: string[] | null, t = T): Promise<string> {
  const random = () => Buffer.from(crypto.getRandomValues(new Uint8Array(24))).toString('base64url');
  return goJwt(
    { alg: 'RS256', kid: 'rsa-kid-1', typ: 'jwt+ict' },
    {
      aud: 'oidc2-demo',
      cnf: { jwk: cnfJwk },
      ctx,
      email: 'alice@oidc2.example',
      email_verified: true,
      exp: t + 3600,
      family_name: 'Doe',
      given_name: 'Alice',
      iat: t,
      iss: OP,
      jti: random(),
      name: 'Alice Doe',
      nbf: t,
      nonce: random(),
      preferred_username: 'alice',
      sub: '8f0c5c2e-6d4e-4b51-9b39-1f0f3c2a9a11',
    },
    RS256_ISSUER,
  );
}

describe('an ICT shaped as the reference OpenID Provider emits it', () => {
  const issuers = () => [{ issuer: OP, jwks: { keys: [{ ...RS256_PUBLIC, kid: 'rsa-kid-1', alg: 'RS256', use: 'sig' }] } }];

  it('verifies, with its contexts, and authenticates a signed request a ctx policy admits', async () => {
    const client = await newKey('ES384');
    // The PoP token's jwk header as an oidc-squared client sets it: kty, crv, x, y.
    const { kty, crv, x, y } = client.publicJwk;
    const token = await referenceIct({ kty, crv, x, y }, ['authn', 'email']);
    const ict = await createIctVerifier({ issuers: issuers(), now: () => T + 5 }).verify(token);
    expect(ict).toMatchObject({ subject: '8f0c5c2e-6d4e-4b51-9b39-1f0f3c2a9a11', contexts: ['authn', 'email'], alg: 'ES384', thumbprint: client.thumbprint });
    const auth = createAuthenticator({ issuers: issuers(), audiences: ['https://api.example.com'], now: () => T + 5 });
    const signed = await signRequest({ method: 'GET', url: 'https://api.example.com/me' }, { ict: token, key: client.signer, now: () => T + 5 });
    await expect(auth.authenticate(signed)).resolves.toMatchObject({ kind: 'user', contexts: ['authn', 'email'], claims: { preferred_username: 'alice' } });
  });

  it('reads "ctx": null (no context granted) as no contexts, and still refuses a ctx that is not a list', async () => {
    const client = await newKey('ES256');
    const verifier = createIctVerifier({ issuers: issuers(), now: () => T + 5 });
    await expect(verifier.verify(await referenceIct(client.publicJwk, null))).resolves.toMatchObject({ contexts: [] });
    const error = await verifier.verify(await referenceIct(client.publicJwk, 'authn' as never)).catch((e: unknown) => e);
    expect(isOidc2Error(error) && error.code).toBe('ict_invalid');
  });

  it('an RSA client key in cnf.jwk needs its alg, as docs/protocol.md section 2 says', async () => {
    const client = await newKey('PS256');
    const { alg: _alg, ...bare } = client.publicJwk;
    const verifier = createIctVerifier({ issuers: issuers(), now: () => T + 5 });
    await expect(verifier.verify(await referenceIct(bare, ['authn']))).rejects.toMatchObject({ code: 'ict_cnf_invalid' });
    await expect(verifier.verify(await referenceIct({ ...bare, alg: 'PS256' }, ['authn']))).resolves.toMatchObject({ alg: 'PS256' });
  });
});
