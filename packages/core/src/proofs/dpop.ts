/**
 * The DPoP proof (docs/protocol.md section 3): `Authorization: DPoP <ICT>` with an RFC 9449 proof in `DPoP`.
 */
import { decodeJwt } from 'jose';
import { Oidc2Error } from '../errors.js';
import type { HttpRequest } from '../message.js';
import { verifyDpopProof } from '../dpop.js';
import { normalizeTarget, type AudienceMatcher } from '../lib/audience.js';
import { dpopBinding } from '../binding.js';
import type { Identity } from '../authenticator.js';
import { ictIdentity, singleField, type ProofContext, type ProofHooks } from './context.js';

// The proof names the URI the caller used; pick the configured base it claims (the proof
// verification compares it again), so a service reachable under several names accepts each.
function dpopTarget(audiences: AudienceMatcher, proof: string, requestUrl: string): string {
  const candidates = audiences.candidates(requestUrl);
  let claimed: string | undefined;
  try {
    const htu = decodeJwt(proof).htu;
    claimed = typeof htu === 'string' ? normalizeTarget(htu.split(/[?#]/, 1)[0]!) : undefined;
  } catch {
    claimed = undefined;
  }
  return candidates.find((c) => c === claimed) ?? candidates[0]!;
}

/**
 * Verifies the DPoP proof of `request`, whose `Authorization: DPoP` carries `token` (the ICT), and
 * returns the caller. Order: token present and bounded; the `DPoP` field; the ICT (`cnf.jkt`
 * allowed); Txn-Token; Content-Digest when sent; the proof (RFC 9449), whose `jti` is recorded
 * last, right after `hooks.beforeRecord`. Throws `Oidc2Error` (`ict_*`, `dpop_invalid`,
 * `dpop_nonce_required`, `replay_detected`, `digest_*`, ...).
 *
 * @example
 * ```ts
 * const identity = await verifyDpopRequest(request, ict, context)
 * ```
 */
export async function verifyDpopRequest(request: HttpRequest, token: string, ctx: ProofContext, hooks: ProofHooks = {}): Promise<Identity> {
  if (token.length === 0) throw new Oidc2Error('ict_missing', 'the DPoP-bound ICT is missing');
  if (token.length > ctx.maxHeaderBytes) throw new Oidc2Error('header_too_large', `authorization exceeds ${ctx.maxHeaderBytes} bytes`);
  const proof = singleField(request, 'dpop', ctx.maxHeaderBytes, () => new Oidc2Error('dpop_invalid', 'the DPoP header is missing'));
  const ict = await ctx.ictVerifier.verify(token, { allowJkt: true });
  const transaction = await ctx.transaction(request);
  // Checked before the proof, whose jti is recorded last.
  await ctx.checkDigest(request, false);
  const t = ctx.now();
  let identity: Identity | undefined;
  const verified = await verifyDpopProof(proof, {
    method: request.method,
    htu: dpopTarget(ctx.audiences, proof, request.url),
    accessToken: token,
    expectedThumbprint: ict.thumbprint,
    now: t,
    clockTolerance: ctx.clockTolerance,
    maxAge: ctx.maxSignatureAge,
    replayStore: ctx.replayStore,
    nonces: ctx.dpopNonces,
    ...(hooks.beforeRecord
      ? {
          beforeRecord: async (checked) => {
            identity = ictIdentity(ict, ict.jwk ?? checked.jwk, 'dpop', dpopBinding(), transaction);
            await hooks.beforeRecord!(identity);
          },
        }
      : {}),
  });
  return identity ?? ictIdentity(ict, ict.jwk ?? verified.jwk, 'dpop', dpopBinding(), transaction);
}
