// Decision events (docs/events.md) from real Express, Fastify and Koa services over sockets: one
// event per authentication decision and per response signature, credential and key-fetch events,
// the same events on node:diagnostics_channel, the expected audiences on audience_mismatch (in the
// event, never in the response), a broken credential refused before the route with its cause, and
// no token, proof, signature or key bytes in any event.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { OIDC2_EVENT_CHANNELS, createIctVerifier, requestBinding, signRequest, verifyResponse, type Oidc2Event, type Oidc2Options } from '@oidc2/core';
import { createIssuerKeyResolver } from '@oidc2/core/adapter';
import { newIssuer, newKey, type TestIssuer, type TestKey } from '../support/credentials';
import { FRAMEWORKS, startFramework, type FrameworkService } from '../support/frameworks';
import { problemOf, sendE2ee } from '../support/e2ee-caller';

const utf8 = (s: string) => new TextEncoder().encode(s);

// Every event any test here saw: checked at the end for secret bytes.
const seen: Oidc2Event[] = [];
const secrets: string[] = [];

function keep(...values: (string | undefined)[]): void {
  for (const v of values) if (v) secrets.push(v);
}

/** A JWKS endpoint on 127.0.0.1 that can be stopped. */
async function jwksServer(issuer: TestIssuer): Promise<{ url: string; fetches: () => number; close(): Promise<void> }> {
  let count = 0;
  const server: Server = createServer((_req, res) => {
    count++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(issuer.jwks));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
  return {
    url,
    fetches: () => count,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

let callers: TestIssuer;
let services: TestIssuer;
let callerKey: TestKey;
let callerIct: string;
let serviceKey: TestKey;
let serviceIct: string;
beforeAll(async () => {
  callers = await newIssuer('https://op.example.test');
  services = await newIssuer('https://attest.example.test');
  callerKey = await newKey('ES256');
  callerIct = await callers.mint(callerKey, { subject: 'alice' });
  serviceKey = await newKey('ES256');
  serviceIct = await services.mint(serviceKey, { subject: 'svc', lifetime: 3600 });
  keep(callerIct, serviceIct);
  for (const key of [callerKey, serviceKey, callers.key, services.key]) keep(key.privateJwk.d, key.publicJwk.x, key.publicJwk.y);
});

async function signedPost(url: string, path: string, options: { audience?: string; signResponse?: boolean } = {}) {
  const body = utf8('{"amount":1}');
  const message = await signRequest(
    { method: 'POST', url: `${url}${path}`, headers: { 'content-type': 'application/json' }, body },
    { ict: callerIct, key: callerKey.signer, signResponse: options.signResponse ?? true, ...(options.audience ? { audience: options.audience } : {}) },
  );
  keep(...(message.headers['signature'] ?? []).map((s) => s.split(':')[1]));
  return message;
}

describe.each(FRAMEWORKS)('%s: decision events', (framework) => {
  let svc: FrameworkService;
  let jwks: Awaited<ReturnType<typeof jwksServer>>;
  const events: Oidc2Event[] = [];
  const channelled: unknown[] = [];
  const onChannel = (message: unknown) => channelled.push(message);
  const of = <T extends Oidc2Event['type']>(type: T) => events.filter((e): e is Extract<Oidc2Event, { type: T }> => e.type === type);

  beforeAll(async () => {
    jwks = await jwksServer(callers);
    for (const name of Object.values(OIDC2_EVENT_CHANNELS)) subscribe(name, onChannel);
    svc = await startFramework(framework, (url): Oidc2Options => ({
      issuers: [{ issuer: callers.issuer, jwksUri: jwks.url }],
      audiences: [url],
      credential: { ict: serviceIct, privateKey: serviceKey.privateJwk },
      onEvent: (event) => {
        events.push(event);
        seen.push(event);
      },
    }));
  });
  afterAll(async () => {
    for (const name of Object.values(OIDC2_EVENT_CHANNELS)) unsubscribe(name, onChannel);
    await svc.close();
    await jwks.close();
  });
  beforeEach(() => {
    events.length = 0;
    channelled.length = 0;
  });

  it('an accepted request: one authentication event with the caller, one key fetch, one signing event, also on the channels', async () => {
    const message = await signedPost(svc.url, '/echo');
    const res = await sendE2ee(svc.url, message);
    expect(res.status).toBe(200);
    await verifyResponse(res, { request: message, binding: requestBinding(message)!, ictVerifier: createIctVerifier({ issuers: [{ issuer: services.issuer, jwks: services.jwks }] }) });

    const [auth, ...moreAuth] = of('authentication');
    expect(moreAuth).toHaveLength(0);
    expect(auth).toMatchObject({ outcome: 'success', method: 'POST', path: '/echo', proof: 'http-signature', kind: 'user', subject: 'alice', issuer: callers.issuer, thumbprint: callerKey.thumbprint });
    expect(auth!.durationMs).toBeGreaterThanOrEqual(0);
    expect(of('key_fetch')).toEqual([expect.objectContaining({ outcome: 'success', issuer: callers.issuer, url: jwks.url, keys: 1 })]);
    expect(of('response_signing')).toEqual([expect.objectContaining({ outcome: 'success', method: 'POST', path: '/echo', status: 200, credential: 'ict', thumbprint: serviceKey.thumbprint })]);
    // The channels carry the same events (frozen objects, published once each).
    expect(channelled).toEqual(expect.arrayContaining(events));
    expect(jwks.fetches()).toBe(1);
  });

  it('audience_mismatch: the event names the configured audiences, the response does not', async () => {
    const wrong = svc.url.replace('127.0.0.1', 'localhost');
    const res = await sendE2ee(svc.url, await signedPost(svc.url, '/echo', { audience: wrong }));
    expect(res.status).toBe(401);
    expect(problemOf(res)?.code).toBe('audience_mismatch');
    expect(new TextDecoder().decode(res.body)).not.toContain(svc.url);
    expect(of('authentication')).toEqual([
      expect.objectContaining({ outcome: 'failure', code: 'audience_mismatch', status: 401, path: '/echo', expected: { audiences: [svc.url] } }),
    ]);
    // The refusal is signed, and that signature is an event too.
    expect(of('response_signing')).toEqual([expect.objectContaining({ outcome: 'success', status: 401 })]);
  });

  it('a request without credentials: a failure event with its code', async () => {
    const res = await sendE2ee(svc.url, { method: 'GET', url: `${svc.url}/whoami`, headers: {} });
    expect(res.status).toBe(401);
    expect(of('authentication')).toEqual([expect.objectContaining({ outcome: 'failure', code: problemOf(res)?.code, status: 401, method: 'GET', path: '/whoami' })]);
  });

  it('the query never reaches an event', async () => {
    await sendE2ee(svc.url, { method: 'GET', url: `${svc.url}/whoami?access_token=abcdefghijklmnopqrstuvwxyz`, headers: {} });
    expect(JSON.stringify(events)).not.toContain('abcdefghijklmnop');
    expect(of('authentication')[0]?.path).toBe('/whoami');
  });
});

describe.each(FRAMEWORKS)('%s: a broken service credential', (framework) => {
  let svc: FrameworkService;
  const events: Oidc2Event[] = [];
  beforeAll(async () => {
    const other = await newKey('ES256');
    keep(other.privateJwk.d);
    svc = await startFramework(framework, (url): Oidc2Options => ({
      issuers: [{ issuer: callers.issuer, jwks: callers.jwks }],
      audiences: [url],
      // The ICT certifies serviceKey; the key configured is another one.
      credential: { ict: serviceIct, privateKey: other.privateJwk },
      onEvent: (event) => {
        events.push(event);
        seen.push(event);
      },
    }));
  });
  afterAll(() => svc.close());

  it('is refused before the route runs, when the caller asked for a signed response, with the cause in the event', async () => {
    const res = await sendE2ee(svc.url, await signedPost(svc.url, '/echo'));
    expect(res.status).toBe(501);
    expect(problemOf(res)?.code).toBe('response_signing_unavailable');
    const refresh = events.filter((e) => e.type === 'credential_refresh');
    expect(refresh.length).toBeGreaterThan(0);
    expect(refresh.every((e) => e.outcome === 'failure' && e.code === 'response_signing_unavailable' && /not the key its ICT certifies/.test(e.reason ?? ''))).toBe(true);
    expect(events.filter((e) => e.type === 'authentication')).toEqual([expect.objectContaining({ outcome: 'failure', code: 'response_signing_unavailable', status: 501 })]);
  });

  it('a caller who did not ask still gets an unsigned answer', async () => {
    const res = await sendE2ee(svc.url, await signedPost(svc.url, '/echo', { signResponse: false }));
    expect(res.status).toBe(200);
    expect(res.headers['signature']).toBeUndefined();
  });
});

describe('ready()', () => {
  it('rejects at start-up for a key that does not match the credential, and resolves for one that does', async () => {
    const { oidc2 } = await import('@oidc2/express');
    const other = await newKey('ES256');
    const base = { issuers: [{ issuer: callers.issuer, jwks: callers.jwks }], audiences: ['https://api.example.test'] };
    const broken = oidc2({ ...base, credential: { ict: serviceIct, privateKey: other.privateJwk } });
    await expect(broken.ready()).rejects.toMatchObject({ code: 'response_signing_unavailable', message: expect.stringContaining('not the key its ICT certifies') });
    const fine = oidc2({ ...base, credential: { ict: serviceIct, privateKey: serviceKey.privateJwk } });
    await expect(fine.ready()).resolves.toBeUndefined();
    const failing = oidc2({ ...base, credential: () => Promise.reject(new Error('vault sealed')) });
    await expect(failing.ready()).rejects.toMatchObject({ code: 'response_signing_unavailable' });
  });

  it('a listener that throws changes nothing', async () => {
    const { createOidc2Service } = await import('@oidc2/core');
    const service = createOidc2Service({
      issuers: [{ issuer: callers.issuer, jwks: callers.jwks }],
      audiences: ['https://api.example.test'],
      credential: { ict: serviceIct, privateKey: serviceKey.privateJwk },
      onEvent: () => {
        throw new Error('listener bug');
      },
    });
    await expect(service.ready()).resolves.toBeUndefined();
    const message = await signedPost('https://api.example.test', '/echo');
    const exchange = service.exchange({ method: 'POST', url: '/echo', headers: { ...message.headers, 'content-length': [String(message.body!.length)] } });
    const admission = await exchange.admit(message.body);
    expect(admission.answered).toBe(false);
  });

  it('refuses an onEvent that is not a function', async () => {
    const { createOidc2Service } = await import('@oidc2/core');
    expect(() => createOidc2Service({ issuers: [{ issuer: callers.issuer, jwks: callers.jwks }], audiences: ['https://api.example.test'], onEvent: 'log' as never })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }),
    );
  });
});

describe('key fetch events', () => {
  it('a fetch, then a failed refresh bridged by the stale keys, on the diagnostics channel', async () => {
    const jwks = await jwksServer(callers);
    const got: Oidc2Event[] = [];
    const listener = (message: unknown) => got.push(message as Oidc2Event);
    subscribe(OIDC2_EVENT_CHANNELS.key_fetch, listener);
    try {
      const resolve = createIssuerKeyResolver({ issuer: callers.issuer, jwksUri: jwks.url }, { cacheMaxAge: 0.05, cooldown: 0 });
      const token = { payload: '', signature: '', protected: '' };
      await resolve({ alg: 'ES256', kid: callers.kid }, token);
      await jwks.close();
      await new Promise((r) => setTimeout(r, 80));
      await resolve({ alg: 'ES256', kid: callers.kid }, token);
    } finally {
      unsubscribe(OIDC2_EVENT_CHANNELS.key_fetch, listener);
    }
    const mine = got.filter((e) => e.type === 'key_fetch' && e.url === jwks.url);
    expect(mine.map((e) => ({ outcome: e.outcome, stale: (e as { stale?: boolean }).stale === true }))).toEqual([
      { outcome: 'success', stale: false },
      { outcome: 'failure', stale: false },
      { outcome: 'failure', stale: true },
    ]);
    expect(mine[1]).toMatchObject({ code: 'issuer_unavailable', reason: expect.any(String) });
    seen.push(...mine);
  });
});

afterAll(() => {
  // No event ever holds a token, a signature or a key: not whole, and no 16-character piece of one.
  expect(seen.length).toBeGreaterThan(20);
  const text = JSON.stringify(seen);
  for (const secret of secrets) {
    for (let i = 0; i + 16 <= secret.length; i += 8) expect(text).not.toContain(secret.slice(i, i + 16));
  }
});
