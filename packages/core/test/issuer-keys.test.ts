import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { SignJWT, importJWK, type JWK } from 'jose';
import { createIctVerifier, type IctVerifierOptions } from '../src/ict';
import { createIssuerKeyResolver } from '../src/issuer-keys';
import { isOidc2Error } from '../src/errors';

const fixture = (name: string): JWK => JSON.parse(readFileSync(join(__dirname, 'fixtures', name), 'utf8'));
const publicOf = ({ d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...rest }: JWK): JWK => rest;
const keyA = fixture('issuer-es256.jwk.json');
const keyB = fixture('issuer-ed25519.jwk.json');
const caller = publicOf(fixture('caller-p256.jwk.json'));
const NOW = 1_800_000_000;

let minted = 0;
async function mint(issuer: string, key: JWK = keyA): Promise<string> {
  return new SignJWT({ iss: issuer, sub: `user-${minted++}`, iat: NOW, exp: NOW + 600, cnf: { jwk: caller } })
    .setProtectedHeader({ alg: key.alg!, typ: 'ict+jwt', kid: key.kid })
    .sign(await importJWK(key, key.alg));
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
interface TestServer {
  origin: string;
  hits: Record<string, number>;
  routes: Record<string, Handler>;
  close(): Promise<void>;
}
const servers: TestServer[] = [];
async function serve(routes: Record<string, Handler>): Promise<TestServer> {
  const hits: Record<string, number> = {};
  const server = createServer((req, res) => {
    const path = req.url ?? '/';
    hits[path] = (hits[path] ?? 0) + 1;
    const handler = routes[path];
    if (handler) handler(req, res);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const t: TestServer = {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits,
    routes,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
  servers.push(t);
  return t;
}
const json = (body: unknown, delayMs = 0): Handler => (_req, res) => {
  setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body)), delayMs);
};
const jwksOf = (...keys: JWK[]) => ({ keys: keys.map(publicOf) });
const discovery = (issuer: string, jwksUri: string): Handler => json({ issuer, jwks_uri: jwksUri, authorization_endpoint: `${issuer}/authorize` });

async function code(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (isOidc2Error(err)) return `${err.code}/${err.status}`;
    throw err;
  }
  return 'accepted';
}

function verifier(options: Partial<IctVerifierOptions> & Pick<IctVerifierOptions, 'issuers'>) {
  return createIctVerifier({ now: () => NOW, ...options });
}

