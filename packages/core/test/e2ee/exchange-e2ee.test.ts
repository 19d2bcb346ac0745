// End-to-end encryption inside the exchange, on synthetic messages: the order of checks of docs/protocol.md
// section 7.9 (nothing recorded before the last step), the encryption policy, what the route sees, what the
// response carries, and the options. The same caller code runs over real sockets in test/e2ee.
import {
  createDpopProof,
  createIctVerifier,
  createOidc2Service,
  MemoryReplayStore,
  type ExchangeResponse,
  type HttpRequest,
  type Oidc2Options,
  type ReplayStore,
  type RoutePolicy,
} from '../../src/index';
import { utf8 } from '../../src/lib/base64';
import { newIssuer, newKey, type TestIssuer, type TestKey } from '../../../../test/support/credentials';
import { openE2ee, prepareE2ee, type E2eeCaller, type E2eeSession, type Prepared } from '../../../../test/support/e2ee-caller';

const T = 1_790_000_000;
let clock = T;
const now = () => clock;
const BASE = 'https://api.example.com';

let op: TestIssuer;
let alice: E2eeCaller;
let bob: E2eeCaller;
let svcKey: TestKey;
let svcIct: string;

beforeAll(async () => {
  op = await newIssuer('https://op.example.com');
  const a = await newKey('ES256');
  alice = { key: a, ict: await op.mint(a, { now: T - 10, subject: 'alice', lifetime: 3600 }) };
  const b = await newKey('Ed25519');
  bob = { key: b, ict: await op.mint(b, { now: T - 10, subject: 'bob', lifetime: 3600 }) };
  svcKey = await newKey('Ed25519');
  svcIct = await op.mint(svcKey, { now: T - 10, subject: 'orders-service', lifetime: 3600 });
});
beforeEach(() => {
  clock = T;
});

/** A real memory replay store that counts what is recorded. */
function countingStore(): ReplayStore & { recorded: number } {
  const inner = new MemoryReplayStore();
  const store = {
    recorded: 0,
    async checkAndRecord(key: string, expiresAt: number, at: number) {
      store.recorded++;
      return inner.checkAndRecord(key, expiresAt, at);
    },
  };
  return store;
}

function service(extra: Partial<Oidc2Options> = {}) {
  const replayStore = countingStore();
  const svc = createOidc2Service({
    issuers: [{ issuer: op.issuer, jwks: op.jwks }],
    audiences: [BASE],
    now,
    replayStore,
    credential: { ict: svcIct, privateKey: svcKey.privateJwk },
    ...extra,
  });
  return Object.assign(svc, { replayStore });
}

const verifier = () => createIctVerifier({ issuers: [{ issuer: op.issuer, jwks: op.jwks }], now });

function head(prepared: Prepared): HttpRequest {
  const r = prepared.request;
  const headers = { ...r.headers };
  if (r.body) headers['content-length'] = [String(r.body.length)];
  return { method: r.method, url: new URL(r.url).pathname, headers };
}

interface Run {
  admitted: { identity: unknown; body: Uint8Array | undefined; headerChanges: Record<string, string | undefined> } | undefined;
  response: ExchangeResponse & { body?: Uint8Array };
  code: string | undefined;
}

/** Runs one exchange: admit, then the route's `answer` (given what the route saw), then respond. */
async function run(svc: ReturnType<typeof service>, prepared: Prepared, answer: ExchangeResponse = { status: 200, headers: { 'content-type': ['text/plain'] }, body: utf8('hello') }, policy?: RoutePolicy, wire?: Partial<HttpRequest>): Promise<Run> {
  const request = { ...head(prepared), ...wire };
  const exchange = svc.exchange(request, policy);
  const body = wire && 'body' in wire ? wire.body : prepared.request.body;
  const admission = await exchange.admit(body);
  if (admission.answered) {
    const text = admission.response.body instanceof Uint8Array ? new TextDecoder().decode(admission.response.body) : '';
    const code = text.startsWith('{') ? (JSON.parse(text) as { code?: string }).code : undefined;
    return { admitted: undefined, response: admission.response as Run['response'], code };
  }
  const seen = admission.body instanceof Uint8Array ? admission.body : undefined;
  const response = (await exchange.respond(answer)) as Run['response'];
  return { admitted: { identity: admission.identity, body: seen, headerChanges: { ...admission.headerChanges } }, response, code: undefined };
}

