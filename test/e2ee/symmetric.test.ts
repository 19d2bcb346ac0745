// Symmetric session authentication (docs/protocol.md section 7.11) beyond the attack list: options
// checked at construction, a route that refuses the mode, the identity a route sees, the caller's
// checks of a MAC-signed response (one change at a time), and @oidc2/client failing closed when a
// MAC-signed response is changed on the way (a real Express service on loopback).
import {
  createIctVerifier,
  createOidc2Service,
  createNonce,
  fieldLines,
  signSessionMacRequest,
  verifySessionMacResponse,
  type HttpRequest,
  type HttpResponse,
  type Identity,
} from '@oidc2/core';
import { encryptBody, macKeys, requestKey, signSessionMacResponse } from '@oidc2/core/adapter';
import { createClient } from '@oidc2/client';
import { newIssuer, newKey, type TestIssuer, type TestKey } from '../support/credentials';
import { startFramework, type FrameworkService } from '../support/frameworks';
import { openE2ee, prepareE2ee, problemOf, sendE2ee, type E2eeSession } from '../support/e2ee-caller';

const T = 1_790_000_400;
const enc = new TextEncoder();
const clock = () => T;
const BASE = 'https://api.example.test';

let callers: TestIssuer;
let services: TestIssuer;
let serviceKey: TestKey;
let serviceIct: string;
let alice: { key: TestKey; ict: string };

beforeAll(async () => {
  callers = await newIssuer('https://op.example.test', 'Ed25519');
  services = await newIssuer('https://attest.example.test', 'Ed25519');
  serviceKey = await newKey('Ed25519');
  serviceIct = await services.mint(serviceKey, { subject: 'svc', lifetime: 3600, now: T });
  const key = await newKey('Ed25519');
  alice = { key, ict: await callers.mint(key, { subject: 'alice', lifetime: 3600, now: T, claims: { ctx: ['mfa'] } }) };
});

const options = (symmetric: unknown, url = BASE) => ({
  issuers: [{ issuer: callers.issuer, jwks: callers.jwks }],
  audiences: [url],
  credential: { ict: serviceIct, privateKey: serviceKey.privateJwk },
  now: clock,
  e2ee: { symmetric } as { symmetric: boolean },
});

describe('options', () => {
  it('e2ee.symmetric, policy.sessionMac and the client e2ee.symmetric must be booleans', () => {
    expect(() => createOidc2Service(options('yes'))).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => createOidc2Service({ ...options(true), policy: { sessionMac: 1 as unknown as boolean } })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => createClient({ serviceIssuers: [{ issuer: services.issuer }], getIct: async () => alice.ict, encryption: 'required', e2ee: { symmetric: 'on' as unknown as boolean } })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }),
    );
  });
});

describe('in process: the exchange', () => {
  let service: ReturnType<typeof createOidc2Service>;
  let verifier: ReturnType<typeof createIctVerifier>;
  beforeAll(() => {
    service = createOidc2Service(options(true));
    verifier = createIctVerifier({ issuers: [{ issuer: services.issuer, jwks: services.jwks }], now: clock });
  });

  async function open(): Promise<E2eeSession> {
    const hs = await prepareE2ee(alice, { method: 'POST', url: `${BASE}/.well-known/oidc2-session`, now: clock });
    const admission = await service.exchange(hs.request).admit(undefined);
    if (!admission.answered) throw new Error('the session endpoint did not answer');
    const response = { ...admission.response, body: admission.response.body as Uint8Array | undefined };
    return (await openE2ee(hs, response as HttpResponse, verifier, alice, clock)).session!;
  }

  async function macRequest(s: E2eeSession, path: string, body?: string): Promise<{ request: HttpRequest; nonce: string }> {
    const nonce = createNonce();
    const audience = `${BASE}${path}`;
    const headers: Record<string, string[]> = { 'oidc2-session': [s.token] };
    let bytes: Uint8Array | undefined;
    if (body !== undefined) {
      bytes = await encryptBody(await requestKey({ rk: s.rk, sid: s.sid, nonce, method: 'POST', audience }), enc.encode(body));
      headers['content-type'] = ['application/json'];
      headers['content-encoding'] = ['aes128gcm'];
    }
    const request = await signSessionMacRequest({ method: body === undefined ? 'GET' : 'POST', url: audience, headers, ...(bytes ? { body: bytes } : {}) }, { key: (await macKeys(s.rk, s.sid)).c2s, nonce, audience, now: clock });
    return { request, nonce };
  }

  it('the route sees the caller the token states, marked sessionMac, without a public key', async () => {
    const s = await open();
    const { request } = await macRequest(s, '/me');
    const admission = await service.exchange(request).admit(undefined);
    expect(admission.answered).toBe(false);
    const identity = (admission as { identity: Identity }).identity;
    expect(identity).toMatchObject({ kind: 'user', subject: 'alice', issuer: callers.issuer, contexts: ['mfa'], thumbprint: alice.key.thumbprint, sessionMac: true, proof: 'http-signature' });
    expect(identity.publicKey).toBeUndefined();
    expect(identity.claims).toEqual({ iss: callers.issuer, sub: 'alice', ctx: ['mfa'] });
  });

  it('a route with sessionMac: false refuses the mode (401 session_mac_unavailable) and accepts the same session signed with the key', async () => {
    const s = await open();
    const { request } = await macRequest(s, '/payouts', '{"amount":1}');
    const refused = await service.exchange(request, { sessionMac: false }).admit(request.body);
    expect(refused.answered && { status: refused.response.status, code: refused.error?.code }).toEqual({ status: 401, code: 'session_mac_unavailable' });
    const signed = await prepareE2ee(alice, { method: 'POST', url: `${BASE}/payouts`, session: s, body: '{"amount":1}', headers: { 'content-type': 'application/json' }, now: clock });
    const admitted = await service.exchange(signed.request, { sessionMac: false }).admit(signed.request.body);
    expect(admitted.answered).toBe(false);
  });

  it("the response of an admitted request is MAC-signed; the caller's checks refuse each change", async () => {
    const s = await open();
    const { request, nonce } = await macRequest(s, '/echo', '{"n":1}');
    const exchange = service.exchange(request);
    const admission = await exchange.admit(request.body);
    expect(admission.answered).toBe(false);
    const sent = await exchange.respond({ status: 200, headers: { 'content-type': ['application/json'] }, body: enc.encode('{"ok":true}') });
    const response: HttpResponse = { status: sent.status, headers: sent.headers, body: sent.body as Uint8Array };
    expect(fieldLines(response.headers, 'identity-certification-token')).toBeUndefined();
    const { s2c } = await macKeys(s.rk, s.sid);
    const check = (r: HttpResponse, o: { nonce?: string; now?: () => number } = {}) => verifySessionMacResponse(r, { request, nonce: o.nonce ?? nonce, key: s2c, now: o.now ?? clock });
    await expect(check(response)).resolves.toBeUndefined();
    const changed = (headers: Record<string, string[] | undefined>, extra: Partial<HttpResponse> = {}): HttpResponse => {
      const h = { ...response.headers } as Record<string, string[]>;
      for (const [name, value] of Object.entries(headers)) {
        if (value === undefined) delete h[name];
        else h[name] = value;
      }
      return { ...response, headers: h, ...extra };
    };
    const input = response.headers['signature-input']![0]!;
    const invalid = { code: 'response_signature_invalid' };
    await expect(check({ ...response, status: 201 })).rejects.toMatchObject(invalid);
    await expect(check({ ...response, body: Uint8Array.from(response.body!, (b, i) => (i === 30 ? b ^ 1 : b)) })).rejects.toMatchObject(invalid);
    await expect(check(response, { nonce: createNonce() })).rejects.toMatchObject(invalid);
    await expect(check(response, { now: () => T + 1000 })).rejects.toMatchObject(invalid);
    await expect(check(changed({ 'signature-input': [input.replace(' "content-digest"', '')] }))).rejects.toMatchObject(invalid);
    await expect(check(changed({ 'signature-input': [`${input};keyid="k"`] }))).rejects.toMatchObject(invalid);
    await expect(check(changed({ 'signature-input': undefined, signature: undefined }))).rejects.toMatchObject({ code: 'response_unsigned' });
    // Signed by the service for another request of the session: not bound to this one.
    const other = await signSessionMacResponse({ status: 200, headers: { 'content-type': ['application/json'] }, body: response.body }, request, createNonce(), s2c, { now: clock });
    await expect(check(changed(other))).rejects.toMatchObject(invalid);
  });
});

