import { request as httpRequest } from 'node:http';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, SignJWT, calculateJwkThumbprint, type JWK } from 'jose';
import {
  ACCESS_TOKEN_TYPE,
  createIssuer,
  ICT_TOKEN_TYPE,
  jwtAccessTokens,
  TOKEN_EXCHANGE_GRANT_TYPE,
  type Issuer,
} from '@oidc2/issuer';
import { authorizationServer, clock, dpopProof, form, keyPair, lateServer, popToken, T0, type KeyPair } from './helpers';

type AS = Awaited<ReturnType<typeof authorizationServer>>;

let srv: Awaited<ReturnType<typeof lateServer>>;
let as: AS;
let issuer: Issuer;
let issuerUrl: string;
const clk = clock();

interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, any>;
}

async function call(path: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  const res = await fetch(srv.url + path, { method: init.method ?? (init.body === undefined ? 'GET' : 'POST'), body: init.body, headers: init.headers });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : {} };
}

const USER = { sub: 'alice', client_id: 'app', scope: 'openid e2e_auth_email e2e_auth_chat e2e_auth_other', email: 'alice@example.com' };

async function ictRequest(opts: { at?: string; pop?: string; kp?: KeyPair; popClaims?: Record<string, unknown>; contentType?: string; body?: string } = {}): Promise<Answer> {
  const kp = opts.kp ?? (await keyPair());
  const at = opts.at ?? (await as.accessToken(USER, { now: clk.now() }));
  const pop = opts.pop ?? (await popToken(kp, { iss: 'app', sub: 'alice', aud: issuerUrl, ...opts.popClaims }, { now: clk.now() }));
  return call('/op/ict', {
    body: opts.body ?? pop,
    headers: { ...(at ? { authorization: `Bearer ${at}` } : {}), 'content-type': opts.contentType ?? 'application/jwt+pop' },
  });
}

async function verifyIct(token: string, jwks?: { keys: JWK[] }) {
  const set = jwks ?? (await call('/op/jwks')).body as { keys: JWK[] };
  return jwtVerify(token, createLocalJWKSet(set), { issuer: issuerUrl, typ: 'ict+jwt', currentDate: new Date(clk.now() * 1000) });
}

