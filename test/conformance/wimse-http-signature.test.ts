// draft-ietf-wimse-http-signature: the draft's request and response examples, -07 (editor's copy: a
// POST with a body and an ES256 responder, fixtures/wimse-http-signature/a6.json) and -06 (a GET
// covering @request-target, a6-06.json), through the RFC 9421 layer, the request authenticator
// (createAuthenticator().authenticate) and verifyResponse, with positive and negative cases.
//
// What cannot be checked, and why: the WITs in both examples are signed by an issuer key
// ("issuer-key") that the example generator (yaronf/wimse-s2s-doc, main.go) creates at random on
// every run and never prints; neither draft publishes it. So no verifier can check those WIT
// signatures. Everything else runs on the examples as published: the authenticator is configured
// with a trust domain for example.com whose key is a stand-in, and the WIT verifier it creates is
// replaced (jest.mock below) by the real one applied to a copy of each WIT re-signed with that
// stand-in key. Every other check (typ, sub and trust domain, iss, exp, iat, cnf.jwk and its alg,
// the request signature over the WIT bytes as sent, coverage, parameters, time, audience, digest,
// replay; the response signature with the responder's WIT key) runs on the bytes of the drafts.
import { decodeJwt, type JWK } from 'jose';
import {
  WIMSE_06_PROFILE,
  WIMSE_PROFILE,
  createAuthenticator,
  createWitVerifier,
  importKey,
  normalizeFields,
  parseSignature,
  parseSignatureInput,
  signRequest,
  signResponse,
  verifyContentDigest,
  verifyMessageSignature,
  verifyResponse,
  type AuthenticatorOptions,
  type HttpRequest,
  type HttpResponse,
  type RequestBinding,
} from '@oidc2/core';
import v07 from '../fixtures/wimse-http-signature/a6.json';
import v06 from '../fixtures/wimse-http-signature/a6-06.json';
import { outcome } from '../../packages/core/test/support/outcome';

// The stand-in WIT issuer key (see above): the real verifier checks a copy re-signed with it.
jest.mock('../../packages/core/src/wimse', () => {
  const actual = jest.requireActual('../../packages/core/src/wimse');
  const jose = jest.requireActual('jose');
  const standIn = jest.requireActual('../../packages/core/test/fixtures/issuer-ed25519.jwk.json');
  const resign = async (wit: string): Promise<string> => {
    const [header, payload] = wit.split('.');
    const protectedHeader = JSON.parse(Buffer.from(header!, 'base64url').toString('utf8'));
    return new jose.CompactSign(Buffer.from(payload!, 'base64url')).setProtectedHeader(protectedHeader).sign(await jose.importJWK(standIn, 'Ed25519'));
  };
  return {
    ...actual,
    createWitVerifier: (options: unknown) => {
      const real = actual.createWitVerifier(options);
      return { verify: async (wit: string) => ({ ...(await real.verify(await resign(wit))), token: wit }) };
    },
  };
});
// The stand-in's public key, published under the examples' kid, without alg (the -06 WITs say EdDSA, the -07 ones Ed25519).
const STAND_IN: JWK = { kty: 'OKP', crv: 'Ed25519', x: 'gy5F7HBEed_kjIQE6jbDlPMVXd4c44jmwBOP7uKrJJU', kid: 'issuer-key' };
const ISSUER = 'https://example.com/issuer';
const trustDomains = () => [{ trustDomain: 'example.com', issuer: ISSUER, jwks: { keys: [STAND_IN] } }];

const enc = new TextEncoder();
type Vector = typeof v07 | typeof v06;
function requestOf(vector: Vector): HttpRequest {
  const [method, target] = vector.request.startLine.split(' ');
  return { method: method!, url: target!, headers: normalizeFields(vector.request.headers as Array<[string, string]>), ...(vector.request.body ? { body: enc.encode(vector.request.body) } : {}) };
}
function responseOf(vector: Vector): HttpResponse {
  return { status: Number(vector.response.startLine.split(' ')[1]), headers: normalizeFields(vector.response.headers as Array<[string, string]>), body: enc.encode(vector.response.body) };
}
function only<T>(map: Map<string, T>): T {
  expect(map.size).toBe(1);
  return [...map.values()][0]!;
}
const publicOf = ({ d: _d, ...jwk }: JWK): JWK => jwk;