async function open(prepared: Prepared, response: Run['response'], who: E2eeCaller = alice) {
  return openE2ee(prepared, { status: response.status, headers: response.headers, body: response.body }, verifier(), who, now);
}

async function handshake(svc: ReturnType<typeof service>, who: E2eeCaller = alice): Promise<E2eeSession> {
  const prepared = await prepareE2ee(who, { method: 'GET', url: `${BASE}/orders`, now });
  const { response } = await run(svc, prepared);
  return (await open(prepared, response, who)).session!;
}

describe('options', () => {
  it('rejects unknown e2ee keys, bad suites and e2ee without a credential at construction', () => {
    const base = { issuers: [{ issuer: op.issuer, jwks: op.jwks }], audiences: [BASE] };
    const credential = { ict: 'x.y.z', privateKey: { kty: 'OKP' } };
    expect(() => createOidc2Service({ ...base, credential, e2ee: { suite: ['x25519'] } as never })).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_OPTION' }));
    expect(() => createOidc2Service({ ...base, credential, e2ee: { suites: ['x448' as never] } })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => createOidc2Service({ ...base, credential, e2ee: { suites: [] } })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => createOidc2Service({ ...base, credential, e2ee: { suites: ['p256', 'p256'] } })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => createOidc2Service({ ...base, credential, e2ee: { epochSeconds: -1 } })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => createOidc2Service({ ...base, e2ee: {} })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => createOidc2Service({ ...base, credential, policy: { encryption: 'always' as never } })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
  });
});

describe('handshake', () => {
  it('answers a key share with the chosen suite, a session and an encrypted, signed body; the route sees the request as sent', async () => {
    const svc = service();
    const prepared = await prepareE2ee(alice, { method: 'GET', url: `${BASE}/orders`, offer: ['p256', 'x25519'], now });
    const { admitted, response } = await run(svc, prepared, { status: 200, headers: { 'content-type': ['application/json'] }, body: utf8('{"orders":[]}') });
    expect(admitted?.body).toBeUndefined();
    expect(response.headers['content-encoding']).toEqual(['aes128gcm']);
    expect(response.headers['cache-control']).toEqual(['no-store, no-transform']);
    expect(response.headers['oidc2-key-share']![0]).toMatch(/^x25519=:/); // the service's preference wins
    expect(response.headers['oidc2-session']![0]).toMatch(new RegExp(`;exp=${T + 600};rekey=${T + 480}$`));
    const input = response.headers['signature-input']![0]!;
    for (const c of ['"content-encoding"', '"oidc2-key-share"', '"oidc2-session"', '"oidc2-key-share";req', '"content-digest"']) expect(input).toContain(c);
    expect(new TextDecoder().decode(response.body)).not.toContain('orders');
    const opened = await open(prepared, response);
    expect(opened.mode).toBe('handshake');
    expect(new TextDecoder().decode(opened.plaintext)).toBe('{"orders":[]}');
    expect(opened.session?.suite).toBe('x25519');
    expect(svc.replayStore.recorded).toBe(1);
  });

  it('takes a plaintext handshake body on an optional route and refuses it on a required one', async () => {
    const svc = service();
    const prepared = await prepareE2ee(alice, { method: 'POST', url: `${BASE}/orders`, body: '{"a":1}', headers: { 'content-type': 'application/json' }, now });
    const optional = await run(svc, prepared);
    expect(new TextDecoder().decode(optional.admitted!.body)).toBe('{"a":1}');
    const again = await prepareE2ee(alice, { method: 'POST', url: `${BASE}/orders`, body: '{"a":1}', headers: { 'content-type': 'application/json' }, now });
    const required = await run(svc, again, undefined, { encryption: 'required' });
    expect(required.response.status).toBe(415);
    expect(required.code).toBe('e2ee_body_not_encrypted');
    expect(required.response.headers['accept-encoding']).toEqual(['aes128gcm']);
  });

  it('keeps bodyless responses uncoded but still sends the e2ee fields', async () => {
    const svc = service();
    for (const [method, status] of [['HEAD', 200], ['GET', 204], ['GET', 304]] as const) {
      const prepared = await prepareE2ee(alice, { method, url: `${BASE}/orders`, now });
      const { response } = await run(svc, prepared, { status, headers: {}, body: undefined });
      expect(response.status).toBe(status);
      expect(response.headers['content-encoding']).toBeUndefined();
      expect(response.headers['oidc2-session']).toHaveLength(1);
      expect((await open(prepared, response)).session).toBeDefined();
    }
  });

  it('answers the session endpoint itself with a signed 204', async () => {
    const svc = service();
    const prepared = await prepareE2ee(alice, { method: 'POST', url: `${BASE}/.well-known/oidc2-session`, now });
    const exchange = svc.exchange(head(prepared));
    const admission = await exchange.admit(undefined);
    expect(admission.answered).toBe(true);
    if (!admission.answered) return;
    expect(admission.error).toBeUndefined();
    expect(admission.response.status).toBe(204);
    const opened = await open(prepared, admission.response as Run['response']);
    expect(opened.mode).toBe('handshake');
  });

  it('refuses at the session endpoint: a body, no field, a session without a key share', async () => {
    const svc = service();
    const url = `${BASE}/.well-known/oidc2-session`;
    const withBody = await prepareE2ee(alice, { method: 'POST', url, body: 'x', now });
    expect((await run(svc, withBody)).code).toBe('request_malformed');
    const none = await prepareE2ee(alice, { method: 'POST', url, offer: [], now });
    const refused = await run(svc, none);
    expect(refused.code).toBe('e2ee_required');
    const session = await handshake(svc);
    const sessionOnly = await prepareE2ee(alice, { method: 'POST', url, session, now });
    expect((await run(svc, sessionOnly)).code).toBe('e2ee_key_missing');
    expect(svc.replayStore.recorded).toBe(1); // only the handshake
  });
});

describe('session requests', () => {
  it('decrypts the body for the route (length, no coding, no digest, no range) and encrypts the answer under K_rsp', async () => {
    const svc = service();
    const session = await handshake(svc);
    const prepared = await prepareE2ee(alice, { method: 'POST', url: `${BASE}/orders`, session, body: '{"item":"book"}', headers: { 'content-type': 'application/json', range: 'bytes=0-3' }, now });
    const { admitted, response } = await run(svc, prepared, { status: 201, headers: { 'content-type': ['application/json'] }, body: utf8('{"id":7}') });
    expect(new TextDecoder().decode(admitted!.body)).toBe('{"item":"book"}');
    expect(admitted!.headerChanges).toEqual({
      'content-length': '15',
      'content-encoding': undefined,
      'content-digest': undefined,
      'transfer-encoding': undefined,
      range: undefined,
    });
    expect(response.headers['oidc2-session']).toBeUndefined();
    expect(response.headers['signature-input']![0]).toContain('"oidc2-session";req');
    const opened = await open(prepared, response);
    expect(opened.mode).toBe('session');
    expect(new TextDecoder().decode(opened.plaintext)).toBe('{"id":7}');
  });

  it('rekeys with a fresh key share: a new epoch under a new root, same session id', async () => {
    const svc = service();
    const session = await handshake(svc);
    clock = T + 500;
    const prepared = await prepareE2ee(alice, { method: 'POST', url: `${BASE}/orders`, session, offer: ['p256'], body: 'x', now });
    const { response } = await run(svc, prepared);
    const opened = await open(prepared, response);
    expect(opened.mode).toBe('rekey');
    expect(opened.session!.suite).toBe('p256');
    expect(Buffer.from(opened.session!.sid)).toEqual(Buffer.from(session.sid));
    expect(Buffer.from(opened.session!.rk)).not.toEqual(Buffer.from(session.rk));
    expect(opened.session!.exp).toBe(T + 500 + 600);
    // The old token stays valid until its exp (a fork); the new one works too.
    for (const s of [session, opened.session!]) {
      const next = await prepareE2ee(alice, { method: 'GET', url: `${BASE}/orders`, session: s, now });
      expect((await open(next, (await run(svc, next)).response)).mode).toBe('session');
    }
  });

  it('refuses in the profile order and records nothing', async () => {
    const svc = service();
    const session = await handshake(svc);
    const before = svc.replayStore.recorded;
    const cases: Array<[string, Promise<Run>]> = [];
    const plain = await prepareE2ee(alice, { method: 'POST', url: `${BASE}/orders`, session, body: 'clear', plaintextBody: true, now });
    cases.push(['e2ee_body_not_encrypted', run(svc, plain)]);
    const stolen = await prepareE2ee(bob, { method: 'GET', url: `${BASE}/orders`, session, now });
    cases.push(['session_binding_mismatch', run(svc, stolen)]);
    const off = await prepareE2ee(alice, { method: 'GET', url: `${BASE}/orders`, session, now });
    cases.push(['e2ee_unavailable', run(svc, off, undefined, { encryption: 'off' })]);
    const required = await prepareE2ee(alice, { method: 'GET', url: `${BASE}/orders`, offer: [], now });
    cases.push(['e2ee_required', run(svc, required, undefined, { encryption: 'required' })]);
    const onlyX = await prepareE2ee(alice, { method: 'GET', url: `${BASE}/orders`, offer: ['x25519'], now });
    cases.push(['e2ee_kem_unsupported', run(service({ e2ee: { suites: ['p256'] } }), onlyX)]);
    for (const [code, pending] of cases) {
      const result = await pending;
      expect([code, result.code]).toEqual([code, code]);
      expect(result.admitted).toBeUndefined();
    }
    expect(svc.replayStore.recorded).toBe(before);
    const required401 = await run(svc, await prepareE2ee(alice, { method: 'GET', url: `${BASE}/orders`, offer: [], now }), undefined, { encryption: 'required' });
    expect(required401.response.status).toBe(401);
    expect(required401.response.headers['www-authenticate']).toEqual(['Oidc2 error="e2ee_required", kems="x25519 p256"']);
  });

  it('names the service suites in the problem of e2ee_kem_unsupported', async () => {
    const prepared = await prepareE2ee(alice, { method: 'GET', url: `${BASE}/orders`, offer: ['x25519'], now });
    const { response } = await run(service({ e2ee: { suites: ['p256'] } }), prepared);
    expect(JSON.parse(new TextDecoder().decode(response.body))).toMatchObject({ code: 'e2ee_kem_unsupported', kems: ['p256'] });
  });

  it('verifies the signature before it looks at the session token, and parses the fields before both', async () => {
    const svc = service();
    const session = await handshake(svc);
    const prepared = await prepareE2ee(alice, { method: 'GET', url: `${BASE}/orders`, session, now });
    const tampered = { ...head(prepared), method: 'DELETE' };
    expect((await run(svc, prepared, undefined, undefined, tampered)).code).toBe('signature_invalid');
    const badField = { ...head(prepared), headers: { ...head(prepared).headers, 'oidc2-key-share': ['x25519=:AAAA:'] } };
    expect((await run(svc, prepared, undefined, undefined, badField)).code).toBe('e2ee_key_share_invalid');
  });

  it('expires sessions: past exp, and a rekey past maxAgeSeconds', async () => {
    const svc = service({ e2ee: { epochSeconds: 600, rekeySeconds: 480, maxAgeSeconds: 900 } });
    const session = await handshake(svc);
    clock = T + 600 + 61;
    const late = await prepareE2ee(alice, { method: 'GET', url: `${BASE}/orders`, session, now });
    expect((await run(svc, late)).code).toBe('session_expired');
    clock = T + 500;
    const rekey = await prepareE2ee(alice, { method: 'GET', url: `${BASE}/orders`, session, offer: ['x25519'], now });
    const second = (await open(rekey, (await run(svc, rekey)).response)).session!;
    expect(second.exp).toBe(T + 900); // capped by sat + maxAgeSeconds
    clock = T + 900;
    const tooOld = await prepareE2ee(alice, { method: 'GET', url: `${BASE}/orders`, session: second, offer: ['x25519'], now });
    expect((await run(svc, tooOld)).code).toBe('session_expired');
  });

  it('answers a session with session_keys_unavailable (503) when no STEK can be had', async () => {
    const broken = { current: () => Promise.reject(new Error('down')), get: () => Promise.reject(new Error('down')) };
    const svc = service({ e2ee: { sessionKeys: broken } });
    const prepared = await prepareE2ee(alice, { method: 'GET', url: `${BASE}/orders`, now });
    const result = await run(svc, prepared);
    expect(result.response.status).toBe(503);
    expect(result.code).toBe('session_keys_unavailable');
    expect(svc.replayStore.recorded).toBe(0);
  });

  it('refuses a route answer that carries its own content coding instead of sending it unencrypted', async () => {
    const svc = service();
    const session = await handshake(svc);
    const prepared = await prepareE2ee(alice, { method: 'GET', url: `${BASE}/orders`, session, now });
    const { response } = await run(svc, prepared, { status: 200, headers: { 'content-encoding': ['gzip'] }, body: utf8('zipped') });
    expect(response.headers['content-encoding']).toBeUndefined();
    expect(JSON.parse(new TextDecoder().decode(response.body))).toMatchObject({ code: 'response_signing_unavailable' });
    const ranged = await prepareE2ee(alice, { method: 'GET', url: `${BASE}/orders`, session, now });
    const partial = await run(svc, ranged, { status: 206, headers: { 'content-range': ['bytes 0-3/10'] }, body: utf8('part') });
    expect(partial.response.status).not.toBe(206);
    expect(JSON.parse(new TextDecoder().decode(partial.response.body))).toMatchObject({ code: 'response_signing_unavailable' });
  });
});

describe('proofs and services without e2ee', () => {
  it('refuses a key share with a DPoP proof', async () => {
    const svc = service();
    const url = `${BASE}/orders`;
    const proof = await createDpopProof({ method: 'GET', url, key: alice.key.signer, jwk: alice.key.publicJwk, accessToken: alice.ict, now });
    const request: HttpRequest = { method: 'GET', url: '/orders', headers: { authorization: [`DPoP ${alice.ict}`], dpop: [proof], 'oidc2-key-share': [(await prepareE2ee(alice, { method: 'GET', url, now })).keyShare!] } };
    const admission = await svc.exchange(request).admit(undefined);
    expect(admission.answered && admission.error?.code).toBe('e2ee_proof_unsupported');
    expect(svc.replayStore.recorded).toBe(0);
  });

  it('with e2ee off, refuses the fields and a route that requires encryption', async () => {
    const svc = service({ e2ee: false });
    const prepared = await prepareE2ee(alice, { method: 'GET', url: `${BASE}/orders`, now });
    expect((await run(svc, prepared)).code).toBe('e2ee_unavailable');
    const clear = await prepareE2ee(alice, { method: 'GET', url: `${BASE}/orders`, offer: [], now });
    expect((await run(svc, clear, undefined, { encryption: 'required' })).code).toBe('e2ee_required');
    const ok = await prepareE2ee(alice, { method: 'GET', url: `${BASE}/orders`, offer: [], now });
    expect((await run(svc, ok)).response.status).toBe(200);
  });

  it('never lets an e2ee request through an optional route unauthenticated', async () => {
    const svc = service();
    const prepared = await prepareE2ee(alice, { method: 'GET', url: `${BASE}/orders`, now });
    const result = await run(svc, prepared, undefined, { optional: true }, { ...head(prepared), method: 'DELETE' });
    expect(result.code).toBe('signature_invalid');
    const clear = await prepareE2ee(alice, { method: 'GET', url: `${BASE}/orders`, offer: [], now });
    expect((await run(svc, clear, undefined, { optional: true, encryption: 'required' })).code).toBe('e2ee_required');
  });
});
