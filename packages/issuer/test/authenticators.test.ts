import { randomUUID } from 'node:crypto';
import { createLocalJWKSet, jwtVerify, SignJWT } from 'jose';
import {
  API_KEY_TOKEN_TYPE,
  apiKeys,
  clientAssertions,
  createIssuer,
  hashApiKey,
  JWT_BEARER_ASSERTION_TYPE,
  JWT_TOKEN_TYPE,
  jwtAccessTokens,
  TOKEN_EXCHANGE_GRANT_TYPE,
  tokenIntrospection,
  type ClientAuthenticator,
  type Issuer,
} from '@oidc2/issuer';
import { authorizationServer, clock, dpopProof, form, keyPair, lateServer, popToken, T0, type KeyPair } from './helpers';

const clk = clock();
beforeEach(() => clk.set(T0));

async function post(url: string, body: string, headers: Record<string, string>) {
  const res = await fetch(url, { method: 'POST', body, headers });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, any> };
}

/** An issuer on its own loopback server. */
async function serve(authenticators: ClientAuthenticator[]): Promise<{ url: string; issuer: Issuer; close(): Promise<void> }> {
  const srv = await lateServer();
  const issuer = await createIssuer({ issuer: srv.url, now: clk.now, authenticators });
  srv.use(issuer.nodeHandler);
  return { url: srv.url, issuer, close: srv.close };
}

async function ictSubject(url: string, token: string): Promise<Record<string, unknown>> {
  const jwks = (await (await fetch(`${url}/jwks`)).json()) as { keys: [] };
  return (await jwtVerify(token, createLocalJWKSet(jwks), { currentDate: new Date(T0 * 1000), typ: 'ict+jwt' })).payload;
}

describe('RFC 7662 token introspection', () => {
  let op: Awaited<ReturnType<typeof lateServer>>;
  let iss: Awaited<ReturnType<typeof serve>>;
  const seen: string[] = [];
  let mode: 'ok' | 'fail' | 'garbage' | 'huge' = 'ok';

  beforeAll(async () => {
    op = await lateServer();
    op.use((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push(`${req.headers.authorization} ${body}`);
        if (req.headers.authorization !== `Basic ${Buffer.from('ict:s3cret').toString('base64')}` || mode === 'fail') {
          res.statusCode = 401;
          return res.end('{"error":"invalid_client"}');
        }
        if (mode === 'garbage') return res.end('not json');
        if (mode === 'huge') return res.end(JSON.stringify({ active: true, sub: 'bob', client_id: 'app', scope: 'e2e_auth_chat', padding: 'x'.repeat(70_000) }));
        const token = new URLSearchParams(body).get('token');
        const answers: Record<string, object> = {
          good: { active: true, sub: 'bob', client_id: 'app', scope: 'e2e_auth_chat', exp: T0 + 120, name: 'Bob' },
          inactive: { active: false },
          expired: { active: true, sub: 'bob', client_id: 'app', scope: 'e2e_auth_chat', exp: T0 - 100 },
          nosub: { active: true, scope: 'e2e_auth_chat' },
        };
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(answers[token ?? ''] ?? { active: false }));
      });
    });
    iss = await serve([tokenIntrospection({ endpoint: `${op.url}/introspect`, clientId: 'ict', clientSecret: 's3cret', claims: ['name'] })]);
  });
  afterAll(async () => {
    await iss.close();
    await op.close();
  });
  beforeEach(() => (mode = 'ok'));

  async function request(at: string) {
    const kp = await keyPair();
    const pop = await popToken(kp, { iss: 'app', sub: 'bob', aud: iss.url }, { now: T0 });
    return post(`${iss.url}/ict`, pop, { authorization: `Bearer ${at}`, 'content-type': 'application/jwt+pop' });
  }

  test('an active token yields an ICT bounded by its exp, with introspected claims', async () => {
    const answer = await request('good');
    expect(answer.status).toBe(201);
    expect(answer.body.expires_in).toBe(120);
    expect(await ictSubject(iss.url, answer.body.identity_certification_token)).toMatchObject({ sub: 'bob', aud: 'app', ctx: ['chat'], name: 'Bob' });
    expect(seen.at(-1)).toBe(`Basic ${Buffer.from('ict:s3cret').toString('base64')} token=good&token_type_hint=access_token`);
  });

  test.each([
    ['inactive', 401, 'access_token_invalid'],
    ['expired', 401, 'access_token_expired'],
    ['nosub', 401, 'access_token_invalid'],
  ])('%s token', async (token, status, code) => {
    const answer = await request(token);
    expect({ status: answer.status, code: answer.body.code }).toEqual({ status, code });
  });

  test.each(['fail', 'garbage', 'huge'] as const)('an introspection endpoint that answers %s: 503, never a success', async (m) => {
    mode = m;
    const answer = await request('good');
    expect({ status: answer.status, code: answer.body.code, error: answer.body.error }).toEqual({ status: 503, code: 'issuer_unavailable', error: 'temporarily_unavailable' });
  });
});