describe('draft-ietf-wimse-http-signature-07 example (a6.json)', () => {
  const request = requestOf(v07);
  const response = responseOf(v07);
  const NOW = 1789405140;
  const options = (extra: Partial<AuthenticatorOptions> = {}): AuthenticatorOptions => ({
    issuers: [{ issuer: 'https://op.example.com', jwksUri: 'https://op.example.com/jwks' }],
    audiences: ['https://svcc.example.com'],
    now: () => NOW,
    // The example's expires - created is 302 s, just over the default 300.
    maxSignatureAge: 302,
    workloads: { trustDomains: trustDomains() },
    ...extra,
  });
  const binding: RequestBinding = { proof: 'http-signature', profile: WIMSE_PROFILE, nonce: 'abcd3333', audience: 'https://svcc.example.com/inventory/cones', signResponse: true, requestFields: [] };

  describe('RFC 9421 layer', () => {
    it('verifies the request signature with the key its WIT certifies', async () => {
      const wit = decodeJwt(request.headers['workload-identity-token']![0]!);
      const jwk = (wit.cnf as { jwk: JWK }).jwk;
      const entry = only(parseSignatureInput(request.headers['signature-input']));
      expect(entry.params).toMatchObject({ tag: 'wimse-workload-to-workload', 'wimse-aud': 'https://svcc.example.com/inventory/cones', 'wimse-sign-response': true });
      const key = await importKey(jwk, 'ed25519', 'verify');
      expect(await verifyMessageSignature(request, entry, only(parseSignature(request.headers.signature)), key)).toBe(true);
      await expect(verifyContentDigest(request.headers['content-digest'], request.body!, { required: true })).resolves.toBeUndefined();
      const changed = { ...request, headers: { ...request.headers, 'content-digest': ['sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:'] } };
      expect(await verifyMessageSignature(changed, entry, only(parseSignature(request.headers.signature)), key)).toBe(false);
    });

    it('verifies the response signature, bound to the request by ;req components and wimse-req-nonce', async () => {
      const entry = only(parseSignatureInput(response.headers['signature-input']));
      expect(entry.params['wimse-req-nonce']).toBe(only(parseSignatureInput(request.headers['signature-input'])).params.nonce);
      const key = await importKey(publicOf(v07.svcC), 'ecdsa-p256-sha256', 'verify');
      const signature = only(parseSignature(response.headers.signature));
      expect(await verifyMessageSignature(response, entry, signature, key, { request })).toBe(true);
      await expect(verifyContentDigest(response.headers['content-digest'], response.body!, { required: true })).resolves.toBeUndefined();
      expect(await verifyMessageSignature(response, entry, signature, key, { request: { ...request, url: '/inventory/sprinkles' } })).toBe(false);
    });
  });

  describe('through the request authenticator', () => {
    it('authenticates svcB as a workload under the WIMSE profile', async () => {
      const identity = await createAuthenticator(options()).authenticate(request);
      expect(identity).toMatchObject({ kind: 'workload', subject: 'wimse://example.com/svcB', issuer: ISSUER, trustDomain: 'example.com', proof: 'http-signature', contexts: [], binding });
      expect(identity.publicKey).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'Ed25519' });
    });

    it('refuses it as the draft says: 400, each failure named', async () => {
      const auth = createAuthenticator(options());
      await auth.authenticate(request);
      expect(await outcome(auth.authenticate(request))).toBe('wimse_signature_invalid/400:replay_detected');
      expect(await outcome(createAuthenticator(options({ maxSignatureAge: undefined })).authenticate(request))).toBe('wimse_signature_invalid/400:signature_params_invalid');
      expect(await outcome(createAuthenticator(options({ now: () => 1789405437 + 61 })).authenticate(request))).toBe('wit_expired/400');
      expect(await outcome(createAuthenticator(options({ now: () => 1789405135 - 61 })).authenticate(request))).toBe('wit_invalid/400');
      expect(await outcome(createAuthenticator(options({ audiences: ['https://svcd.example.com'] })).authenticate(request))).toBe('wimse_signature_invalid/400:audience_mismatch');
      expect(await outcome(createAuthenticator(options()).authenticate({ ...request, body: enc.encode('{"flavor":"vanilla","amount":9}') }))).toBe('wimse_signature_invalid/400:digest_mismatch');
      expect(await outcome(createAuthenticator(options()).authenticate({ ...request, url: '/inventory/sprinkles' }))).toBe('wimse_signature_invalid/400:signature_invalid');
      expect(await outcome(createAuthenticator(options()).authenticate({ ...request, url: '/inventory/cones?all' }))).toBe('wimse_signature_invalid/400:signature_invalid');
      expect(await outcome(createAuthenticator(options({ workloads: { trustDomains: [{ trustDomain: 'example.org', jwks: { keys: [STAND_IN] } }] } })).authenticate(request))).toBe('wit_untrusted/400');
      expect(await outcome(createAuthenticator(options({ workloads: { trustDomains: trustDomains(), httpSignatureDrafts: ['06'] } })).authenticate(request))).toBe('wimse_signature_invalid/400:component_not_covered');
      expect(await outcome(createAuthenticator(options({ proofs: ['http-signature', 'wpt'] })).authenticate(request))).toBe('proof_not_accepted/401');
    });
  });

  describe('verifyResponse', () => {
    const witVerifier = () => createWitVerifier({ trustDomains: trustDomains(), now: () => NOW });

    it('verifies svcC as the service that answered, bound to the request', async () => {
      await expect(verifyResponse(response, { request, binding, witVerifier: witVerifier(), now: () => NOW })).resolves.toMatchObject({ subject: 'wimse://example.com/svcC', issuer: ISSUER, trustDomain: 'example.com' });
    });

    it('refuses it when anything it binds differs', async () => {
      const verify = (r: HttpResponse, extra: Record<string, unknown> = {}) => outcome(verifyResponse(r, { request, binding, witVerifier: witVerifier(), now: () => NOW, ...extra }));
      expect(await verify(response, { binding: { ...binding, nonce: 'abcd1111' } })).toBe('response_signature_invalid/502');
      expect(await verify(response, { request: { ...request, url: '/inventory/sprinkles' } })).toBe('response_signature_invalid/502');
      expect(await verify(response, { binding: { ...binding, profile: WIMSE_06_PROFILE } })).toBe('response_signature_invalid/502');
      expect(await verify({ ...response, status: 200 })).toBe('response_signature_invalid/502');
      expect(await verify({ ...response, body: enc.encode('{"error":"none"}') })).toBe('response_signature_invalid/502');
      expect(await verify(response, { expectedSubject: 'wimse://example.com/svcB' })).toBe('response_untrusted/502');
      // Past its expires (with the 60 s leeway) the response signature is stale.
      expect(await verify(response, { now: () => 1789405439 + 61 })).toBe('response_signature_invalid/502');
      expect(await verify({ ...response, headers: { ...response.headers, signature: undefined as never } })).toBe('response_unsigned/502');
    });

    it('is what signResponse composes with the responder key (the same signature input, but for label and nonce)', async () => {
      const key = await importKey(v07.svcC, 'ES256', 'sign');
      const token = response.headers['workload-identity-token']![0]!;
      const { 'signature-input': _i, signature: _s, 'workload-identity-token': _w, 'content-digest': _d, ...plain } = response.headers;
      const fields = await signResponse({ ...response, headers: plain }, request, binding, { ict: token, key, kind: 'wit' }, { now: () => 1789405135, expiresIn: 304 });
      const theirs = response.headers['signature-input']![0]!.replace(/^sig1=/, '');
      const ours = fields['signature-input']![0]!.replace(/^wimse=/, '');
      expect(ours.replace(/nonce="[^"]+";tag/, 'nonce="abcd4444";tag')).toBe(theirs);
      expect(fields['content-digest']).toEqual(response.headers['content-digest']);
      await expect(verifyResponse({ ...response, headers: { ...plain, ...fields } }, { request, binding, witVerifier: witVerifier(), now: () => NOW })).resolves.toBeDefined();
    });
  });
});

