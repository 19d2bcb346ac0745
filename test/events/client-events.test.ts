// Decision events of @oidc2/client (docs/events.md, client section), from real requests over
// sockets to a running @oidc2/issuer and an Express service: one response_verification event per
// verified or refused response (origin and path, never the query), credential_refresh and
// issuer_grant events of the client and of serviceCredential, e2ee handshakes, sessions, rekeys and
// a refused session retried, the same events on node:diagnostics_channel, and no token, proof,
// session token or key bytes in any event.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { calculateJwkThumbprint, type JWK } from 'jose';
import { createClient, serviceCredential, type ClientOptions } from '@oidc2/client';
import { OIDC2_EVENT_CHANNELS, type Oidc2Event } from '@oidc2/core';
import { apiKeys, createIssuer, hashApiKey, type ListeningIssuer } from '@oidc2/issuer';
import { newIssuer } from '../support/credentials';
import { startFramework, type FrameworkService } from '../support/frameworks';
import { freeLoopbackUrl } from '../support/node-service';
import { codeOf } from '../support/error-code';

const CALLER_KEY = 'caller-key-'.padEnd(48, 'c');
const SERVICE_KEY = 'service-key-'.padEnd(48, 's');
const CALLER = 'spiffe://events.test/caller';
const SERVICE = 'spiffe://events.test/api';

// Fields whose values are credentials, proofs, session tokens or key shares, in either direction.
const SECRET_FIELDS = ['identity-certification-token', 'signature', 'authorization', 'dpop', 'oidc2-key-share', 'oidc2-session'];

// Every event any test here saw, and every secret that crossed the wire: checked at the end.
const seen: Oidc2Event[] = [];
const secrets: string[] = [];
const keep = (...values: (string | undefined)[]) => {
  for (const v of values) if (v) secrets.push(v);
};

/** globalThis.fetch, keeping every secret field sent or received and every body sent to the issuer. */
const recordingFetch: typeof fetch = async (input, init) => {
  const request = new Request(input, init);
  for (const name of SECRET_FIELDS) keep(request.headers.get(name) ?? undefined);
  if (request.url.startsWith(issuerId)) keep(await request.clone().text());
  const response = await fetch(request);
  for (const name of SECRET_FIELDS) keep(response.headers.get(name) ?? undefined);
  return response;
};

/** An ES256 key pair whose private members can be kept as secrets. */
async function extractablePair(): Promise<{ pair: CryptoKeyPair; thumbprint: string }> {
  const pair = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
  const jwk = (await crypto.subtle.exportKey('jwk', pair.privateKey)) as JWK;
  keep(jwk.d, jwk.x, jwk.y);
  return { pair, thumbprint: await calculateJwkThumbprint({ kty: 'EC', crv: 'P-256', x: jwk.x!, y: jwk.y! }) };
}

let issuerId: string;
let issuer: ListeningIssuer;
let svc: FrameworkService;
let serviceThumbprint: string;
const serviceEvents: Oidc2Event[] = [];
// The client's clock; the service's runs 30 s ahead, so a session the client still holds for live
// has expired there once the clock moves on by its lifetime.
let clock = Math.floor(Date.now() / 1000);

beforeAll(async () => {
  const { url, port } = await freeLoopbackUrl();
  issuerId = url;
  const ictIssuer = await createIssuer({
    issuer: issuerId,
    ictLifetime: 3600,
    now: () => clock,
    authenticators: [
      apiKeys({
        keys: [
          { hash: hashApiKey(CALLER_KEY), subject: CALLER, contexts: ['batch'] },
          { hash: hashApiKey(SERVICE_KEY), subject: SERVICE, contexts: ['service'] },
        ],
      }),
    ],
  });
  issuer = await ictIssuer.listen({ port });
  keep(CALLER_KEY, SERVICE_KEY);
  const service = await extractablePair();
  serviceThumbprint = service.thumbprint;
  const credential = serviceCredential({
    issuer: { url: issuerId, credential: { apiKey: SERVICE_KEY }, subject: SERVICE },
    keyPair: service.pair,
    fetch: recordingFetch,
    onEvent: (event) => serviceEvents.push(event),
  });
  svc = await startFramework('express', (url) => ({ issuers: [{ issuer: issuerId }], audiences: [url], credential, now: () => clock + 30, clockTolerance: 5 }));
});

// Only the e2ee test moves the clock.
afterEach(() => {
  clock = Math.floor(Date.now() / 1000);
});

afterAll(async () => {
  await svc?.close();
  await issuer?.close();
});

/** A client whose events land in the returned list, with an extractable key kept as a secret. */
async function recordedClient(extra: Partial<ClientOptions> = {}) {
  const events: Oidc2Event[] = [];
  const { pair, thumbprint } = await extractablePair();
  const api = createClient({
    serviceIssuers: [{ issuer: issuerId }],
    issuer: { url: issuerId, credential: { apiKey: CALLER_KEY }, subject: CALLER },
    keyPair: pair,
    fetch: recordingFetch,
    now: () => clock,
    onEvent: (event) => {
      events.push(event);
      seen.push(event);
    },
    ...extra,
  });
  return { api, events, thumbprint };
}

