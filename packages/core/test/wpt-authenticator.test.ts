// WIMSE workloads through the request authenticator: the draft's WIT and WPT vectors authenticate a
// request, and the failures come back as the WIMSE drafts say (400), with nothing recorded first.
import { OIDC2_PROFILE, createAuthenticator, createOidc2Service, isOidc2Error, MemoryReplayStore, normalizeFields, verifyResponse, wptBinding, createIctVerifier, type AuthenticatorOptions, type HttpRequest } from '../src/index';
import { utf8 } from '../src/lib/base64';
import { newIssuer, newKey } from '../../../test/support/credentials';
import vectors from './fixtures/wimse/vectors.json';

const NOW = 1745509800;
const { d: _d, ...issuerPublic } = vectors.issuerKey as Record<string, string>;

function options(extra: Partial<AuthenticatorOptions> = {}): AuthenticatorOptions {
  return {
    issuers: [{ issuer: 'https://op.example.com', jwksUri: 'https://op.example.com/jwks' }],
    audiences: ['https://workload.example.com'],
    now: () => NOW,
    workloads: { trustDomains: [{ trustDomain: 'example.com', jwks: { keys: [issuerPublic] } }] },
    ...extra,
  };
}

// draft-ietf-wimse-wpt request: POST /path with a JSON body and no Content-Digest.
function wptRequest(headers: Record<string, string>): HttpRequest {
  return {
    method: 'POST',
    url: '/path',
    headers: normalizeFields({ host: 'workload.example.com', 'content-type': 'application/json', 'workload-identity-token': vectors.wit, ...headers }),
    body: utf8('{"do stuff":"please"}'),
  };
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (error) {
    if (isOidc2Error(error)) return `${error.code}/${error.status}`;
    throw error;
  }
  return 'accepted';
}

