// Workload Identity Tokens: issued at the WIT endpoint and by token exchange to attested workloads,
// verifiable by the core's WIT verifier, and exchanged (proven with their key) for ICTs.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { createLocalJWKSet, decodeProtectedHeader, exportJWK, jwtVerify, SignJWT, type JWK } from 'jose';
import { createWitVerifier } from '@oidc2/core';
import {
  ACCESS_TOKEN_TYPE,
  API_KEY_TOKEN_TYPE,
  apiKeys,
  clientAssertions,
  createIssuer,
  hashApiKey,
  ICT_TOKEN_TYPE,
  JWT_BEARER_ASSERTION_TYPE,
  JWT_TOKEN_TYPE,
  jwtAccessTokens,
  TOKEN_EXCHANGE_GRANT_TYPE,
  WIT_TOKEN_TYPE,
  type ClientAuthenticator,
  type Issuer,
  type IssuerOptions,
} from '@oidc2/issuer';
import { authorizationServer, clock, dpopProof, form, keyPair, lateServer, popToken, T0, type KeyPair } from './helpers';

const clk = clock();
beforeEach(() => clk.set(T0));

interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, any>;
}

async function post(url: string, body: string, headers: Record<string, string>): Promise<Answer> {
  const res = await fetch(url, { method: 'POST', body, headers });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : {} };
}

function expectError(answer: Answer, status: number, code: string, error?: string): void {
  expect({ status: answer.status, code: answer.body.code }).toEqual({ status, code });
  if (error !== undefined) expect(answer.body.error).toBe(error);
}

/** An issuer on its own loopback server. */
async function serve(options: Omit<IssuerOptions, 'issuer' | 'now'>): Promise<{ url: string; issuer: Issuer; close(): Promise<void> }> {
  const srv = await lateServer();
  const issuer = await createIssuer({ issuer: srv.url, now: clk.now, ...options });
  srv.use(issuer.nodeHandler);
  return { url: srv.url, issuer, close: srv.close };
}

const BILLING_KEY = 'billing-key-'.padEnd(40, 'b');
const BATCH_KEY = 'batch-key-'.padEnd(40, 'c');
const FOREIGN_KEY = 'foreign-key-'.padEnd(40, 'f');
const BILLING = 'spiffe://example.org/billing';

let as: Awaited<ReturnType<typeof authorizationServer>>;
let assertionKey: KeyPair;
let iss: Awaited<ReturnType<typeof serve>>;

beforeAll(async () => {
  as = await authorizationServer();
  assertionKey = await keyPair();
  iss = await serve({
    authenticators: [
      apiKeys({
        keys: [
          { hash: hashApiKey(BILLING_KEY), subject: BILLING, contexts: ['payments'] },
          { hash: hashApiKey(BATCH_KEY), subject: 'batch' },
          { hash: hashApiKey(FOREIGN_KEY), subject: 'spiffe://other.org/intruder' },
        ],
      }),
      clientAssertions({ clients: { reporting: { jwks: { keys: [assertionKey.publicJwk] }, subject: 'spiffe://example.org/reporting' } } }),
      jwtAccessTokens({ issuer: as.issuer, audience: 'https://op.test', jwks: as.jwks }),
    ],
    subjects: { [BILLING]: { contexts: ['payments'] } },
    workloads: { trustDomain: 'example.org' },
  });
});
afterAll(() => iss.close());

