// The client's end-to-end encryption against the core's own service run in process behind a custom
// `fetch` (no socket): handshakes, sessions, rekeys, forks, retries, fallback, and the caller's
// checks of docs/protocol.md section 7.9 against a service that signs a faulty response and against a network
// attacker between the two.
import { createClient, VerifiedResponse, type ClientOptions } from '@oidc2/client';
import { KEY_SHARE_FIELD, SESSION_FIELD, acceptHandshake, hpkeSuite, serializeResponseKeyShare } from '@oidc2/core/adapter';
import { newIssuer, newKey, type TestIssuer, type TestKey } from '../../../test/support/credentials';
import { settledCode } from '../../../test/support/error-code';
import { fakeE2eeService, SERVICE_URL, SESSION_PATH, type FakeService, type FakeServiceOptions } from './support/e2ee-service';

let clock = 1_800_000_000;
const now = () => clock;

let users: TestIssuer;
let services: TestIssuer;
let serviceKey: TestKey;

beforeAll(async () => {
  users = await newIssuer('https://op.test.example');
  services = await newIssuer('https://attest.test.example');
  serviceKey = await newKey('ES256');
});

beforeEach(() => {
  clock = 1_800_000_000;
});

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const has = (headers: Record<string, string[]>, name: string) => headers[name] !== undefined;

async function service(extra: Partial<FakeServiceOptions> = {}): Promise<FakeService> {
  return fakeE2eeService({ users, services, serviceKey, now, ...extra });
}

function client(svc: { fetch: typeof fetch }, extra: Partial<ClientOptions> = {}) {
  return createClient({
    serviceIssuers: [{ issuer: services.issuer, jwks: services.jwks }],
    expectedService: 'spiffe://test.example/orders',
    getIct: (jwk) => users.mint(jwk, { subject: 'alice', now: clock, lifetime: 3600 }),
    encryption: 'required',
    fetch: svc.fetch,
    now,
    ...extra,
  } as ClientOptions);
}

