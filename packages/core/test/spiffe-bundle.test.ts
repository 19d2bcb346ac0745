// WIT issuer keys from a SPIFFE bundle endpoint (SPIFFE Trust Domain and Bundle, section 4), served
// on loopback in the shape SPIRE serves it: an x509-svid key (with x5c) and a jwt-svid key, with
// spiffe_sequence and spiffe_refresh_hint. Only jwt-svid keys verify; the hint drives the refresh.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { SignJWT, importJWK, type JWK } from 'jose';
import { createAuthenticator, createWitVerifier, signRequest } from '../src/index';
import { createSpiffeBundleResolver } from '../src/issuer-keys';
import { newKey, type TestKey } from '../../../test/support/credentials';
import { outcome } from './support/outcome';

const fixture = <T = JWK>(name: string): T => JSON.parse(readFileSync(join(__dirname, 'fixtures', 'wimse', name), 'utf8')) as T;
const SPIRE_BUNDLE = fixture<{ keys: JWK[]; spiffe_sequence: number; spiffe_refresh_hint: number }>('spire-bundle.json');
const JWT_AUTHORITY = fixture('spire-jwt-authority.jwk.json');
const X509_AUTHORITY = fixture('spire-x509-authority.jwk.json');
const TD = 'workloads.example';
const T = 1_790_000_000;

let holder: TestKey;
beforeAll(async () => {
  holder = await newKey('Ed25519');
});

let minted = 0;
async function mint(signer: JWK, header: Record<string, unknown> = { kid: signer.kid }, subject = `spiffe://${TD}/w${minted++}`): Promise<string> {
  return new SignJWT({ sub: subject, iat: T - 10, exp: T + 600, cnf: { jwk: { ...holder.publicJwk, alg: 'Ed25519' } } })
    .setProtectedHeader({ alg: 'ES256', typ: 'wit+jwt', ...header })
    .sign(await importJWK(signer, 'ES256'));
}

