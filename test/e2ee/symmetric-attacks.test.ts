// Symmetric session authentication (docs/protocol.md section 7.11) against real Express, Fastify and
// Koa services over loopback: round trips by hand and with @oidc2/client, and the attacks on the
// mode. Every refusal is checked for its status and problem `code`, for being a problem signed with
// the service's key and bound to the request's nonce, and for having left the replay store untouched
// (docs/protocol.md section 7.9: the nonce is recorded last), so nothing reached the route.
import { randomBytes } from 'node:crypto';
import {
  StaticSessionKeyStore,
  createIctVerifier,
  createNonce,
  fieldLines,
  importKey,
  signMessageFields,
  verifyResponse,
  verifySessionMacResponse,
  type HttpRequest,
  type HttpResponse,
  type IctVerifier,
} from '@oidc2/core';
import { decryptBody, encryptBody, macKeys, parseResponseSession, requestKey, responseKey, sessionMacBinding } from '@oidc2/core/adapter';
import { createContentDigest } from '../../packages/core/src/content-digest';
import { createClient } from '@oidc2/client';
import { newIssuer, newKey, type TestIssuer, type TestKey } from '../support/credentials';
import { FRAMEWORKS, startFramework, type FrameworkService } from '../support/frameworks';
import { CountingReplayStore } from '../support/counting-replay-store';
import { callerParty, openE2ee, prepareE2ee, problemOf, sendE2ee, type E2eeCaller, type E2eeSession } from '../support/e2ee-caller';
import { mintSession, newStek } from '../support/session-jwe';

const T = 1_790_000_400;
const enc = new TextEncoder();
const dec = new TextDecoder();

type Caller = E2eeCaller & { key: TestKey; ict: string; sub: string };

let callers: TestIssuer;
let services: TestIssuer;
let serviceKey: TestKey;
let serviceIct: string;
let alice: Caller;
let bob: Caller;
let shortLived: Caller; // an ICT that expires 120 s after T

beforeAll(async () => {
  callers = await newIssuer('https://op.example.test', 'Ed25519');
  services = await newIssuer('https://attest.example.test', 'Ed25519');
  serviceKey = await newKey('Ed25519');
  serviceIct = await services.mint(serviceKey, { subject: 'svc', lifetime: 3600, now: T });
  const caller = async (sub: string, lifetime = 3600): Promise<Caller> => {
    const key = await newKey('Ed25519');
    return { key, ict: await callers.mint(key, { subject: sub, lifetime, now: T }), sub };
  };
  alice = await caller('alice');
  bob = await caller('bob');
  shortLived = await caller('carol', 120);
});

/** The fields a symmetric request carries, and how to change them (the attacks). */
interface MacOptions {
  method?: string;
  path?: string;
  body?: string;
  /** Signs under this key instead of the session's K_c2s. */
  key?: Uint8Array;
  /** Parameters to add or replace (undefined removes one). */
  params?: Record<string, string | number | undefined>;
  /** Components to leave out of the signature. */
  omit?: string[];
  headers?: Record<string, string>;
  /** The token sent instead of the session's. */
  token?: string;
}

