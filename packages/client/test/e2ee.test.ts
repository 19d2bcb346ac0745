// The client's end-to-end encryption against a real Express service (@oidc2/express with its e2ee
// wiring) over loopback, every exchange through a logging proxy that stands for the
// TLS-terminating intermediary e2ee defends against: what it logs must never show a body, and what
// it changes must never reach the caller as a verified answer (the client side of the e2ee attack list).
import express from 'express';
import { signRequest, importKey, type RoutePolicy } from '@oidc2/core';
import { hpkeSuite, serializeResponseKeyShare } from '@oidc2/core/adapter';
import { oidc2, oidc2ErrorHandler } from '@oidc2/express';
import { createClient, type ClientOptions } from '@oidc2/client';
import { newIssuer, newKey, type TestIssuer, type TestKey } from '../../../test/support/credentials';
import { listen, type RunningServer } from '../../../test/support/node-service';
import { settledCode } from '../../../test/support/error-code';
import { startLoggingProxy, type LoggingProxy, type Travelled, type Upstream } from './support/loopback-proxy';

const SESSION_PATH = '/.well-known/oidc2-session';
const SUBJECT = 'spiffe://test.example/vault';

let clock = Math.floor(Date.now() / 1000);
const now = () => clock;

let users: TestIssuer;
let services: TestIssuer;
let serviceKey: TestKey;
const servers: RunningServer[] = [];

beforeAll(async () => {
  users = await newIssuer('https://op.test.example');
  services = await newIssuer('https://attest.test.example');
  serviceKey = await newKey('ES256');
});

