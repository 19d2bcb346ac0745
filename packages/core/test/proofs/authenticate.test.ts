// Through the authenticator: beforeRecord for each proof (nothing recorded when it throws), the
// response bound through the request's binding, and unknown option keys refused with their path.
import {
  OIDC2_PROFILE,
  createAuthenticator,
  createDpopNonces,
  createDpopProof,
  createIctVerifier,
  createWitVerifier,
  dpopBinding,
  isOidc2Error,
  normalizeFields,
  signRequest,
  signResponse,
  verifyContentDigest,
  verifyDpopProof,
  verifyResponse,
  verifyWpt,
  wptBinding,
  WIT_HEADER,
  type AuthenticatorOptions,
  type HttpRequest,
} from '@oidc2/core';
import { utf8 } from '../../src/lib/base64';
import { newIssuer, newKey, type TestIssuer, type TestKey } from '../../../../test/support/credentials';
import vectors from '../fixtures/wimse/vectors.json';
import { CountingStore } from './support';

const T = 1745509800;
const BASE = 'https://workload.example.com';
const { d: _d, ...issuerPublic } = vectors.issuerKey as Record<string, string>;
let op: TestIssuer;
let key: TestKey;
let ict: string;
let service: TestKey;
let serviceIct: string;

beforeAll(async () => {
  op = await newIssuer('https://op.example.com');
  key = await newKey('ES256');
  ict = await op.mint(key, { now: T - 10, subject: 'alice' });
  service = await newKey('ES256');
  serviceIct = await op.mint(service, { now: T - 10, subject: 'svc' });
});

function options(replayStore: CountingStore, extra: Partial<AuthenticatorOptions> = {}): AuthenticatorOptions {
  return {
    issuers: [{ issuer: op.issuer, jwks: op.jwks }],
    audiences: [BASE],
    now: () => T,
    replayStore,
    workloads: { trustDomains: [{ trustDomain: 'example.com', jwks: { keys: [issuerPublic] } }] },
    ...extra,
  };
}

async function signatureRequest(): Promise<HttpRequest> {
  const s = await signRequest({ method: 'POST', url: `${BASE}/path` }, { ict, key: key.signer, now: () => T });
  return { method: 'POST', url: '/path', headers: s.headers };
}
async function dpopRequest(): Promise<HttpRequest> {
  const proof = await createDpopProof({ method: 'POST', url: `${BASE}/path`, key: key.signer, jwk: key.publicJwk, accessToken: ict, now: () => T });
  return { method: 'POST', url: '/path', headers: { authorization: [`DPoP ${ict}`], dpop: [proof] } };
}
async function wptRequest(): Promise<HttpRequest> {
  return {
    method: 'POST',
    url: '/path',
    headers: normalizeFields({ 'content-type': 'application/json', authorization: `WPT ${vectors.wpt}`, [WIT_HEADER]: vectors.wit }),
    body: utf8('{"do stuff":"please"}'),
  };
}

function thrown(fn: () => unknown): { code?: string; message: string } {
  try {
    fn();
  } catch (error) {
    return error as { code?: string; message: string };
  }
  throw new Error('did not throw');
}

describe('authenticate(request, { beforeRecord })', () => {
  it.each([
    ['http-signature', signatureRequest],
    ['dpop', dpopRequest],
    ['wpt', wptRequest],
  ] as const)('%s: runs before the record, and a refusal records nothing', async (proof, make) => {
    const store = new CountingStore();
    const auth = createAuthenticator(options(store));
    const request = await make();
    const order: string[] = [];
    const refusal = auth.authenticate(request, {
      beforeRecord: (identity) => {
        order.push(`hook:${identity.proof}:${store.recorded}`);
        throw new Error('refused');
      },
    });
    await expect(refusal).rejects.toThrow('refused');
    expect(order).toEqual([`hook:${proof}:0`]);
    expect(store.recorded).toBe(0);
    const identity = await auth.authenticate(request, { beforeRecord: async () => void order.push('ok') });
    expect(identity.proof).toBe(proof);
    expect(store.recorded).toBe(1);
  });

  it('decorates a 401 thrown by the hook with the challenge', async () => {
    const auth = createAuthenticator(options(new CountingStore()));
    const { Oidc2Error } = await import('@oidc2/core');
    const error = await auth.authenticate(await signatureRequest(), { beforeRecord: () => Promise.reject(new Oidc2Error('ict_invalid', 'no session')) }).catch((e: unknown) => e);
    expect(isOidc2Error(error) && error.code).toBe('ict_invalid');
    expect((error as { headers: Record<string, string> }).headers['www-authenticate']).toContain('Oidc2');
  });
});

