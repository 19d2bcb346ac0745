// The proof detector on synthetic field sets: which proof a request names, in the fixed order,
// without verifying anything; and the binding derived from it for unauthenticated requests.
import { OIDC2_PROFILE, detectProof, dpopBinding, normalizeFields, requestBinding, wptBinding, type HttpRequest } from '@oidc2/core';

const req = (fields: Record<string, string | string[]>): Pick<HttpRequest, 'headers'> => ({ headers: normalizeFields(fields as Record<string, string>) });
const sigInput = `sig=("@method");created=1;nonce="n";tag="${OIDC2_PROFILE.tag}";${OIDC2_PROFILE.signResponseParam}`;

describe('detectProof', () => {
  it('names each proof by its fields', () => {
    expect(detectProof(req({ authorization: 'WPT a.b.c' }))).toEqual({ proof: 'wpt', wpt: 'a.b.c', legacy: false });
    expect(detectProof(req({ authorization: 'DPoP  tok ', dpop: 'p' }))).toEqual({ proof: 'dpop', token: 'tok' });
    expect(detectProof(req({ 'signature-input': sigInput }))).toEqual({ proof: 'http-signature', profile: OIDC2_PROFILE });
    expect(detectProof(req({ [OIDC2_PROFILE.tokenHeader]: 'x.y.z' }))).toEqual({ proof: 'http-signature', profile: OIDC2_PROFILE });
    expect(detectProof(req({}))).toEqual({ proof: 'none' });
    expect(detectProof(req({ authorization: 'Bearer x' }))).toEqual({ proof: 'none' });
  });

  it('looks for WPT, the legacy WPT field, DPoP, then a signature', () => {
    expect(detectProof(req({ authorization: 'DPoP t', 'signature-input': sigInput })).proof).toBe('dpop');
    const legacy = req({ 'workload-proof-token': 'w.p.t', authorization: 'Bearer at', 'signature-input': sigInput });
    expect(detectProof(legacy)).toMatchObject({ proof: 'http-signature' });
    expect(detectProof(legacy, { legacyProofHeader: true })).toEqual({ proof: 'wpt', wpt: 'w.p.t', legacy: true, bearer: 'at' });
    expect(detectProof(req({ 'workload-proof-token': ['a', 'b'] }), { legacyProofHeader: true })).toMatchObject({ proof: 'malformed' });
    // The legacy field only counts when WPTs are accepted.
    expect(detectProof(legacy, { legacyProofHeader: true, proofs: ['http-signature'] }).proof).toBe('http-signature');
  });

  it('names a proof that is present but not accepted', () => {
    expect(detectProof(req({ authorization: 'DPoP t' }), { proofs: ['http-signature'] })).toEqual({ proof: 'not-accepted', presented: 'dpop' });
    expect(detectProof(req({ 'signature-input': sigInput }), { proofs: ['dpop'] })).toEqual({ proof: 'not-accepted', presented: 'http-signature' });
    expect(detectProof(req({ authorization: 'WPT x' }), { proofs: ['dpop'] })).toEqual({ proof: 'not-accepted', presented: 'wpt' });
    // A token field alone with signatures not accepted is no proof at all.
    expect(detectProof(req({ [OIDC2_PROFILE.tokenHeader]: 'x' }), { proofs: ['dpop'] })).toEqual({ proof: 'none' });
    // Two Authorization lines name no DPoP or WPT proof.
    expect(detectProof(req({ authorization: ['DPoP a', 'DPoP b'] }), { proofs: ['dpop'] })).toEqual({ proof: 'not-accepted', presented: 'dpop' });
  });
});

describe('requestBinding', () => {
  it('binds a DPoP request with its proof field through "dpop";req', () => {
    expect(requestBinding(req({ authorization: 'DPoP t', dpop: 'p' }))).toEqual(dpopBinding());
    expect(requestBinding(req({ authorization: 'DPoP t' }))).toBeUndefined();
  });

  it('binds a WPT request through "authorization";req', () => {
    expect(requestBinding(req({ authorization: 'WPT t' }))).toEqual(wptBinding());
  });

  it('takes the nonce and the sign-response request of the profile-tagged signature', () => {
    expect(requestBinding(req({ 'signature-input': sigInput }))).toEqual({ proof: 'http-signature', profile: OIDC2_PROFILE, nonce: 'n', signResponse: true, requestFields: [] });
    expect(requestBinding(req({ 'signature-input': 'sig=("@method");nonce="n";tag="other"' }))).toBeUndefined();
    expect(requestBinding(req({ 'signature-input': 'sig=(' }))).toBeUndefined();
    expect(requestBinding(req({}))).toBeUndefined();
  });
});
