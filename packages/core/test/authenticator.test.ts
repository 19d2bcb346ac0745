// The authenticator and service against the attacks docs/protocol.md section 2-4 name: every rejection is
// asserted by code and status, with a frozen clock.
import { calculateJwkThumbprint } from 'jose';
import {
  createAuthenticator,
  createOidc2Service,
  createDpopProof,
  createNonce,
  signRequest,
  verifyResponse,
  dpopBinding,
  normalizeFields,
  type AuthenticatorOptions,
  type HttpRequest,
} from '../src/index';
import { createIctVerifier } from '../src/ict';
import { signMessage } from '../src/rfc9421/index';
import { MemoryReplayStore } from '../src/replay-store';
import { utf8 } from '../src/lib/base64';
import { newIssuer, newKey, type TestIssuer, type TestKey } from '../../../test/support/credentials';
import { rejection } from '../../../test/support/error-code';

const T = 1_790_000_000;
const now = () => T;
const BASE = 'https://api.example.com';

let op: TestIssuer;
let alice: TestKey;
let aliceIct: string;

beforeAll(async () => {
  op = await newIssuer('https://op.example.com');
  alice = await newKey('ES256');
  aliceIct = await op.mint(alice, { now: T - 10, subject: 'alice', contexts: ['mfa'], claims: { role: 'admin' } });
});

function options(extra: Partial<AuthenticatorOptions> = {}): AuthenticatorOptions {
  return { issuers: [{ issuer: op.issuer, jwks: op.jwks }], audiences: [BASE], now, ...extra };
}

/** The request as a server receives it: origin-form target. */
function received(signed: { method: string; url: string; headers: HttpRequest['headers']; body?: Uint8Array }): HttpRequest {
  const u = new URL(signed.url);
  return { method: signed.method, url: u.pathname + u.search, headers: signed.headers, body: signed.body };
}

async function signedRequest(init: { method?: string; path?: string; body?: string; headers?: Record<string, string>; key?: TestKey; ict?: string; audience?: string; created?: number } = {}) {
  const body = init.body === undefined ? undefined : utf8(init.body);
  const signed = await signRequest(
    { method: init.method ?? 'GET', url: BASE + (init.path ?? '/orders?id=7'), headers: init.headers, body },
    { ict: init.ict ?? aliceIct, key: (init.key ?? alice).signer, audience: init.audience, now: () => init.created ?? T },
  );
  return received(signed);
}