// The key-set cache runs on Date.now() (as jose's does); tests move it instead of sleeping.
let wall = 0;
beforeEach(() => {
  wall = Date.UTC(2027, 0, 1);
  jest.spyOn(Date, 'now').mockImplementation(() => wall);
});
afterEach(async () => {
  jest.restoreAllMocks();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

describe('issuer keys: sources', () => {
  it('uses inline keys without any fetch', async () => {
    const fetchSpy = jest.fn();
    const v = verifier({ issuers: [{ issuer: 'https://op.example', jwks: jwksOf(keyA, keyB) }], fetch: fetchSpy });
    expect((await v.verify(await mint('https://op.example'))).issuer).toBe('https://op.example');
    expect((await v.verify(await mint('https://op.example', keyB))).issuer).toBe('https://op.example');
    expect(fetchSpy).not.toHaveBeenCalled();
  });

  it('fetches a configured jwksUri once and reuses it', async () => {
    const s = await serve({ '/jwks': json(jwksOf(keyA)) });
    const v = verifier({ issuers: [{ issuer: 'https://op.example', jwksUri: `${s.origin}/jwks` }] });
    for (let i = 0; i < 3; i++) expect((await v.verify(await mint('https://op.example'))).issuer).toBe('https://op.example');
    expect(s.hits).toEqual({ '/jwks': 1 });
  });

  it('discovers jwks_uri from <issuer>/.well-known/openid-configuration, also for an issuer with a path', async () => {
    const s = await serve({ '/jwks': json(jwksOf(keyA)) });
    const issuer = `${s.origin}/realms/bank`;
    s.routes['/realms/bank/.well-known/openid-configuration'] = discovery(issuer, `${s.origin}/jwks`);
    const v = verifier({ issuers: [{ issuer }] });
    expect((await v.verify(await mint(issuer))).issuer).toBe(issuer);
    expect((await v.verify(await mint(issuer))).issuer).toBe(issuer);
    expect(s.hits).toEqual({ '/realms/bank/.well-known/openid-configuration': 1, '/jwks': 1 });
  });

  it('fetches over node:http without an injected fetch, never touching the global fetch, and sends what jose asks', async () => {
    const globalFetch = jest.spyOn(globalThis, 'fetch').mockImplementation(() => {
      throw new Error('the global fetch must not be used');
    });
    const s = await serve({ '/jwks': json(jwksOf(keyA)) });
    let accept: string | undefined;
    const handler = s.routes['/jwks']!;
    s.routes['/jwks'] = (req, res) => {
      accept = req.headers.accept;
      handler(req, res);
    };
    const issuer = `${s.origin}/op`;
    s.routes['/op/.well-known/openid-configuration'] = discovery(issuer, `${s.origin}/jwks`);
    const v = verifier({ issuers: [{ issuer }] });
    expect((await v.verify(await mint(issuer))).issuer).toBe(issuer);
    expect(globalFetch).not.toHaveBeenCalled();
    expect(accept).toContain('application/jwk-set+json');
    expect(s.hits).toEqual({ '/op/.well-known/openid-configuration': 1, '/jwks': 1 });
  });

  it('uses an injected fetch, with redirects not followed', async () => {
    const calls: Array<[string, RequestInit | undefined]> = [];
    const fetchImpl = (async (url: string, init?: RequestInit) => {
      calls.push([String(url), init]);
      return new Response(JSON.stringify(jwksOf(keyA)), { status: 200 });
    }) as typeof fetch;
    const v = verifier({ issuers: [{ issuer: 'https://op.example', jwksUri: 'https://keys.example/jwks' }], fetch: fetchImpl });
    expect((await v.verify(await mint('https://op.example'))).issuer).toBe('https://op.example');
    expect(calls.map(([url]) => url)).toEqual(['https://keys.example/jwks']);
    expect(calls[0]![1]?.redirect).toBe('manual');
    expect(calls[0]![1]?.signal).toBeInstanceOf(AbortSignal);
  });

  it('works directly with jose as a key resolver', async () => {
    const s = await serve({ '/jwks': json(jwksOf(keyA)) });
    const getKey = createIssuerKeyResolver({ issuer: 'https://op.example', jwksUri: `${s.origin}/jwks` });
    const key = await getKey({ alg: 'ES256', kid: 'issuer-es256' }, { payload: '', signature: '' });
    expect(key.type).toBe('public');
  });
});

describe('issuer keys: discovery documents', () => {
  it('rejects a discovery document naming another issuer, and fetches no keys', async () => {
    const s = await serve({ '/jwks': json(jwksOf(keyA)) });
    s.routes['/.well-known/openid-configuration'] = discovery('https://evil.example', `${s.origin}/jwks`);
    const v = verifier({ issuers: [{ issuer: s.origin }] });
    expect(await code(v.verify(await mint(s.origin)))).toBe('issuer_unavailable/503');
    expect(s.hits['/jwks']).toBeUndefined();
  });

  it('requires the issuer string to match exactly (no trailing-slash normalisation)', async () => {
    const s = await serve({ '/jwks': json(jwksOf(keyA)) });
    s.routes['/.well-known/openid-configuration'] = discovery(`${s.origin}/`, `${s.origin}/jwks`);
    expect(await code(verifier({ issuers: [{ issuer: s.origin }] }).verify(await mint(s.origin)))).toBe('issuer_unavailable/503');
  });

  it.each([
    ['no jwks_uri', (o: string) => ({ issuer: o })],
    ['an http jwks_uri off loopback', (o: string) => ({ issuer: o, jwks_uri: 'http://keys.example/jwks' })],
    ['a jwks_uri that is not a URL', (o: string) => ({ issuer: o, jwks_uri: 'jwks' })],
    ['a document that is not an object', () => ['not', 'an', 'object']],
  ])('rejects a discovery document with %s', async (_name, doc) => {
    const s = await serve({});
    s.routes['/.well-known/openid-configuration'] = json(doc(s.origin));
    expect(await code(verifier({ issuers: [{ issuer: s.origin }] }).verify(await mint(s.origin)))).toBe('issuer_unavailable/503');
  });

  it('rejects a discovery response that is not JSON, or a redirect', async () => {
    const s = await serve({
      '/.well-known/openid-configuration': (_req, res) => res.writeHead(200).end('<html>'),
      '/moved/.well-known/openid-configuration': (_req, res) => res.writeHead(302, { location: '/.well-known/openid-configuration' }).end(),
    });
    expect(await code(verifier({ issuers: [{ issuer: s.origin }] }).verify(await mint(s.origin)))).toBe('issuer_unavailable/503');
    const moved = `${s.origin}/moved`;
    expect(await code(verifier({ issuers: [{ issuer: moved }] }).verify(await mint(moved)))).toBe('issuer_unavailable/503');
    expect(s.hits['/.well-known/openid-configuration']).toBe(1);
  });

  it('discovers again after cacheMaxAge and follows a changed jwks_uri', async () => {
    const s = await serve({ '/jwks': json(jwksOf(keyA)), '/jwks2': json(jwksOf(keyB)) });
    let uri = `${s.origin}/jwks`;
    s.routes['/.well-known/openid-configuration'] = (req, res) => discovery(s.origin, uri)(req, res);
    const v = verifier({ issuers: [{ issuer: s.origin }], keyFetch: { cacheMaxAge: 60 } });
    await v.verify(await mint(s.origin));
    uri = `${s.origin}/jwks2`;
    wall += 61_000;
    expect((await v.verify(await mint(s.origin, keyB))).issuer).toBe(s.origin);
    expect(s.hits).toEqual({ '/.well-known/openid-configuration': 2, '/jwks': 1, '/jwks2': 1 });
  });

  it('keeps the known jwks_uri when discovering again fails, and retries only after the cool-down', async () => {
    const s = await serve({ '/jwks': json(jwksOf(keyA)) });
    let up = true;
    s.routes['/.well-known/openid-configuration'] = (req, res) => (up ? discovery(s.origin, `${s.origin}/jwks`)(req, res) : res.writeHead(503).end());
    const v = verifier({ issuers: [{ issuer: s.origin }], keyFetch: { cacheMaxAge: 60, cooldown: 10 } });
    await v.verify(await mint(s.origin));
    up = false;
    wall += 61_000;
    expect((await v.verify(await mint(s.origin))).issuer).toBe(s.origin);
    expect((await v.verify(await mint(s.origin))).issuer).toBe(s.origin);
    expect(s.hits['/.well-known/openid-configuration']).toBe(2);
    wall += 11_000;
    await v.verify(await mint(s.origin));
    expect(s.hits['/.well-known/openid-configuration']).toBe(3);
  });
});

describe('issuer keys: single flight and cool-down', () => {
  it('serves 200 concurrent cold verifications with one discovery fetch and one JWKS fetch', async () => {
    const s = await serve({});
    s.routes['/.well-known/openid-configuration'] = discovery(s.origin, `${s.origin}/jwks`);
    s.routes['/jwks'] = json(jwksOf(keyA), 100);
    const v = verifier({ issuers: [{ issuer: s.origin }] });
    const tokens = await Promise.all(Array.from({ length: 200 }, () => mint(s.origin)));
    const results = await Promise.all(tokens.map((t) => v.verify(t)));
    expect(new Set(results.map((r) => r.subject)).size).toBe(200);
    expect(s.hits).toEqual({ '/.well-known/openid-configuration': 1, '/jwks': 1 });
  });

  it('refetches for an unknown kid at most once per cool-down period', async () => {
    let keys = jwksOf(keyA);
    const s = await serve({ '/jwks': (req, res) => json(keys)(req, res) });
    const v = verifier({ issuers: [{ issuer: 'https://op.example', jwksUri: `${s.origin}/jwks` }], keyFetch: { cooldown: 30 } });
    await v.verify(await mint('https://op.example'));
    expect(s.hits['/jwks']).toBe(1);
    // Within the cool-down after the fetch: unknown kids cause no fetch at all.
    for (let i = 0; i < 5; i++) expect(await code(v.verify(await mint('https://op.example', keyB)))).toBe('ict_unknown_key/401');
    expect(s.hits['/jwks']).toBe(1);
    // After it: one refetch, then quiet again.
    wall += 31_000;
    for (let i = 0; i < 5; i++) expect(await code(v.verify(await mint('https://op.example', keyB)))).toBe('ict_unknown_key/401');
    expect(s.hits['/jwks']).toBe(2);
    // A rotated-in key is picked up by the next allowed refetch.
    keys = jwksOf(keyA, keyB);
    wall += 31_000;
    expect((await v.verify(await mint('https://op.example', keyB))).issuer).toBe('https://op.example');
    expect(s.hits['/jwks']).toBe(3);
  });
});

describe('issuer keys: failures', () => {
  it('answers issuer_unavailable (503) when the server is down and nothing is cached', async () => {
    const s = await serve({});
    const down = `${s.origin}/jwks`;
    await s.close();
    const v = verifier({ issuers: [{ issuer: 'https://op.example', jwksUri: down }] });
    expect(await code(v.verify(await mint('https://op.example')))).toBe('issuer_unavailable/503');
  });

  it('does not retry a failed fetch before the cool-down ends', async () => {
    const s = await serve({ '/jwks': (_req, res) => res.writeHead(500).end() });
    const v = verifier({ issuers: [{ issuer: 'https://op.example', jwksUri: `${s.origin}/jwks` }], keyFetch: { cooldown: 30 } });
    for (let i = 0; i < 3; i++) expect(await code(v.verify(await mint('https://op.example')))).toBe('issuer_unavailable/503');
    expect(s.hits['/jwks']).toBe(1);
    wall += 31_000;
    expect(await code(v.verify(await mint('https://op.example')))).toBe('issuer_unavailable/503');
    expect(s.hits['/jwks']).toBe(2);
  });

  it('does not retry a failed discovery before the cool-down ends', async () => {
    const s = await serve({ '/.well-known/openid-configuration': (_req, res) => res.writeHead(500).end() });
    const v = verifier({ issuers: [{ issuer: s.origin }], keyFetch: { cooldown: 30 } });
    for (let i = 0; i < 3; i++) expect(await code(v.verify(await mint(s.origin)))).toBe('issuer_unavailable/503');
    expect(s.hits['/.well-known/openid-configuration']).toBe(1);
    wall += 31_000;
    await v.verify(await mint(s.origin)).catch(() => undefined);
    expect(s.hits['/.well-known/openid-configuration']).toBe(2);
  });

  it('keeps using the last keys through an outage for staleIfError, then fails', async () => {
    let up = true;
    const s = await serve({ '/jwks': (req, res) => (up ? json(jwksOf(keyA))(req, res) : res.writeHead(502).end()) });
    const v = verifier({
      issuers: [{ issuer: 'https://op.example', jwksUri: `${s.origin}/jwks` }],
      keyFetch: { cacheMaxAge: 60, cooldown: 10, staleIfError: 100 },
    });
    await v.verify(await mint('https://op.example'));
    up = false;
    wall += 61_000; // keys are due for refresh; the refresh fails
    expect((await v.verify(await mint('https://op.example'))).issuer).toBe('https://op.example');
    expect(s.hits['/jwks']).toBe(2);
    wall += 1_000; // within the cool-down: no new attempt
    expect((await v.verify(await mint('https://op.example'))).issuer).toBe('https://op.example');
    // A kid that might be new cannot be checked: "try again later", not "invalid".
    expect(await code(v.verify(await mint('https://op.example', keyB)))).toBe('issuer_unavailable/503');
    expect(s.hits['/jwks']).toBe(2);
    wall += 10_000;
    expect((await v.verify(await mint('https://op.example'))).issuer).toBe('https://op.example');
    expect(s.hits['/jwks']).toBe(3);
    wall += 89_000; // past cacheMaxAge + staleIfError since the last good fetch
    expect(await code(v.verify(await mint('https://op.example')))).toBe('issuer_unavailable/503');
    up = true;
    wall += 11_000;
    expect((await v.verify(await mint('https://op.example'))).issuer).toBe('https://op.example');
  });

  it('times out a server that never answers', async () => {
    const s = await serve({ '/jwks': () => undefined });
    const v = verifier({ issuers: [{ issuer: 'https://op.example', jwksUri: `${s.origin}/jwks` }], keyFetch: { timeout: 0.2 } });
    const started = performance.now();
    expect(await code(v.verify(await mint('https://op.example')))).toBe('issuer_unavailable/503');
    expect(performance.now() - started).toBeLessThan(3000);
  });

  it('times out a body that stalls after the headers', async () => {
    const s = await serve({
      '/jwks': (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"keys":[');
      },
    });
    const v = verifier({ issuers: [{ issuer: 'https://op.example', jwksUri: `${s.origin}/jwks` }], keyFetch: { timeout: 0.2 } });
    const started = performance.now();
    expect(await code(v.verify(await mint('https://op.example')))).toBe('issuer_unavailable/503');
    expect(performance.now() - started).toBeLessThan(3000);
  });

  it('times out discovery', async () => {
    const s = await serve({ '/.well-known/openid-configuration': () => undefined });
    const v = verifier({ issuers: [{ issuer: s.origin }], keyFetch: { timeout: 0.2 } });
    expect(await code(v.verify(await mint(s.origin)))).toBe('issuer_unavailable/503');
  });

  it('rejects an oversized JWKS response, declared or streamed', async () => {
    const big = JSON.stringify({ keys: [publicOf(keyA)], padding: 'x'.repeat(200_000) });
    const s = await serve({
      '/declared': (_req, res) => res.writeHead(200, { 'content-length': Buffer.byteLength(big) }).end(big),
      '/chunked': (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        for (let i = 0; i < big.length; i += 16_384) res.write(big.slice(i, i + 16_384));
        res.end();
      },
      '/fits': json({ keys: [publicOf(keyA)], padding: 'x'.repeat(60_000) }),
    });
    for (const path of ['/declared', '/chunked']) {
      const v = verifier({ issuers: [{ issuer: 'https://op.example', jwksUri: `${s.origin}${path}` }] });
      expect(await code(v.verify(await mint('https://op.example')))).toBe('issuer_unavailable/503');
    }
    const fits = verifier({ issuers: [{ issuer: 'https://op.example', jwksUri: `${s.origin}/fits` }] });
    expect((await fits.verify(await mint('https://op.example'))).issuer).toBe('https://op.example');
    const tight = verifier({ issuers: [{ issuer: 'https://op.example', jwksUri: `${s.origin}/fits` }], keyFetch: { maxResponseBytes: 32_768 } });
    expect(await code(tight.verify(await mint('https://op.example')))).toBe('issuer_unavailable/503');
  });

  it.each([
    ['not JSON', (_req: IncomingMessage, res: ServerResponse) => res.writeHead(200).end('nope')],
    ['not a key set', json({ keys: 'none' })],
    ['a redirect', (_req: IncomingMessage, res: ServerResponse) => res.writeHead(302, { location: '/jwks' }).end()],
  ])('answers issuer_unavailable for a JWKS response that is %s', async (_name, handler) => {
    const s = await serve({ '/bad': handler, '/jwks': json(jwksOf(keyA)) });
    const v = verifier({ issuers: [{ issuer: 'https://op.example', jwksUri: `${s.origin}/bad` }] });
    expect(await code(v.verify(await mint('https://op.example')))).toBe('issuer_unavailable/503');
    expect(s.hits['/jwks']).toBeUndefined();
  });

  it('rejects a private key served in a JWKS', async () => {
    const s = await serve({ '/jwks': json({ keys: [keyA] }) });
    const v = verifier({ issuers: [{ issuer: 'https://op.example', jwksUri: `${s.origin}/jwks` }] });
    expect(await code(v.verify(await mint('https://op.example')))).toBe('issuer_unavailable/503');
  });
});
