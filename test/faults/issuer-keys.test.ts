// Faults of an issuer's JWKS endpoint, served by a real server on 127.0.0.1: down, slower than the
// fetch timeout, huge, malformed, redirecting. The service answers 503 issuer_unavailable within
// the timeout, keeps serving callers of other issuers, and recovers once the endpoint answers
// again (after the cool-down, reached here by a clock jump rather than by waiting).
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startFramework, type FrameworkService } from '../support/frameworks';
import { newIssuer, newKey, type TestIssuer, type TestKey } from '../support/credentials';
import { signedGet } from './support';

type Mode = 'ok' | 'down' | 'slow' | 'huge' | 'malformed' | 'not-a-key-set' | 'redirect' | 'error-status';

let remote: TestIssuer;
let local: TestIssuer;
let alice: TestKey;
let mode: Mode = 'ok';
let fetches = 0;
let jwksServer: Server;
let jwksUrl: string;
const held: ServerResponse[] = [];

// Date.now drives the key cache's cool-down and max-age; a jump moves it (and every clock that
// reads it: the service's, the signer's, the issuer's) forward without waiting.
let offset = 0;
const realNow = Date.now.bind(Date);
beforeAll(() => {
  jest.spyOn(Date, 'now').mockImplementation(() => realNow() + offset);
});
afterAll(() => jest.restoreAllMocks());

beforeAll(async () => {
  remote = await newIssuer('https://remote-op.example');
  local = await newIssuer('https://local-op.example');
  alice = await newKey('ES256');
  jwksServer = createServer((req, res) => {
    fetches++;
    if (mode === 'ok' || req.url === '/moved') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(remote.jwks));
    if (mode === 'slow') return void held.push(res); // answered never: the fetch must time out
    if (mode === 'huge') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [remote.jwks.keys[0], { kty: 'oct', k: 'x'.repeat(200_000) }] }));
    if (mode === 'malformed') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys": [');
    if (mode === 'not-a-key-set') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys": "none"}');
    if (mode === 'redirect') return void res.writeHead(302, { location: '/moved' }).end();
    if (mode === 'error-status') return void res.writeHead(500).end();
    res.destroy(); // down: the connection is cut without an answer
  });
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks`;
});

afterAll(async () => {
  for (const res of held) res.destroy();
  jwksServer.closeAllConnections();
  await new Promise((resolve) => jwksServer.close(resolve));
});

async function service(): Promise<FrameworkService> {
  return startFramework('express', (url) => ({ issuers: [{ issuer: remote.issuer, jwksUri: jwksUrl }, { issuer: local.issuer, jwks: local.jwks }], audiences: [url] }));
}

describe('issuer JWKS endpoint faults', () => {
  it.each<[Mode, string]>([
    ['down', 'the connection is cut'],
    ['error-status', 'it answers 500'],
    ['huge', 'the key set exceeds maxResponseBytes (128 KiB)'],
    ['malformed', 'the key set is not JSON'],
    ['not-a-key-set', 'the JSON is not a key set'],
    ['redirect', 'it redirects (never followed)'],
  ])('%s (%s): 503 issuer_unavailable, other issuers still served, recovery after the cool-down', async (m) => {
    const s = await service();
    try {
      mode = m;
      const before = fetches;
      expect(await signedGet(`${s.url}/whoami`, remote, alice)).toMatchObject({ status: 503, code: 'issuer_unavailable' });
      expect(fetches).toBe(before + 1);
      // Within the cool-down a second caller does not make the service fetch again.
      expect(await signedGet(`${s.url}/whoami`, remote, alice)).toMatchObject({ status: 503, code: 'issuer_unavailable' });
      expect(fetches).toBe(before + 1);
      expect(await signedGet(`${s.url}/whoami`, local, alice)).toMatchObject({ status: 200 });
      mode = 'ok';
      offset += 31_000; // past the 30 s cool-down
      expect(await signedGet(`${s.url}/whoami`, remote, alice)).toMatchObject({ status: 200 });
    } finally {
      mode = 'ok';
      await s.close();
    }
  });

  it('slow beyond the 5 s fetch timeout: 503 issuer_unavailable once the timeout passes, never later; other issuers served meanwhile', async () => {
    const s = await service();
    try {
      mode = 'slow';
      const [slow, other] = await Promise.all([signedGet(`${s.url}/whoami`, remote, alice), new Promise((r) => setTimeout(r, 200)).then(() => signedGet(`${s.url}/whoami`, local, alice))]);
      expect(slow).toMatchObject({ status: 503, code: 'issuer_unavailable' });
      expect(slow.ms).toBeGreaterThanOrEqual(4_500);
      expect(slow.ms).toBeLessThan(9_000);
      expect(other.status).toBe(200);
      expect(other.ms).toBeLessThan(slow.ms);
      mode = 'ok';
      offset += 31_000;
      expect(await signedGet(`${s.url}/whoami`, remote, alice)).toMatchObject({ status: 200 });
    } finally {
      mode = 'ok';
      await s.close();
    }
  }, 20_000);

  it('keys fetched before an outage keep serving past their max age (stale-if-error, 3600 s), then 503', async () => {
    const s = await service();
    try {
      expect(await signedGet(`${s.url}/whoami`, remote, alice)).toMatchObject({ status: 200 });
      mode = 'down';
      offset += 601_000; // past cacheMaxAge (600 s): a refetch is due and fails
      expect(await signedGet(`${s.url}/whoami`, remote, alice)).toMatchObject({ status: 200 });
      offset += 3_600_000; // past stale-if-error as well
      expect(await signedGet(`${s.url}/whoami`, remote, alice)).toMatchObject({ status: 503, code: 'issuer_unavailable' });
      expect(await signedGet(`${s.url}/whoami`, local, alice)).toMatchObject({ status: 200 });
    } finally {
      mode = 'ok';
      await s.close();
    }
  });
});