/** POST to the WIT endpoint with an API key and a PoP token signed by `kp`. */
async function witRequest(opts: { apiKey?: string; kp?: KeyPair; sub?: string; popClaims?: Record<string, unknown>; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  const kp = opts.kp ?? (await keyPair());
  const pop = await popToken(kp, { iss: BILLING, sub: opts.sub ?? BILLING, aud: iss.url, ...opts.popClaims }, { now: clk.now() });
  return post(`${iss.url}/wit`, opts.body ?? pop, {
    'content-type': 'application/jwt+pop',
    ...(opts.apiKey !== '' ? { authorization: `ApiKey ${opts.apiKey ?? BILLING_KEY}` } : {}),
    ...opts.headers,
  });
}

/** RFC 8693 token exchange at the issuer, the key proven by a DPoP proof of `kp` (or `proof`). */
async function exchange(params: Record<string, string | undefined>, opts: { kp?: KeyPair; proof?: string | null; url?: string } = {}): Promise<Answer> {
  const url = opts.url ?? iss.url;
  const body: Record<string, string> = {};
  for (const [k, v] of Object.entries({ grant_type: TOKEN_EXCHANGE_GRANT_TYPE, ...params })) if (v !== undefined) body[k] = v;
  const proof = opts.proof === undefined ? await dpopProof(opts.kp ?? (await keyPair()), { htm: 'POST', htu: `${url}/token` }, { now: clk.now() }) : opts.proof;
  return post(`${url}/token`, form(body), { 'content-type': 'application/x-www-form-urlencoded', ...(proof ? { dpop: proof } : {}) });
}

/** A WIT for `kp` from the WIT endpoint. */
async function witFor(kp: KeyPair): Promise<string> {
  const answer = await witRequest({ kp });
  expect(answer.status).toBe(201);
  return answer.body.workload_identity_token;
}

function witVerifier() {
  return createWitVerifier({ trustDomains: [{ trustDomain: 'example.org', issuer: iss.url }], now: clk.now });
}

async function verifyIct(token: string) {
  const jwks = (await (await fetch(`${iss.url}/jwks`)).json()) as { keys: JWK[] };
  return jwtVerify(token, createLocalJWKSet(jwks), { issuer: iss.url, typ: 'ict+jwt', currentDate: new Date(clk.now() * 1000) });
}

describe('discovery', () => {
  test('publishes the WIT endpoint, its algorithms and the Workload Identifier Origin', async () => {
    const doc = await iss.issuer.metadata();
    expect(doc).toMatchObject({
      wit_endpoint: `${iss.url}/wit`,
      wit_signing_alg_values_supported: ['ES256'],
      workload_identifier_origin: 'spiffe://example.org',
    });
    expect(iss.issuer.endpoints.wit).toBe(`${iss.url}/wit`);
  });

  test('an issuer without workloads publishes none of it and does not serve /wit', async () => {
    const plain = await serve({ authenticators: [apiKeys({ keys: [{ hash: hashApiKey(BILLING_KEY), subject: BILLING }] })] });
    try {
      const doc = await plain.issuer.metadata();
      expect(doc.wit_endpoint).toBeUndefined();
      expect(doc.workload_identifier_origin).toBeUndefined();
      expect(plain.issuer.endpoints.wit).toBeUndefined();
      const pop = await popToken(await keyPair(), { iss: BILLING, sub: BILLING, aud: plain.url }, { now: T0 });
      expect((await post(`${plain.url}/wit`, pop, { 'content-type': 'application/jwt+pop', authorization: `ApiKey ${BILLING_KEY}` })).status).toBe(404);
      const asked = await exchange({ subject_token: BILLING_KEY, subject_token_type: API_KEY_TOKEN_TYPE, requested_token_type: WIT_TOKEN_TYPE }, { url: plain.url });
      expectError(asked, 400, 'token_type_unsupported', 'invalid_request');
    } finally {
      await plain.close();
    }
  });
});

describe('the WIT endpoint (the ICT request form)', () => {
  test.each(['ES256', 'Ed25519', 'EdDSA', 'ES384'] as const)('issues a WIT binding a %s key that the core WIT verifier accepts', async (alg) => {
    const kp = await keyPair(alg);
    const answer = await witRequest({ kp });
    expect(answer.status).toBe(201);
    expect(answer.headers.get('cache-control')).toBe('no-store');
    expect(answer.body.expires_in).toBe(3600);
    const token = answer.body.workload_identity_token as string;
    const header = decodeProtectedHeader(token);
    expect(header.typ).toBe('wit+jwt');
    expect((await iss.issuer.jwks()).keys.map((k) => k.kid)).toContain(header.kid);

    // Keys through the issuer's discovery document, as any WIMSE verifier configured with it.
    const wit = await witVerifier().verify(token);
    expect(wit.subject).toBe(BILLING);
    expect(wit.trustDomain).toBe('example.org');
    expect(wit.alg).toBe(alg);
    const { alg: _a, ...bare } = kp.publicJwk;
    expect(wit.jwk).toEqual({ ...bare, alg });
    expect(wit.claims).toMatchObject({ iss: iss.url, sub: BILLING, iat: T0, exp: T0 + 3600 });
    expect(typeof wit.claims.jti).toBe('string');
    // Nothing else: no audience, contexts or identity claims.
    expect(Object.keys(wit.claims).sort()).toEqual(['cnf', 'exp', 'iat', 'iss', 'jti', 'sub']);
  });

  test('accepts the PoP token in JSON and form bodies', async () => {
    const kp = await keyPair();
    const pop = () => popToken(kp, { iss: BILLING, sub: BILLING, aud: iss.url }, { now: T0 });
    expect((await witRequest({ headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pop_token: await pop() }) })).status).toBe(201);
    expect((await witRequest({ headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form({ pop_token: await pop() }) })).status).toBe(201);
  });

  test('a subject that is no identifier goes under the trust domain; the PoP may name either', async () => {
    for (const sub of ['batch', 'spiffe://example.org/batch']) {
      const answer = await witRequest({ apiKey: BATCH_KEY, sub, popClaims: { iss: 'batch' } });
      expect(answer.status).toBe(201);
      expect((await witVerifier().verify(answer.body.workload_identity_token)).subject).toBe('spiffe://example.org/batch');
    }
    expectError(await witRequest({ apiKey: BATCH_KEY, sub: 'spiffe://example.org/other', popClaims: { iss: 'batch' } }), 400, 'pop_invalid', 'invalid_request');
  });

  test('the WIT never outlives the credential that attested the workload', async () => {
    const short = await serve({
      authenticators: [async () => ({ subject: 'spiffe://example.org/short', kind: 'workload', expiresAt: T0 + 120 })],
      workloads: { trustDomain: 'example.org' },
    });
    try {
      const pop = await popToken(await keyPair(), { iss: 'x', sub: 'spiffe://example.org/short', aud: short.url }, { now: T0 });
      const answer = await post(`${short.url}/wit`, pop, { 'content-type': 'application/jwt+pop' });
      expect(answer.status).toBe(201);
      expect(answer.body.expires_in).toBe(120);
    } finally {
      await short.close();
    }
  });

  test('RFC 7523 client assertions attest a workload (aud: the WIT endpoint or the issuer)', async () => {
    for (const aud of [`${iss.url}/wit`, iss.url]) {
      const assertion = await new SignJWT({ iss: 'reporting', sub: 'reporting', aud, iat: T0, exp: T0 + 60, jti: randomUUID() })
        .setProtectedHeader({ alg: 'ES256' })
        .sign(assertionKey.privateKey);
      const pop = await popToken(await keyPair(), { iss: 'reporting', sub: 'spiffe://example.org/reporting', aud: iss.url }, { now: T0 });
      const answer = await post(`${iss.url}/wit`, form({ pop_token: pop, client_assertion_type: JWT_BEARER_ASSERTION_TYPE, client_assertion: assertion }), {
        'content-type': 'application/x-www-form-urlencoded',
      });
      expect(answer.status).toBe(201);
      expect((await witVerifier().verify(answer.body.workload_identity_token)).subject).toBe('spiffe://example.org/reporting');
    }
  });

  describe('rejections', () => {
    test('no PoP token: 400 request_malformed', async () => {
      expectError(await witRequest({ headers: { 'content-type': 'application/json' }, body: '{}' }), 400, 'request_malformed', 'invalid_request');
      expectError(await witRequest({ headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form({ other: 'x' }) }), 400, 'request_malformed', 'invalid_request');
    });

    test('a PoP token not signed by its jwk, expired, or for another issuer', async () => {
      const kp = await keyPair();
      const forged = await popToken(await keyPair(), { iss: BILLING, sub: BILLING, aud: iss.url }, { now: T0, jwk: kp.publicJwk });
      expectError(await witRequest({ body: forged }), 400, 'pop_invalid', 'invalid_request');
      expectError(await witRequest({ body: await popToken(kp, { iss: BILLING, sub: BILLING, aud: iss.url }, { now: T0 - 600 }) }), 400, 'pop_expired');
      expectError(await witRequest({ popClaims: { aud: 'https://elsewhere.test' } }), 400, 'audience_mismatch');
    });

    test('a replayed PoP token', async () => {
      const pop = await popToken(await keyPair(), { iss: BILLING, sub: BILLING, aud: iss.url }, { now: T0 });
      expect((await witRequest({ body: pop })).status).toBe(201);
      expectError(await witRequest({ body: pop }), 400, 'replay_detected');
    });

    test('PoP claims that only make sense for an ICT are refused', async () => {
      for (const popClaims of [{ with_audience: false }, { required_claims: ['name'] }, { optional_claims: ['name'] }]) {
        expectError(await witRequest({ popClaims }), 400, 'pop_invalid');
      }
    });

    test('no credential, or an unknown API key: 401', async () => {
      const none = await witRequest({ apiKey: '' });
      expectError(none, 401, 'access_token_missing');
      expect(none.headers.get('www-authenticate')).toMatch(/^Bearer realm=/);
      expectError(await witRequest({ apiKey: 'nope' }), 401, 'client_invalid', 'invalid_client');
    });

    test('an end-user is no workload: 403 access_denied', async () => {
      const at = await as.accessToken({ sub: 'alice', scope: 'e2e_auth_email' }, { now: T0 });
      const pop = await popToken(await keyPair(), { iss: 'app', sub: 'alice', aud: iss.url }, { now: T0 });
      expectError(await post(`${iss.url}/wit`, pop, { 'content-type': 'application/jwt+pop', authorization: `Bearer ${at}` }), 403, 'access_denied', 'access_denied');
    });

    test('a workload whose identifier lies outside the trust domain: 403 access_denied', async () => {
      const answer = await witRequest({ apiKey: FOREIGN_KEY, sub: 'spiffe://other.org/intruder', popClaims: { iss: 'spiffe://other.org/intruder' } });
      expectError(answer, 403, 'access_denied', 'access_denied');
    });

    test('a WIT is not exchanged for a WIT', async () => {
      const wit = await witFor(await keyPair());
      expectError(await witRequest({ apiKey: '', headers: { 'workload-identity-token': wit } }), 400, 'request_malformed');
    });
  });
});

