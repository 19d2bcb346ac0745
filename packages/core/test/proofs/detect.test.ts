// The proof detector on synthetic field sets: which proof a request names, in the fixed order,
// without verifying anything; and the binding derived from it for unauthenticated requests.
import { OIDC2_PROFILE, WIMSE_06_PROFILE, WIMSE_PROFILE, WIT_HEADER, detectProof, dpopBinding, normalizeFields, requestBinding, wptBinding, type HttpRequest } from '@oidc2/core';

const req = (fields: Record<string, string | string[]>): Pick<HttpRequest, 'headers'> => ({ headers: normalizeFields(fields as Record<string, string>) });
const sigInput = `sig=("@method");created=1;nonce="n";tag="${OIDC2_PROFILE.tag}";${OIDC2_PROFILE.signResponseParam}`;
const wimse07 = `wimse=("@method" "@path" "@query" "${WIT_HEADER}");nonce="abcd";tag="${WIMSE_PROFILE.tag}";wimse-sign-response`;
const wimse06 = `wimse=("@method" "@request-target" "${WIT_HEADER}");nonce="abcd";tag="${WIMSE_PROFILE.tag}"`;

describe('detectProof', () => {
  it('names each proof by its fields', () => {
    expect(detectProof(req({ authorization: 'WPT a.b.c' }))).toEqual({ proof: 'wpt', wpt: 'a.b.c', legacy: false });
    expect(detectProof(req({ authorization: 'DPoP  tok ', dpop: 'p' }))).toEqual({ proof: 'dpop', token: 'tok' });
    expect(detectProof(req({ 'signature-input': sigInput }))).toMatchObject({ proof: 'http-signature', profile: OIDC2_PROFILE });
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

describe('detectProof with the WIMSE signature profile', () => {
  it("chooses the profile by the signature's tag, and the draft form by what it covers", () => {
    const detected = detectProof(req({ 'signature-input': wimse07 }));
    expect(detected).toMatchObject({ proof: 'http-signature', profile: WIMSE_PROFILE });
    // The parsed field travels with the result, so the verifier does not parse it again.
    expect(detected.proof === 'http-signature' && [...detected.inputs!.keys()]).toEqual(['wimse']);
    expect(detectProof(req({ 'signature-input': wimse06 }))).toMatchObject({ profile: WIMSE_06_PROFILE });
    // Without the -06 form among the accepted profiles, a -06 signature is verified as -07 (and fails there).
    expect(detectProof(req({ 'signature-input': wimse06 }), { profiles: [OIDC2_PROFILE, WIMSE_PROFILE] })).toMatchObject({ profile: WIMSE_PROFILE });
    // The first signature with an accepted tag decides.
    expect(detectProof(req({ 'signature-input': `${wimse07}, ${sigInput}` }))).toMatchObject({ profile: WIMSE_PROFILE });
    expect(detectProof(req({ 'signature-input': `${wimse07}, ${sigInput}` }), { proofs: ['http-signature'] })).toMatchObject({ profile: OIDC2_PROFILE });
    // A WIT alone names the WIMSE profile (and fails as an unsigned request there).
    expect(detectProof(req({ [WIT_HEADER]: 'x.y.z' }))).toEqual({ proof: 'http-signature', profile: WIMSE_PROFILE });
  });

  it('names a WIMSE signature that is not accepted', () => {
    expect(detectProof(req({ 'signature-input': wimse07 }), { proofs: ['http-signature', 'dpop'] })).toEqual({ proof: 'not-accepted', presented: 'wimse-signature' });
    expect(detectProof(req({ 'signature-input': wimse07 }), { proofs: ['dpop'] })).toEqual({ proof: 'not-accepted', presented: 'wimse-signature' });
    expect(detectProof(req({ 'signature-input': sigInput }), { proofs: ['wimse-signature'] })).toEqual({ proof: 'not-accepted', presented: 'http-signature' });
    // An unknown tag is verified under the first accepted profile, which reports it missing.
    expect(detectProof(req({ 'signature-input': 'sig=();tag="other"' }), { proofs: ['wimse-signature'] })).toMatchObject({ proof: 'http-signature', profile: WIMSE_PROFILE });
    // A field that does not parse goes to the verifier without a parsed copy, to be reported there.
    expect(detectProof(req({ 'signature-input': 'sig=(' }))).toEqual({ proof: 'http-signature', profile: OIDC2_PROFILE });
  });

  it('binds an unauthenticated WIMSE request in the form of its signature', () => {
    expect(requestBinding(req({ 'signature-input': wimse07 }))).toEqual({ proof: 'http-signature', profile: WIMSE_PROFILE, nonce: 'abcd', signResponse: true, requestFields: [] });
    expect(requestBinding(req({ 'signature-input': wimse06 }))).toMatchObject({ profile: WIMSE_06_PROFILE, signResponse: false });
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