describe('JWT access tokens from a jwksUri', () => {
  test('keys are fetched from the authorization server; an unreachable one answers 503', async () => {
    const as = await authorizationServer();
    const keysSrv = await lateServer();
    keysSrv.use((_req, res) => res.end(JSON.stringify(as.jwks)));
    const iss = await serve([jwtAccessTokens({ issuer: as.issuer, audience: 'https://op.test', jwksUri: `${keysSrv.url}/jwks` })]);
    try {
      const kp = await keyPair();
      const at = await as.accessToken({ sub: 'alice', scope: 'e2e_auth_email' }, { now: T0 });
      const pop = () => popToken(kp, { iss: 'anything', sub: 'alice', aud: iss.url }, { now: T0 });
      const ok = await post(`${iss.url}/ict`, await pop(), { authorization: `Bearer ${at}`, 'content-type': 'application/jwt+pop' });
      expect(ok.status).toBe(201);
      // Without a client id the ICT has no aud.
      expect((await ictSubject(iss.url, ok.body.identity_certification_token)).aud).toBeUndefined();
      await keysSrv.close();
      const down = await serve([jwtAccessTokens({ issuer: as.issuer, audience: 'https://op.test', jwksUri: `${keysSrv.url}/jwks` })]);
      const failed = await post(`${down.url}/ict`, await popToken(kp, { iss: 'x', sub: 'alice', aud: down.url }, { now: T0 }), { authorization: `Bearer ${at}`, 'content-type': 'application/jwt+pop' });
      expect({ status: failed.status, code: failed.body.code }).toEqual({ status: 503, code: 'issuer_unavailable' });
      await down.close();
    } finally {
      await iss.close();
    }
  });
});

describe('API keys', () => {
  const key = 'k_' + randomUUID();
  let iss: Awaited<ReturnType<typeof serve>>;
  beforeAll(async () => {
    iss = await serve([apiKeys({ keys: [{ hash: hashApiKey('other'), subject: 'w0' }, { hash: hashApiKey(key), subject: 'spiffe://example.com/billing', clientId: 'billing', contexts: ['payments'], claims: { team: 'fin' } }] })]);
  });
  afterAll(() => iss.close());

  async function request(apiKey: string, kp?: KeyPair) {
    const k = kp ?? (await keyPair());
    const pop = await popToken(k, { iss: 'billing', sub: 'spiffe://example.com/billing', aud: iss.url }, { now: T0 });
    return post(`${iss.url}/ict`, pop, { authorization: `ApiKey ${apiKey}`, 'content-type': 'application/jwt+pop' });
  }

  test('a known key yields a workload ICT', async () => {
    const answer = await request(key);
    expect(answer.status).toBe(201);
    expect(await ictSubject(iss.url, answer.body.identity_certification_token)).toMatchObject({ sub: 'spiffe://example.com/billing', aud: 'billing', ctx: ['payments'], team: 'fin' });
  });

  test('an unknown key: 401 invalid_client', async () => {
    for (const bad of ['wrong', key + 'x', 'x'.repeat(2000)]) {
      const answer = await request(bad);
      expect({ status: answer.status, code: answer.body.code, error: answer.body.error }).toEqual({ status: 401, code: 'client_invalid', error: 'invalid_client' });
    }
  });

  test('token exchange with the key as subject_token', async () => {
    const kp = await keyPair();
    const answer = await post(`${iss.url}/token`, form({ grant_type: TOKEN_EXCHANGE_GRANT_TYPE, subject_token: key, subject_token_type: API_KEY_TOKEN_TYPE }), {
      'content-type': 'application/x-www-form-urlencoded',
      dpop: await dpopProof(kp, { htm: 'POST', htu: `${iss.url}/token` }, { now: T0 }),
    });
    expect(answer.status).toBe(200);
    expect((await ictSubject(iss.url, answer.body.access_token)).sub).toBe('spiffe://example.com/billing');
  });

  test('stored hashes are validated at construction', () => {
    expect(() => apiKeys({ keys: [{ hash: 'abc', subject: 'w' }] })).toThrow(TypeError);
    expect(() => apiKeys({ keys: [] })).toThrow(TypeError);
  });
});