describe('token exchange for a WIT (requested_token_type WIT_TOKEN_TYPE)', () => {
  const ask = (extra: Record<string, string | undefined> = {}) => ({ subject_token: BILLING_KEY, subject_token_type: API_KEY_TOKEN_TYPE, requested_token_type: WIT_TOKEN_TYPE, ...extra });

  test('an API key and a DPoP proof yield a WIT for the proof key', async () => {
    const kp = await keyPair('Ed25519');
    const answer = await exchange(ask(), { kp });
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ issued_token_type: WIT_TOKEN_TYPE, token_type: 'N_A', expires_in: 3600 });
    const wit = await witVerifier().verify(answer.body.access_token);
    expect(wit.subject).toBe(BILLING);
    expect(wit.alg).toBe('Ed25519');
    expect(wit.jwk.x).toBe(kp.publicJwk.x);
  });

  test('a client assertion as subject_token (aud: the token endpoint)', async () => {
    const assertion = await new SignJWT({ iss: 'reporting', sub: 'reporting', aud: `${iss.url}/token`, iat: T0, exp: T0 + 60, jti: randomUUID() })
      .setProtectedHeader({ alg: 'ES256' })
      .sign(assertionKey.privateKey);
    const answer = await exchange(ask({ subject_token: assertion, subject_token_type: JWT_TOKEN_TYPE }));
    expect(answer.status).toBe(200);
    expect((await witVerifier().verify(answer.body.access_token)).subject).toBe('spiffe://example.org/reporting');
  });

  test.each([
    ['no DPoP proof', {}, { proof: null }, 400, 'dpop_invalid', 'invalid_dpop_proof'],
    ['a scope', { scope: 'e2e_auth_payments' }, {}, 400, 'context_not_allowed', 'invalid_scope'],
    ['an audience', { audience: 'https://elsewhere.test' }, {}, 400, 'audience_mismatch', 'invalid_target'],
    ['an unknown API key', { subject_token: 'nope' }, {}, 400, 'client_invalid', 'invalid_request'],
    ['a workload outside the trust domain', { subject_token: FOREIGN_KEY }, {}, 403, 'access_denied', 'access_denied'],
  ] as const)('%s', async (_name, extra, opts, status, code, error) => {
    expectError(await exchange(ask(extra), opts as { proof?: null }), status, code, error);
  });

  test('an end-user access token: 403 access_denied', async () => {
    const at = await as.accessToken({ sub: 'alice', scope: 'e2e_auth_email' }, { now: T0 });
    expectError(await exchange(ask({ subject_token: at, subject_token_type: ACCESS_TOKEN_TYPE })), 403, 'access_denied');
  });

  test('a Workload-Identity-Token field at the token endpoint is refused, not ignored', async () => {
    const kp = await keyPair();
    const wit = await witFor(kp);
    const proof = await dpopProof(kp, { htm: 'POST', htu: `${iss.url}/token` }, { now: T0 });
    const answer = await post(`${iss.url}/token`, form({ grant_type: TOKEN_EXCHANGE_GRANT_TYPE, subject_token: BILLING_KEY, subject_token_type: API_KEY_TOKEN_TYPE }), {
      'content-type': 'application/x-www-form-urlencoded',
      dpop: proof,
      'workload-identity-token': wit,
    });
    expectError(answer, 400, 'request_malformed', 'invalid_request');
  });

  test('a WIT as subject_token: 400 token_type_unsupported', async () => {
    const kp = await keyPair();
    const wit = await witFor(kp);
    expectError(await exchange(ask({ subject_token: wit, subject_token_type: WIT_TOKEN_TYPE }), { kp }), 400, 'token_type_unsupported', 'invalid_request');
  });
});