interface BundleServer {
  url: string;
  fetches: number;
  /** What the endpoint answers next: a bundle document, or an HTTP status. */
  serve: unknown;
  delayMs: number;
  close(): Promise<void>;
}
const servers: Server[] = [];
async function bundleServer(serve: unknown = SPIRE_BUNDLE): Promise<BundleServer> {
  const state = { fetches: 0, serve, delayMs: 0 } as BundleServer;
  const server = createServer((req, res) => {
    state.fetches++;
    setTimeout(() => {
      if (typeof state.serve === 'number') res.writeHead(state.serve).end();
      else res.writeHead(200, { 'content-type': 'application/json' }).end(typeof state.serve === 'string' ? state.serve : JSON.stringify(state.serve));
    }, state.delayMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/bundle`;
  return state;
}
afterAll(async () => {
  for (const s of servers) s.closeAllConnections();
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
});

// The bundle cache runs on Date.now(); tests move it instead of sleeping.
let wall = 0;
beforeEach(() => {
  wall = Date.UTC(2027, 0, 1);
  jest.spyOn(Date, 'now').mockImplementation(() => wall);
});
afterEach(() => jest.restoreAllMocks());

const verifier = (url: string) => createWitVerifier({ trustDomains: [{ trustDomain: TD, spiffeBundleUrl: url }], now: () => T });

/** The bundle with its jwt-svid key replaced by `authority` (a rotation), at `sequence`. */
function rotated(authority: JWK, sequence: number, hint?: number): unknown {
  const { d: _d, alg: _alg, ...pub } = authority;
  return { keys: [SPIRE_BUNDLE.keys[0], { use: 'jwt-svid', ...pub }], spiffe_sequence: sequence, ...(hint === undefined ? {} : { spiffe_refresh_hint: hint }) };
}

describe('WIT keys from a SPIFFE bundle endpoint', () => {
  it('verifies WITs with the jwt-svid key and never with the x509-svid key', async () => {
    const endpoint = await bundleServer();
    const wits = verifier(endpoint.url);
    await expect(wits.verify(await mint(JWT_AUTHORITY))).resolves.toMatchObject({ trustDomain: TD });
    // The CA key of the bundle (x509-svid, no kid) is not a WIT issuer key, with or without a kid.
    expect(await outcome(wits.verify(await mint(X509_AUTHORITY, {})))).toBe('wit_invalid/400');
    expect(await outcome(wits.verify(await mint(X509_AUTHORITY, { kid: JWT_AUTHORITY.kid })))).toBe('wit_invalid/400');
    expect(endpoint.fetches).toBe(1);
  });

  it('fetches once for concurrent first lookups, then again after spiffe_refresh_hint', async () => {
    const endpoint = await bundleServer();
    endpoint.delayMs = 20;
    const wits = verifier(endpoint.url);
    const tokens = await Promise.all(Array.from({ length: 10 }, () => mint(JWT_AUTHORITY)));
    await Promise.all(tokens.map((t) => wits.verify(t)));
    expect(endpoint.fetches).toBe(1);
    wall += 299_000;
    await wits.verify(await mint(JWT_AUTHORITY));
    expect(endpoint.fetches).toBe(1);
    // Past the hint (300 s) the rotated bundle is fetched and its new key verifies.
    const next = { ...JWT_AUTHORITY, ...(await newKey('ES256')).privateJwk, kid: 'rotated-1' };
    endpoint.serve = rotated(next, 2, 60);
    wall += 2_000;
    await expect(wits.verify(await mint(next))).resolves.toBeDefined();
    expect(endpoint.fetches).toBe(2);
    expect(await outcome(wits.verify(await mint(JWT_AUTHORITY)))).toBe('wit_invalid/400');
    // The new hint (60 s) is the new interval.
    wall += 61_000;
    await wits.verify(await mint(next));
    expect(endpoint.fetches).toBeGreaterThanOrEqual(3);
  });

  it('without a hint refreshes after cacheMaxAge; an unknown kid fetches again at most once per cool-down', async () => {
    const endpoint = await bundleServer(rotated(JWT_AUTHORITY, 5));
    const wits = verifier(endpoint.url);
    await wits.verify(await mint(JWT_AUTHORITY));
    const added = { ...(await newKey('ES256')).privateJwk, kid: 'added-later' };
    expect(await outcome(wits.verify(await mint(added)))).toBe('wit_invalid/400'); // within the cool-down: no fetch
    expect(endpoint.fetches).toBe(1);
    endpoint.serve = { keys: [...(rotated(JWT_AUTHORITY, 6) as { keys: JWK[] }).keys, { use: 'jwt-svid', ...(({ d: _d, ...pub }) => pub)(added) }], spiffe_sequence: 6 };
    wall += 31_000;
    await expect(wits.verify(await mint(added))).resolves.toBeDefined();
    expect(endpoint.fetches).toBe(2);
    wall += 599_000;
    await wits.verify(await mint(added));
    expect(endpoint.fetches).toBe(2);
    wall += 2_000; // 601 s after the last fetch: past cacheMaxAge (600 s)
    await wits.verify(await mint(added));
    expect(endpoint.fetches).toBe(3);
  });

  it('keeps the held keys through an outage and a rollback (staleIfError), then answers 503', async () => {
    const endpoint = await bundleServer(rotated(JWT_AUTHORITY, 7, 300));
    const wits = verifier(endpoint.url);
    await wits.verify(await mint(JWT_AUTHORITY));
    endpoint.serve = 500;
    wall += 301_000;
    await expect(wits.verify(await mint(JWT_AUTHORITY))).resolves.toBeDefined();
    // An older bundle (lower spiffe_sequence) is a failed fetch too: the held keys stay.
    endpoint.serve = rotated({ ...(await newKey('ES256')).privateJwk, kid: 'old' }, 3, 300);
    wall += 31_000;
    await expect(wits.verify(await mint(JWT_AUTHORITY))).resolves.toBeDefined();
    wall += 3_600_000;
    expect(await outcome(wits.verify(await mint(JWT_AUTHORITY)))).toBe('issuer_unavailable/503');
  });

  it('answers 503 issuer_unavailable without keys: endpoint down, not JSON, oversized, malformed', async () => {
    const bodies: unknown[] = [503, 'not json', JSON.stringify({ keys: [], pad: 'x'.repeat(200_000) }), { keys: {} }, { keys: [], spiffe_refresh_hint: -1 }, { keys: [{ use: 'jwt-svid', kty: 'oct', k: 'AAAA' }] }];
    for (const body of bodies) {
      const endpoint = await bundleServer(body);
      expect(await outcome(verifier(endpoint.url).verify(await mint(JWT_AUTHORITY)))).toBe('issuer_unavailable/503');
    }
    // An empty bundle as SPIRE serves it ("keys": null) verifies nothing.
    const empty = await bundleServer({ keys: null, spiffe_refresh_hint: 10 });
    expect(await outcome(verifier(empty.url).verify(await mint(JWT_AUTHORITY)))).toBe('wit_invalid/400');
  });

  it('is configured once: an https URL (http only on loopback), no other key source', () => {
    const config = (domain: Record<string, unknown>) => () => createWitVerifier({ trustDomains: [{ trustDomain: TD, ...domain } as never] });
    expect(config({ spiffeBundleUrl: 'http://spire.example/bundle' })).toThrow(/trustDomains\[0\]\.spiffeBundleUrl/);
    expect(config({ spiffeBundleUrl: 'not a url' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(config({ spiffeBundleUrl: 'https://spire.example/bundle', jwksUri: 'https://spire.example/jwks' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(config({ spiffeBundleUrl: 'https://spire.example/bundle', bundle: {} })).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_OPTION' }));
    expect(config({ spiffeBundleUrl: 'https://spire.example/bundle', issuer: 'https://spire.example' })).not.toThrow();
    expect(() => createSpiffeBundleResolver(TD, 'https://user:pw@spire.example/bundle')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
  });

  it('authenticates a workload signature through the authenticator', async () => {
    const endpoint = await bundleServer();
    const wit = await mint(JWT_AUTHORITY, { kid: JWT_AUTHORITY.kid }, `spiffe://${TD}/billing`);
    const auth = createAuthenticator({
      issuers: [{ issuer: 'https://op.example.com', jwksUri: 'https://op.example.com/jwks' }],
      audiences: ['https://api.example.com'],
      now: () => T,
      workloads: { trustDomains: [{ trustDomain: TD, spiffeBundleUrl: endpoint.url }] },
    });
    const signed = await signRequest({ method: 'GET', url: 'https://api.example.com/x' }, { wit, key: holder.signer, now: () => T });
    await expect(auth.authenticate(signed)).resolves.toMatchObject({ kind: 'workload', subject: `spiffe://${TD}/billing`, trustDomain: TD, issuer: '' });
  });
});
