// WIMSE workload-to-workload HTTP signatures (draft-ietf-wimse-http-signature-07, docs/protocol.md section 3a)
// through the authenticator, and the answers of a service that holds an ICT and a WIT: every
// failure a caller can cause, with its code and status, and nothing recorded before the last check.
import {
  OIDC2_PROFILE,
  WIMSE_06_PROFILE,
  WIMSE_PROFILE,
  createAuthenticator,
  createIctVerifier,
  createOidc2Service,
  createWitVerifier,
  isOidc2Error,
  signRequest,
  signResponse,
  verifyResponse,
  wptBinding,
  wimseTokenHash,
  type AuthenticatorOptions,
  type HttpRequest,
  type Oidc2Options,
  type SignRequestOptions,
  type SignableRequest,
} from '../src/index';
import { utf8 } from '../src/lib/base64';
import { signMessage } from '../src/rfc9421/index';
import { newIssuer, newKey, type TestIssuer, type TestKey } from '../../../test/support/credentials';
import { newTrustDomain, type TestTrustDomain } from './support/wit';
import { CountingStore } from './proofs/support';
import { SignJWT, importJWK } from 'jose';
import { outcome } from './support/outcome';

const T = 1_790_000_000;
const now = () => T;
const BASE = 'https://inventory.example.com';

let op: TestIssuer;
let td: TestTrustDomain;
let other: TestTrustDomain;
let caller: TestKey;
let wit: string;
let userKey: TestKey;
let ict: string;
let svcKey: TestKey;
let svcWitKey: TestKey;
let svcIct: string;
let svcWit: string;

beforeAll(async () => {
  op = await newIssuer('https://op.example.com');
  td = await newTrustDomain('workloads.example', { issuer: 'https://wit-issuer.workloads.example' });
  other = await newTrustDomain('other.example');
  caller = await newKey('Ed25519');
  wit = await td.mint(caller, { now: T - 10, subject: 'spiffe://workloads.example/billing' });
  userKey = await newKey('ES256');
  ict = await op.mint(userKey, { now: T - 10, subject: 'alice' });
  svcKey = await newKey('ES256');
  svcIct = await op.mint(svcKey, { now: T - 10, subject: 'inventory', lifetime: 3600 });
  svcWitKey = await newKey('ES256');
  svcWit = await td.mint(svcWitKey, { now: T - 10, subject: 'spiffe://workloads.example/inventory', lifetime: 3600 });
});

const trustDomains = () => [{ trustDomain: td.trustDomain, issuer: td.issuer, jwks: td.jwks }];

function options(extra: Partial<AuthenticatorOptions> = {}): AuthenticatorOptions {
  return {
    issuers: [{ issuer: op.issuer, jwks: op.jwks }],
    audiences: [BASE],
    now,
    workloads: { trustDomains: trustDomains() },
    ...extra,
  };
}

function sign(request: Partial<SignableRequest> = {}, init: Partial<SignRequestOptions> = {}) {
  return signRequest({ method: 'GET', url: `${BASE}/cones`, ...request }, { wit, key: caller.signer, now, ...init } as SignRequestOptions);
}


/** Re-signs a request's Signature-Input entry with changed components or parameters. */
async function resigned(message: HttpRequest, components: string[], params: Record<string, string | number | boolean>, key = caller.signer): Promise<HttpRequest> {
  const headers = { ...message.headers };
  delete headers['signature-input'];
  delete headers.signature;
  const signed = await signMessage({ ...message, headers }, { label: 'wimse', components, params, key });
  return { ...message, headers: { ...headers, 'signature-input': [signed.signatureInput], signature: [signed.signature] } };
}

const params = (extra: Record<string, string | number | boolean> = {}) => ({ created: T, expires: T + 60, nonce: 'n-1', tag: WIMSE_PROFILE.tag, 'wimse-aud': `${BASE}/cones`, ...extra });