describe('WIMSE credential exchange: a WIT proven with its key, exchanged for an ICT', () => {
  const toIct = (wit: string, extra: Record<string, string> = {}) => ({ subject_token: wit, subject_token_type: WIT_TOKEN_TYPE, requested_token_type: ICT_TOKEN_TYPE, ...extra });

  test('token exchange with a DPoP proof by the WIT key yields an ICT for the same workload and key', async () => {
    const kp = await keyPair();
    const wit = await witFor(kp);
    clk.advance(600);
    const answer = await exchange(toIct(wit), { kp });
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ issued_token_type: ICT_TOKEN_TYPE, token_type: 'N_A', expires_in: 300, scope: 'e2e_auth_payments' });
    const { payload } = await verifyIct(answer.body.access_token);
    const { alg: _a, ...bare } = kp.publicJwk;
    expect(payload).toMatchObject({ iss: iss.url, sub: BILLING, ctx: ['payments'], cnf: { jwk: { ...bare, alg: 'ES256' } } });
    expect(payload.aud).toBeUndefined();
  });

  test('the ICT never outlives the WIT', async () => {
    const kp = await keyPair();
    const wit = await witFor(kp);
    clk.advance(3600 - 100);
    const answer = await exchange(toIct(wit), { kp });
    expect(answer.status).toBe(200);
    expect(answer.body.expires_in).toBe(100);
  });

  test('the ICT endpoint takes the WIT in Workload-Identity-Token with a PoP token by its key', async () => {
    const kp = await keyPair('Ed25519');
    const wit = await witFor(kp);
    const pop = await popToken(kp, { iss: 'any', sub: BILLING, aud: iss.url }, { now: T0 });
    const answer = await post(`${iss.url}/ict`, pop, { 'content-type': 'application/jwt+pop', 'workload-identity-token': wit });
    expect(answer.status).toBe(201);
    expect((await verifyIct(answer.body.identity_certification_token)).payload).toMatchObject({ sub: BILLING, ctx: ['payments'] });
    // Another key cannot use the WIT.
    const other = await popToken(await keyPair('Ed25519'), { iss: 'any', sub: BILLING, aud: iss.url }, { now: T0 });
    expectError(await post(`${iss.url}/ict`, other, { 'content-type': 'application/jwt+pop', 'workload-identity-token': wit }), 400, 'pop_key_invalid');
  });

  test('the ICT endpoint: a malformed field, or a WIT beside another credential, is refused', async () => {
    const kp = await keyPair();
    const wit = await witFor(kp);
    const pop = () => popToken(kp, { iss: 'any', sub: BILLING, aud: iss.url }, { now: T0 });
    expectError(await post(`${iss.url}/ict`, await pop(), { 'content-type': 'application/jwt+pop', 'workload-identity-token': 'not a jwt' }), 400, 'wit_invalid', 'invalid_request');
    expectError(await post(`${iss.url}/ict`, await pop(), { 'content-type': 'application/jwt+pop', 'workload-identity-token': wit, authorization: `ApiKey ${BILLING_KEY}` }), 400, 'request_malformed');
  });

  test('a DPoP proof by another key: 400 invalid_dpop_proof', async () => {
    const wit = await witFor(await keyPair());
    expectError(await exchange(toIct(wit), { kp: await keyPair() }), 400, 'dpop_invalid', 'invalid_dpop_proof');
  });

  test('the WIT fixes the proof algorithm: the same RSA key signing with another alg is refused', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const publicJwk = await exportJWK(publicKey);
    const rs: KeyPair = { alg: 'RS256', privateKey: privateKey as never, publicJwk, privateJwk: {} };
    const ps: KeyPair = { ...rs, alg: 'PS256' };
    const wit = await witFor(rs);
    expect((await witVerifier().verify(wit)).alg).toBe('RS256');
    expectError(await exchange(toIct(wit), { kp: ps }), 400, 'dpop_invalid', 'invalid_dpop_proof');
    expect((await exchange(toIct(wit), { kp: rs })).status).toBe(200);
  });

  test('an expired WIT: 400 wit_expired', async () => {
    const kp = await keyPair();
    const wit = await witFor(kp);
    clk.advance(3600 + 120);
    expectError(await exchange(toIct(wit), { kp }), 400, 'wit_expired', 'invalid_request');
  });

  test('a WIT signed by another key, or of another trust domain: 400', async () => {
    const kp = await keyPair();
    const rogue = await keyPair();
    const forge = (sub: string) =>
      new SignJWT({ iss: iss.url, sub, iat: T0, exp: T0 + 600, jti: randomUUID(), cnf: { jwk: { ...kp.publicJwk, alg: 'ES256' } } })
        .setProtectedHeader({ alg: 'ES256', typ: 'wit+jwt', kid: (decodeProtectedHeader(wit).kid as string) })
        .sign(rogue.privateKey);
    const wit = await witFor(kp);
    expectError(await exchange(toIct(await forge(BILLING)), { kp }), 400, 'wit_invalid', 'invalid_request');
    expectError(await exchange(toIct(await forge('spiffe://other.org/billing')), { kp }), 400, 'wit_untrusted', 'invalid_request');
    expectError(await exchange(toIct('not-a-jwt')), 400, 'wit_invalid');
  });

  test('an ICT is not a WIT', async () => {
    const kp = await keyPair();
    const wit = await witFor(kp);
    const ict = (await exchange(toIct(wit), { kp })).body.access_token as string;
    expectError(await exchange(toIct(ict), { kp }), 400, 'wit_invalid');
  });

  test('WITs signed before a key rotation still exchange; after it new WITs carry the new kid', async () => {
    const local = await serve({ authenticators: [apiKeys({ keys: [{ hash: hashApiKey(BILLING_KEY), subject: BILLING }] })], workloads: { trustDomain: 'example.org' } });
    try {
      const kp = await keyPair();
      const pop = () => popToken(kp, { iss: BILLING, sub: BILLING, aud: local.url }, { now: clk.now() });
      const before = (await post(`${local.url}/wit`, await pop(), { 'content-type': 'application/jwt+pop', authorization: `ApiKey ${BILLING_KEY}` })).body.workload_identity_token as string;
      const { kid } = await local.issuer.rotateKeys();
      clk.advance(60);
      expect((await exchange(toIct(before), { kp, url: local.url })).status).toBe(200);
      const after = (await post(`${local.url}/wit`, await pop(), { 'content-type': 'application/jwt+pop', authorization: `ApiKey ${BILLING_KEY}` })).body.workload_identity_token as string;
      expect(decodeProtectedHeader(after).kid).toBe(kid);
      expect((await exchange(toIct(after), { kp, url: local.url })).status).toBe(200);
    } finally {
      await local.close();
    }
  });

  test('with exchange: false the issuer takes no WIT as credential', async () => {
    const local = await serve({ authenticators: [apiKeys({ keys: [{ hash: hashApiKey(BILLING_KEY), subject: BILLING }] })], workloads: { trustDomain: 'example.org', exchange: false } });
    try {
      const kp = await keyPair();
      const pop = await popToken(kp, { iss: BILLING, sub: BILLING, aud: local.url }, { now: T0 });
      const wit = (await post(`${local.url}/wit`, pop, { 'content-type': 'application/jwt+pop', authorization: `ApiKey ${BILLING_KEY}` })).body.workload_identity_token as string;
      expectError(await exchange(toIct(wit), { kp, url: local.url }), 400, 'wit_untrusted', 'invalid_request');
    } finally {
      await local.close();
    }
  });
});