describe('HTTP message signature proof', () => {
  it('authenticates ES256 and Ed25519 callers and exposes the identity', async () => {
    const auth = createAuthenticator(options());
    const identity = await auth.authenticate(await signedRequest({ method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json' } }));
    expect(identity).toMatchObject({ subject: 'alice', issuer: op.issuer, contexts: ['mfa'], proof: 'http-signature', thumbprint: alice.thumbprint });
    expect(identity.claims.role).toBe('admin');
    expect(identity.binding.signResponse).toBe(true);
    expect(identity.publicKey!.d).toBeUndefined();

    const bob = await newKey('Ed25519');
    const bobIct = await op.mint(bob, { now: T, subject: 'bob' });
    const id2 = await auth.authenticate(await signedRequest({ key: bob, ict: bobIct }));
    expect(id2.subject).toBe('bob');
  });

  it('accepts any configured audience, comparing scheme and host without case and default port', async () => {
    const auth = createAuthenticator(options({ audiences: ['https://other.example', 'https://EXAMPLE.com:443/'] }));
    const signed = await signRequest({ method: 'GET', url: 'https://example.com/api/x' }, { ict: aliceIct, key: alice.signer, now });
    await expect(auth.authenticate({ ...signed, url: '/api/x' })).resolves.toMatchObject({ subject: 'alice' });
  });

  it('answers a request without credentials with 401 and both challenges', async () => {
    const auth = createAuthenticator(options());
    const err = await rejection(auth.authenticate({ method: 'GET', url: '/', headers: {} }));
    expect([err.code, err.status]).toEqual(['ict_missing', 401]);
    expect(err.headers['www-authenticate']).toMatch(/^Oidc2 error="ict_missing", DPoP algs="ES256 /);
    expect(err.headers['accept-signature']).toBe('sig=("@method" "@path" "@query" "identity-certification-token");tag="oidc2-ict"');
    expect(err.toProblem()).toMatchObject({ status: 401, code: 'ict_missing' });
  });

  it('rejects a token without a signature, and a signature with another tag', async () => {
    const auth = createAuthenticator(options());
    const req = await signedRequest();
    const bare = { ...req, headers: { 'identity-certification-token': [aliceIct] } };
    expect((await rejection(auth.authenticate(bare))).code).toBe('signature_missing');
    const other = { ...req, headers: { ...req.headers, 'signature-input': [req.headers['signature-input'][0].replace('tag="oidc2-ict"', 'tag="other"')] } };
    expect((await rejection(auth.authenticate(other))).code).toBe('signature_missing');
    const noMember = { ...req, headers: { ...req.headers, signature: ['other=:AAAA:'] } };
    expect((await rejection(auth.authenticate(noMember))).code).toBe('signature_missing');
  });

  it('rejects two signatures tagged oidc2-ict with 400', async () => {
    const auth = createAuthenticator(options());
    const req = await signedRequest();
    const input = req.headers['signature-input'][0];
    const sig = req.headers.signature[0];
    const twice = { ...req, headers: { ...req.headers, 'signature-input': [input, input.replace(/^sig=/, 'sig2=')], signature: [sig, sig.replace(/^sig=/, 'sig2=')] } };
    const err = await rejection(auth.authenticate(twice));
    expect([err.code, err.status]).toEqual(['signature_ambiguous', 400]);
  });

  it('rejects more than one ICT field line and oversized or malformed fields', async () => {
    const auth = createAuthenticator(options());
    const req = await signedRequest();
    const two = { ...req, headers: { ...req.headers, 'identity-certification-token': [aliceIct, aliceIct] } };
    expect(await rejection(auth.authenticate(two))).toMatchObject({ code: 'request_malformed', status: 400 });
    const huge = { ...req, headers: { ...req.headers, 'identity-certification-token': ['a'.repeat(9000)] } };
    expect(await rejection(auth.authenticate(huge))).toMatchObject({ code: 'header_too_large', status: 400 });
    const bigInput = { ...req, headers: { ...req.headers, 'signature-input': [req.headers['signature-input'][0] + ';x="' + 'a'.repeat(9000) + '"'] } };
    expect(await rejection(auth.authenticate(bigInput))).toMatchObject({ code: 'header_too_large', status: 400 });
    const garbage = { ...req, headers: { ...req.headers, 'signature-input': ['sig=(("nested"))'] } };
    expect(await rejection(auth.authenticate(garbage))).toMatchObject({ code: 'request_malformed', status: 400 });
    const garbageIct = { ...req, headers: { ...req.headers, 'identity-certification-token': ['not.a.jwt'] } };
    expect((await rejection(auth.authenticate(garbageIct))).status).toBe(401);
  });

  it('rejects keyid and alg parameters', async () => {
    const auth = createAuthenticator(options());
    for (const extra of [{ keyid: 'k1' }, { alg: 'ecdsa-p256-sha256' }]) {
      const req = await customSigned({ extra });
      expect((await rejection(auth.authenticate(req))).code).toBe('signature_params_invalid');
    }
  });

  it('rejects a signature that leaves out a required component', async () => {
    const auth = createAuthenticator(options());
    for (const missing of ['@method', '@path', '@query', 'identity-certification-token']) {
      const req = await customSigned({ components: ['@method', '@path', '@query', 'identity-certification-token'].filter((c) => c !== missing) });
      expect((await rejection(auth.authenticate(req))).code).toBe('component_not_covered');
    }
    const withType = await customSigned({ headers: { 'content-type': ['text/plain'] } });
    expect((await rejection(auth.authenticate(withType))).code).toBe('component_not_covered');
    const strict = createAuthenticator(options({ requiredComponents: ['@authority'] }));
    expect((await rejection(strict.authenticate(await signedRequest()))).code).toBe('component_not_covered');
  });

  it('rejects a changed body, a body without a digest and an unsupported digest', async () => {
    const auth = createAuthenticator(options());
    const req = await signedRequest({ method: 'POST', body: '{"amount":10}' });
    expect((await rejection(auth.authenticate({ ...req, body: utf8('{"amount":99}') }))).code).toBe('digest_mismatch');
    const noBody = await signedRequest({ method: 'POST' });
    expect((await rejection(auth.authenticate({ ...noBody, body: utf8('injected') }))).code).toBe('digest_missing');
  });

  it('rejects any change to a covered component', async () => {
    const auth = createAuthenticator(options());
    const req = await signedRequest({ path: '/orders?id=7' });
    expect((await rejection(auth.authenticate({ ...req, method: 'DELETE' }))).code).toBe('signature_invalid');
    expect((await rejection(auth.authenticate({ ...req, url: '/orders?id=8' }))).code).toBe('signature_invalid');
    expect((await rejection(auth.authenticate({ ...req, url: '/admin?id=7' }))).code).toBe('signature_invalid');
  });

  it('rejects a signature made with a key other than the ICT key', async () => {
    const auth = createAuthenticator(options());
    const mallory = await newKey('ES256');
    const err = await rejection(auth.authenticate(await signedRequest({ key: mallory })));
    expect([err.code, err.status]).toEqual(['signature_invalid', 401]);
  });

  it('rejects a replayed nonce, and records nothing for a request that failed', async () => {
    const auth = createAuthenticator(options());
    const req = await signedRequest({ method: 'POST', body: 'x' });
    // A failing attempt with the same nonce must not burn it.
    await rejection(auth.authenticate({ ...req, body: utf8('y') }));
    await expect(auth.authenticate(req)).resolves.toBeDefined();
    expect((await rejection(auth.authenticate(req))).code).toBe('replay_detected');
  });

  it('enforces the time window', async () => {
    const auth = createAuthenticator(options());
    expect((await rejection(auth.authenticate(await signedRequest({ created: T + 120 })))).code).toBe('signature_not_yet_valid');
    expect((await rejection(auth.authenticate(await signedRequest({ created: T - 200 })))).code).toBe('signature_expired');
    await expect(auth.authenticate(await signedRequest({ created: T + 30 }))).resolves.toBeDefined();
    const long = await customSigned({ extra: { expires: T + 301 } });
    expect((await rejection(auth.authenticate(long))).code).toBe('signature_params_invalid');
    const backwards = await customSigned({ extra: { expires: T - 1 } });
    expect((await rejection(auth.authenticate(backwards))).code).toBe('signature_params_invalid');
  });

  it('rejects a short or missing nonce and a missing audience', async () => {
    const auth = createAuthenticator(options());
    expect((await rejection(auth.authenticate(await customSigned({ extra: { nonce: 'short' } })))).code).toBe('signature_params_invalid');
    expect((await rejection(auth.authenticate(await customSigned({ extra: { nonce: undefined } })))).code).toBe('signature_params_invalid');
    expect((await rejection(auth.authenticate(await customSigned({ extra: { 'oidc2-aud': undefined } })))).code).toBe('signature_params_invalid');
  });

  it('rejects an audience for another service or path', async () => {
    const auth = createAuthenticator(options());
    for (const audience of ['https://evil.example/orders', 'https://api.example.com/other', 'http://api.example.com/orders', 'https://api.example.com/orders?id=7']) {
      const req = await customSigned({ extra: { 'oidc2-aud': audience } });
      expect([audience, (await rejection(auth.authenticate(req))).code]).toEqual([audience, 'audience_mismatch']);
    }
  });

  it('rejects an expired, untrusted or HS256-signed ICT', async () => {
    const auth = createAuthenticator(options());
    const expired = await op.mint(alice, { now: T - 1000, lifetime: 300 });
    expect((await rejection(auth.authenticate(await signedRequest({ ict: expired })))).code).toBe('ict_expired');
    const rogue = await newIssuer('https://rogue.example');
    const untrusted = await rogue.mint(alice, { now: T });
    expect((await rejection(auth.authenticate(await signedRequest({ ict: untrusted })))).code).toBe('ict_untrusted_issuer');
  });

  it('checks an ICT audience only against configured token audiences', async () => {
    const clientBound = await op.mint(alice, { now: T, claims: { aud: 'banking-web' } });
    await expect(createAuthenticator(options()).authenticate(await signedRequest({ ict: clientBound }))).resolves.toMatchObject({ subject: 'alice' });
    const strict = createAuthenticator(options({ tokenAudiences: ['banking-web', 'teller-app'] }));
    await expect(strict.authenticate(await signedRequest({ ict: clientBound }))).resolves.toMatchObject({ subject: 'alice' });
    const other = await op.mint(alice, { now: T, claims: { aud: ['mallory-app'] } });
    expect((await rejection(strict.authenticate(await signedRequest({ ict: other })))).code).toBe('ict_audience_mismatch');
  });

  it("an issuer's token audiences are its tokenAudiences: the former audiences is refused, naming the new name", async () => {
    const clientBound = await op.mint(alice, { now: T, claims: { aud: 'banking-web' } });
    const perIssuer = createAuthenticator(options({ issuers: [{ issuer: op.issuer, jwks: op.jwks, tokenAudiences: ['teller-app'] }] }));
    expect((await rejection(perIssuer.authenticate(await signedRequest({ ict: clientBound })))).code).toBe('ict_audience_mismatch');
    const former = [{ issuer: op.issuer, jwks: op.jwks, audiences: ['banking-web'] }] as unknown as AuthenticatorOptions['issuers'];
    expect(() => createAuthenticator(options({ issuers: former }))).toThrow(
      expect.objectContaining({ code: 'ERR_UNKNOWN_OPTION', message: 'options.issuers[0].audiences is now options.issuers[0].tokenAudiences' }),
    );
  });

  it('rejects an ICT bound by cnf.jkt for HTTP message signatures', async () => {
    const auth = createAuthenticator(options());
    const jktIct = await op.mint(alice, { now: T, jkt: true });
    expect((await rejection(auth.authenticate(await signedRequest({ ict: jktIct })))).code).toBe('ict_cnf_invalid');
  });

  it('says when a proof type is not accepted', async () => {
    const sigOnly = createAuthenticator(options({ proofs: ['http-signature'] }));
    const dpopReq = await dpopRequest();
    expect((await rejection(sigOnly.authenticate(dpopReq))).code).toBe('proof_not_accepted');
    const dpopOnly = createAuthenticator(options({ proofs: ['dpop'] }));
    const err = await rejection(dpopOnly.authenticate(await signedRequest()));
    expect(err.code).toBe('proof_not_accepted');
    expect(err.headers['accept-signature']).toBeUndefined();
    expect(err.headers['www-authenticate']).toMatch(/^DPoP /);
  });
});

async function customSigned(init: { components?: string[]; extra?: Record<string, string | number | boolean | undefined>; headers?: Record<string, string[]> }) {
  const headers = { 'identity-certification-token': [aliceIct], ...init.headers };
  const message: HttpRequest = { method: 'GET', url: '/orders?id=7', headers };
  const params: Record<string, string | number | boolean | undefined> = {
    created: T,
    expires: T + 60,
    nonce: createNonce(),
    tag: 'oidc2-ict',
    'oidc2-aud': `${BASE}/orders`,
    ...init.extra,
  };
  for (const k of Object.keys(params)) if (params[k] === undefined) delete params[k];
  const signed = await signMessage(message, {
    components: init.components ?? ['@method', '@path', '@query', 'identity-certification-token'],
    params: params as Record<string, string | number | boolean>,
    key: alice.signer,
  });
  return { ...message, headers: { ...headers, 'signature-input': [signed.signatureInput], signature: [signed.signature] } };
}

async function dpopRequest(init: { ict?: string; key?: TestKey; htu?: string; method?: string; nonce?: string; iat?: number; token?: string } = {}): Promise<HttpRequest> {
  const key = init.key ?? alice;
  const ict = init.ict ?? aliceIct;
  const proof = await createDpopProof({
    method: init.method ?? 'GET',
    url: init.htu ?? `${BASE}/orders`,
    key: key.signer,
    jwk: key.publicJwk,
    accessToken: init.token ?? ict,
    nonce: init.nonce,
    now: () => init.iat ?? T,
  });
  return { method: 'GET', url: '/orders?id=7', headers: { authorization: [`DPoP ${ict}`], dpop: [proof] } };
}

describe('DPoP proof', () => {
  it('authenticates an ICT bound by cnf.jwk or cnf.jkt', async () => {
    const auth = createAuthenticator(options());
    await expect(auth.authenticate(await dpopRequest())).resolves.toMatchObject({ subject: 'alice', proof: 'dpop' });
    const jktIct = await op.mint(alice, { now: T, jkt: true });
    const id = await auth.authenticate(await dpopRequest({ ict: jktIct }));
    expect(id.thumbprint).toBe(await calculateJwkThumbprint(alice.publicJwk));
    expect(id.publicKey!.x).toBe(alice.publicJwk.x);
  });

  it('rejects wrong htm, htu, ath, key, age and a replayed jti', async () => {
    const auth = createAuthenticator(options());
    const cases: Array<[string, Parameters<typeof dpopRequest>[0]]> = [
      ['htm', { method: 'POST' }],
      ['htu', { htu: 'https://evil.example/orders' }],
      ['ath', { token: 'another-token' }],
      ['key', { key: await newKey('ES256') }],
      ['iat', { iat: T - 1000 }],
    ];
    for (const [, init] of cases) {
      const err = await rejection(auth.authenticate(await dpopRequest(init)));
      expect([err.code, err.status]).toEqual(['dpop_invalid', 401]);
      expect(err.headers['www-authenticate']).toContain('DPoP error="invalid_dpop_proof"');
    }
    const req = await dpopRequest();
    await auth.authenticate(req);
    expect((await rejection(auth.authenticate(req))).code).toBe('replay_detected');
  });

  it('demands a server nonce when configured, and accepts the one it issued', async () => {
    const auth = createAuthenticator(options({ dpopNonces: true }));
    const err = await rejection(auth.authenticate(await dpopRequest()));
    expect(err.code).toBe('dpop_nonce_required');
    expect(err.headers['www-authenticate']).toContain('use_dpop_nonce');
    const nonce = err.headers['dpop-nonce'];
    expect(nonce).toMatch(/^[A-Za-z0-9_-]+$/);
    await expect(auth.authenticate(await dpopRequest({ nonce }))).resolves.toMatchObject({ subject: 'alice' });
  });

  it('rejects an expired ICT with invalid_token in the DPoP challenge', async () => {
    const auth = createAuthenticator(options());
    const expired = await op.mint(alice, { now: T - 1000 });
    const err = await rejection(auth.authenticate(await dpopRequest({ ict: expired })));
    expect(err.code).toBe('ict_expired');
    expect(err.headers['www-authenticate']).toContain('DPoP error="invalid_token"');
  });
});

describe('options', () => {
  it('are validated once, naming the bad option', () => {
    expect(() => createAuthenticator({ ...options(), issuers: [] })).toThrow(/options\.issuers/);
    expect(() => createAuthenticator({ ...options(), audiences: ['not a url'] })).toThrow(/options\.audiences/);
    expect(() => createAuthenticator({ ...options(), audiences: ['https://a.example/?q=1'] })).toThrow(/options\.audiences/);
    expect(() => createAuthenticator({ ...options(), proofs: ['bearer' as never] })).toThrow(/options\.proofs/);
    expect(() => createAuthenticator({ ...options(), clockTolerance: -1 })).toThrow(/options\.clockTolerance/);
    expect(() => createOidc2Service({ ...options(), policy: { contexts: 'mfa' as never } })).toThrow(/options\.policy\.contexts/);
    expect(() => createOidc2Service({ ...options(), credential: { ict: 5 } as never })).toThrow(/options\.credential/);
  });
});

describe('service: policy, response signing and errors', () => {
  let service: ReturnType<typeof createOidc2Service>;
  let svcKey: TestKey;
  let svcIct: string;
  const verifier = () => createIctVerifier({ issuers: [{ issuer: op.issuer, jwks: op.jwks }], now });

  beforeAll(async () => {
    svcKey = await newKey('Ed25519');
    svcIct = await op.mint(svcKey, { now: T, subject: 'orders-service' });
    service = createOidc2Service({ ...options(), credential: { ict: svcIct, privateKey: svcKey.privateJwk } });
  });

  it('applies contexts, claims and predicates with 403, and optional authentication', async () => {
    await expect(service.authenticate(await signedRequest(), { contexts: ['mfa'], claims: { role: 'admin' } })).resolves.toMatchObject({ identity: { subject: 'alice' } });
    expect(await rejection(service.authenticate(await signedRequest(), { contexts: ['hardware-key'] }))).toMatchObject({ code: 'context_required', status: 403 });
    expect(await rejection(service.authenticate(await signedRequest(), { claims: { role: 'auditor' } }))).toMatchObject({ code: 'access_denied', status: 403 });
    expect(await rejection(service.authenticate(await signedRequest(), { allow: (id) => id.subject === 'bob' }))).toMatchObject({ code: 'access_denied', status: 403 });
    const anonymous = await service.authenticate({ method: 'GET', url: '/', headers: {} }, { optional: true });
    expect(anonymous.identity).toBeNull();
    expect(anonymous.error?.code).toBe('ict_missing');
  });

  it('signs a response that the caller verifies, bound to its request', async () => {
    const signed = await signRequest({ method: 'POST', url: `${BASE}/orders`, body: utf8('{}'), headers: { 'content-type': 'application/json' } }, { ict: aliceIct, key: alice.signer, now });
    const req = received(signed);
    const { identity } = await service.authenticate(req);
    const body = utf8('{"ok":true}');
    const response = { status: 201, headers: normalizeFields({ 'content-type': 'application/json' }), body };
    const added = await service.signResponse(response, req, identity!.binding);
    const full = { ...response, headers: { ...response.headers, ...added } };
    const sent = { ...signed };
    await expect(verifyResponse(full, { request: sent, binding: signed.binding, ictVerifier: verifier(), expectedSubject: 'orders-service', now })).resolves.toMatchObject({
      subject: 'orders-service',
    });
    const v = (over: object, opts: object = {}) => rejection(verifyResponse({ ...full, ...over }, { request: sent, binding: signed.binding, ictVerifier: verifier(), now, ...opts }));
    expect((await v({ body: utf8('{"ok":false}') })).code).toBe('response_signature_invalid');
    expect((await v({ status: 200 })).code).toBe('response_signature_invalid');
    expect((await v({}, { binding: { ...signed.binding, nonce: 'another-nonce-aaaaaaaaaa' } })).code).toBe('response_signature_invalid');
    expect((await v({}, { expectedSubject: 'payments-service' })).code).toBe('response_untrusted');
    expect((await v({ headers: response.headers })).code).toBe('response_unsigned');
    expect((await v({}, { request: { ...sent, url: `${BASE}/other` } })).code).toBe('response_signature_invalid');
  });

  it('binds a DPoP response to the proof', async () => {
    const req = await dpopRequest();
    const { identity } = await service.authenticate(req);
    const response = { status: 200, headers: {}, body: utf8('hi') };
    const added = await service.signResponse(response, req, identity!.binding);
    expect(added!['signature-input'][0]).toContain('"dpop";req');
    const full = { ...response, headers: { ...added } };
    await expect(verifyResponse(full, { request: req, binding: dpopBinding(), ictVerifier: verifier(), now })).resolves.toMatchObject({ subject: 'orders-service' });
    const otherProof = await dpopRequest();
    expect((await rejection(verifyResponse(full, { request: otherProof, binding: dpopBinding(), ictVerifier: verifier(), now }))).code).toBe('response_signature_invalid');
  });

  it('signs error responses and never echoes the token', async () => {
    const signed = await signRequest({ method: 'GET', url: `${BASE}/orders` }, { ict: aliceIct, key: alice.signer, now });
    const req = received(signed);
    const tampered = { ...req, method: 'DELETE' };
    const err = await rejection(service.authenticate(tampered));
    const res = await service.errorResponse(err, tampered);
    expect(res.status).toBe(401);
    expect(res.headers['content-type']).toEqual(['application/problem+json']);
    const text = new TextDecoder().decode(res.body);
    expect(JSON.parse(text)).toMatchObject({ code: 'signature_invalid', status: 401 });
    expect(text).not.toContain(aliceIct.split('.')[1]);
    await expect(verifyResponse(res, { request: { ...signed, method: 'DELETE' }, binding: signed.binding, ictVerifier: verifier(), now })).resolves.toMatchObject({ subject: 'orders-service' });
  });

  it('refuses to answer unsigned when asked for a signature and it has no credential', async () => {
    const bare = createOidc2Service(options());
    const req = await signedRequest();
    // Refused before the route runs, and signing is refused too should anything try it.
    expect(await rejection(bare.authenticate(req))).toMatchObject({ code: 'response_signing_unavailable', status: 501 });
    expect(await rejection(bare.authenticate(await signedRequest(), { optional: true, contexts: ['none'] }))).toMatchObject({ code: 'context_required' });
    const binding = { proof: 'http-signature' as const, nonce: 'n', signResponse: true };
    expect(await rejection(bare.signResponse({ status: 200, headers: {} }, req, binding))).toMatchObject({ code: 'response_signing_unavailable', status: 501 });
    const unsigned = await signRequest({ method: 'GET', url: `${BASE}/orders` }, { ict: aliceIct, key: alice.signer, now, signResponse: false });
    await expect(bare.authenticate(received(unsigned))).resolves.toMatchObject({ identity: { subject: 'alice' } });
  });

  it('refreshes a provided credential before its ICT expires, once for concurrent responses', async () => {
    let clock = T;
    let calls = 0;
    const svc = createOidc2Service({
      ...options({ now: () => clock, replayStore: new MemoryReplayStore() }),
      credential: async () => {
        calls++;
        return { ict: await op.mint(svcKey, { now: clock, lifetime: 300, subject: 'orders-service' }), privateKey: svcKey.privateJwk };
      },
    });
    const req = await signedRequest();
    const { identity } = await svc.authenticate(req);
    await Promise.all(Array.from({ length: 20 }, () => svc.signResponse({ status: 200, headers: {} }, req, identity!.binding)));
    expect(calls).toBe(1);
    clock = T + 200;
    await svc.signResponse({ status: 200, headers: {} }, req, identity!.binding);
    expect(calls).toBe(1);
    clock = T + 250; // within the 60 s refresh margin of exp = T + 300
    await svc.signResponse({ status: 200, headers: {} }, req, identity!.binding);
    expect(calls).toBe(2);
  });

  it('refreshes a credential shorter-lived than the margin at half its life, not on every response', async () => {
    let clock = T;
    let calls = 0;
    const svc = createOidc2Service({
      ...options({ now: () => clock }),
      credential: async () => {
        calls++;
        return { ict: await op.mint(svcKey, { now: clock, lifetime: 40, subject: 'orders-service' }), privateKey: svcKey.privateJwk };
      },
    });
    const req = await signedRequest();
    const { identity } = await svc.authenticate(req);
    for (let i = 0; i < 5; i++) await svc.signResponse({ status: 200, headers: {} }, req, identity!.binding);
    expect(calls).toBe(1);
    clock = T + 21;
    await svc.signResponse({ status: 200, headers: {} }, req, identity!.binding);
    await svc.signResponse({ status: 200, headers: {} }, req, identity!.binding);
    expect(calls).toBe(2);
  });
});