describe('a WIMSE workload signature', () => {
  it('authenticates the workload: kind, trust domain, issuer, and a binding under the WIMSE profile', async () => {
    const signed = await sign({ method: 'POST', headers: { 'content-type': 'application/json' }, body: utf8('{"flavor":"vanilla"}') });
    expect(signed.headers['workload-identity-token']).toEqual([wit]);
    expect(signed.headers['signature-input']![0]).toMatch(/^wimse=\("@method" "@path" "@query" "workload-identity-token" "content-type" "content-digest"\);.*tag="wimse-workload-to-workload";wimse-aud="https:\/\/inventory\.example\.com\/cones";wimse-sign-response$/);
    const identity = await createAuthenticator(options()).authenticate({ ...signed, url: '/cones' });
    expect(identity).toMatchObject({
      kind: 'workload',
      subject: 'spiffe://workloads.example/billing',
      issuer: td.issuer,
      trustDomain: 'workloads.example',
      contexts: [],
      proof: 'http-signature',
      thumbprint: caller.thumbprint,
      binding: { proof: 'http-signature', profile: WIMSE_PROFILE, nonce: signed.nonce, audience: `${BASE}/cones`, signResponse: true },
    });
  });

  it('authenticates a WIT seen before from the verifier cache, rechecking its expiry and the signature under its key', async () => {
    let t = T;
    const auth = createAuthenticator(options({ now: () => t }));
    const first = await auth.authenticate({ ...(await sign()), url: '/cones' });
    const second = await auth.authenticate({ ...(await sign()), url: '/cones' });
    expect(second).toMatchObject({ kind: 'workload', subject: first.subject, thumbprint: first.thumbprint });
    // The cached WIT's key still decides: a signature by another key over the same WIT fails.
    const other = await newKey('Ed25519');
    expect(await outcome(auth.authenticate({ ...(await sign({}, { key: other.signer })), url: '/cones' }))).toBe('wimse_signature_invalid/400:signature_invalid');
    // Past the WIT's exp (plus the tolerance), the cached result is refused as a fresh one would be.
    const wire = await sign({}, { now: () => T });
    t = T + 7200;
    expect(await outcome(auth.authenticate({ ...wire, url: '/cones' }))).toBe('wit_expired/400');
  });

  it("takes a nonce of any length the draft allows, recorded per sender so two workloads' nonces never collide", async () => {
    const store = new CountingStore();
    const auth = createAuthenticator(options({ replayStore: store }));
    const other = await newKey('ES256');
    const otherWit = await td.mint(other, { now: T - 10, subject: 'spiffe://workloads.example/shipping' });
    await expect(auth.authenticate(await sign({}, { nonce: 'abcd3333' }))).resolves.toMatchObject({ subject: 'spiffe://workloads.example/billing' });
    await expect(auth.authenticate(await sign({}, { nonce: 'abcd3333', wit: otherWit, key: other.signer }))).resolves.toMatchObject({ subject: 'spiffe://workloads.example/shipping' });
    expect(await outcome(auth.authenticate(await sign({}, { nonce: 'abcd3333' })))).toBe('wimse_signature_invalid/400:replay_detected');
    expect(store.recorded).toBe(3);
    // The OIDC² profile keeps its 128-bit minimum.
    await expect(signRequest({ method: 'GET', url: `${BASE}/cones` }, { ict, key: userKey.signer, nonce: 'abcd3333' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    const short = await resigned({ ...(await signRequest({ method: 'GET', url: `${BASE}/cones` }, { ict, key: userKey.signer, now })) }, [...OIDC2_PROFILE.requiredComponents], {
      created: T,
      expires: T + 60,
      nonce: 'abcd3333',
      tag: OIDC2_PROFILE.tag,
      'oidc2-aud': `${BASE}/cones`,
    }, userKey.signer);
    expect(await outcome(auth.authenticate(short))).toBe('signature_params_invalid/401');
  });

  it('answers every signature failure with 400 wimse_signature_invalid and its reason, recording nothing', async () => {
    const store = new CountingStore();
    const auth = createAuthenticator(options({ replayStore: store }));
    const base = await sign();
    const cases: Array<[string, HttpRequest | Promise<HttpRequest>]> = [
      ['signature_missing', { ...base, headers: { 'workload-identity-token': [wit] } }],
      ['signature_missing', { ...base, headers: { ...base.headers, signature: ['other=:AAAA:'] } }],
      ['component_not_covered', resigned(base, ['@method', '@path', 'workload-identity-token'], params())],
      ['component_not_covered', resigned(base, ['@method', '@request-target', 'workload-identity-token'], params())],
      ['signature_params_invalid', resigned(base, [...WIMSE_PROFILE.requiredComponents], params({ keyid: 'k' }))],
      ['signature_params_invalid', resigned(base, [...WIMSE_PROFILE.requiredComponents], params({ nonce: 'x'.repeat(257) }))],
      ['signature_params_invalid', resigned(base, [...WIMSE_PROFILE.requiredComponents], params({ nonce: '' }))],
      ['signature_params_invalid', resigned(base, [...WIMSE_PROFILE.requiredComponents], params({ expires: T + 301 }))],
      ['signature_params_invalid', resigned(base, [...WIMSE_PROFILE.requiredComponents], { created: T, expires: T + 60, nonce: 'n', tag: WIMSE_PROFILE.tag })],
      ['signature_params_invalid', resigned(base, [...WIMSE_PROFILE.requiredComponents], params({ 'wimse-sign-response': 'yes' }))],
      ['signature_invalid', { ...base, method: 'DELETE' }],
      ['signature_invalid', resigned(base, [...WIMSE_PROFILE.requiredComponents], params(), userKey.signer)],
      ['signature_expired', sign({}, { now: () => T - 600 })],
      ['signature_not_yet_valid', sign({}, { now: () => T + 600 })],
      ['audience_mismatch', sign({}, { audience: 'https://elsewhere.example.com/cones' })],
      ['digest_mismatch', sign({ method: 'POST', body: utf8('{"a":1}') }).then((m) => ({ ...m, body: utf8('{"a":2}') }))],
      ['digest_missing', resigned({ ...base, method: 'POST', body: utf8('{"a":1}') }, [...WIMSE_PROFILE.requiredComponents], params())],
    ];
    for (const [reason, request] of cases) {
      expect(`${reason} -> ${await outcome(auth.authenticate(await request))}`).toBe(`${reason} -> wimse_signature_invalid/400:${reason}`);
    }
    // Failures that were 400 already keep their code.
    const twice = { ...base, headers: { ...base.headers, 'signature-input': [base.headers['signature-input']![0]!, base.headers['signature-input']![0]!.replace(/^wimse=/, 'b=')] } };
    expect(await outcome(auth.authenticate(twice))).toBe('signature_ambiguous/400');
    expect(await outcome(auth.authenticate({ ...base, headers: { ...base.headers, 'signature-input': ['wimse=('] } }))).toBe('request_malformed/400');
    expect(store.recorded).toBe(0);
    // No 400 carries a challenge: the draft answers WIMSE failures without WWW-Authenticate.
    const error = await auth.authenticate({ ...base, method: 'PUT' }).catch((e: unknown) => e);
    expect(isOidc2Error(error) && error.headers['www-authenticate']).toBeFalsy();
    expect(isOidc2Error(error) && error.toProblem()).toMatchObject({ status: 400, code: 'wimse_signature_invalid', reason: 'signature_invalid' });
  });

  it('refuses the WIT with 400 wit_*', async () => {
    const auth = createAuthenticator(options());
    const rogue = await other.mint(caller, { now: T - 10, subject: 'spiffe://other.example/billing' });
    const expired = await td.mint(caller, { now: T - 7200, lifetime: 600 });
    const alien = await td.mint(caller, { now: T - 10, claims: { iss: 'https://someone-else.example' } });
    const twice = await sign();
    twice.headers['workload-identity-token'] = [wit, wit];
    expect(await outcome(auth.authenticate(await sign({}, { wit: rogue })))).toBe('wit_untrusted/400');
    expect(await outcome(auth.authenticate(await sign({}, { wit: alien })))).toBe('wit_untrusted/400');
    expect(await outcome(auth.authenticate(await sign({}, { wit: expired })))).toBe('wit_expired/400');
    expect(await outcome(auth.authenticate(await sign({}, { wit: `${wit}x` })))).toBe('wit_invalid/400');
    expect(await outcome(auth.authenticate(twice))).toBe('request_malformed/400');
    const noWit = await sign();
    delete noWit.headers['workload-identity-token'];
    expect(await outcome(auth.authenticate(noWit))).toBe('wit_missing/400');
  });

  it('is refused where not accepted, and named in the 401 challenge where it is', async () => {
    const signed = await sign();
    expect(await outcome(createAuthenticator(options({ workloads: undefined })).authenticate(signed))).toBe('proof_not_accepted/401');
    expect(await outcome(createAuthenticator(options({ proofs: ['http-signature', 'wpt'] })).authenticate(signed))).toBe('proof_not_accepted/401');
    const error = await createAuthenticator(options()).authenticate({ method: 'GET', url: '/cones', headers: {} }).catch((e: unknown) => e);
    expect(isOidc2Error(error) && error.headers['accept-signature']).toBe(
      'sig=("@method" "@path" "@query" "identity-certification-token");tag="oidc2-ict", wimse=("@method" "@path" "@query" "workload-identity-token");tag="wimse-workload-to-workload"',
    );
    const workloadsOnly = await createAuthenticator(options({ proofs: ['wimse-signature'] })).authenticate({ method: 'GET', url: '/cones', headers: {} }).catch((e: unknown) => e);
    expect(isOidc2Error(workloadsOnly) && workloadsOnly.headers['accept-signature']).toBe('wimse=("@method" "@path" "@query" "workload-identity-token");tag="wimse-workload-to-workload"');
    // An ICT caller of a workloads-only service.
    const user = await signRequest({ method: 'GET', url: `${BASE}/cones` }, { ict, key: userKey.signer, now });
    expect(await outcome(createAuthenticator(options({ proofs: ['wimse-signature'] })).authenticate(user))).toBe('proof_not_accepted/401');
  });

  it('validates the options once', () => {
    expect(() => createAuthenticator(options({ workloads: undefined, proofs: ['wimse-signature'] }))).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    for (const drafts of [[], ['08'], ['07', '07'], '07']) {
      expect(() => createAuthenticator(options({ workloads: { trustDomains: trustDomains(), httpSignatureDrafts: drafts as never } }))).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    }
    expect(() => createAuthenticator(options({ proofs: ['wimse' as never] }))).toThrow(/wimse-signature/);
  });
});

describe('the -06 form (@request-target) behind httpSignatureDrafts', () => {
  it('is accepted only when enabled, and the response covers "@request-target";req', async () => {
    const signed = await sign({ url: `${BASE}/cones?flavor=vanilla` }, { profile: WIMSE_06_PROFILE });
    expect(signed.headers['signature-input']![0]).toMatch(/^wimse=\("@method" "@request-target" "workload-identity-token"\);/);
    expect(signed.binding.profile).toBe(WIMSE_06_PROFILE);
    expect(await outcome(createAuthenticator(options()).authenticate(signed))).toBe('wimse_signature_invalid/400:component_not_covered');
    const both = createAuthenticator(options({ workloads: { trustDomains: trustDomains(), httpSignatureDrafts: ['07', '06'] } }));
    const identity = await both.authenticate(signed);
    expect(identity.binding.profile).toBe(WIMSE_06_PROFILE);
    // -07 requests still pass a service that takes both.
    expect((await both.authenticate(await sign())).binding.profile).toBe(WIMSE_PROFILE);
    const response = { status: 200, headers: { 'content-type': ['text/plain'] }, body: utf8('ok') };
    const fields = await signResponse(response, signed, identity.binding, { ict: svcWit, key: svcWitKey.signer, kind: 'wit' }, { now });
    expect(fields['signature-input']![0]).toMatch(/^wimse=\("@status" "workload-identity-token" "content-type" "content-digest" "@method";req "@request-target";req\)/);
    const witVerifier = createWitVerifier({ trustDomains: trustDomains(), now });
    await expect(verifyResponse({ ...response, headers: { ...response.headers, ...fields } }, { request: signed, binding: signed.binding, witVerifier, now })).resolves.toMatchObject({ subject: 'spiffe://workloads.example/inventory' });
  });
});

describe('signRequest under the WIMSE profile', () => {
  it('takes exactly one of ict and wit, and a profile of that token', async () => {
    const request = { method: 'GET', url: `${BASE}/x` };
    await expect(signRequest(request, { key: caller.signer } as SignRequestOptions)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(signRequest(request, { ict, wit, key: caller.signer })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(signRequest(request, { wit, key: caller.signer, profile: OIDC2_PROFILE })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(signRequest(request, { ict, key: userKey.signer, profile: WIMSE_PROFILE })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(signRequest(request, { wit: '', key: caller.signer })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(signRequest(request, { wit, key: caller.signer, nonce: 'x'.repeat(257) })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    const signed = await signRequest(request, { wit, key: caller.signer, signResponse: false });
    expect(signed.headers['signature-input']![0]).not.toContain('wimse-sign-response');
    expect(signed.binding).toMatchObject({ profile: WIMSE_PROFILE, signResponse: false });
  });
});

describe('answers to workloads', () => {
  const witVerifier = () => createWitVerifier({ trustDomains: trustDomains(), now });
  const ictVerifier = () => createIctVerifier({ issuers: [{ issuer: op.issuer, jwks: op.jwks }], now });
  const credentials = (): Oidc2Options['credentials'] => ({ ict: { ict: svcIct, privateKey: svcKey.privateJwk }, wit: { wit: svcWit, privateKey: svcWitKey.privateJwk } });
  function service(extra: Partial<Oidc2Options> = {}) {
    return createOidc2Service({ ...options(), credentials: credentials(), ...extra });
  }
  async function answer(svc: ReturnType<typeof service>, request: HttpRequest, body = '{"cones":3}') {
    const exchange = svc.exchange({ ...request, body: undefined, url: new URL(request.url, BASE).pathname });
    const admission = await exchange.admit(request.body);
    if (admission.answered) return { ...admission.response, body: admission.response.body as Uint8Array | undefined };
    const sent = await exchange.respond({ status: 200, headers: { 'content-type': ['application/json'] }, body: utf8(body) });
    return { ...sent, body: sent.body as Uint8Array | undefined };
  }

  it("signs with the service's WIT under the WIMSE profile, bound to the request nonce", async () => {
    const signed = await sign();
    const response = await answer(service(), signed);
    expect(response.status).toBe(200);
    expect(response.headers['workload-identity-token']).toEqual([svcWit]);
    expect(response.headers['identity-certification-token']).toBeUndefined();
    expect(response.headers['signature-input']![0]).toMatch(
      new RegExp(`^wimse=\\("@status" "workload-identity-token" "content-type" "content-digest" "@method";req "@path";req "@query";req\\);created=${T};expires=${T + 60};nonce="[^"]+";tag="wimse-workload-to-workload";wimse-req-nonce="${signed.nonce}"$`),
    );
    const service_ = await verifyResponse(response, { request: signed, binding: signed.binding, witVerifier: witVerifier(), now });
    expect(service_).toMatchObject({ subject: 'spiffe://workloads.example/inventory', issuer: td.issuer, trustDomain: 'workloads.example', contexts: [] });
    await expect(verifyResponse(response, { request: signed, binding: signed.binding, witVerifier: witVerifier(), now, expectedSubject: 'spiffe://workloads.example/other' })).rejects.toMatchObject({ code: 'response_untrusted' });
    await expect(verifyResponse(response, { request: signed, binding: { ...signed.binding, nonce: 'other' }, witVerifier: witVerifier(), now })).rejects.toMatchObject({ code: 'response_signature_invalid' });
    await expect(verifyResponse(response, { request: signed, binding: signed.binding, witVerifier: createWitVerifier({ trustDomains: [{ trustDomain: other.trustDomain, jwks: other.jwks }], now }), now })).rejects.toMatchObject({ code: 'response_untrusted' });
    await expect(verifyResponse({ ...response, body: utf8('{"cones":4}') }, { request: signed, binding: signed.binding, witVerifier: witVerifier(), now })).rejects.toMatchObject({ code: 'response_signature_invalid' });
    // An ICT-signed answer is no answer under the WIMSE profile, and the verifier of the profile is required.
    await expect(verifyResponse(response, { request: signed, binding: signed.binding, ictVerifier: ictVerifier(), now })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    await expect(verifyResponse({ ...response, headers: { ...response.headers, 'workload-identity-token': undefined as never } }, { request: signed, binding: signed.binding, witVerifier: witVerifier(), now })).rejects.toMatchObject({ code: 'response_unsigned' });
  });

  it('accepts a bodyless answer of a peer without Content-Digest (the draft asks for one only with a body), never a body without one', async () => {
    const signed = await sign();
    const headers = { 'workload-identity-token': [svcWit] };
    const components = ['@status', 'workload-identity-token', '"@method";req', '"@path";req', '"@query";req'];
    const params = { created: T, expires: T + 60, nonce: 'r-1', tag: WIMSE_PROFILE.tag, 'wimse-req-nonce': signed.nonce };
    const peer = async (status: number, body?: Uint8Array) => {
      const message = { status, headers, ...(body ? { body } : {}) };
      const sig = await signMessage(message, { label: 'sig1', components, params, key: svcWitKey.signer, request: signed });
      return { ...message, headers: { ...headers, 'signature-input': [sig.signatureInput], signature: [sig.signature] } };
    };
    await expect(verifyResponse(await peer(204), { request: signed, binding: signed.binding, witVerifier: witVerifier(), now })).resolves.toMatchObject({ subject: 'spiffe://workloads.example/inventory' });
    await expect(verifyResponse(await peer(200, utf8('cones')), { request: signed, binding: signed.binding, witVerifier: witVerifier(), now })).rejects.toMatchObject({ code: 'response_signature_invalid' });
  });

  it('answers users with the ICT and workloads with the WIT from one service', async () => {
    const svc = service();
    const user = await signRequest({ method: 'GET', url: `${BASE}/cones` }, { ict, key: userKey.signer, now });
    const toUser = await answer(svc, user);
    expect(toUser.headers['identity-certification-token']).toEqual([svcIct]);
    await expect(verifyResponse(toUser, { request: user, binding: user.binding, ictVerifier: ictVerifier(), now })).resolves.toMatchObject({ subject: 'inventory' });
    const workload = await sign();
    const toWorkload = await answer(svc, workload);
    expect(toWorkload.headers['workload-identity-token']).toEqual([svcWit]);
    // Error responses are signed for the caller's profile too.
    const refused = await answer(svc, { ...(await sign()), method: 'PUT' });
    expect(refused.status).toBe(400);
    await expect(verifyResponse(refused, { request: { ...workload, method: 'PUT' }, binding: { ...workload.binding, nonce: refused.headers['signature-input']![0]!.match(/wimse-req-nonce="([^"]+)"/)![1] }, witVerifier: witVerifier(), now })).resolves.toBeDefined();
  });

  it('signs WPT answers with the WIT (covering "authorization";req), or with the ICT when the service has no WIT', async () => {
    const wpt = await new SignJWT({ aud: `${BASE}/cones`, exp: T + 60, jti: 'wpt-1', wth: await wimseTokenHash(wit) })
      .setProtectedHeader({ alg: 'Ed25519', typ: 'wpt+jwt' })
      .sign(await importJWK(caller.privateJwk, 'Ed25519'));
    const request: HttpRequest = { method: 'GET', url: `${BASE}/cones`, headers: { 'workload-identity-token': [wit], authorization: [`WPT ${wpt}`] } };
    const withWit = await answer(service(), request);
    expect(withWit.headers['signature-input']![0]).toContain('"authorization";req');
    expect(withWit.headers['signature-input']![0]).not.toContain('wimse-req-nonce');
    await expect(verifyResponse(withWit, { request, binding: wptBinding(), witVerifier: witVerifier(), now })).resolves.toMatchObject({ subject: 'spiffe://workloads.example/inventory' });
    const wpt2 = await new SignJWT({ aud: `${BASE}/cones`, exp: T + 60, jti: 'wpt-2', wth: await wimseTokenHash(wit) })
      .setProtectedHeader({ alg: 'Ed25519', typ: 'wpt+jwt' })
      .sign(await importJWK(caller.privateJwk, 'Ed25519'));
    const request2 = { ...request, headers: { ...request.headers, authorization: [`WPT ${wpt2}`] } };
    const fallback = await answer(service({ credentials: { ict: { ict: svcIct, privateKey: svcKey.privateJwk } } }), request2);
    expect(fallback.status).toBe(200);
    expect(fallback.headers['identity-certification-token']).toEqual([svcIct]);
    await expect(verifyResponse(fallback, { request: request2, binding: wptBinding(OIDC2_PROFILE), ictVerifier: ictVerifier(), now })).resolves.toMatchObject({ subject: 'inventory' });
  });

  it('refuses a caller who asked for a signed response when the service has no credential of its profile (501)', async () => {
    const ictOnly = service({ credentials: { ict: { ict: svcIct, privateKey: svcKey.privateJwk } } });
    const asked = await answer(ictOnly, await sign());
    expect(asked.status).toBe(501);
    expect(JSON.parse(new TextDecoder().decode(asked.body))).toMatchObject({ code: 'response_signing_unavailable' });
    // Nobody asked: answered unsigned.
    const notAsked = await answer(ictOnly, await sign({}, { signResponse: false }));
    expect(notAsked.status).toBe(200);
    expect(notAsked.headers.signature).toBeUndefined();
    // And the other way round: a WIT-only service and a user.
    const witOnly = service({ credentials: { wit: { wit: svcWit, privateKey: svcWitKey.privateJwk } } });
    const user = await signRequest({ method: 'GET', url: `${BASE}/cones` }, { ict, key: userKey.signer, now });
    expect((await answer(witOnly, user)).status).toBe(501);
    const user2 = await signRequest({ method: 'GET', url: `${BASE}/cones` }, { ict, key: userKey.signer, now });
    expect(await outcome(witOnly.authenticate({ ...user2, url: '/cones' }))).toBe('response_signing_unavailable/501');
    // A request naming no proof is refused with a problem signed by the WIT.
    const anonymous = await answer(witOnly, { method: 'GET', url: `${BASE}/cones`, headers: {} });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers['workload-identity-token']).toEqual([svcWit]);
  });

  it('validates the credential set once, at construction', () => {
    const base = options();
    const wit_ = { wit: svcWit, privateKey: svcWitKey.privateJwk };
    const bad = (extra: Record<string, unknown>) => () => createOidc2Service({ ...base, ...extra } as Oidc2Options);
    expect(bad({ credentials: { wit: wit_, jwt: wit_ } })).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_OPTION' }));
    expect(bad({ credentials: {} })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(bad({ credentials: { wit: { ict: svcWit, privateKey: svcWitKey.privateJwk } } })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(bad({ credentials: { wit: { ...wit_, kid: 'x' } } })).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_OPTION' }));
    expect(bad({ credential: { ict: svcIct, privateKey: svcKey.privateJwk }, credentials: { wit: wit_ } })).toThrow(/exclude each other/);
    expect(bad({ credentials: 'x' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    // The old form is still the ICT credential.
    expect(createOidc2Service({ ...base, credential: { ict: svcIct, privateKey: svcKey.privateJwk } }).signsResponses).toBe(true);
  });

  it('renews a WIT from its provider before it expires, single-flight', async () => {
    let t = T;
    const minted: string[] = [];
    const svc = createOidc2Service({
      ...options({ now: () => t }),
      credentials: {
        wit: async () => {
          const token = await td.mint(svcWitKey, { now: t, lifetime: 120, subject: 'spiffe://workloads.example/inventory' });
          minted.push(token);
          return { wit: token, privateKey: svcWitKey.privateJwk };
        },
      },
    });
    const at = async () => {
      const signed = await signRequest({ method: 'GET', url: `${BASE}/cones` }, { wit: await td.mint(caller, { now: t }), key: caller.signer, now: () => t });
      const [a, b] = await Promise.all([answer(svc, signed), answer(svc, { ...signed })]);
      expect(a.status).toBe(200);
      expect(b.status).toBe(400); // the same signature twice: a replay
      return a.headers['workload-identity-token']![0];
    };
    const first = await at();
    t += 30;
    expect(await at()).toBe(first);
    t += 40; // inside the 60 s margin
    expect(await at()).not.toBe(first);
    expect(minted).toHaveLength(2);
  });

  it('refuses a WIT credential whose key names no algorithm, or another than its cnf.jwk', async () => {
    const loose = await new SignJWT({ sub: 'spiffe://workloads.example/x', exp: T + 600, cnf: { jwk: svcWitKey.publicJwk } }).setProtectedHeader({ alg: 'ES256', typ: 'wit+jwt' }).sign(await importJWK(td.key.privateJwk, 'ES256'));
    const svc = service({ credentials: { wit: { wit: loose, privateKey: svcWitKey.privateJwk } } });
    expect((await answer(svc, await sign())).status).toBe(501);
    const svc2 = service({ credentials: { wit: { wit: svcWit, privateKey: svcWitKey.privateJwk, alg: 'ES384' } } });
    expect((await answer(svc2, await sign())).status).toBe(501);
  });
});