afterEach(async () => {
  clock = Math.floor(Date.now() / 1000);
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

interface Setup {
  proxy: LoggingProxy;
  /** The URL the client talks to (the proxy's). */
  url: string;
  /** Bodies the routes received, after decryption. */
  seen: string[];
}

interface ServiceSetup {
  e2ee?: false | { epochSeconds?: number; rekeySeconds?: number; suites?: ('x25519' | 'p256')[] };
  /** Seconds the service's clock runs ahead of the client's. */
  skew?: number;
  clockTolerance?: number;
}

/** An Express service behind a logging proxy. Routes: GET /secret, POST /echo (raw bytes back), GET|POST /plain (e2ee off). */
async function setup(options: ServiceSetup = {}): Promise<Setup> {
  const proxy = await startLoggingProxy();
  servers.push(proxy);
  const seen: string[] = [];
  const app = express();
  const serviceNow = () => clock + (options.skew ?? 0);
  const auth = oidc2({
    issuers: [{ issuer: users.issuer, jwks: users.jwks }],
    audiences: [proxy.url],
    credential: { ict: await services.mint(serviceKey, { subject: SUBJECT, now: clock, lifetime: 3600 }), privateKey: serviceKey.privateJwk },
    now: serviceNow,
    maxBodyBytes: 2 * 1024 * 1024,
    ...(options.clockTolerance !== undefined ? { clockTolerance: options.clockTolerance } : {}),
    ...(options.e2ee !== undefined ? { e2ee: options.e2ee } : {}),
  });
  const off: RoutePolicy = { encryption: 'off' };
  const raw = express.raw({ type: () => true, limit: '4mb' });
  app.post(SESSION_PATH, auth);
  app.get('/secret', auth, (req, res) => {
    res.json({ caller: req.identity?.subject, secret: 'the vault code is 1234' });
  });
  app.post('/echo', auth, raw, (req, res) => {
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    seen.push(body.toString('latin1'));
    res.type('application/octet-stream').send(body);
  });
  app.all('/plain', auth.with(off), raw, (req, res) => {
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    seen.push(body.toString('latin1'));
    res.json({ caller: req.identity?.subject, echo: body.toString() });
  });
  app.use(oidc2ErrorHandler());
  const service = await listen(app);
  servers.push(service);
  proxy.target = service.url;
  return { proxy, url: proxy.url, seen };
}

function client(extra: Partial<ClientOptions> = {}) {
  return createClient({
    serviceIssuers: [{ issuer: services.issuer, jwks: services.jwks }],
    expectedService: SUBJECT,
    getIct: (jwk) => users.mint(jwk, { subject: 'alice', now: clock, lifetime: 3600 }),
    encryption: 'required',
    maxResponseBytes: 4 * 1024 * 1024,
    now,
    ...extra,
  } as ClientOptions);
}

const latin1 = (bytes: Uint8Array) => Buffer.from(bytes).toString('latin1');
const paths = (proxy: LoggingProxy) => proxy.requests.map((r) => `${r.method} ${r.path}`);
const handshakes = (proxy: LoggingProxy) => proxy.requests.filter((r) => r.headers.has('oidc2-key-share') && !r.headers.has('oidc2-session')).length;
/** True when no message that crossed the proxy showed `text` in clear. */
const neverInClear = (proxy: LoggingProxy, text: string) =>
  proxy.requests.every((r) => !latin1(r.body).includes(text)) && proxy.responses.every((r) => !latin1(r.body).includes(text));

describe('end-to-end encryption with an Express service over loopback', () => {
  it('a GET is the handshake: the proxy sees a key share and ciphertext, the caller plaintext', async () => {
    const { proxy, url } = await setup();
    const response = await client()(`${url}/secret`);
    expect(response.status).toBe(200);
    expect(response.encryption).toEqual({ suite: 'x25519', mode: 'handshake', epoch: 0, bodyEncrypted: true });
    expect(await response.json()).toEqual({ caller: 'alice', secret: 'the vault code is 1234' });
    expect(response.headers.get('content-encoding')).toBeNull();
    expect(response.headers.get('cache-control')).toBe('no-store, no-transform');
    expect(proxy.requests[0]!.headers.get('oidc2-key-share')).toMatch(/^x25519=:.+:, p256=:.+:$/);
    expect(proxy.responses[0]!.headers.get('content-encoding')).toBe('aes128gcm');
    expect(neverInClear(proxy, 'vault code')).toBe(true);
  });

  it('a POST with a body opens a session at the endpoint first; the body travels encrypted', async () => {
    const { proxy, url, seen } = await setup();
    const response = await client()(`${url}/echo`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'my pin is 9876' });
    expect(response.encryption).toEqual({ suite: 'x25519', mode: 'session', epoch: 0, bodyEncrypted: true });
    expect(await response.text()).toBe('my pin is 9876');
    expect(paths(proxy)).toEqual([`POST ${SESSION_PATH}`, 'POST /echo']);
    expect(proxy.responses[0]!.status).toBe(204);
    expect(proxy.requests[1]!.headers.get('content-encoding')).toBe('aes128gcm');
    expect(seen).toEqual(['my pin is 9876']);
    expect(neverInClear(proxy, 'pin is')).toBe(true);
  });

  it('reuses the session: one handshake for many requests', async () => {
    const { proxy, url } = await setup();
    const api = client();
    await api(`${url}/secret`);
    const results = [];
    for (let i = 0; i < 3; i++) results.push(await api(`${url}/echo`, { method: 'POST', body: `n${i}` }));
    expect(await Promise.all(results.map((r) => r.text()))).toEqual(['n0', 'n1', 'n2']);
    expect(results.every((r) => r.encryption?.mode === 'session')).toBe(true);
    expect(handshakes(proxy)).toBe(1);
    expect(paths(proxy)).toEqual(['GET /secret', 'POST /echo', 'POST /echo', 'POST /echo']);
  });

  it('concurrent first requests share one handshake at the endpoint', async () => {
    const { proxy, url } = await setup();
    const api = client();
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => api(`${url}/echo`, { method: 'POST', body: `c${i}` })));
    expect(await Promise.all(results.map((r) => r.text()))).toEqual(Array.from({ length: 6 }, (_, i) => `c${i}`));
    expect(paths(proxy).filter((p) => p === `POST ${SESSION_PATH}`)).toHaveLength(1);
    expect(handshakes(proxy)).toBe(1);
  });

  it.each([
    ['0 B', 0],
    ['1 B', 1],
    ['1 MiB', 1024 * 1024],
  ])('round-trips %s both ways', async (_name, size) => {
    const { proxy, url, seen } = await setup();
    const payload = Buffer.alloc(size, 'z');
    const api = client();
    await api(`${url}/secret`);
    const response = await api(`${url}/echo`, { method: 'POST', body: payload });
    const got = Buffer.from(await response.arrayBuffer());
    expect(got.equals(payload)).toBe(true);
    expect(response.encryption).toMatchObject({ mode: 'session', bodyEncrypted: size > 0 });
    expect(seen.map((s) => s.length)).toEqual([size]);
    const sent = proxy.requests.at(-1)!;
    expect(sent.headers.get('content-encoding')).toBe(size > 0 ? 'aes128gcm' : null);
    if (size > 0) expect(latin1(sent.body)).not.toContain('zzzzzzzz');
  });

  it('rekeys after the service’s hint, by the frozen clock', async () => {
    const { proxy, url } = await setup({ e2ee: { epochSeconds: 600, rekeySeconds: 300 } });
    const api = client();
    await api(`${url}/secret`);
    clock += 299;
    expect((await api(`${url}/secret`)).encryption).toMatchObject({ mode: 'session', epoch: 0 });
    clock += 1;
    const rekeyed = await api(`${url}/echo`, { method: 'POST', body: 'rotated' });
    expect(rekeyed.encryption).toEqual({ suite: 'x25519', mode: 'rekey', epoch: 1, bodyEncrypted: true });
    expect(await rekeyed.text()).toBe('rotated');
    const sent = proxy.requests.at(-1)!;
    expect([sent.headers.has('oidc2-key-share'), sent.headers.has('oidc2-session')]).toEqual([true, true]);
    expect((await api(`${url}/secret`)).encryption).toMatchObject({ mode: 'session', epoch: 1 });
  });

  it('ratchet: every request rekeys, each response under a fresh exchange', async () => {
    const { proxy, url } = await setup();
    const api = client({ e2ee: { ratchet: true } });
    const modes = [];
    for (let i = 0; i < 3; i++) {
      const r = await api(`${url}/echo`, { method: 'POST', body: `r${i}` });
      expect(await r.text()).toBe(`r${i}`);
      modes.push(`${r.encryption?.mode}:${r.encryption?.epoch}`);
    }
    expect(modes).toEqual(['rekey:1', 'rekey:2', 'rekey:3']);
    const encs = proxy.responses.map((r) => r.headers.get('oidc2-key-share'));
    expect(new Set(encs).size).toBe(encs.length);
  });

  it('parallel requests fork the chain and all succeed', async () => {
    const { proxy, url } = await setup();
    const api = client({ e2ee: { ratchet: true } });
    await api(`${url}/secret`);
    const forks = await Promise.all(Array.from({ length: 8 }, (_, i) => api(`${url}/echo`, { method: 'POST', body: `fork ${i}` })));
    expect(await Promise.all(forks.map((r) => r.text()))).toEqual(Array.from({ length: 8 }, (_, i) => `fork ${i}`));
    expect(forks.every((r) => r.encryption?.mode === 'rekey' && r.encryption.epoch === 1)).toBe(true);
    expect((await api(`${url}/secret`)).encryption).toMatchObject({ mode: 'rekey', epoch: 2 });
    expect(handshakes(proxy)).toBe(1);
  });

  it('session_expired: one new handshake at the endpoint, and the request succeeds', async () => {
    // The service's clock runs 30 s ahead with 5 s of tolerance: a token the client still holds
    // for valid has expired there.
    const { proxy, url, seen } = await setup({ skew: 30, clockTolerance: 5 });
    const api = client();
    await api(`${url}/secret`);
    clock += 610;
    const response = await api(`${url}/echo`, { method: 'POST', body: 'after expiry' });
    expect(await response.text()).toBe('after expiry');
    expect(response.encryption?.mode).toBe('session');
    expect(paths(proxy)).toEqual(['GET /secret', 'POST /echo', `POST ${SESSION_PATH}`, 'POST /echo']);
    expect(JSON.parse(new TextDecoder().decode(proxy.responses[1]!.body)).code).toBe('session_expired');
    expect(seen).toEqual(['after expiry']);
    expect(neverInClear(proxy, 'after expiry')).toBe(true);
  });

  it("'required' never sends a body in clear, even to a route or a service without e2ee", async () => {
    const { proxy, url, seen } = await setup();
    const api = client();
    expect(await settledCode(api(`${url}/plain`))).toBe('e2ee_unavailable');
    expect(await settledCode(api(`${url}/plain`, { method: 'POST', body: 'classified' }))).toBe('e2ee_unavailable');
    expect(seen).toEqual([]);
    expect(neverInClear(proxy, 'classified')).toBe(true);

    const noE2ee = await setup({ e2ee: false });
    expect(await settledCode(client()(`${noE2ee.url}/echo`, { method: 'POST', body: 'classified' }))).toBe('e2ee_unavailable');
    expect(paths(noE2ee.proxy)).toEqual([`POST ${SESSION_PATH}`]);
    expect(noE2ee.seen).toEqual([]);
  });

  it("'preferred' falls back to clear only after a signed e2ee_unavailable", async () => {
    const { proxy, url } = await setup();
    const api = client({ encryption: 'preferred' });
    const plain = await api(`${url}/plain`, { method: 'POST', body: 'fine in clear' });
    expect(plain.encryption).toBeNull();
    expect((await plain.json()).echo).toBe('fine in clear');
    expect((await api(`${url}/echo`, { method: 'POST', body: 'still secret' })).encryption?.mode).toBe('session');
    expect(neverInClear(proxy, 'still secret')).toBe(true);

    const noE2ee = await setup({ e2ee: false });
    const preferring = client({ encryption: 'preferred' });
    expect(await (await preferring(`${noE2ee.url}/echo`, { method: 'POST', body: 'x' })).text()).toBe('x');
    expect(await (await preferring(`${noE2ee.url}/echo`, { method: 'POST', body: 'y' })).text()).toBe('y');
    expect(paths(noE2ee.proxy)).toEqual([`POST ${SESSION_PATH}`, 'POST /echo', 'POST /echo']);
  });
});

