// What the proof detection keeps between requests must not change its answers: the plain names a
// frozen component list covers (looked up in a set) against the search over an unfrozen copy, and
// the profiles derived from a frozen options object against those of an equal, unfrozen one.
import { covers, detectProof } from '../src/proofs/detect';
import { parseSignatureInput } from '../src/rfc9421/signature-fields';
import { OIDC2_PROFILE, WIMSE_PROFILE, WIMSE_06_PROFILE } from '../src/profile';
import type { AcceptedProof } from '../src/binding';
import type { Fields } from '../src/message';

describe('covers on a frozen, shared list', () => {
  it('answers as the search over an unfrozen copy, for every name and parameter', () => {
    const lists = [
      '("@method" "@path" "@query" "identity-certification-token")',
      '("@path";req "content-digest";key="sha-256" "@query-param";name="a" "content-type";sf "x";bs "@method")',
      '("@method" "@method";req "content-digest" "content-digest";key="sha-256")',
      '()',
    ];
    const names = ['@method', '@path', '@query', 'identity-certification-token', 'content-digest', '@query-param', 'content-type', 'x', 'y'];
    for (const list of lists) {
      parseSignatureInput([`sig=${list}`]); // learns the shape
      const shared = parseSignatureInput([`sig=${list};created=1`]).get('sig')!.components;
      expect(Object.isFrozen(shared)).toBe(true);
      const copy = shared.map((c) => ({ ...c, params: { ...c.params } }));
      for (const name of names) expect([list, name, covers(shared, name)]).toEqual([list, name, covers(copy, name)]);
    }
  });
});

describe('detectProof with a frozen options object', () => {
  it('answers as with an equal unfrozen one, for each set of proofs and profiles', () => {
    const requests: Array<{ headers: Fields }> = [
      { headers: { 'signature-input': ['sig=("@method" "@path" "@query" "identity-certification-token");tag="oidc2-ict"'] } },
      { headers: { 'signature-input': ['wimse=("@method" "@request-target" "workload-identity-token");tag="wimse-workload-to-workload"'] } },
      { headers: { 'identity-certification-token': ['x.y.z'] } },
      { headers: { authorization: ['DPoP abc'] } },
      { headers: { authorization: ['WPT abc'] } },
      { headers: {} },
    ];
    const proofSets: AcceptedProof[][] = [['http-signature'], ['http-signature', 'dpop'], ['wimse-signature', 'wpt'], ['http-signature', 'wimse-signature', 'dpop', 'wpt']];
    for (const proofs of proofSets) {
      for (const profiles of [undefined, [OIDC2_PROFILE], [OIDC2_PROFILE, WIMSE_PROFILE, WIMSE_06_PROFILE]]) {
        const frozen = Object.freeze({ proofs: Object.freeze([...proofs]), profiles: profiles && Object.freeze([...profiles]), maxHeaderBytes: 8192 });
        for (const request of requests) {
          const open = { proofs: [...proofs], profiles: profiles && [...profiles], maxHeaderBytes: 8192 };
          for (let i = 0; i < 2; i++) expect(detectProof(request, frozen)).toEqual(detectProof(request, open));
        }
      }
    }
  });
});