describe('WIMSE workload proof through the authenticator', () => {
  it('authenticates the draft example (wpt-02 form, Authorization: WPT)', async () => {
    const identity = await createAuthenticator(options()).authenticate(wptRequest({ authorization: `WPT ${vectors.wpt}` }));
    // The vector's WIT has no iss: the issuer is empty (as end-to-end encryption binds it), the trust domain says where it is from.
    expect(identity).toMatchObject({ kind: 'workload', subject: vectors.subject, issuer: '', trustDomain: 'example.com', proof: 'wpt', contexts: [] });
    expect(identity.publicKey!.x).toBe(vectors.workloadKey.x);
  });

  it('accepts the legacy Workload-Proof-Token header with its bearer binding only when enabled', async () => {
    const legacy = wptRequest({ authorization: `Bearer ${vectors.bearerToken}`, 'workload-proof-token': vectors.wptWithAth });
    const workloads = { trustDomains: [{ trustDomain: 'example.com', jwks: { keys: [issuerPublic] } }], legacyProofHeader: true };
    await expect(createAuthenticator(options({ workloads })).authenticate(legacy)).resolves.toMatchObject({ subject: vectors.subject });
    // Without the option the WIT names a WIMSE signature, which the request does not carry.
    expect(await code(createAuthenticator(options()).authenticate(legacy))).toBe('wimse_signature_invalid/400');
    expect(await code(createAuthenticator(options({ proofs: ['http-signature', 'wpt'] })).authenticate(legacy))).toBe('ict_missing/401');
    const otherBearer = wptRequest({ authorization: 'Bearer another-token', 'workload-proof-token': vectors.wptWithAth });
    expect(await code(createAuthenticator(options({ workloads })).authenticate(otherBearer))).toBe('wpt_invalid/400');
  });

  it('answers WIMSE failures with 400 and records the jti last', async () => {
    const store = new MemoryReplayStore();
    const auth = createAuthenticator(options({ replayStore: store }));
    const noWit = wptRequest({ authorization: `WPT ${vectors.wpt}` });
    delete noWit.headers['workload-identity-token'];
    expect(await code(auth.authenticate(noWit))).toBe('wit_missing/400');
    const elsewhere = createAuthenticator(options({ replayStore: store, audiences: ['https://other.example.com'] }));
    expect(await code(elsewhere.authenticate(wptRequest({ authorization: `WPT ${vectors.wpt}` })))).toBe('wpt_invalid/400');
    const badDigest = wptRequest({ authorization: `WPT ${vectors.wpt}`, 'content-digest': 'sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:' });
    expect(await code(auth.authenticate(badDigest))).toBe('digest_mismatch/401');
    expect(await code(auth.authenticate(wptRequest({ authorization: `WPT ${'a'.repeat(9000)}` })))).toBe('header_too_large/400');
    // None of those burned the jti: the proof is accepted once, then refused.
    await expect(auth.authenticate(wptRequest({ authorization: `WPT ${vectors.wpt}` }))).resolves.toBeDefined();
    expect(await code(auth.authenticate(wptRequest({ authorization: `WPT ${vectors.wpt}` })))).toBe('wpt_invalid/400');
  });

  it('is refused, with a WPT challenge only where accepted', async () => {
    const noWorkloads = createAuthenticator(options({ workloads: undefined }));
    expect(await code(noWorkloads.authenticate(wptRequest({ authorization: `WPT ${vectors.wpt}` })))).toBe('proof_not_accepted/401');
    const error: unknown = await createAuthenticator(options()).authenticate({ method: 'GET', url: '/', headers: {} }).then(() => undefined, (e: unknown) => e);
    expect(isOidc2Error(error) && error.headers['www-authenticate']).toMatch(/, WPT$/);
    expect(() => createAuthenticator(options({ workloads: undefined, proofs: ['wpt'] }))).toThrow(/options\.workloads/);
  });

  it('signs the response bound to the proof, and the caller verifies it', async () => {
    const op = await newIssuer('https://op.example.com');
    const svcKey = await newKey('ES256');
    const svcIct = await op.mint(svcKey, { now: NOW, subject: 'inventory' });
    const service = createOidc2Service({ ...options(), credential: { ict: svcIct, privateKey: svcKey.privateJwk } });
    const request = wptRequest({ authorization: `WPT ${vectors.wpt}` });
    const { identity } = await service.authenticate(request);
    const response = { status: 200, headers: {}, body: utf8('ok') };
    const added = await service.signResponse(response, request, identity!.binding);
    expect(added!['signature-input']![0]).toContain('"authorization";req');
    // A service without a WIT answers a WPT caller under the OIDC² profile, with its ICT.
    expect(added!['identity-certification-token']).toEqual([svcIct]);
    const ictVerifier = createIctVerifier({ issuers: [{ issuer: op.issuer, jwks: op.jwks }], now: () => NOW });
    await expect(verifyResponse({ ...response, headers: added! }, { request, binding: wptBinding(OIDC2_PROFILE), ictVerifier, now: () => NOW })).resolves.toMatchObject({ subject: 'inventory' });
  });
});

describe('DPoP and a body', () => {
  it('verifies a Content-Digest when sent but does not demand one', async () => {
    const op = await newIssuer('https://op.example.com');
    const caller = await newKey('ES256');
    const ict = await op.mint(caller, { now: NOW });
    const { createDpopProof } = await import('../src/index');
    const auth = createAuthenticator({ issuers: [{ issuer: op.issuer, jwks: op.jwks }], audiences: ['https://api.example.com'], now: () => NOW });
    const proof = () => createDpopProof({ method: 'POST', url: 'https://api.example.com/x', key: caller.signer, jwk: caller.publicJwk, accessToken: ict, now: () => NOW });
    const base = { method: 'POST', url: '/x', body: utf8('{"a":1}') };
    await expect(auth.authenticate({ ...base, headers: { authorization: [`DPoP ${ict}`], dpop: [await proof()] } })).resolves.toMatchObject({ proof: 'dpop' });
    const wrong = { authorization: [`DPoP ${ict}`], dpop: [await proof()], 'content-digest': ['sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:'] };
    expect(await code(auth.authenticate({ ...base, headers: wrong }))).toBe('digest_mismatch/401');
  });
});