describe('verifyResponse binds through the binding', () => {
  const credential = async () => ({ ict: serviceIct, key: service.signer });
  const verifier = () => createIctVerifier({ issuers: [{ issuer: op.issuer, jwks: op.jwks }], now: () => T });
  async function code(p: Promise<unknown>): Promise<string> {
    try {
      await p;
    } catch (error) {
      if (isOidc2Error(error)) return error.code;
      throw error;
    }
    return 'accepted';
  }

  it('a DPoP binding requires "dpop";req, a WPT binding "authorization";req', async () => {
    const request = await dpopRequest();
    const response = { status: 200, headers: {}, body: utf8('ok') };
    const asDpop = { ...response, headers: await signResponse(response, request, dpopBinding(), await credential(), { now: () => T }) };
    const unbound = { ...response, headers: await signResponse(response, request, { proof: 'http-signature', signResponse: false }, await credential(), { now: () => T }) };
    expect(asDpop.headers['signature-input']![0]).toContain('"dpop";req');
    expect(await code(verifyResponse(asDpop, { request, binding: dpopBinding(), ictVerifier: verifier(), now: () => T }))).toBe('accepted');
    expect(await code(verifyResponse(unbound, { request, binding: dpopBinding(), ictVerifier: verifier(), now: () => T }))).toBe('response_signature_invalid');
    expect(await code(verifyResponse(asDpop, { request, binding: wptBinding(OIDC2_PROFILE), ictVerifier: verifier(), now: () => T }))).toBe('response_signature_invalid');
  });

  it('a signature binding requires its nonce in the profile parameter', async () => {
    const signed = await signRequest({ method: 'GET', url: `${BASE}/a` }, { ict, key: key.signer, now: () => T });
    expect(signed.binding).toEqual({ proof: 'http-signature', profile: OIDC2_PROFILE, nonce: signed.nonce, audience: `${BASE}/a`, signResponse: true, requestFields: [] });
    const response = { status: 200, headers: {}, body: utf8('ok') };
    const full = { ...response, headers: await signResponse(response, signed, signed.binding, await credential(), { now: () => T }) };
    expect(full.headers['signature-input']![0]).toContain(`${OIDC2_PROFILE.requestNonceParam}="${signed.nonce}"`);
    expect(await code(verifyResponse(full, { request: signed, binding: signed.binding, ictVerifier: verifier(), now: () => T }))).toBe('accepted');
    expect(await code(verifyResponse(full, { request: signed, binding: { ...signed.binding, nonce: 'x'.repeat(22) }, ictVerifier: verifier(), now: () => T }))).toBe(
      'response_signature_invalid',
    );
  });

  it('refuses a missing binding as an argument error', async () => {
    const request = await dpopRequest();
    await expect(verifyResponse({ status: 200, headers: {} }, { request, ictVerifier: verifier() } as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
  });
});

describe('unknown option keys are refused with their path', () => {
  const unknown = (fn: () => unknown, path: RegExp) => {
    const error = thrown(fn);
    expect(error.code).toBe('ERR_UNKNOWN_OPTION');
    expect(error.message).toMatch(path);
  };

  it('at construction', () => {
    const base = options(new CountingStore());
    unknown(() => createAuthenticator({ ...base, clockTolerence: 5 } as never), /options\.clockTolerence\b/);
    unknown(() => createAuthenticator({ ...base, workloads: { trustDomain: [] } } as never), /options\.workloads\.trustDomain\b/);
    unknown(() => createAuthenticator({ ...base, workloads: { trustDomains: [{ trustDomain: 'example.com', jwks: { keys: [issuerPublic] }, jwksUrl: 'x' }] } } as never), /options\.workloads\.trustDomains\[0\]\.jwksUrl\b/);
    unknown(() => createAuthenticator({ ...base, issuers: [{ issuer: op.issuer, jwks: op.jwks, audience: 'x' }] } as never), /options\.issuers\[0\]\.audience\b/);
    unknown(() => createAuthenticator({ ...base, transactionTokens: { trustDomain: 'd', jwksUri: 'https://tts.example/jwks', requried: true } } as never), /options\.transactionTokens\.requried\b/);
    unknown(() => createAuthenticator({ ...base, dpopNonces: { lifetime: 10, secrets: [] } } as never), /options\.dpopNonces\.secrets\b/);
    unknown(() => createDpopNonces({ lifetim: 5 } as never), /options\.lifetim\b/);
    unknown(() => createIctVerifier({ issuers: [{ issuer: op.issuer, jwks: op.jwks }], cachesize: 1 } as never), /options\.cachesize\b/);
    unknown(() => createIctVerifier({ issuers: [{ issuer: 'https://op.example.com' }], keyFetch: { timeOut: 1 } } as never), /options\.keyFetch\.timeOut\b/);
    unknown(() => createWitVerifier({ trustDomains: [{ trustDomain: 'example.com', jwks: { keys: [issuerPublic] } }], maxAge: 1 } as never), /options\.maxAge\b/);
    unknown(() => createWitVerifier({ trustDomains: [{ trustDomain: 'example.com', jwks: { keys: [issuerPublic] }, iss: 'x' }] } as never), /options\.trustDomains\[0\]\.iss\b/);
  });

  it('per call', async () => {
    const store = new CountingStore();
    const rejects = async (p: Promise<unknown>, path: RegExp) => {
      await expect(p).rejects.toMatchObject({ code: 'ERR_UNKNOWN_OPTION', message: expect.stringMatching(path) });
    };
    const request = await dpopRequest();
    await rejects(signRequest({ method: 'GET', url: `${BASE}/a` }, { ict, key: key.signer, audiance: BASE } as never), /options\.audiance\b/);
    await rejects(createDpopProof({ method: 'GET', url: BASE, key: key.signer, jwk: key.publicJwk, htu: BASE } as never), /options\.htu\b/);
    await rejects(signResponse({ status: 200, headers: {} }, request, dpopBinding(), { ict: serviceIct, key: service.signer }, { expires: 5 } as never), /options\.expires\b/);
    await rejects(verifyResponse({ status: 200, headers: {} }, { request, binding: dpopBinding(), ictVerifier: createIctVerifier({ issuers: [{ issuer: op.issuer, jwks: op.jwks }] }), requestNonce: 'n' } as never), /options\.requestNonce\b/);
    await rejects(verifyDpopProof('a.b.c', { method: 'GET', htu: BASE, accessToken: null, expectedThumbprint: null, now: T, replayStore: store, maxage: 1 } as never), /options\.maxage\b/);
    await rejects(verifyWpt('a.b.c', { wit: {} as never, witToken: 'w', audience: [BASE], now: T, replayStore: store, acessToken: 'x' } as never), /options\.acessToken\b/);
    await rejects(verifyContentDigest(undefined, new Uint8Array(0), { require: true } as never), /options\.require\b/);
  });
});
