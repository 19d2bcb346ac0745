// The issuer's own WITs as credentials (`workloads.exchange`): the WIMSE credential-exchange
// pattern, a WIT proven with its key exchanged for an ICT. Verified with the core's WIT verifier
// against the issuer's current key set, exactly as any other verifier of these WITs would.
import { createWitVerifier, Oidc2Error, type WitVerifier } from '@oidc2/core';
import { decodeJwt } from 'jose';
import type { IssuerState } from './state.js';
import type { ClientAuthenticator } from './types.js';

/**
 * Recognises a WIT whose `sub` lies in the issuer's trust domain and verifies it with the issuer's
 * published keys (`iss` must be the issuer). WITs of other trust domains are left to the next
 * authenticator. The authentication binds the proof to the WIT's `cnf.jwk` and its `alg`, never
 * outlives the WIT, and carries the contexts configured for the workload in `subjects`.
 */
export function ownWits(state: IssuerState): ClientAuthenticator {
  const workloads = state.workloads!;
  let current: { kids: string; verifier: WitVerifier } | undefined;

  // Rebuilt when the key set changes (rotation, retirement); the verifier caches verified WITs.
  async function verifier(): Promise<WitVerifier> {
    const jwks = await state.keys.jwks(state.now());
    const kids = jwks.keys.map((k) => k.kid).join(' ');
    if (current?.kids !== kids) {
      current = {
        kids,
        verifier: createWitVerifier({
          trustDomains: [{ trustDomain: workloads.trustDomain, issuer: state.issuer, jwks }],
          now: state.now,
          clockTolerance: state.clockTolerance,
          maxTokenAge: workloads.lifetime,
          cacheSize: 1000,
        }),
      };
    }
    return current.verifier;
  }

  return async (_request, context) => {
    const token = context.workloadIdentityToken;
    if (token === undefined) return undefined;
    let sub: unknown;
    try {
      sub = decodeJwt(token).sub;
    } catch {
      throw new Oidc2Error('wit_invalid', 'the WIT is not a JWT');
    }
    if (typeof sub !== 'string' || !sub.startsWith(`${workloads.origin}/`)) return undefined;
    const wit = await (await verifier()).verify(token);
    // The verifier checks `iss` only when present; every WIT this issuer signs carries it.
    if (wit.claims.iss !== state.issuer) throw new Oidc2Error('wit_untrusted', 'the WIT was not issued here');
    return {
      subject: wit.subject,
      kind: 'workload',
      keyThumbprint: wit.thumbprint,
      keyAlgorithm: wit.alg,
      expiresAt: wit.expiresAt,
      contexts: [...(state.subjects.get(wit.subject)?.contexts ?? [])],
    };
  };
}