describe('RFC 7523 client assertions', () => {
  let iss: Awaited<ReturnType<typeof serve>>;
  let client: KeyPair;
  beforeAll(async () => {
    client = await keyPair();
    iss = await serve([clientAssertions({ clients: { billing: { jwks: { keys: [client.publicJwk] }, subject: 'spiffe://example.com/billing', contexts: ['payments'] } } })]);
  });
  afterAll(() => iss.close());

  function assertion(claims: Record<string, unknown> = {}, signer: KeyPair = client) {
    return new SignJWT({ iss: 'billing', sub: 'billing', aud: `${iss.url}/ict`, iat: T0, exp: T0 + 60, jti: randomUUID(), ...claims })
      .setProtectedHeader({ alg: 'ES256' })
      .sign(signer.privateKey);
  }

  async function request(a: string, type = JWT_BEARER_ASSERTION_TYPE) {
    const pop = await popToken(await keyPair(), { iss: 'billing', sub: 'spiffe://example.com/billing', aud: iss.url }, { now: T0 });
    return post(`${iss.url}/ict`, form({ pop_token: pop, client_assertion_type: type, client_assertion: a }), { 'content-type': 'application/x-www-form-urlencoded' });
  }

  test('a valid assertion yields a workload ICT (aud: the ICT endpoint or the issuer)', async () => {
    for (const aud of [`${iss.url}/ict`, iss.url]) {
      const answer = await request(await assertion({ aud }));
      expect(answer.status).toBe(201);
      expect(await ictSubject(iss.url, answer.body.identity_certification_token)).toMatchObject({ sub: 'spiffe://example.com/billing', aud: 'billing', ctx: ['payments'] });
    }
  });

  test.each([
    ['unknown client', { iss: 'nobody', sub: 'nobody' }],
    ['iss differs from sub', { sub: 'other' }],
    ['another audience', { aud: 'https://elsewhere.test' }],
    ['expired', { iat: T0 - 400, exp: T0 - 100 }],
    ['lifetime over the bound', { exp: T0 + 3600 }],
    ['no jti', { jti: undefined }],
  ])('%s: 401 invalid_client', async (_name, claims) => {
    const answer = await request(await assertion(claims));
    expect({ status: answer.status, code: answer.body.code, error: answer.body.error }).toEqual({ status: 401, code: 'client_invalid', error: 'invalid_client' });
  });

  test('signed by another key: 401 invalid_client', async () => {
    const answer = await request(await assertion({}, await keyPair()));
    expect({ status: answer.status, code: answer.body.code }).toEqual({ status: 401, code: 'client_invalid' });
  });

  test('a replayed assertion', async () => {
    const a = await assertion();
    expect((await request(a)).status).toBe(201);
    const again = await request(a);
    expect({ status: again.status, code: again.body.code }).toEqual({ status: 400, code: 'replay_detected' });
  });

  test('a wrong client_assertion_type, or two credentials at once', async () => {
    const wrongType = await request(await assertion(), 'urn:example:saml');
    expect({ status: wrongType.status, code: wrongType.body.code }).toEqual({ status: 400, code: 'request_malformed' });
    const pop = await popToken(await keyPair(), { iss: 'billing', sub: 'spiffe://example.com/billing', aud: iss.url }, { now: T0 });
    const two = await post(`${iss.url}/ict`, form({ pop_token: pop, client_assertion_type: JWT_BEARER_ASSERTION_TYPE, client_assertion: await assertion() }), {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: 'Bearer abc',
    });
    expect({ status: two.status, code: two.body.code }).toEqual({ status: 400, code: 'request_malformed' });
  });

  test('token exchange with the assertion as subject_token (aud: the token endpoint)', async () => {
    const kp = await keyPair();
    const answer = await post(
      `${iss.url}/token`,
      form({ grant_type: TOKEN_EXCHANGE_GRANT_TYPE, subject_token: await assertion({ aud: `${iss.url}/token` }), subject_token_type: JWT_TOKEN_TYPE }),
      { 'content-type': 'application/x-www-form-urlencoded', dpop: await dpopProof(kp, { htm: 'POST', htu: `${iss.url}/token` }, { now: T0 }) },
    );
    expect(answer.status).toBe(200);
    expect((await ictSubject(iss.url, answer.body.access_token)).ctx).toEqual(['payments']);
  });
});