describe('@oidc2/client against a real service', () => {
  let sym: FrameworkService;
  beforeAll(async () => {
    sym = await startFramework('express', (url) => options(true, url));
  });
  afterAll(async () => {
    await sym?.close();
  });

  it('fails closed when a MAC-signed response is changed on the way, and never retries with the key', async () => {
    const tags: string[] = [];
    let tamper = false;
    const api = createClient({
      serviceIssuers: [{ issuer: services.issuer, jwks: services.jwks }],
      expectedService: 'svc',
      getIct: (publicJwk) => callers.mint(publicJwk, { subject: 'erin', lifetime: 3600, now: T }),
      encryption: 'required',
      e2ee: { symmetric: true },
      now: clock,
      fetch: async (input, init) => {
        const request = new Request(input, init);
        tags.push(/tag="([^"]+)"/.exec(request.headers.get('signature-input') ?? '')?.[1] ?? '');
        const response = await fetch(request);
        if (!tamper || !request.headers.has('oidc2-session')) return response;
        const body = new Uint8Array(await response.arrayBuffer());
        body[body.length - 1]! ^= 1;
        return new Response(body, { status: response.status, headers: response.headers });
      },
    });
    expect((await api(`${sym.url}/whoami`)).status).toBe(200);
    const ok = await api(`${sym.url}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
    expect(await ok.json()).toMatchObject({ caller: 'erin', echo: { a: 1 } });
    tamper = true;
    await expect(api(`${sym.url}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":2}' })).rejects.toMatchObject({ code: 'response_signature_invalid' });
    expect(tags).toEqual(['oidc2-ict', 'oidc2-session', 'oidc2-session']);
  });

  it('a signed refusal of the mode is one the service signed with its key, bound to the request', async () => {
    const off = await startFramework('express', (url) => options(false, url));
    try {
      const verifier = createIctVerifier({ issuers: [{ issuer: services.issuer, jwks: services.jwks }], now: clock });
      const hs = await prepareE2ee(alice, { method: 'POST', url: `${off.url}/.well-known/oidc2-session`, now: clock });
      const s = (await openE2ee(hs, await sendE2ee(off.url, hs.request), verifier, alice, clock)).session!;
      const nonce = createNonce();
      const request = await signSessionMacRequest({ method: 'GET', url: `${off.url}/whoami`, headers: { 'oidc2-session': [s.token] } }, { key: (await macKeys(s.rk, s.sid)).c2s, nonce, audience: `${off.url}/whoami`, now: clock });
      const res = await sendE2ee(off.url, request);
      expect({ status: res.status, code: problemOf(res)?.code }).toEqual({ status: 401, code: 'session_mac_unavailable' });
      const input = res.headers['signature-input']![0]!;
      expect(input).toContain('tag="oidc2-ict"');
      expect(input).toContain(`oidc2-req-nonce="${nonce}"`);
      expect(input).toContain('"oidc2-session";req');
    } finally {
      await off.close();
    }
  });
});
