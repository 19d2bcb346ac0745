// Remote keys of authorization servers and clients come through the core's issuer key resolver:
// size-bounded, https-only (http on loopback), single-flight, with a cool-down after failures and
// OIDC discovery from a configured issuer. Every case runs against a real server on 127.0.0.1.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SignJWT } from 'jose';
import { clientAssertions, jwtAccessTokens, type AuthenticationContext, type ClientAuthenticator } from '@oidc2/issuer';
import { authorizationServer, keyPair, lateServer, T0 } from './helpers';

type Srv = Awaited<ReturnType<typeof lateServer>>;
const servers: Srv[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** A loopback server counting the requests to each path. */
async function keyServer(handler: (req: IncomingMessage, res: ServerResponse, url: string) => void): Promise<{ url: string; hits: Record<string, number> }> {
  const srv = await lateServer();
  servers.push(srv);
  const hits: Record<string, number> = {};
  srv.use((req, res) => {
    hits[req.url!] = (hits[req.url!] ?? 0) + 1;
    handler(req, res, srv.url);
  });
  return { url: srv.url, hits };
}

function context(credential: Partial<Pick<AuthenticationContext, 'accessToken' | 'clientAssertion'>>): AuthenticationContext {
  return {
    endpoint: 'ict',
    issuer: 'https://op.test',
    endpointUrl: 'https://op.test/ict',
    now: T0,
    clockTolerance: 60,
    params: {},
    ...credential,
    checkReplay: async () => undefined,
  };
}

/** The Oidc2Error code (or `ok`) an authenticator settles with. */
async function outcome(authenticator: ClientAuthenticator, ctx: AuthenticationContext): Promise<string> {
  try {
    await authenticator({ method: 'POST', url: '/ict', headers: {} }, ctx);
    return 'ok';
  } catch (err) {
    return String((err as { code?: unknown }).code);
  }
}

function thrownBy(fn: () => unknown): { name?: unknown; code?: unknown } {
  try {
    fn();
  } catch (err) {
    return err as { name?: unknown; code?: unknown };
  }
  return {};
}

describe('jwtAccessTokens with remote keys', () => {
  test('an oversized JWKS is refused: issuer_unavailable, never a verification', async () => {
    const as = await authorizationServer();
    const padding = 'x'.repeat(200_000);
    const keys = await keyServer((_req, res) => res.end(JSON.stringify({ ...as.jwks, padding })));
    const users = jwtAccessTokens({ issuer: as.issuer, audience: 'https://op.test', jwksUri: `${keys.url}/jwks` });
    const at = await as.accessToken({ sub: 'alice', scope: 'e2e_auth_email' }, { now: T0 });
    expect(await outcome(users, context({ accessToken: at }))).toBe('issuer_unavailable');
    expect(keys.hits['/jwks']).toBe(1);
  });

  test('remoteKeys.maxResponseBytes lowers the bound', async () => {
    const as = await authorizationServer();
    const keys = await keyServer((_req, res) => res.end(JSON.stringify({ ...as.jwks, padding: 'x'.repeat(5000) })));
    const small = jwtAccessTokens({ issuer: as.issuer, audience: 'https://op.test', jwksUri: `${keys.url}/jwks`, remoteKeys: { maxResponseBytes: 4096 } });
    const large = jwtAccessTokens({ issuer: as.issuer, audience: 'https://op.test', jwksUri: `${keys.url}/jwks` });
    const at = await as.accessToken({ sub: 'alice', scope: 'e2e_auth_email' }, { now: T0 });
    expect(await outcome(small, context({ accessToken: at }))).toBe('issuer_unavailable');
    expect(await outcome(large, context({ accessToken: at }))).toBe('ok');
  });

  test.each([
    ['http on a public host', 'http://keys.example.com/jwks'],
    ['not a URL', 'jwks'],
    ['credentials in the URL', 'https://user:pw@keys.example.com/jwks'],
  ])('a jwksUri with %s is refused at construction (ERR_INVALID_ARG_VALUE)', (_name, jwksUri) => {
    const err = thrownBy(() => jwtAccessTokens({ issuer: 'https://login.example.com', audience: 'a', jwksUri }));
    expect({ name: err.name, code: err.code }).toEqual({ name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
  });

  test('N concurrent cold requests share one JWKS fetch', async () => {
    const as = await authorizationServer();
    const keys = await keyServer((_req, res) => setTimeout(() => res.end(JSON.stringify(as.jwks)), 50));
    const users = jwtAccessTokens({ issuer: as.issuer, audience: 'https://op.test', jwksUri: `${keys.url}/jwks` });
    const tokens = await Promise.all(Array.from({ length: 10 }, (_, i) => as.accessToken({ sub: `u${i}`, scope: 'e2e_auth_email' }, { now: T0 })));
    const results = await Promise.all(tokens.map((at) => outcome(users, context({ accessToken: at }))));
    expect(results).toEqual(Array(10).fill('ok'));
    expect(keys.hits).toEqual({ '/jwks': 1 });
  });

  test('with only the issuer configured, keys are discovered: one discovery and one JWKS fetch for N concurrent requests', async () => {
    const kp = await keyPair();
    const server = await keyServer((req, res, url) => {
      if (req.url === '/.well-known/openid-configuration') return setTimeout(() => res.end(JSON.stringify({ issuer: url, jwks_uri: `${url}/keys` })), 50);
      if (req.url === '/keys') return res.end(JSON.stringify({ keys: [{ ...kp.publicJwk, kid: 'as-1', alg: 'ES256' }] }));
      res.statusCode = 404;
      res.end();
    });
    const as = await authorizationServer(server.url);
    const users = jwtAccessTokens({ issuer: server.url, audience: 'https://op.test' });
    const tokens = await Promise.all(Array.from({ length: 8 }, () => as.accessToken({ sub: 'alice', scope: 'e2e_auth_email' }, { now: T0, key: kp })));
    const results = await Promise.all(tokens.map((at) => outcome(users, context({ accessToken: at }))));
    expect(results).toEqual(Array(8).fill('ok'));
    expect(server.hits).toEqual({ '/.well-known/openid-configuration': 1, '/keys': 1 });
  });

  test('a discovery document naming another issuer is refused: issuer_unavailable', async () => {
    const as = await authorizationServer();
    const server = await keyServer((_req, res, url) => res.end(JSON.stringify({ issuer: 'https://elsewhere.example', jwks_uri: `${url}/keys` })));
    const users = jwtAccessTokens({ issuer: server.url, audience: 'https://op.test' });
    const at = await as.accessToken({ iss: server.url, sub: 'alice', scope: 'e2e_auth_email' }, { now: T0 });
    expect(await outcome(users, context({ accessToken: at }))).toBe('issuer_unavailable');
    expect(server.hits['/keys']).toBeUndefined();
  });

  test('after a failed fetch, requests within the cool-down answer 503 without fetching again', async () => {
    const as = await authorizationServer();
    const keys = await keyServer((_req, res) => {
      res.statusCode = 500;
      res.end();
    });
    const users = jwtAccessTokens({ issuer: as.issuer, audience: 'https://op.test', jwksUri: `${keys.url}/jwks`, remoteKeys: { cooldown: 60 } });
    const at = await as.accessToken({ sub: 'alice', scope: 'e2e_auth_email' }, { now: T0 });
    expect(await outcome(users, context({ accessToken: at }))).toBe('issuer_unavailable');
    expect(await outcome(users, context({ accessToken: at }))).toBe('issuer_unavailable');
    expect(keys.hits['/jwks']).toBe(1);
  });

  test('keys fetched earlier are still used when the key server fails (stale-if-error)', async () => {
    const as = await authorizationServer();
    let up = true;
    const keys = await keyServer((_req, res) => {
      if (!up) res.statusCode = 500;
      res.end(up ? JSON.stringify(as.jwks) : '');
    });
    // cacheMaxAge is the shortest allowed, so the second lookup refetches and fails.
    const users = jwtAccessTokens({ issuer: as.issuer, audience: 'https://op.test', jwksUri: `${keys.url}/jwks`, remoteKeys: { cacheMaxAge: 0.001 } });
    const at = await as.accessToken({ sub: 'alice', scope: 'e2e_auth_email' }, { now: T0 });
    expect(await outcome(users, context({ accessToken: at }))).toBe('ok');
    up = false;
    await new Promise((r) => setTimeout(r, 20));
    expect(await outcome(users, context({ accessToken: at }))).toBe('ok');
    expect(keys.hits['/jwks']).toBe(2);
  });

  test('a URL named only by the token (jku) is never fetched', async () => {
    const as = await authorizationServer();
    const kp = await keyPair();
    const lure = await keyServer((_req, res) => res.end(JSON.stringify({ keys: [{ ...kp.publicJwk, kid: 'evil', alg: 'ES256' }] })));
    const users = jwtAccessTokens({ issuer: as.issuer, audience: 'https://op.test', jwks: as.jwks });
    const at = await new SignJWT({ iss: as.issuer, aud: 'https://op.test', sub: 'mallory', scope: 'e2e_auth_email', iat: T0, exp: T0 + 60 })
      .setProtectedHeader({ alg: 'ES256', kid: 'evil', jku: `${lure.url}/jwks` })
      .sign(kp.privateKey);
    expect(await outcome(users, context({ accessToken: at }))).toBe('access_token_invalid');
    expect(lure.hits).toEqual({});
  });
});

describe('clientAssertions with remote keys', () => {
  test('a registered jwksUri is fetched once for N concurrent cold assertions', async () => {
    const client = await keyPair();
    const keys = await keyServer((_req, res) => setTimeout(() => res.end(JSON.stringify({ keys: [{ ...client.publicJwk, kid: 'c1', alg: 'ES256' }] })), 50));
    const workloads = clientAssertions({ clients: { billing: { jwksUri: `${keys.url}/jwks` } } });
    const assertions = await Promise.all(
      Array.from({ length: 6 }, () =>
        new SignJWT({ iss: 'billing', sub: 'billing', aud: 'https://op.test/ict', iat: T0, exp: T0 + 60, jti: randomUUID() }).setProtectedHeader({ alg: 'ES256', kid: 'c1' }).sign(client.privateKey),
      ),
    );
    const results = await Promise.all(assertions.map((a) => outcome(workloads, context({ clientAssertion: a }))));
    expect(results).toEqual(Array(6).fill('ok'));
    expect(keys.hits).toEqual({ '/jwks': 1 });
  });

  test('an oversized client JWKS is refused: issuer_unavailable', async () => {
    const client = await keyPair();
    const keys = await keyServer((_req, res) => res.end(JSON.stringify({ keys: [{ ...client.publicJwk, kid: 'c1', alg: 'ES256' }], padding: 'x'.repeat(200_000) })));
    const workloads = clientAssertions({ clients: { billing: { jwksUri: `${keys.url}/jwks` } } });
    const a = await new SignJWT({ iss: 'billing', sub: 'billing', aud: 'https://op.test/ict', iat: T0, exp: T0 + 60, jti: randomUUID() }).setProtectedHeader({ alg: 'ES256', kid: 'c1' }).sign(client.privateKey);
    expect(await outcome(workloads, context({ clientAssertion: a }))).toBe('issuer_unavailable');
  });

  test('a plain-http jwksUri on a public host is refused at construction (ERR_INVALID_ARG_VALUE)', () => {
    const err = thrownBy(() => clientAssertions({ clients: { billing: { jwksUri: 'http://billing.example.com/jwks' } } }));
    expect({ name: err.name, code: err.code }).toEqual({ name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
  });

  test('a client needs exactly one of jwks and jwksUri: no discovery from a client id', () => {
    const err = thrownBy(() => clientAssertions({ clients: { 'https://billing.example.com': {} } }));
    expect({ name: err.name, code: err.code }).toEqual({ name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
  });
});