describe('authenticator chain', () => {
  test('the first authenticator that recognises the credential decides; a custom one can grant workloads', async () => {
    const custom: ClientAuthenticator = async (request) => {
      const id = request.headers['x-test-workload']?.[0];
      return id ? { subject: id, kind: 'workload', contexts: ['internal'] } : undefined;
    };
    const iss = await serve([apiKeys({ keys: [{ hash: hashApiKey('k'), subject: 'w' }] }), custom]);
    try {
      const pop = await popToken(await keyPair(), { iss: 'w9', sub: 'w9', aud: iss.url }, { now: T0 });
      const custom201 = await post(`${iss.url}/ict`, pop, { 'content-type': 'application/jwt+pop', 'x-test-workload': 'w9' });
      expect(custom201.status).toBe(201);
      expect(await ictSubject(iss.url, custom201.body.identity_certification_token)).toMatchObject({ sub: 'w9', ctx: ['internal'] });
      // An API key the first authenticator does not know is refused, not passed on.
      const bad = await post(`${iss.url}/ict`, await popToken(await keyPair(), { iss: 'w9', sub: 'w9', aud: iss.url }, { now: T0 }), { 'content-type': 'application/jwt+pop', authorization: 'ApiKey nope', 'x-test-workload': 'w9' });
      expect({ status: bad.status, code: bad.body.code }).toEqual({ status: 401, code: 'client_invalid' });
      const none = await post(`${iss.url}/ict`, await popToken(await keyPair(), { iss: 'w9', sub: 'w9', aud: iss.url }, { now: T0 }), { 'content-type': 'application/jwt+pop' });
      expect({ status: none.status, code: none.body.code }).toEqual({ status: 401, code: 'access_token_missing' });
      const bearer = await post(`${iss.url}/ict`, await popToken(await keyPair(), { iss: 'w9', sub: 'w9', aud: iss.url }, { now: T0 }), { 'content-type': 'application/jwt+pop', authorization: 'Bearer t' });
      expect({ status: bearer.status, code: bearer.body.code }).toEqual({ status: 401, code: 'access_token_invalid' });
    } finally {
      await iss.close();
    }
  });

  test('an authenticator that returns nonsense is a server error, not a success', async () => {
    const broken = (async () => ({ kind: 'user' })) as unknown as ClientAuthenticator;
    const iss = await serve([broken]);
    try {
      const pop = await popToken(await keyPair(), { iss: 'a', sub: 'a', aud: iss.url }, { now: T0 });
      const answer = await post(`${iss.url}/ict`, pop, { 'content-type': 'application/jwt+pop', authorization: 'Bearer t' });
      expect(answer.status).toBe(500);
      expect(answer.body).toEqual({ error: 'server_error', error_description: 'internal error', code: 'server_error' });
    } finally {
      await iss.close();
    }
  });

  test('a failing replay store answers 503, never a success', async () => {
    const srv = await lateServer();
    const issuer = await createIssuer({
      issuer: srv.url,
      now: clk.now,
      authenticators: [apiKeys({ keys: [{ hash: hashApiKey('k'), subject: 'w' }] })],
      replayStore: { checkAndRecord: () => Promise.reject(new Error('store down')) },
    });
    srv.use(issuer.nodeHandler);
    try {
      const pop = await popToken(await keyPair(), { iss: 'w', sub: 'w', aud: srv.url }, { now: T0 });
      const answer = await post(`${srv.url}/ict`, pop, { 'content-type': 'application/jwt+pop', authorization: 'ApiKey k' });
      expect({ status: answer.status, code: answer.body.code, error: answer.body.error }).toEqual({ status: 503, code: 'replay_store_unavailable', error: 'temporarily_unavailable' });
    } finally {
      await srv.close();
    }
  });

  test('error responses never echo the presented credential', async () => {
    const iss = await serve([apiKeys({ keys: [{ hash: hashApiKey('k'), subject: 'w' }] })]);
    try {
      const secret = 'SECRET' + randomUUID().replace(/-/g, '');
      const pop = await popToken(await keyPair(), { iss: 'w', sub: 'w', aud: iss.url }, { now: T0 });
      const res = await fetch(`${iss.url}/ict`, { method: 'POST', body: pop, headers: { 'content-type': 'application/jwt+pop', authorization: `ApiKey ${secret}` } });
      expect(res.status).toBe(401);
      const text = (await res.text()) + String(res.headers.get('www-authenticate'));
      expect(text).not.toContain(secret);
      expect(text).not.toContain(pop.split('.')[2]);
    } finally {
      await iss.close();
    }
  });
});