describe('the identifier rule', () => {
  async function witSubject(options: IssuerOptions['workloads'], authenticators: ClientAuthenticator[]): Promise<Answer & { subject?: string }> {
    const local = await serve({ authenticators, workloads: options });
    try {
      const pop = await popToken(await keyPair(), { iss: 'x', sub: 'svc', aud: local.url }, { now: T0 });
      const answer = await post(`${local.url}/wit`, pop, { 'content-type': 'application/jwt+pop' });
      if (answer.status !== 201) return answer;
      const verifier = createWitVerifier({ trustDomains: [{ trustDomain: 'example.org', issuer: local.url }], now: clk.now });
      return { ...answer, subject: (await verifier.verify(answer.body.workload_identity_token)).subject };
    } finally {
      await local.close();
    }
  }
  const workload = (extra: Record<string, unknown> = {}): ClientAuthenticator => async () => ({ subject: 'svc', kind: 'workload', clientId: 'x', ...extra });

  test('a path template with subject, clientId and claim placeholders', async () => {
    const answer = await witSubject({ trustDomain: 'example.org', scheme: 'wimse', subject: '/team/{claims.team}/{clientId}/{subject}' }, [workload({ claims: { team: 'fin' } })]);
    expect(answer.subject).toBe('wimse://example.org/team/fin/x/svc');
  });

  test('a full identifier template', async () => {
    const answer = await witSubject({ trustDomain: 'example.org', subject: 'spiffe://example.org/w/{subject}' }, [workload()]);
    expect(answer.subject).toBe('spiffe://example.org/w/svc');
  });

  test('a placeholder value that is not one path segment refuses the WIT: 403', async () => {
    for (const team of ['a/b', '..', '', 42]) {
      const answer = await witSubject({ trustDomain: 'example.org', subject: '/team/{claims.team}' }, [workload({ claims: { team } })]);
      expectError(answer, 403, 'access_denied');
    }
    expectError(await witSubject({ trustDomain: 'example.org', subject: '/team/{claims.team}' }, [workload()]), 403, 'access_denied');
  });

  test('a function may return a path, a full identifier, or nothing', async () => {
    expect((await witSubject({ trustDomain: 'example.org', subject: (w) => `/fn/${w.subject}` }, [workload()])).subject).toBe('spiffe://example.org/fn/svc');
    expect((await witSubject({ trustDomain: 'example.org', subject: async () => 'spiffe://example.org/async' }, [workload()])).subject).toBe('spiffe://example.org/async');
    expectError(await witSubject({ trustDomain: 'example.org', subject: () => undefined }, [workload()]), 403, 'access_denied');
  });

  test.each([
    ['another trust domain', 'spiffe://other.org/svc'],
    ['the other scheme', 'wimse://example.org/svc'],
    ['a port', 'spiffe://example.org:8443/svc'],
    ['a query', 'spiffe://example.org/svc?x=1'],
    ['a dot segment', 'spiffe://example.org/a/../svc'],
    ['a trailing slash', 'spiffe://example.org/svc/'],
    ['no path', 'spiffe://example.org'],
    ['an upper-case trust domain', 'spiffe://Example.org/svc'],
    ['user information', 'spiffe://u@example.org/svc'],
  ])('a function yielding %s: 403 access_denied', async (_name, id) => {
    expectError(await witSubject({ trustDomain: 'example.org', subject: () => id }, [workload()]), 403, 'access_denied');
  });

  test('by default a subject outside the trust domain is refused, not rewritten', async () => {
    expectError(await witSubject({ trustDomain: 'example.org' }, [workload({ subject: 'spiffe://other.org/svc' })]), 403, 'access_denied');
    expectError(await witSubject({ trustDomain: 'example.org' }, [workload({ subject: 'has space' })]), 403, 'access_denied');
  });

  test('a rule returning a non-string is a defect: 500 without detail', async () => {
    const answer = await witSubject({ trustDomain: 'example.org', subject: (() => 42) as never }, [workload()]);
    expect({ status: answer.status, code: answer.body.code }).toEqual({ status: 500, code: 'server_error' });
  });
});