describe.each(FRAMEWORKS)('%s: symmetric session authentication', (framework) => {
  let now = T;
  const clock = () => now;
  const store = new CountingReplayStore();
  const stek = newStek();
  const keys = new StaticSessionKeyStore({ keys: [stek.jwk] });
  let sym: FrameworkService; // e2ee.symmetric: true
  let off: FrameworkService; // the same service with the mode off
  let verifier: IctVerifier;

  const options = (url: string, symmetric: boolean) => ({
    issuers: [{ issuer: callers.issuer, jwks: callers.jwks }],
    audiences: [url],
    credential: { ict: serviceIct, privateKey: serviceKey.privateJwk },
    replayStore: store,
    now: clock,
    e2ee: { sessionKeys: keys, symmetric },
  });

  beforeAll(async () => {
    verifier = createIctVerifier({ issuers: [{ issuer: services.issuer, jwks: services.jwks }], now: clock });
    sym = await startFramework(framework, (url) => options(url, true));
    off = await startFramework(framework, (url) => options(url, false));
  });
  afterAll(async () => {
    await Promise.all([sym?.close(), off?.close()]);
  });
  afterEach(() => {
    now = T;
  });

  /** A handshake at the session endpoint (public-key signed), as the client makes it. */
  async function session(who: Caller = alice, base = sym.url): Promise<E2eeSession & { handshakeExp: number }> {
    const hs = await prepareE2ee(who, { method: 'POST', url: `${base}/.well-known/oidc2-session`, now: clock });
    const response = await sendE2ee(base, hs.request);
    expect(response.status).toBe(204);
    const opened = await openE2ee(hs, response, verifier, who, clock);
    return { ...opened.session!, handshakeExp: parseResponseSession(fieldLines(response.headers, 'oidc2-session')).exp };
  }

  /** A session request signed with hmac-sha256 (docs/protocol.md section 7.11), built by hand. */
  async function macRequest(s: E2eeSession, o: MacOptions = {}, base = sym.url): Promise<{ request: HttpRequest; nonce: string }> {
    const method = o.method ?? (o.body === undefined ? 'GET' : 'POST');
    const url = `${base}${o.path ?? (o.body === undefined ? '/whoami' : '/echo')}`;
    const nonce = createNonce();
    const audience = new URL(url).origin + new URL(url).pathname;
    const headers: Record<string, string[]> = { 'oidc2-session': [o.token ?? s.token] };
    let body: Uint8Array | undefined;
    if (o.body !== undefined) {
      body = await encryptBody(await requestKey({ rk: s.rk, sid: s.sid, nonce, method, audience }), enc.encode(o.body));
      headers['content-type'] = ['application/json'];
      headers['content-encoding'] = ['aes128gcm'];
      headers['content-digest'] = [await createContentDigest(body)];
    }
    for (const [name, value] of Object.entries(o.headers ?? {})) headers[name] = [value];
    const components = ['@method', '@path', '@query', 'oidc2-session', 'content-type', 'content-encoding', 'content-digest', 'oidc2-key-share'].filter(
      (c) => (c.startsWith('@') || headers[c] !== undefined) && !(o.omit ?? []).includes(c),
    );
    const params: Record<string, string | number> = { created: now, expires: now + 60, nonce, tag: 'oidc2-session', 'oidc2-aud': audience };
    for (const [name, value] of Object.entries(o.params ?? {})) {
      if (value === undefined) delete params[name];
      else params[name] = value;
    }
    const key = await importKey(o.key ?? (await macKeys(s.rk, s.sid)).c2s, 'hmac-sha256', 'sign');
    const message: HttpRequest = { method, url, headers, ...(body ? { body } : {}) };
    Object.assign(headers, await signMessageFields(message, { components, params, key }));
    return { request: message, nonce };
  }

  /** Sends, expects the refusal, and checks that it is signed with the service's key, bound, and recorded nothing. */
  async function refused(request: HttpRequest, status: number, code: string, origin = sym.url): Promise<HttpResponse> {
    const before = store.snapshot();
    const res = await sendE2ee(origin, request);
    expect({ status: res.status, code: problemOf(res)?.code }).toEqual({ status, code });
    expect(store.snapshot()).toEqual(before);
    expect(fieldLines(res.headers, 'content-encoding')).toBeUndefined();
    await verifyResponse(res, { request, binding: sessionMacBinding(request)!, ictVerifier: verifier, now: clock });
    return res;
  }

  it('round trip: a MAC-signed session request reaches the route as the token\'s caller; its response is MAC-signed under K_s2c and decrypts', async () => {
    const s = await session();
    const { s2c } = await macKeys(s.rk, s.sid);
    for (const body of ['{"n":1}', undefined]) {
      const before = store.snapshot();
      const { request, nonce } = await macRequest(s, body === undefined ? {} : { body });
      const res = await sendE2ee(sym.url, request);
      expect(res.status).toBe(200);
      expect(store.snapshot().recorded).toBe(before.recorded + 1);
      // No credential travels either way: the MAC stands for both parties.
      expect(fieldLines(request.headers, 'identity-certification-token')).toBeUndefined();
      expect(fieldLines(res.headers, 'identity-certification-token')).toBeUndefined();
      await verifySessionMacResponse(res, { request, nonce, key: s2c, now: clock });
      const plaintext = await decryptBody(await responseKey({ rk: s.rk, sid: s.sid, nonce, status: 200 }), res.body!);
      const answer = JSON.parse(dec.decode(plaintext)) as { caller: string; issuer: string; proof: string; echo: unknown };
      expect(answer).toMatchObject({ framework, caller: 'alice', issuer: callers.issuer, proof: 'http-signature' });
      if (body !== undefined) expect(answer.echo).toEqual(JSON.parse(body));
      // The response is not accepted under the other key.
      const c2s = (await macKeys(s.rk, s.sid)).c2s;
      await expect(verifySessionMacResponse(res, { request, nonce, key: c2s, now: clock })).rejects.toMatchObject({ code: 'response_signature_invalid' });
    }
  });

  it('a forged MAC: 401 signature_invalid', async () => {
    const s = await session();
    const { request } = await macRequest(s, { body: '{"n":1}' });
    const signature = request.headers['signature']![0]!;
    const bytes = Buffer.from(signature.slice(5, -1), 'base64');
    bytes[0]! ^= 1;
    await refused({ ...request, headers: { ...request.headers, signature: [`sig=:${bytes.toString('base64')}:`] } }, 401, 'signature_invalid');
  });

  it('a MAC under K_s2c instead of K_c2s: 401 signature_invalid', async () => {
    const s = await session();
    await refused((await macRequest(s, { key: (await macKeys(s.rk, s.sid)).s2c })).request, 401, 'signature_invalid');
  });

  it("another caller's token with the MAC key of one's own session: 401 signature_invalid", async () => {
    const mine = await session(alice);
    const theirs = await session(bob);
    await refused((await macRequest(mine, { token: theirs.token })).request, 401, 'signature_invalid');
  });

  it('a MAC key from another session of the same caller: 401 signature_invalid', async () => {
    const a = await session();
    const b = await session();
    await refused((await macRequest(a, { key: (await macKeys(b.rk, b.sid)).c2s })).request, 401, 'signature_invalid');
  });

  it('a token without mac: true used symmetrically (minted with the STEK): 401 session_mac_not_allowed', async () => {
    const party = callerParty(alice);
    const minted = await mintSession(stek, { caller: { iss: party.iss, sub: party.sub, jkt: alice.key.thumbprint }, aud: sym.url, iat: T });
    await refused((await macRequest(minted)).request, 401, 'session_mac_not_allowed');
    // The same token with a public-key signature is a session like any other.
    const p = await prepareE2ee(alice, { method: 'GET', url: `${sym.url}/whoami`, session: minted, now: clock });
    expect((await sendE2ee(sym.url, p.request)).status).toBe(200);
  });

  it('the mode off on the service: 401 session_mac_unavailable, and its tokens do not allow it', async () => {
    const s = await session(alice, off.url);
    await refused((await macRequest(s, {}, off.url)).request, 401, 'session_mac_unavailable', off.url);
    // Even a token minted with mac: true (with the STEK) is refused there before it is opened.
    const party = callerParty(alice);
    const claims = { mac: true, ctx: [], ctyp: 'ict' };
    const minted = await mintSession(stek, { caller: { iss: party.iss, sub: party.sub, jkt: alice.key.thumbprint }, aud: off.url, iat: T, claims });
    await refused((await macRequest(minted, {}, off.url)).request, 401, 'session_mac_unavailable', off.url);
  });

  it('a replayed request: 401 replay_detected, the nonce recorded once', async () => {
    const s = await session();
    const { request } = await macRequest(s, { body: '{"n":1}' });
    expect((await sendE2ee(sym.url, request)).status).toBe(200);
    const before = store.snapshot();
    const res = await sendE2ee(sym.url, request);
    expect({ status: res.status, code: problemOf(res)?.code }).toEqual({ status: 401, code: 'replay_detected' });
    expect(store.snapshot()).toEqual({ calls: before.calls + 1, recorded: before.recorded });
  });

  it('a signature window over 300 s: 401 signature_params_invalid', async () => {
    const s = await session();
    await refused((await macRequest(s, { params: { expires: now + 301 } })).request, 401, 'signature_params_invalid');
  });

  it.each(['content-digest', 'content-type', 'content-encoding', 'oidc2-session', '@path', '@query', '@method'])('%s not covered: 401 component_not_covered', async (component) => {
    const s = await session();
    await refused((await macRequest(s, { body: '{"n":1}', omit: [component] })).request, 401, 'component_not_covered');
  });

  it.each([
    ['keyid', 'session'],
    ['alg', 'hmac-sha256'],
  ])('%s present: 401 signature_params_invalid', async (param, value) => {
    const s = await session();
    await refused((await macRequest(s, { params: { [param]: value } })).request, 401, 'signature_params_invalid');
  });

  it('a rekey (Oidc2-Key-Share) without a public-key signature: 400 e2ee_proof_unsupported', async () => {
    const s = await session();
    const share = 'x25519=:' + randomBytes(32).toString('base64') + ':';
    await refused((await macRequest(s, { headers: { 'oidc2-key-share': share } })).request, 400, 'e2ee_proof_unsupported');
  });

  it("the token's exp is bounded by the caller credential's: past it, 401 session_expired", async () => {
    const s = await session(shortLived);
    expect(s.handshakeExp).toBe(T + 120);
    // Without the mode, the same credential gets a full epoch.
    expect((await session(shortLived, off.url)).handshakeExp).toBe(T + 600);
    now = T + 100;
    expect((await sendE2ee(sym.url, (await macRequest(s)).request)).status).toBe(200);
    now = T + 120 + 61; // past exp and the 60 s leeway
    await refused((await macRequest(s)).request, 401, 'session_expired');
  });

  it('@oidc2/client: session requests go MAC-signed, responses are checked under K_s2c; against the mode off it falls back once to its key', async () => {
    const sent: Array<{ url: string; tag: string | undefined; ict: boolean }> = [];
    const client = () =>
      createClient({
        serviceIssuers: [{ issuer: services.issuer, jwks: services.jwks }],
        expectedService: 'svc',
        getIct: (publicJwk) => callers.mint(publicJwk, { subject: 'dave', lifetime: 3600, now: T }),
        encryption: 'required',
        e2ee: { symmetric: true },
        now: clock,
        fetch: async (input, init) => {
          const request = new Request(input, init);
          sent.push({ url: request.url, tag: /tag="([^"]+)"/.exec(request.headers.get('signature-input') ?? '')?.[1], ict: request.headers.has('identity-certification-token') });
          return fetch(request);
        },
      });
    const api = client();
    const first = await api(`${sym.url}/whoami`);
    expect(first.encryption?.mode).toBe('handshake');
    for (let i = 0; i < 2; i++) {
      const res = await api(`${sym.url}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ i }) });
      expect(res.status).toBe(200);
      expect(res.encryption).toMatchObject({ mode: 'session', bodyEncrypted: true });
      expect(res.service.subject).toBe('svc');
      expect(await res.json()).toMatchObject({ caller: 'dave', echo: { i } });
    }
    expect(sent.map((r) => [r.tag, r.ict])).toEqual([
      ['oidc2-ict', true],
      ['oidc2-session', false],
      ['oidc2-session', false],
    ]);

    sent.length = 0;
    const fallback = client();
    await fallback(`${off.url}/whoami`);
    for (let i = 0; i < 2; i++) expect((await fallback(`${off.url}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(200);
    // The first session request is refused (signed, nothing ran) and sent again with the key; then no more tries.
    expect(sent.map((r) => r.tag)).toEqual(['oidc2-ict', 'oidc2-session', 'oidc2-ict', 'oidc2-ict']);
  });
});