describe('client-side attacks through the proxy (the e2ee attack list)', () => {
  const edit = (upstream: Upstream, change: (headers: Headers) => void, body?: Uint8Array): Upstream => {
    const headers = new Headers(upstream.headers);
    change(headers);
    return { status: upstream.status, headers, body: body ?? upstream.body };
  };

  it('enc substitution in the response: signature failure, nothing decrypted', async () => {
    const { proxy, url } = await setup();
    const pair = await hpkeSuite('x25519').generateKeyPair();
    const enc = serializeResponseKeyShare({ suite: 'x25519', key: await hpkeSuite('x25519').serializePublicKey(pair.publicKey) });
    proxy.onResponse = (r) => edit(r, (h) => h.set('oidc2-key-share', enc));
    expect(await settledCode(client()(`${url}/secret`))).toBe('response_signature_invalid');
  });

  it('a response key share relabelled to another suite: signature failure', async () => {
    const { proxy, url } = await setup();
    proxy.onResponse = (r) => edit(r, (h) => h.set('oidc2-key-share', h.get('oidc2-key-share')!.replace('x25519', 'p256')));
    expect(await settledCode(client()(`${url}/secret`))).toBe('response_signature_invalid');
  });

  it('a stripped response Content-Encoding: signature failure', async () => {
    const { proxy, url } = await setup();
    proxy.onResponse = (r) => edit(r, (h) => h.delete('content-encoding'));
    expect(await settledCode(client()(`${url}/secret`))).toBe('response_signature_invalid');
  });

  it('an unsigned 200 in clear: e2ee_response_unsigned', async () => {
    const { proxy, url } = await setup();
    proxy.onResponse = () => ({ status: 200, headers: new Headers({ 'content-type': 'application/json' }), body: new TextEncoder().encode('{"secret":"fake"}') });
    expect(await settledCode(client()(`${url}/secret`))).toBe('e2ee_response_unsigned');
    expect(await settledCode(client({ encryption: 'preferred' })(`${url}/echo`, { method: 'POST', body: 'x' }))).toBe('e2ee_response_unsigned');
  });

  it('an unsigned 401 e2ee_unavailable: an error, and no request in clear follows', async () => {
    const { proxy, url, seen } = await setup();
    proxy.onResponse = () => ({
      status: 401,
      headers: new Headers({ 'content-type': 'application/problem+json' }),
      body: new TextEncoder().encode('{"type":"urn:oidc2:error:e2ee_unavailable","status":401,"code":"e2ee_unavailable"}'),
    });
    const api = client({ encryption: 'preferred' });
    expect(await settledCode(api(`${url}/echo`, { method: 'POST', body: 'do not leak' }))).toBe('e2ee_response_unsigned');
    expect(await settledCode(api(`${url}/secret`))).toBe('e2ee_response_unsigned');
    expect(paths(proxy)).toEqual([`POST ${SESSION_PATH}`, 'GET /secret']);
    expect(seen).toEqual([]);
    expect(neverInClear(proxy, 'do not leak')).toBe(true);
  });

  it.each([
    ['the final record dropped', (b: Uint8Array) => b.subarray(0, 21 + 16384)],
    ['records swapped', (b: Uint8Array) => Buffer.concat([b.subarray(0, 21), b.subarray(21 + 16384, 21 + 2 * 16384), b.subarray(21, 21 + 16384), b.subarray(21 + 2 * 16384)])],
    ['a record appended after the final one', (b: Uint8Array) => Buffer.concat([b, b.subarray(21, 21 + 16384)])],
  ])('a response body with %s: the digest fails first (signature), nothing is exposed', async (_name, cut) => {
    const { proxy, url } = await setup();
    const api = client();
    await api(`${url}/secret`);
    proxy.onResponse = (r) => ({ ...r, body: new Uint8Array(cut(r.body)) });
    expect(await settledCode(api(`${url}/echo`, { method: 'POST', body: Buffer.alloc(3 * 16384, 'q') }))).toBe('response_signature_invalid');
  });

  it('a response body with its digest replaced as well: still the signature', async () => {
    const { proxy, url } = await setup();
    const api = client();
    await api(`${url}/secret`);
    const { createContentDigest } = await import('@oidc2/core');
    proxy.onResponse = async (r) => {
      const body = r.body.subarray(0, r.body.length - 10);
      const digest = await createContentDigest(body, 'sha-256');
      return edit(r, (h) => h.set('content-digest', digest), body);
    };
    expect(await settledCode(api(`${url}/echo`, { method: 'POST', body: 'x'.repeat(100) }))).toBe('response_signature_invalid');
  });

  it("unknown key share: the victim's share sent under Mallory's ICT, the response forwarded to the victim", async () => {
    const { proxy, url } = await setup();
    const mallory = await newKey('ES256');
    const malloryIct = await users.mint(mallory, { subject: 'mallory', now: clock, lifetime: 600 });
    const malloryKey = await importKey(mallory.privateJwk, 'ES256', 'sign');
    for (const reuseNonce of [false, true]) {
      proxy.onRequest = async (victim: Travelled) => {
        const nonce = /;nonce="([^"]+)"/.exec(victim.headers.get('signature-input')!)![1]!;
        const signed = await signRequest(
          { method: victim.method, url: url + victim.path, headers: { 'oidc2-key-share': victim.headers.get('oidc2-key-share')! } },
          { ict: malloryIct, key: malloryKey, now, ...(reuseNonce ? { nonce } : {}) },
        );
        const headers = new Headers();
        for (const [name, lines] of Object.entries(signed.headers)) for (const line of lines) headers.append(name, line);
        return { method: victim.method, path: victim.path, headers, body: new Uint8Array(0) };
      };
      const code = await settledCode(client()(`${url}/secret`));
      // Another nonce: the response is not bound to the victim's request. The victim's own nonce
      // (a signer may choose it): the signature verifies, but the transcript names Mallory, so the
      // keys differ and the body does not decrypt.
      expect(code).toBe(reuseNonce ? 'e2ee_response_decrypt_failed' : 'response_signature_invalid');
    }
    expect(proxy.responses.map((r) => r.status)).toEqual([200, 200]);
    expect(neverInClear(proxy, 'vault code')).toBe(true);
  });

  it('a genuine response of the session replayed for a later request: refused', async () => {
    const { proxy, url } = await setup();
    const api = client();
    await api(`${url}/secret`);
    let recorded: Upstream | undefined;
    proxy.onResponse = (r) => (recorded ??= r);
    expect((await api(`${url}/secret`)).status).toBe(200);
    expect(await settledCode(api(`${url}/secret`))).toBe('response_signature_invalid');
  });
});