const summary = (events: Oidc2Event[]) =>
  events.map((e) => {
    if (e.type !== 'response_verification') return `${e.type} ${e.outcome}${e.code ? ` ${e.code}` : ''}`;
    return `${e.method} ${new URL(e.url).pathname} ${e.outcome}${e.code ? ` ${e.code}` : ''} ${e.status ?? '-'}${e.e2ee ? ` ${e.e2ee}` : ''}${e.remoteCode ? ` remote=${e.remoteCode}` : ''}`;
  });

describe('a client publishes', () => {
  it('its grant and credential, then one event per verified response, with origin and path only', async () => {
    const { api, events, thumbprint } = await recordedClient();
    expect((await api(`${svc.url}/whoami?account=query-secret-value`)).status).toBe(200);
    expect((await api(`${svc.url}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"n":1}' })).status).toBe(200);
    keep(await api.ict());
    expect(summary(events)).toEqual(['issuer_grant success', 'credential_refresh success', 'GET /whoami success 200', 'POST /echo success 200']);
    const [grant, refresh, verification] = events;
    expect(grant).toMatchObject({ side: 'client', grant: 'ict', token: 'ict', subject: CALLER, client: CALLER, thumbprint, expiresAt: expect.any(Number), time: expect.any(Number) });
    expect(refresh).toMatchObject({ side: 'client', credential: 'ict', subject: CALLER, issuer: issuerId, thumbprint, expiresAt: (grant as { expiresAt: number }).expiresAt });
    expect(verification).toEqual({
      type: 'response_verification',
      outcome: 'success',
      method: 'GET',
      url: `${svc.url}/whoami`,
      status: 200,
      subject: SERVICE,
      issuer: issuerId,
      thumbprint: serviceThumbprint,
      time: expect.any(Number),
    });
    expect(Object.isFrozen(verification)).toBe(true);
    expect(JSON.stringify(events)).not.toContain('query-secret-value');
  });

  it("a signed refusal with the service's code, and a refused response with the client's", async () => {
    const { api, events } = await recordedClient();
    // The route requires end-to-end encryption: the service refuses a request in clear, signed.
    const refused = await api(`${svc.url}/secret`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    const remote = ((await refused.json()) as { code: string }).code;
    expect(refused.status).toBeGreaterThanOrEqual(400);
    const other = createClient({
      serviceIssuers: [{ issuer: issuerId }],
      issuer: { url: issuerId, credential: { apiKey: CALLER_KEY }, subject: CALLER },
      expectedService: 'spiffe://events.test/another',
      fetch: recordingFetch,
      onEvent: (event) => (events.push(event), seen.push(event)),
    });
    expect(await codeOf(() => other(`${svc.url}/whoami`))).toBe('response_untrusted');
    expect(summary(events).filter((s) => s.includes('/'))).toEqual([`POST /secret success ${refused.status} remote=${remote}`, 'GET /whoami failure response_untrusted 200']);
    expect(events.at(-1)).toMatchObject({ reason: expect.any(String) });
  });

  it('the issuer refusal as an issuer_grant and a credential_refresh failure, with its code, status and remote code', async () => {
    const { api, events } = await recordedClient({ issuer: { url: issuerId, credential: { apiKey: 'wrong-'.padEnd(48, 'x') }, subject: CALLER } });
    keep('wrong-'.padEnd(48, 'x'));
    expect(await codeOf(() => api(`${svc.url}/whoami`))).toBe('client_invalid');
    expect(summary(events)).toEqual(['issuer_grant failure client_invalid', 'credential_refresh failure client_invalid']);
    expect(events[0]).toMatchObject({ side: 'client', grant: 'ict', status: 401, remoteCode: 'client_invalid', reason: expect.any(String) });
    expect(events[1]).not.toHaveProperty('keptPrevious');
  });

  it("a failed renewal while the ICT is still valid: keptPrevious, and a foreign error's token-like text redacted", async () => {
    const login = await newIssuer('https://login.events.test');
    const events: Oidc2Event[] = [];
    let calls = 0;
    const api = createClient({
      serviceIssuers: [{ issuer: issuerId }],
      getIct: async (jwk) => {
        if (calls++ === 0) return login.mint(jwk, { now: clock, lifetime: 600 });
        throw new Error(`the vault said ${'A'.repeat(40)}`);
      },
      now: () => clock,
      onEvent: (event) => (events.push(event), seen.push(event)),
    });
    const first = await api.ict();
    keep(first);
    // Past the renewal time (60 s before exp), not yet expired: the renewal fails, the ICT stays.
    clock += 560;
    expect(await api.ict()).toBe(first);
    expect(summary(events)).toEqual(['credential_refresh success', 'credential_refresh failure']);
    expect(events[0]).toMatchObject({ side: 'client', credential: 'ict', subject: expect.any(String), issuer: login.issuer });
    expect(events[1]).toMatchObject({ side: 'client', keptPrevious: true, reason: 'Error: the vault said [redacted]' });
    expect(events[1]).not.toHaveProperty('code');
  });

  it('e2ee handshakes, sessions, rekeys and a refused session retried after one new handshake', async () => {
    const ratchet = await recordedClient({ encryption: 'required', e2ee: { ratchet: true } });
    await ratchet.api(`${svc.url}/whoami`);
    await ratchet.api(`${svc.url}/whoami`);
    expect(summary(ratchet.events.filter((e) => e.type === 'response_verification'))).toEqual(['GET /whoami success 200 handshake', 'GET /whoami success 200 rekey']);

    const { api, events } = await recordedClient({ encryption: 'required' });
    const post = () => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"n":2}' });
    expect((await api(`${svc.url}/whoami`)).encryption?.mode).toBe('handshake');
    expect((await api(`${svc.url}/echo`, post())).encryption?.mode).toBe('session');
    // The session has expired at the service, not yet at the client (which rekeys, its rekey time
    // past): refused, signed; a new handshake at the session endpoint; the request again.
    clock += 610;
    expect((await api(`${svc.url}/echo`, post())).encryption?.mode).toBe('session');
    expect(summary(events.filter((e) => e.type === 'response_verification'))).toEqual([
      'GET /whoami success 200 handshake',
      'POST /echo success 200 session',
      'POST /echo success 401 rekey remote=session_expired',
      'POST /.well-known/oidc2-session success 204 handshake',
      'POST /echo success 200 session',
    ]);

  });

  it('the same events on node:diagnostics_channel, without onEvent', async () => {
    const channelled: unknown[] = [];
    const listener = (message: unknown) => channelled.push(message);
    for (const name of Object.values(OIDC2_EVENT_CHANNELS)) subscribe(name, listener);
    try {
      const api = createClient({ serviceIssuers: [{ issuer: issuerId }], issuer: { url: issuerId, credential: { apiKey: CALLER_KEY }, subject: CALLER }, fetch: recordingFetch });
      await api(`${svc.url}/whoami`);
    } finally {
      for (const name of Object.values(OIDC2_EVENT_CHANNELS)) unsubscribe(name, listener);
    }
    const mine = channelled.filter((e) => (e as { side?: string }).side === 'client' || (e as Oidc2Event).type === 'response_verification') as Oidc2Event[];
    seen.push(...mine);
    expect(summary(mine)).toEqual(['issuer_grant success', 'credential_refresh success', 'GET /whoami success 200']);
  });

  it('a throwing onEvent changes nothing; an onEvent that is not a function is refused', async () => {
    const api = createClient({
      serviceIssuers: [{ issuer: issuerId }],
      issuer: { url: issuerId, credential: { apiKey: CALLER_KEY }, subject: CALLER },
      fetch: recordingFetch,
      onEvent: () => {
        throw new Error('listener broke');
      },
    });
    expect((await api(`${svc.url}/whoami`)).status).toBe(200);
    const options = { serviceIssuers: [{ issuer: issuerId }], issuer: { url: issuerId, credential: { apiKey: CALLER_KEY }, subject: CALLER }, onEvent: 'log' };
    expect(() => createClient(options as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => serviceCredential({ issuer: options.issuer, onEvent: 42 } as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });
});

describe('serviceCredential publishes', () => {
  it("each of the service's issuances as an issuer_grant, and a refusal with the issuer's code", async () => {
    expect((await fetch(`${svc.url}/whoami`)).status).toBe(401);
    expect(summary(serviceEvents)).toContain('issuer_grant success');
    expect(serviceEvents[0]).toMatchObject({ side: 'client', grant: 'ict', token: 'ict', subject: SERVICE, thumbprint: serviceThumbprint, expiresAt: expect.any(Number) });
    const events: Oidc2Event[] = [];
    const broken = serviceCredential({ issuer: { url: issuerId, credential: { apiKey: 'wrong-'.padEnd(48, 'y') }, subject: SERVICE }, fetch: recordingFetch, onEvent: (e) => events.push(e) });
    keep('wrong-'.padEnd(48, 'y'));
    expect(await codeOf(broken)).toBe('client_invalid');
    expect(events).toEqual([expect.objectContaining({ type: 'issuer_grant', outcome: 'failure', code: 'client_invalid', status: 401, remoteCode: 'client_invalid' })]);
    seen.push(...serviceEvents, ...events);
  });
});

afterAll(() => {
  // No event holds a token, proof, session token, key share or key: not whole, and no 16-character piece of one.
  expect(seen.length).toBeGreaterThan(20);
  expect(secrets.length).toBeGreaterThan(20);
  const text = JSON.stringify(seen);
  for (const secret of secrets) {
    for (let i = 0; i + 16 <= secret.length; i += 8) expect(text).not.toContain(secret.slice(i, i + 16));
  }
});