function expectError(answer: Answer, status: number, code: string, error?: string): void {
  expect({ status: answer.status, code: answer.body.code }).toEqual({ status, code });
  if (error !== undefined) expect(answer.body.error).toBe(error);
  expect(typeof answer.body.error_description).toBe('string');
  if (status === 401) expect(answer.headers.get('www-authenticate')).toMatch(/^Bearer realm="/);
}

beforeAll(async () => {
  srv = await lateServer();
  as = await authorizationServer();
  issuerUrl = `${srv.url}/op`;
  issuer = await createIssuer({
    issuer: issuerUrl,
    now: clk.now,
    authenticators: [jwtAccessTokens({ issuer: as.issuer, audience: 'https://op.test', jwks: as.jwks, claims: ['email'] })],
    clients: { app: { contexts: ['email', 'chat'] } },
    subjects: { alice: { claims: { name: 'Alice Example' } } },
  });
  srv.use(issuer.nodeHandler);
});
afterAll(() => srv.close());
beforeEach(() => clk.set(T0));

describe('discovery and JWKS', () => {
  test('discovery names the endpoints, algorithms and contexts', async () => {
    const { status, headers, body } = await call('/op/.well-known/openid-configuration');
    expect(status).toBe(200);
    expect(headers.get('cache-control')).toBe('public, max-age=300');
    expect(body).toMatchObject({
      issuer: issuerUrl,
      jwks_uri: `${issuerUrl}/jwks`,
      ict_endpoint: `${issuerUrl}/ict`,
      token_endpoint: `${issuerUrl}/token`,
      grant_types_supported: [TOKEN_EXCHANGE_GRANT_TYPE],
      id_token_signing_alg_values_supported: ['ES256'],
      ict_signing_alg_values_supported: ['ES256'],
      e2e_auth_contexts_supported: ['email', 'chat'],
    });
    expect(body.dpop_signing_alg_values_supported).toContain('Ed25519');
  });

  test('JWKS holds public members only, with kid, alg and use', async () => {
    const { status, headers, body } = await call('/op/jwks');
    expect(status).toBe(200);
    expect(headers.get('cache-control')).toMatch(/max-age=300/);
    expect(body.keys).toHaveLength(1);
    const [key] = body.keys;
    expect(Object.keys(key).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
    expect(key).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
  });

  test('HEAD answers without a body; other methods get 405 with Allow', async () => {
    const head = await fetch(`${srv.url}/op/jwks`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    const post = await call('/op/jwks', { body: '{}', headers: { 'content-type': 'application/json' } });
    expectError(post, 405, 'method_not_allowed');
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  test('paths the issuer does not serve get 404 from the node handler', async () => {
    expect((await call('/op/other')).status).toBe(404);
    expect((await call('/ict')).status).toBe(404);
  });
});

describe('ICT endpoint (OIDC² draft form)', () => {
  test.each(['ES256', 'Ed25519', 'EdDSA'] as const)('certifies a %s key', async (alg) => {
    const kp = await keyPair(alg);
    const answer = await ictRequest({ kp });
    expect(answer.status).toBe(201);
    expect(answer.headers.get('cache-control')).toBe('no-store');
    expect(answer.body.expires_in).toBe(300);
    expect(answer.body.e2e_auth_contexts).toEqual(['email', 'chat']);
    const { payload, protectedHeader } = await verifyIct(answer.body.identity_certification_token);
    expect(protectedHeader.typ).toBe('ict+jwt');
    expect(protectedHeader.kid).toBe((await call('/op/jwks')).body.keys[0].kid);
    const { alg: _a, ...bare } = kp.publicJwk;
    expect(payload.cnf).toEqual({ jwk: { ...bare, alg } });
    expect(payload).toMatchObject({ iss: issuerUrl, sub: 'alice', aud: 'app', iat: T0, nbf: T0, exp: T0 + 300, ctx: ['email', 'chat'], name: 'Alice Example', email: 'alice@example.com' });
    expect(typeof payload.jti).toBe('string');
    // Nothing else from the request or the access token.
    expect(Object.keys(payload).sort()).toEqual(['aud', 'cnf', 'ctx', 'email', 'exp', 'iat', 'iss', 'jti', 'name', 'nbf', 'sub']);
  });

  test('accepts the PoP token in JSON and form bodies', async () => {
    const kp = await keyPair();
    const pop1 = await popToken(kp, { iss: 'app', sub: 'alice', aud: issuerUrl }, { now: T0 });
    expect((await ictRequest({ contentType: 'application/json', body: JSON.stringify({ pop_token: pop1 }) })).status).toBe(201);
    const pop2 = await popToken(kp, { iss: 'app', sub: 'alice', aud: issuerUrl }, { now: T0 });
    expect((await ictRequest({ contentType: 'application/x-www-form-urlencoded; charset=utf-8', body: form({ pop_token: pop2 }) })).status).toBe(201);
  });

  test('unknown PoP claims are never copied; required and optional claims select', async () => {
    const only = await ictRequest({ popClaims: { role: 'admin', required_claims: ['name'], optional_claims: ['phone_number'] } });
    expect(only.status).toBe(201);
    const { payload } = await verifyIct(only.body.identity_certification_token);
    expect(payload.name).toBe('Alice Example');
    expect(payload.email).toBeUndefined();
    expect(payload.role).toBeUndefined();
    expect(payload.phone_number).toBeUndefined();
  });

  test('with_audience false omits aud; the ICT never outlives the access token', async () => {
    const at = await as.accessToken(USER, { now: T0, lifetime: 100 });
    const answer = await ictRequest({ at, popClaims: { with_audience: false } });
    expect(answer.status).toBe(201);
    expect(answer.body.expires_in).toBe(100);
    const { payload } = await verifyIct(answer.body.identity_certification_token);
    expect(payload.aud).toBeUndefined();
    expect(payload.exp).toBe(T0 + 100);
  });

  test('a DPoP-bound access token certifies only its own key', async () => {
    const kp = await keyPair();
    const jkt = await calculateJwkThumbprint(kp.publicJwk);
    expect((await ictRequest({ kp, at: await as.accessToken({ ...USER, cnf: { jkt } }, { now: T0 }) })).status).toBe(201);
    const other = await ictRequest({ at: await as.accessToken({ ...USER, cnf: { jkt } }, { now: T0 }) });
    expectError(other, 400, 'pop_key_invalid', 'invalid_request');
  });

  describe('rejections', () => {
    test('no access token: 401 with a bare Bearer challenge', async () => {
      const answer = await ictRequest({ at: '' });
      expectError(answer, 401, 'access_token_missing');
      expect(answer.headers.get('www-authenticate')).not.toMatch(/error=/);
    });

    test('access token signed by another key', async () => {
      const rogue = await keyPair();
      const answer = await ictRequest({ at: await as.accessToken(USER, { now: T0, key: rogue }) });
      expectError(answer, 401, 'access_token_invalid', 'invalid_token');
      expect(answer.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
    });

    test('expired access token', async () => {
      expectError(await ictRequest({ at: await as.accessToken(USER, { now: T0 - 1000, lifetime: 600 }) }), 401, 'access_token_expired', 'invalid_token');
    });

    test('access token for another audience or from another issuer', async () => {
      expectError(await ictRequest({ at: await as.accessToken({ ...USER, aud: 'https://other.test' }, { now: T0 }) }), 401, 'access_token_invalid');
      expectError(await ictRequest({ at: await as.accessToken({ ...USER, iss: 'https://evil.test' }, { now: T0 }) }), 401, 'access_token_invalid');
    });

    test('a token of another type (an ICT) is not an access token', async () => {
      expectError(await ictRequest({ at: await as.accessToken(USER, { now: T0, typ: 'ict+jwt' }) }), 401, 'access_token_invalid');
    });

    test('unsupported or malformed Authorization', async () => {
      const pop = await popToken(await keyPair(), { iss: 'app', sub: 'alice', aud: issuerUrl }, { now: T0 });
      for (const authorization of ['Basic YTpi', 'Bearer', 'Bearer a b']) {
        const answer = await call('/op/ict', { body: pop, headers: { authorization, 'content-type': 'application/jwt+pop' } });
        expectError(answer, 401, 'access_token_invalid');
      }
    });

    test('access token without any end-to-end context: 401 insufficient_scope (draft 4.4.1)', async () => {
      const answer = await ictRequest({ at: await as.accessToken({ ...USER, scope: 'openid e2e_auth_other' }, { now: T0 }) });
      expectError(answer, 401, 'context_required', 'insufficient_scope');
    });

    test('client not registered', async () => {
      const answer = await ictRequest({ at: await as.accessToken({ ...USER, client_id: 'rogue' }, { now: T0 }), popClaims: { iss: 'rogue' } });
      expectError(answer, 401, 'client_invalid', 'invalid_client');
    });

    test('PoP token signed by a key other than its jwk', async () => {
      const kp = await keyPair();
      const other = await keyPair();
      const pop = await popToken(other, { iss: 'app', sub: 'alice', aud: issuerUrl }, { now: T0, jwk: kp.publicJwk });
      expectError(await ictRequest({ pop }), 400, 'pop_invalid', 'invalid_request');
    });

    test('PoP token whose jwk holds the private key', async () => {
      const kp = await keyPair();
      const pop = await popToken(kp, { iss: 'app', sub: 'alice', aud: issuerUrl }, { now: T0, jwk: kp.privateJwk });
      expectError(await ictRequest({ pop }), 400, 'pop_key_invalid');
    });

    test('PoP token without jwk, or with a jwk that does not fit alg', async () => {
      const kp = await keyPair();
      const ed = await keyPair('Ed25519');
      expectError(await ictRequest({ pop: await popToken(kp, { iss: 'app', sub: 'alice', aud: issuerUrl }, { now: T0, header: { jwk: undefined } }) }), 400, 'pop_key_invalid');
      expectError(await ictRequest({ pop: await popToken(kp, { iss: 'app', sub: 'alice', aud: issuerUrl }, { now: T0, jwk: ed.publicJwk }) }), 400, 'pop_key_invalid');
    });

    test('replayed PoP jti', async () => {
      const kp = await keyPair();
      const pop = await popToken(kp, { iss: 'app', sub: 'alice', aud: issuerUrl }, { now: T0 });
      expect((await ictRequest({ pop })).status).toBe(201);
      expectError(await ictRequest({ pop }), 400, 'replay_detected');
    });

    test('PoP token for another audience', async () => {
      expectError(await ictRequest({ popClaims: { aud: 'https://other.test' } }), 400, 'audience_mismatch');
    });

    test('expired and not yet valid PoP tokens', async () => {
      const kp = await keyPair();
      const old = await popToken(kp, { iss: 'app', sub: 'alice', aud: issuerUrl }, { now: T0 - 200, lifetime: 100 });
      expectError(await ictRequest({ pop: old }), 400, 'pop_expired');
      const future = await popToken(kp, { iss: 'app', sub: 'alice', aud: issuerUrl }, { now: T0 + 120 });
      expectError(await ictRequest({ pop: future }), 400, 'pop_not_yet_valid');
    });

    test('PoP lifetime over five minutes', async () => {
      const pop = await popToken(await keyPair(), { iss: 'app', sub: 'alice', aud: issuerUrl }, { now: T0, lifetime: 301 });
      expectError(await ictRequest({ pop }), 400, 'pop_lifetime_exceeded');
    });

    test('PoP token with a wrong typ', async () => {
      for (const typ of ['JWT', 'dpop+jwt', undefined]) {
        const pop = await popToken(await keyPair(), { iss: 'app', sub: 'alice', aud: issuerUrl }, { now: T0, header: { typ } });
        expectError(await ictRequest({ pop }), 400, 'pop_typ_invalid');
      }
    });

    test('PoP token for another subject or from another client', async () => {
      expectError(await ictRequest({ popClaims: { sub: 'bob' } }), 400, 'pop_invalid');
      expectError(await ictRequest({ popClaims: { iss: 'other-app' } }), 400, 'pop_invalid');
    });

    test('PoP token missing required claims', async () => {
      for (const drop of ['iss', 'sub', 'jti', 'exp', 'iat']) {
        expectError(await ictRequest({ popClaims: { [drop]: undefined } }), 400, 'pop_invalid');
      }
      expectError(await ictRequest({ popClaims: { required_claims: 'name' } }), 400, 'pop_invalid');
    });

    test('a required claim that is not available: 404 (draft 4.2.2)', async () => {
      expectError(await ictRequest({ popClaims: { required_claims: ['phone_number'] } }), 404, 'claim_unavailable');
      expectError(await ictRequest({ popClaims: { required_claims: ['toString'] } }), 404, 'claim_unavailable');
    });

    test('no PoP token in the body', async () => {
      expectError(await ictRequest({ contentType: 'application/json', body: '{"other":"x"}' }), 400, 'request_malformed');
    });
  });
});

describe('request bodies', () => {
  const headers = { 'content-type': 'application/json' };

  test('oversized body with Content-Length: 413', async () => {
    expectError(await call('/op/ict', { body: JSON.stringify({ pop_token: 'a'.repeat(20000) }), headers }), 413, 'body_too_large');
  });

  test('oversized chunked body: 413', async () => {
    const answer = await new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
      const req = httpRequest(`${srv.url}/op/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' } }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
      });
      req.on('error', reject);
      for (let i = 0; i < 5; i++) req.write('x'.repeat(5000));
      req.end();
    });
    expect({ status: answer.status, code: answer.body.code }).toEqual({ status: 413, code: 'body_too_large' });
  });

  test.each([
    ['malformed JSON', 'application/json', '{"pop_token":'],
    ['JSON that is not an object', 'application/json', '["x"]'],
    ['JSON with a non-string member', 'application/json', '{"pop_token":1}'],
    ['bad percent-encoding', 'application/x-www-form-urlencoded', 'pop_token=%zz'],
    ['a repeated parameter', 'application/x-www-form-urlencoded', 'pop_token=a&pop_token=b'],
    ['a body that is not a JWT', 'application/jwt+pop', 'not a jwt'],
    ['an empty body', 'application/jwt+pop', ''],
  ])('%s: 400 request_malformed', async (_name, contentType, body) => {
    expectError(await call('/op/ict', { method: 'POST', body, headers: { 'content-type': contentType, authorization: 'Bearer x' } }), 400, 'request_malformed');
  });

  test('unsupported or missing content type: 415', async () => {
    expectError(await call('/op/ict', { body: 'x', headers: { 'content-type': 'text/plain' } }), 415, 'media_type_unsupported');
    expectError(await call('/op/ict', { body: 'x', headers: { 'content-type': 'application/json; charset=latin1' } }), 415, 'media_type_unsupported');
    expectError(await call('/op/token', { body: 'eyJ.eyJ.x', headers: { 'content-type': 'application/jwt+pop' } }), 415, 'media_type_unsupported');
    const noType = await fetch(`${srv.url}/op/ict`, { method: 'POST', body: new Uint8Array([1, 2]) });
    expect(noType.status).toBe(415);
  });

  test('GET on the ICT endpoint: 405', async () => {
    const answer = await call('/op/ict');
    expectError(answer, 405, 'method_not_allowed');
    expect(answer.headers.get('allow')).toBe('POST');
  });
});

describe('token endpoint (RFC 8693 + RFC 9449)', () => {
  const tokenUrl = () => `${issuerUrl}/token`;

  async function exchange(opts: { kp?: KeyPair; params?: Record<string, string | undefined>; proof?: string | null; proofClaims?: Record<string, unknown>; at?: string } = {}): Promise<Answer> {
    const kp = opts.kp ?? (await keyPair());
    const at = opts.at ?? (await as.accessToken(USER, { now: clk.now() }));
    const params: Record<string, string> = {};
    for (const [k, v] of Object.entries({ grant_type: TOKEN_EXCHANGE_GRANT_TYPE, subject_token: at, subject_token_type: ACCESS_TOKEN_TYPE, requested_token_type: ICT_TOKEN_TYPE, ...opts.params })) {
      if (v !== undefined) params[k] = v;
    }
    const proof = opts.proof === undefined ? await dpopProof(kp, { htm: 'POST', htu: tokenUrl(), ...opts.proofClaims }, { now: clk.now() }) : opts.proof;
    return call('/op/token', { body: form(params), headers: { 'content-type': 'application/x-www-form-urlencoded', ...(proof ? { dpop: proof } : {}) } });
  }

  test.each(['ES256', 'Ed25519'] as const)('exchanges an access token for an ICT certifying the %s DPoP key', async (alg) => {
    const kp = await keyPair(alg);
    const answer = await exchange({ kp });
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ issued_token_type: ICT_TOKEN_TYPE, token_type: 'N_A', expires_in: 300, scope: 'e2e_auth_email e2e_auth_chat' });
    const { payload, protectedHeader } = await verifyIct(answer.body.access_token);
    expect(protectedHeader.typ).toBe('ict+jwt');
    const { alg: _a, ...bare } = kp.publicJwk;
    expect(payload.cnf).toEqual({ jwk: { ...bare, alg } });
    expect(payload).toMatchObject({ sub: 'alice', aud: 'app', ctx: ['email', 'chat'], exp: T0 + 300 });
  });

  test('scope narrows the contexts; requested_token_type may be omitted', async () => {
    const answer = await exchange({ params: { scope: 'e2e_auth_chat', requested_token_type: undefined } });
    expect(answer.status).toBe(200);
    expect((await verifyIct(answer.body.access_token)).payload.ctx).toEqual(['chat']);
  });

  test.each([
    ['no DPoP proof', { proof: null }, 'dpop_invalid'],
    ['wrong htm', { proofClaims: { htm: 'GET' } }, 'dpop_invalid'],
    ['wrong htu', { proofClaims: { htu: 'https://elsewhere.test/token' } }, 'dpop_invalid'],
    ['stale proof', { proofClaims: { iat: T0 - 1000 } }, 'dpop_invalid'],
  ])('%s: 400 invalid_dpop_proof', async (_name, opts, code) => {
    expectError(await exchange(opts as Parameters<typeof exchange>[0]), 400, code, 'invalid_dpop_proof');
  });

  test('a malformed DPoP header: 400 invalid_dpop_proof', async () => {
    expectError(await exchange({ proof: 'not-a-jwt' }), 400, 'dpop_invalid', 'invalid_dpop_proof');
  });

  test('replayed DPoP proof', async () => {
    const kp = await keyPair();
    const proof = await dpopProof(kp, { htm: 'POST', htu: tokenUrl() }, { now: T0 });
    expect((await exchange({ kp, proof })).status).toBe(200);
    expectError(await exchange({ kp, proof }), 400, 'replay_detected', 'invalid_dpop_proof');
  });

  test('a DPoP-bound subject token needs a proof by its key', async () => {
    const bound = await keyPair();
    const at = await as.accessToken({ ...USER, cnf: { jkt: await calculateJwkThumbprint(bound.publicJwk) } }, { now: T0 });
    expectError(await exchange({ at }), 400, 'dpop_invalid', 'invalid_dpop_proof');
    expect((await exchange({ at, kp: bound })).status).toBe(200);
  });

  test.each([
    ['grant_type missing', { grant_type: undefined }, 400, 'request_malformed', 'invalid_request'],
    ['another grant_type', { grant_type: 'client_credentials' }, 400, 'grant_type_unsupported', 'unsupported_grant_type'],
    ['another requested_token_type', { requested_token_type: 'urn:ietf:params:oauth:token-type:id_token' }, 400, 'token_type_unsupported', 'invalid_request'],
    ['unknown subject_token_type', { subject_token_type: 'urn:example:other' }, 400, 'token_type_unsupported', 'invalid_request'],
    ['subject_token missing', { subject_token: undefined }, 400, 'request_malformed', 'invalid_request'],
    ['invalid subject token (RFC 8693: invalid_request)', { subject_token: 'a.b.c' }, 400, 'access_token_invalid', 'invalid_request'],
    ['a context beyond the grant', { scope: 'e2e_auth_other' }, 400, 'context_not_allowed', 'invalid_scope'],
    ['a scope that is no context', { scope: 'openid' }, 400, 'context_not_allowed', 'invalid_scope'],
    ['another audience', { audience: 'https://elsewhere.test' }, 400, 'audience_mismatch', 'invalid_target'],
    ['an actor token', { actor_token: 'x', actor_token_type: ACCESS_TOKEN_TYPE }, 400, 'request_malformed', 'invalid_request'],
    ['client authentication', { client_assertion: 'x', client_assertion_type: 'y' }, 400, 'request_malformed', 'invalid_request'],
  ])('%s', async (_name, params, status, code, error) => {
    expectError(await exchange({ params }), status, code, error);
  });

  test('expired subject token', async () => {
    expectError(await exchange({ at: await as.accessToken(USER, { now: T0 - 1000 }) }), 400, 'access_token_expired', 'invalid_request');
  });

  test('a JSON body is accepted', async () => {
    const kp = await keyPair();
    const at = await as.accessToken(USER, { now: T0 });
    const answer = await call('/op/token', {
      body: JSON.stringify({ grant_type: TOKEN_EXCHANGE_GRANT_TYPE, subject_token: at, subject_token_type: ACCESS_TOKEN_TYPE }),
      headers: { 'content-type': 'application/json', dpop: await dpopProof(kp, { htm: 'POST', htu: tokenUrl() }, { now: T0 }) },
    });
    expect(answer.status).toBe(200);
  });
});

describe('DPoP server nonces', () => {
  test('use_dpop_nonce with a DPoP-Nonce, then success with it', async () => {
    const local = await lateServer();
    try {
      const url = `${local.url}`;
      const nonceIssuer = await createIssuer({
        issuer: url,
        now: clk.now,
        dpopNonces: true,
        authenticators: [jwtAccessTokens({ issuer: as.issuer, audience: 'https://op.test', jwks: as.jwks })],
      });
      local.use(nonceIssuer.nodeHandler);
      const kp = await keyPair();
      const at = await as.accessToken(USER, { now: T0 });
      const body = form({ grant_type: TOKEN_EXCHANGE_GRANT_TYPE, subject_token: at, subject_token_type: ACCESS_TOKEN_TYPE });
      const post = async (proof: string) => fetch(`${url}/token`, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded', dpop: proof } });
      const first = await post(await dpopProof(kp, { htm: 'POST', htu: `${url}/token` }, { now: T0 }));
      expect(first.status).toBe(400);
      expect(await first.json()).toMatchObject({ error: 'use_dpop_nonce', code: 'dpop_nonce_required' });
      const nonce = first.headers.get('dpop-nonce');
      expect(nonce).toMatch(/^[A-Za-z0-9_-]+$/);
      const second = await post(await dpopProof(kp, { htm: 'POST', htu: `${url}/token`, nonce }, { now: T0 }));
      expect(second.status).toBe(200);
    } finally {
      await local.close();
    }
  });
});

describe('handle() without a server', () => {
  test('absolute URLs and unknown paths', async () => {
    const res = await issuer.handle({ method: 'GET', url: `${issuerUrl}/jwks`, headers: {} });
    expect(res.status).toBe(200);
    expect((await issuer.handle({ method: 'GET', url: '/op/nothing', headers: {} })).status).toBe(404);
    expect(issuer.serves('/op/ict?x=1')).toBe(true);
    expect(issuer.serves('/op/ict/more')).toBe(false);
  });

  test('the ICT header carries the kid of a published key', async () => {
    const answer = await ictRequest();
    const { kid } = decodeProtectedHeader(answer.body.identity_certification_token);
    expect((await issuer.jwks()).keys.map((k) => k.kid)).toContain(kid);
  });

  test('an unsigned token is refused as an access token', async () => {
    const unsigned = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ ...USER, iss: as.issuer, aud: 'https://op.test', exp: T0 + 60 })).toString('base64url')}.`;
    expectError(await ictRequest({ at: unsigned }), 401, 'access_token_invalid');
    const hs = await new SignJWT({ ...USER, iss: as.issuer, aud: 'https://op.test', exp: T0 + 60 }).setProtectedHeader({ alg: 'HS256' }).sign(new Uint8Array(32));
    expectError(await ictRequest({ at: hs }), 401, 'access_token_invalid');
  });
});