describe('options', () => {
  const base = { serviceIssuers: [{ issuer: 'https://a.example', jwks: { keys: [] } }], getIct: async () => '' };
  const code = (options: object) => {
    try {
      createClient(options as ClientOptions);
    } catch (error) {
      return (error as { code?: string }).code;
    }
    return 'created';
  };

  it('defaults to no encryption and accepts every mode with http-signature', () => {
    const valid = { ...base, serviceIssuers: [{ issuer: services.issuer, jwks: services.jwks }] };
    expect(code(valid)).toBe('created');
    for (const encryption of ['required', 'preferred', 'off']) expect(code({ ...valid, encryption })).toBe('created');
    expect(code({ ...valid, encryption: 'off', proof: 'dpop', e2ee: { ratchet: true } })).toBe('created');
  });

  it.each([
    ['an unknown mode', { encryption: 'on' }, 'ERR_INVALID_ARG_VALUE'],
    ["'required' with dpop", { encryption: 'required', proof: 'dpop' }, 'ERR_INVALID_ARG_VALUE'],
    ["'preferred' with dpop", { encryption: 'preferred', proof: 'dpop' }, 'ERR_INVALID_ARG_VALUE'],
    ['an unknown e2ee option', { encryption: 'required', e2ee: { suite: ['x25519'] } }, 'ERR_UNKNOWN_OPTION'],
    ['an unknown client option', { encryption: 'required', encrypt: true }, 'ERR_UNKNOWN_OPTION'],
    ['e2ee that is no object', { encryption: 'required', e2ee: 'x25519' }, 'ERR_INVALID_ARG_TYPE'],
    ['no suite', { encryption: 'required', e2ee: { suites: [] } }, 'ERR_INVALID_ARG_VALUE'],
    ['a suite not in the profile', { encryption: 'required', e2ee: { suites: ['x448'] } }, 'ERR_INVALID_ARG_VALUE'],
    ['a suite twice', { encryption: 'required', e2ee: { suites: ['p256', 'p256'] } }, 'ERR_INVALID_ARG_VALUE'],
    ['a ratchet that is no boolean', { encryption: 'required', e2ee: { ratchet: 'yes' } }, 'ERR_INVALID_ARG_TYPE'],
    ['a session endpoint that is no function', { encryption: 'required', e2ee: { sessionEndpoint: 'https://a.example/s' } }, 'ERR_INVALID_ARG_TYPE'],
    ['no session cache', { encryption: 'required', e2ee: { maxSessions: 0 } }, 'ERR_INVALID_ARG_VALUE'],
    ['a fractional session cache', { encryption: 'required', e2ee: { maxSessions: 1.5 } }, 'ERR_INVALID_ARG_VALUE'],
  ])('refuses %s at construction', (_name, extra, expected) => {
    expect(code({ ...base, ...extra })).toBe(expected);
  });

  it('refuses e2ee fields and a content coding set by the caller, and a session endpoint that is no URL', async () => {
    const svc = await service();
    const api = client(svc);
    for (const name of ['oidc2-session', 'oidc2-key-share', 'content-encoding']) {
      await expect(api(`${SERVICE_URL}/a`, { method: 'POST', body: 'x', headers: { [name]: 'x' } })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    }
    await expect(client(svc, { e2ee: { sessionEndpoint: () => 'not a url' } })(`${SERVICE_URL}/a`)).rejects.toMatchObject({ code: 'ERR_INVALID_RETURN_VALUE' });
    expect(svc.received).toHaveLength(0);
  });
});

describe('handshakes and sessions', () => {
  it('a request without a body is the handshake; its response body is decrypted and described', async () => {
    const svc = await service();
    const response = await client(svc)(`${SERVICE_URL}/orders?page=2`);
    expect(response).toBeInstanceOf(VerifiedResponse);
    expect(response.encryption).toEqual({ suite: 'x25519', mode: 'handshake', epoch: 0, bodyEncrypted: true });
    expect(await response.json()).toEqual({ method: 'GET', caller: 'alice', echo: '' });
    expect(response.service.subject).toBe('spiffe://test.example/orders');
    for (const name of ['content-encoding', 'content-digest', 'oidc2-session', 'oidc2-key-share']) expect(response.headers.has(name)).toBe(false);
    expect(response.headers.get('content-type')).toBe('application/json');
    const [seen] = svc.received;
    expect(seen!.path).toBe('/orders');
    expect(has(seen!.headers, KEY_SHARE_FIELD)).toBe(true);
    expect(seen!.headers[KEY_SHARE_FIELD]![0]).toMatch(/^x25519=:[A-Za-z0-9+/=]+:, p256=:[A-Za-z0-9+/=]+:$/);
    expect(has(seen!.headers, SESSION_FIELD)).toBe(false);
  });

  it('a request with a body first opens a session at the session endpoint, then sends the body encrypted', async () => {
    const svc = await service();
    const response = await client(svc)(`${SERVICE_URL}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"qty":2}' });
    expect(response.encryption).toEqual({ suite: 'x25519', mode: 'session', epoch: 0, bodyEncrypted: true });
    expect(await response.json()).toEqual({ method: 'POST', caller: 'alice', echo: '{"qty":2}' });
    const [handshake, request] = svc.received;
    expect([handshake!.method, handshake!.path, handshake!.body.length]).toEqual(['POST', SESSION_PATH, 0]);
    expect(has(handshake!.headers, KEY_SHARE_FIELD)).toBe(true);
    expect([request!.method, request!.path]).toEqual(['POST', '/orders']);
    expect(request!.headers['content-encoding']).toEqual(['aes128gcm']);
    expect(has(request!.headers, SESSION_FIELD)).toBe(true);
    expect(has(request!.headers, KEY_SHARE_FIELD)).toBe(false);
    expect(text(request!.body)).not.toContain('qty');
    expect(text(request!.plaintext!)).toBe('{"qty":2}');
  });

  it('reuses the session: one handshake, then session requests without key shares', async () => {
    const svc = await service();
    const api = client(svc);
    await api(`${SERVICE_URL}/a`);
    const second = await api(`${SERVICE_URL}/b`, { method: 'PUT', body: 'two' });
    const third = await api(`${SERVICE_URL}/c`);
    expect(second.encryption).toEqual({ suite: 'x25519', mode: 'session', epoch: 0, bodyEncrypted: true });
    expect(await third.json()).toMatchObject({ method: 'GET', echo: '' });
    expect(svc.handshakes).toBe(1);
    expect(svc.received.map((r) => [has(r.headers, KEY_SHARE_FIELD), has(r.headers, SESSION_FIELD)])).toEqual([
      [true, false],
      [false, true],
      [false, true],
    ]);
  });

  it('concurrent first requests share one handshake, with and without bodies', async () => {
    const svc = await service();
    const api = client(svc);
    const gets = await Promise.all(Array.from({ length: 5 }, (_, i) => api(`${SERVICE_URL}/g${i}`)));
    expect(gets.every((r) => r.status === 200)).toBe(true);
    expect(svc.handshakes).toBe(1);

    const other = await service();
    const posts = client(other);
    const results = await Promise.all(Array.from({ length: 5 }, (_, i) => posts(`${SERVICE_URL}/p${i}`, { method: 'POST', body: `b${i}` })));
    expect(await Promise.all(results.map(async (r) => (await r.json()).echo))).toEqual(['b0', 'b1', 'b2', 'b3', 'b4']);
    expect(other.handshakes).toBe(1);
    expect(other.received.filter((r) => r.path === SESSION_PATH)).toHaveLength(1);
  });

  it.each([
    ['0 B', 0],
    ['1 B', 1],
    ['1 MiB', 1024 * 1024],
  ])('round-trips %s bodies both ways', async (_name, size) => {
    const payload = new Uint8Array(size).map((_, i) => (i * 31) & 0xff);
    const svc = await service({ handler: ({ body }) => ({ headers: { 'content-type': 'application/octet-stream' }, body }) });
    const api = client(svc, { maxResponseBytes: 4 * 1024 * 1024 });
    await api(`${SERVICE_URL}/open`);
    const response = await api(`${SERVICE_URL}/echo`, { method: 'POST', body: payload });
    const got = new Uint8Array(await response.arrayBuffer());
    expect(got).toEqual(payload);
    expect(response.encryption).toEqual({ suite: 'x25519', mode: 'session', epoch: 0, bodyEncrypted: size > 0 });
    const sent = svc.received.at(-1)!;
    expect(sent.body.length).toBe(size === 0 ? 0 : size + 21 + 17 * Math.ceil((size + 1) / (16384 - 17)));
    expect(sent.headers['content-encoding']).toEqual(size === 0 ? undefined : ['aes128gcm']);
  });

  it('sets Content-Length of the plaintext when the response had one', async () => {
    const svc = await service();
    const base = svc.fetch;
    const api = client({
      fetch: async (input, init) => {
        const response = await base(input, init);
        const body = new Uint8Array(await response.arrayBuffer());
        const headers = new Headers(response.headers);
        headers.set('content-length', String(body.length));
        return new Response(body.length ? body : null, { status: response.status, headers });
      },
    });
    const response = await api(`${SERVICE_URL}/a`);
    const body = await response.text();
    expect(response.headers.get('content-length')).toBe(String(new TextEncoder().encode(body).length));
  });

  it('offers the suites configured, in order; the service picks by its own preference', async () => {
    const svc = await service({ suites: ['p256', 'x25519'] });
    const api = client(svc, { e2ee: { suites: ['p256'] } });
    expect((await api(`${SERVICE_URL}/a`)).encryption?.suite).toBe('p256');
    expect(svc.received[0]!.headers[KEY_SHARE_FIELD]![0]).toMatch(/^p256=:/);
    const both = await service({ suites: ['p256', 'x25519'] });
    expect((await client(both)(`${SERVICE_URL}/a`)).encryption?.suite).toBe('p256');
  });

  it('offers xwing when configured, and a service preferring it chooses it', async () => {
    const svc = await service({ suites: ['xwing', 'x25519'] });
    const api = client(svc, { e2ee: { suites: ['xwing', 'x25519'] } });
    const first = await api(`${SERVICE_URL}/a`, { method: 'POST', body: 'post-quantum' });
    expect(first.encryption).toMatchObject({ suite: 'xwing', mode: 'session', bodyEncrypted: true });
    expect(await first.text()).toBeDefined();
    expect(svc.received[0]!.headers[KEY_SHARE_FIELD]![0]).toMatch(/^xwing=:/);
  });

  it('keeps one session per session endpoint, bounded by maxSessions', async () => {
    const a = await service();
    const b = await service();
    const route: typeof fetch = (input, init) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      return (url.pathname.startsWith('/b/') ? b : a).fetch(input, init);
    };
    const sessionEndpoint = (url: URL) => `${url.origin}${url.pathname.startsWith('/b/') ? '/b' : ''}${SESSION_PATH}`;
    const api = client({ fetch: route }, { e2ee: { sessionEndpoint, maxSessions: 1 } });
    await api(`${SERVICE_URL}/x`);
    await api(`${SERVICE_URL}/b/x`);
    await api(`${SERVICE_URL}/y`);
    expect([a.handshakes, b.handshakes]).toEqual([2, 1]);
    const roomy = client({ fetch: route }, { e2ee: { sessionEndpoint, maxSessions: 2 } });
    await roomy(`${SERVICE_URL}/x`, { method: 'POST', body: '1' });
    await roomy(`${SERVICE_URL}/b/x`, { method: 'POST', body: '2' });
    await roomy(`${SERVICE_URL}/y`, { method: 'POST', body: '3' });
    expect([a.handshakes, b.handshakes]).toEqual([3, 2]);
    expect(b.received.filter((r) => r.path === `/b${SESSION_PATH}`)).toHaveLength(1);
  });

  it('returns a bodyless response without coding, and an ordinary signed refusal as it did in clear', async () => {
    const svc = await service({ handler: ({ path }) => (path === '/empty' ? { status: 204 } : { status: 409, headers: { 'content-type': 'application/json' }, body: '{"conflict":true}' }) });
    const api = client(svc);
    const empty = await api(`${SERVICE_URL}/empty`);
    expect(empty.status).toBe(204);
    expect(empty.body).toBeNull();
    expect(empty.encryption).toEqual({ suite: 'x25519', mode: 'handshake', epoch: 0, bodyEncrypted: false });
    const conflict = await api(`${SERVICE_URL}/x`);
    expect([conflict.status, await conflict.json()]).toEqual([409, { conflict: true }]);
    expect(conflict.encryption?.bodyEncrypted).toBe(true);
  });

  it('a signed refusal of the middleware is not encrypted: it resolves as before, in clear', async () => {
    const svc = await service({ routePolicy: { contexts: ['payments'] } });
    const api = client(svc);
    const response = await api(`${SERVICE_URL}/pay`);
    expect(response.status).toBe(403);
    expect(response.encryption).toBeNull();
    expect((await response.json()).code).toBe('context_required');
    // Refused at the session endpoint, a request with a body has no session to go with: its code
    // is the rejection, and the body was never sent.
    expect(await settledCode(api(`${SERVICE_URL}/pay`, { method: 'POST', body: 'secret' }))).toBe('context_required');
    expect(svc.received.map((r) => r.path)).toEqual(['/pay', SESSION_PATH]);
  });
});

describe('rekeys', () => {
  it('rekeys on the first request after the hint, then continues in the new epoch', async () => {
    const svc = await service({ epochSeconds: 600, rekeySeconds: 480 });
    const api = client(svc);
    await api(`${SERVICE_URL}/a`);
    clock += 479;
    expect((await api(`${SERVICE_URL}/b`)).encryption).toMatchObject({ mode: 'session', epoch: 0 });
    clock += 1;
    const rekeyed = await api(`${SERVICE_URL}/c`, { method: 'POST', body: 'in the old root' });
    expect(rekeyed.encryption).toEqual({ suite: 'x25519', mode: 'rekey', epoch: 1, bodyEncrypted: true });
    expect((await rekeyed.json()).echo).toBe('in the old root');
    const sent = svc.received.at(-1)!;
    expect([has(sent.headers, KEY_SHARE_FIELD), has(sent.headers, SESSION_FIELD)]).toEqual([true, true]);
    const after = await api(`${SERVICE_URL}/d`);
    expect(after.encryption).toMatchObject({ mode: 'session', epoch: 1 });
    expect([svc.handshakes, svc.rekeys]).toEqual([1, 1]);
  });

  it('ratchet: every request rekeys', async () => {
    const svc = await service();
    const api = client(svc, { e2ee: { ratchet: true } });
    const epochs = [];
    for (let i = 0; i < 4; i++) epochs.push((await api(`${SERVICE_URL}/r${i}`, i % 2 ? { method: 'POST', body: `b${i}` } : {})).encryption);
    expect(epochs.map((e) => [e?.mode, e?.epoch])).toEqual([
      ['handshake', 0],
      ['rekey', 1],
      ['rekey', 2],
      ['rekey', 3],
    ]);
    expect([svc.handshakes, svc.rekeys]).toEqual([1, 3]);
  });

  it('parallel rekeys fork the chain: all succeed, the state with the latest exp is kept', async () => {
    const svc = await service();
    const api = client(svc, { e2ee: { ratchet: true } });
    await api(`${SERVICE_URL}/open`);
    const forks = await Promise.all(
      Array.from({ length: 6 }, (_, i) => {
        clock += 1;
        return api(`${SERVICE_URL}/f${i}`, { method: 'POST', body: `fork ${i}` });
      }),
    );
    expect(forks.map((r) => r.encryption?.epoch)).toEqual([1, 1, 1, 1, 1, 1]);
    expect(await Promise.all(forks.map(async (r) => (await r.json()).echo))).toEqual(Array.from({ length: 6 }, (_, i) => `fork ${i}`));
    const next = await api(`${SERVICE_URL}/next`, { method: 'POST', body: 'after the fork' });
    expect(next.encryption).toMatchObject({ mode: 'rekey', epoch: 2 });
    expect(svc.handshakes).toBe(1);
  });
});

describe('session refusals', () => {
  it.each(['session_expired', 'session_invalid'] as const)('%s: one new handshake and the request again, once', async (code) => {
    // The service's clock runs 30 s ahead with 5 s of tolerance: a token the client still holds for
    // valid has expired there.
    const svc = await service({ now: () => clock + 30, clockTolerance: 5, epochSeconds: 600 });
    const api = client(svc);
    await api(`${SERVICE_URL}/a`);
    if (code === 'session_expired') clock += 610;
    else svc.forgetSessionKeys();
    const response = await api(`${SERVICE_URL}/b`, { method: 'POST', body: 'once' });
    expect(response.encryption).toMatchObject({ mode: 'session', epoch: 0 });
    expect((await response.json()).echo).toBe('once');
    expect(svc.handshakes).toBe(2);
    expect(svc.received.map((r) => r.path)).toEqual(['/a', '/b', SESSION_PATH, '/b']);
    // The route saw the body once, encrypted, and never in clear.
    expect(svc.received.filter((r) => r.path === '/b').every((r) => r.headers['content-encoding']?.[0] === 'aes128gcm')).toBe(true);
  });

  it('a bodiless request refused for its session is sent again as a handshake', async () => {
    const svc = await service();
    const api = client(svc);
    await api(`${SERVICE_URL}/a`);
    svc.forgetSessionKeys();
    expect((await api(`${SERVICE_URL}/b`)).encryption?.mode).toBe('handshake');
    expect(svc.received.map((r) => [r.path, has(r.headers, KEY_SHARE_FIELD), has(r.headers, SESSION_FIELD)])).toEqual([
      ['/a', true, false],
      ['/b', false, true],
      ['/b', true, false],
    ]);
  });

  it('retries only once', async () => {
    const svc = await service();
    // Every session token is unknown by the time it arrives: the retry is refused as well.
    const forgetting: typeof fetch = (input, init) => {
      if (new Headers(init?.headers).has('oidc2-session')) svc.forgetSessionKeys();
      return svc.fetch(input, init);
    };
    expect(await settledCode(client({ fetch: forgetting })(`${SERVICE_URL}/x`, { method: 'POST', body: 'x' }))).toBe('session_invalid');
    expect(svc.received.map((r) => r.path)).toEqual([SESSION_PATH, '/x', SESSION_PATH, '/x']);
  });

  it('session_binding_mismatch drops the session and is surfaced', async () => {
    const svc = await service();
    let subject = 'alice';
    const api = client(svc, { getIct: (jwk) => users.mint(jwk, { subject, now: clock, lifetime: 300 }), refreshMargin: 60 });
    await api(`${SERVICE_URL}/a`);
    subject = 'mallory';
    clock += 250; // the ICT is renewed, for another subject
    expect(await settledCode(api(`${SERVICE_URL}/b`))).toBe('session_binding_mismatch');
    expect((await api(`${SERVICE_URL}/c`)).encryption?.mode).toBe('handshake');
  });
});

describe('policy and downgrade', () => {
  it("'required' never sends a body in clear: a route without e2ee is an error", async () => {
    const svc = await service({ policy: (path) => (path === '/plain' ? 'off' : 'optional') });
    const api = client(svc);
    expect(await settledCode(api(`${SERVICE_URL}/plain`))).toBe('e2ee_unavailable');
    await api(`${SERVICE_URL}/open`);
    expect(await settledCode(api(`${SERVICE_URL}/plain`, { method: 'POST', body: 'secret' }))).toBe('e2ee_unavailable');
    expect(svc.received.map((r) => [r.method, r.path])).toEqual([
      ['GET', '/plain'],
      ['GET', '/open'],
      ['POST', '/plain'],
    ]);
    expect(svc.received[2]!.headers['content-encoding']).toEqual(['aes128gcm']);
    expect(svc.received.some((r) => text(r.body).includes('secret'))).toBe(false);
  });

  it("'required' against a service without e2ee: its signed refusal at the session endpoint, nothing in clear", async () => {
    const svc = await service({ enabled: false });
    expect(await settledCode(client(svc)(`${SERVICE_URL}/x`, { method: 'POST', body: 'secret' }))).toBe('e2ee_unavailable');
    expect(svc.received.map((r) => [r.path, r.body.length])).toEqual([[SESSION_PATH, 0]]);
  });

  it("'preferred' falls back to clear after a signed e2ee_unavailable, for that route only", async () => {
    const svc = await service({ policy: (path) => (path === '/plain' ? 'off' : 'optional') });
    const api = client(svc, { encryption: 'preferred' });
    const plain = await api(`${SERVICE_URL}/plain`);
    expect(plain.encryption).toBeNull();
    expect(svc.received.map((r) => has(r.headers, KEY_SHARE_FIELD))).toEqual([true, false]);
    const again = await api(`${SERVICE_URL}/plain`);
    expect(again.encryption).toBeNull();
    expect(svc.received).toHaveLength(3);
    expect((await api(`${SERVICE_URL}/other`)).encryption?.mode).toBe('handshake');
  });

  it("'preferred' falls back for the whole service after a signed refusal at the session endpoint", async () => {
    const svc = await service({ enabled: false });
    const api = client(svc, { encryption: 'preferred' });
    const response = await api(`${SERVICE_URL}/x`, { method: 'POST', body: 'fine in clear' });
    expect(response.encryption).toBeNull();
    expect((await response.json()).echo).toBe('fine in clear');
    expect((await api(`${SERVICE_URL}/y`, { method: 'POST', body: 'also' })).encryption).toBeNull();
    expect((await api(`${SERVICE_URL}/z`)).encryption).toBeNull();
    expect(svc.received.map((r) => [r.path, has(r.headers, KEY_SHARE_FIELD)])).toEqual([
      [SESSION_PATH, true],
      ['/x', false],
      ['/y', false],
      ['/z', false],
    ]);
  });

  it("'preferred' with no shared suite: a signed e2ee_kem_unsupported falls back, 'required' rejects", async () => {
    const svc = await service({ suites: ['x25519'] });
    expect((await client(svc, { encryption: 'preferred', e2ee: { suites: ['p256'] } })(`${SERVICE_URL}/a`)).encryption).toBeNull();
    expect(await settledCode(client(svc, { e2ee: { suites: ['p256'] } })(`${SERVICE_URL}/a`))).toBe('e2ee_kem_unsupported');
  });

  it("'preferred' does not fall back after an unsigned e2ee_unavailable", async () => {
    let calls = 0;
    const forged: typeof fetch = async () => {
      calls++;
      return new Response(JSON.stringify({ code: 'e2ee_unavailable', status: 400 }), { status: 400, headers: { 'content-type': 'application/problem+json' } });
    };
    expect(await settledCode(client({ fetch: forged }, { encryption: 'preferred' })(`${SERVICE_URL}/a`, { method: 'POST', body: 'secret' }))).toBe('e2ee_response_unsigned');
    expect(await settledCode(client({ fetch: forged }, { encryption: 'preferred' })(`${SERVICE_URL}/a`))).toBe('e2ee_response_unsigned');
    // One call each: the endpoint handshake, and the handshake on the request itself; nothing after.
    expect(calls).toBe(2);
  });
});

describe('the caller fails closed (docs/protocol.md section 7.9)', () => {
  async function opened(extra: Partial<ClientOptions> = {}) {
    const svc = await service();
    let tamper: ((response: Response, request: Request) => Promise<Response> | Response) | undefined;
    const api = client(
      {
        fetch: async (input, init) => {
          const request = new Request(input, init);
          const response = await svc.fetch(request.clone());
          return tamper ? tamper(response, request) : response;
        },
      },
      extra,
    );
    return {
      svc,
      api,
      set tamper(t: typeof tamper) {
        tamper = t;
      },
    };
  }

  async function rebuilt(response: Response, edit: (headers: Headers, body: Uint8Array) => Uint8Array | void): Promise<Response> {
    const headers = new Headers(response.headers);
    const original = new Uint8Array(await response.arrayBuffer());
    const body = edit(headers, original) ?? original;
    return new Response(body.length ? (body as BodyInit) : null, { status: response.status, headers });
  }

  it('enc substitution in the response: the signature fails before anything is decrypted', async () => {
    const t = await opened();
    const pair = await hpkeSuite('x25519').generateKeyPair();
    const other = await hpkeSuite('x25519').serializePublicKey(pair.publicKey);
    t.tamper = (response) => rebuilt(response, (h) => h.set('oidc2-key-share', serializeResponseKeyShare({ suite: 'x25519', key: other })));
    const decrypt = jest.spyOn(await import('../../core/src/e2ee/aes128gcm'), 'decryptBody');
    try {
      expect(await settledCode(t.api(`${SERVICE_URL}/a`))).toBe('response_signature_invalid');
      expect(decrypt).not.toHaveBeenCalled();
      t.tamper = undefined;
      expect((await t.api(`${SERVICE_URL}/a`)).encryption?.mode).toBe('handshake');
      expect(decrypt).toHaveBeenCalledTimes(1);
    } finally {
      decrypt.mockRestore();
    }
  });

  it('stripped response Content-Encoding: signature failure', async () => {
    const t = await opened();
    t.tamper = (response) => rebuilt(response, (h) => h.delete('content-encoding'));
    expect(await settledCode(t.api(`${SERVICE_URL}/a`))).toBe('response_signature_invalid');
  });

  it('an unsigned 200 in clear: e2ee_response_unsigned', async () => {
    const t = await opened();
    t.tamper = () => new Response('{"balance":100}', { status: 200, headers: { 'content-type': 'application/json' } });
    expect(await settledCode(t.api(`${SERVICE_URL}/a`))).toBe('e2ee_response_unsigned');
    expect(await settledCode(t.api(`${SERVICE_URL}/a`, { method: 'POST', body: 'x' }))).toBe('e2ee_response_unsigned');
  });

  it('an unsigned 401 e2ee_unavailable: an error, and no request in clear follows', async () => {
    const t = await opened({ encryption: 'preferred' });
    await t.api(`${SERVICE_URL}/open`);
    t.tamper = () => new Response('{"code":"e2ee_unavailable"}', { status: 401, headers: { 'content-type': 'application/problem+json' } });
    const before = t.svc.received.length;
    expect(await settledCode(t.api(`${SERVICE_URL}/a`, { method: 'POST', body: 'secret' }))).toBe('e2ee_response_unsigned');
    expect(t.svc.received.length).toBe(before + 1);
    expect(t.svc.received.at(-1)!.headers['content-encoding']).toEqual(['aes128gcm']);
  });

  it('a response signed by another trusted service than the session was opened with: response_untrusted', async () => {
    const t = await opened({ expectedService: undefined });
    await t.api(`${SERVICE_URL}/a`);
    const otherKey = await newKey('ES256');
    t.svc.useCredential(await services.mint(otherKey, { subject: 'spiffe://test.example/orders', now: clock, lifetime: 600 }), otherKey);
    expect(await settledCode(t.api(`${SERVICE_URL}/b`))).toBe('response_untrusted');
    // The pin went with the session: the next request opens a new one with whoever answers now.
    expect((await t.api(`${SERVICE_URL}/c`)).encryption?.mode).toBe('handshake');
  });

  it('a signed response naming a suite that was not offered: e2ee_response_suite_mismatch', async () => {
    const t = await opened({ e2ee: { suites: ['x25519'] } });
    const pair = await hpkeSuite('p256').generateKeyPair();
    const pk = await hpkeSuite('p256').serializePublicKey(pair.publicKey);
    t.svc.misbehave = async (response) => {
      const served = await acceptHandshake({ suite: 'p256', key: pk }, {
        keyShare: 'x',
        nonce: 'n',
        audience: 'a',
        caller: { iss: '', sub: 'x', jkt: new Uint8Array(32) },
        service: { iss: '', sub: 'y', jkt: new Uint8Array(32) },
      });
      response.headers[KEY_SHARE_FIELD] = [serializeResponseKeyShare({ suite: 'p256', key: served.enc })];
    };
    expect(await settledCode(t.api(`${SERVICE_URL}/a`))).toBe('e2ee_response_suite_mismatch');
  });

  it('a signed handshake response without Oidc2-Key-Share, or a session response with one', async () => {
    const t = await opened();
    t.svc.misbehave = (response) => void delete response.headers[KEY_SHARE_FIELD];
    expect(await settledCode(t.api(`${SERVICE_URL}/a`))).toBe('e2ee_response_key_share_missing');
    t.svc.misbehave = undefined;
    await t.api(`${SERVICE_URL}/a`);
    t.svc.misbehave = (response) => {
      response.headers[KEY_SHARE_FIELD] = ['x25519=:' + Buffer.alloc(32, 9).toString('base64') + ':'];
    };
    expect(await settledCode(t.api(`${SERVICE_URL}/b`))).toBe('e2ee_response_key_share_missing');
  });

  it('a signed handshake response with a malformed key share or session field', async () => {
    const t = await opened();
    t.svc.misbehave = (response) => {
      response.headers[KEY_SHARE_FIELD] = ['x25519=:AAAA:'];
    };
    expect(await settledCode(t.api(`${SERVICE_URL}/a`))).toBe('e2ee_response_key_share_missing');
    t.svc.misbehave = (response) => void delete response.headers[SESSION_FIELD];
    expect(await settledCode(t.api(`${SERVICE_URL}/a`))).toBe('session_invalid');
  });

  it('a signed body in clear inside a session: e2ee_response_not_encrypted', async () => {
    const t = await opened();
    await t.api(`${SERVICE_URL}/open`);
    t.svc.misbehave = (response) => {
      delete response.headers['content-encoding'];
      response.body = new TextEncoder().encode('{"in":"clear"}');
    };
    expect(await settledCode(t.api(`${SERVICE_URL}/a`, { method: 'POST', body: 'x' }))).toBe('e2ee_response_not_encrypted');
    t.svc.misbehave = (response) => {
      response.headers['content-encoding'] = ['gzip'];
    };
    expect(await settledCode(t.api(`${SERVICE_URL}/a`))).toBe('e2ee_response_not_encrypted');
  });

  it.each([
    ['the final record dropped', (b: Uint8Array) => b.subarray(0, 21 + 16384)],
    ['cut inside a record', (b: Uint8Array) => b.subarray(0, b.length - 100)],
    ['two records swapped', (b: Uint8Array) => {
      const out = b.slice();
      out.set(b.subarray(21 + 16384, 21 + 2 * 16384), 21);
      out.set(b.subarray(21, 21 + 16384), 21 + 16384);
      return out;
    }],
    ['a record repeated', (b: Uint8Array) => {
      const out = b.slice();
      out.set(b.subarray(21, 21 + 16384), 21 + 16384);
      return out;
    }],
    ['a record after the final one', (b: Uint8Array) => Buffer.concat([b, b.subarray(21, 21 + 100)])],
    ['an empty encoded body', () => new Uint8Array(0)],
  ])('a signed body with %s: e2ee_response_decrypt_failed, no body exposed', async (_name, cut) => {
    const t = await opened();
    await t.api(`${SERVICE_URL}/open`);
    t.svc.misbehave = (response) => {
      response.body = new Uint8Array(cut(response.body!));
    };
    const large = 'x'.repeat(3 * 16384);
    expect(await settledCode(t.api(`${SERVICE_URL}/a`, { method: 'POST', body: large }))).toBe('e2ee_response_decrypt_failed');
  });

  it('unknown key share: a response to another caller’s request carrying the victim’s share is refused', async () => {
    // Mallory takes the victim's key share, sends it signed with her own ICT, and forwards the
    // service's response to the victim. With a fresh nonce of her own the binding fails; with the
    // victim's nonce (a signer chooses it) the signature verifies, but the keys differ: the
    // transcript holds Mallory's identity, the victim's holds its own.
    const svc = await service();
    const { signRequest, importKey } = await import('@oidc2/core');
    const mallory = await newKey('ES256');
    const malloryIct = await users.mint(mallory, { subject: 'mallory', now: clock, lifetime: 600 });
    const statuses: number[] = [];
    for (const reuseNonce of [false, true]) {
      const attacker: typeof fetch = async (input, init) => {
        const request = new Request(input, init);
        const headers: Record<string, string> = {};
        const share = request.headers.get('oidc2-key-share')!;
        headers['oidc2-key-share'] = share;
        const victimNonce = /;nonce="([^"]+)"/.exec(request.headers.get('signature-input')!)![1]!;
        const signed = await signRequest(
          { method: request.method, url: request.url, headers },
          { ict: malloryIct, key: await importKey(mallory.privateJwk, 'ES256', 'sign'), now, ...(reuseNonce ? { nonce: victimNonce } : {}) },
        );
        const h = new Headers();
        for (const [name, lines] of Object.entries(signed.headers)) for (const line of lines) h.append(name, line);
        const response = await svc.fetch(signed.url, { method: signed.method, headers: h });
        statuses.push(response.status);
        return response;
      };
      const code = await settledCode(client({ fetch: attacker })(`${SERVICE_URL}/secret`));
      expect(code).toBe(reuseNonce ? 'e2ee_response_decrypt_failed' : 'response_signature_invalid');
    }
    // The service accepted Mallory's requests (with the victim's share) both times.
    expect(statuses).toEqual([200, 200]);
    expect(svc.handshakes).toBe(2);
  });

  it('a genuine response replayed for another request of the session: refused', async () => {
    const t = await opened();
    await t.api(`${SERVICE_URL}/open`);
    let recorded: Response | undefined;
    t.tamper = async (response) => {
      if (!recorded) {
        recorded = response.clone();
        return response;
      }
      return recorded.clone();
    };
    expect((await t.api(`${SERVICE_URL}/a`)).status).toBe(200);
    expect(await settledCode(t.api(`${SERVICE_URL}/a`))).toBe('response_signature_invalid');
  });
});