describe('draft-ietf-wimse-http-signature-06 example (a6-06.json)', () => {
  const request = requestOf(v06);
  const response = responseOf(v06);
  const NOW = 1785155800;
  const options = (drafts: Array<'07' | '06'>): AuthenticatorOptions => ({
    issuers: [{ issuer: 'https://op.example.com', jwksUri: 'https://op.example.com/jwks' }],
    audiences: ['https://svcb.example.com'],
    now: () => NOW,
    workloads: { trustDomains: trustDomains(), httpSignatureDrafts: drafts },
  });
  const binding: RequestBinding = { proof: 'http-signature', profile: WIMSE_06_PROFILE, nonce: 'abcd1111', audience: 'https://svcb.example.com/gimme-ice-cream', signResponse: true, requestFields: [] };

  it('signRequest reproduces the request signature byte for byte (Ed25519, the caller key is published)', async () => {
    const signed = await signRequest(
      { method: 'GET', url: 'https://svcb.example.com/gimme-ice-cream?flavor=vanilla', headers: { host: 'svcb.example.com' } },
      { wit: request.headers['workload-identity-token']![0]!, key: await importKey(v06.svcA, 'EdDSA', 'sign'), profile: WIMSE_06_PROFILE, nonce: 'abcd1111', now: () => 1785155797, expiresIn: 300 },
    );
    expect(signed.headers['signature-input']).toEqual(request.headers['signature-input']);
    expect(signed.headers.signature).toEqual(request.headers.signature);
    expect(signed.binding).toEqual(binding);
  });

  it('authenticates svcA only where the -06 form is accepted', async () => {
    const identity = await createAuthenticator(options(['07', '06'])).authenticate(request);
    expect(identity).toMatchObject({ kind: 'workload', subject: 'wimse://example.com/svcA', issuer: ISSUER, binding });
    expect(await outcome(createAuthenticator(options(['07'])).authenticate(request))).toBe('wimse_signature_invalid/400:component_not_covered');
    // @request-target covers the query: another query is another signature base.
    expect(await outcome(createAuthenticator(options(['06'])).authenticate({ ...request, url: '/gimme-ice-cream?flavor=chocolate' }))).toBe('wimse_signature_invalid/400:signature_invalid');
  });

  it('verifies the response, bound by "@request-target";req, and signResponse composes the same input', async () => {
    const witVerifier = createWitVerifier({ trustDomains: trustDomains(), now: () => NOW });
    await expect(verifyResponse(response, { request, binding, witVerifier, now: () => NOW })).resolves.toMatchObject({ subject: 'wimse://example.com/svcB' });
    expect(await outcome(verifyResponse(response, { request: { ...request, url: '/gimme-ice-cream?flavor=chocolate' }, binding, witVerifier, now: () => NOW }))).toBe('response_signature_invalid/502');
    expect(await outcome(verifyResponse(response, { request, binding: { ...binding, profile: WIMSE_PROFILE }, witVerifier, now: () => NOW }))).toBe('response_signature_invalid/502');
    const { 'signature-input': _i, signature: _s, 'workload-identity-token': token, 'content-digest': _d, connection: _c, ...plain } = response.headers;
    const fields = await signResponse({ ...response, headers: plain }, request, binding, { ict: token![0]!, key: await importKey(v06.svcB, 'EdDSA', 'sign'), kind: 'wit' }, { now: () => 1785155797, expiresIn: 302 });
    expect(fields['signature-input']![0]!.replace(/nonce="[^"]+";tag/, 'nonce="abcd2222";tag')).toBe(response.headers['signature-input']![0]);
    expect(fields['content-digest']).toEqual(response.headers['content-digest']);
  });
});
