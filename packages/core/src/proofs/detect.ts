/**
 * Which proof a request uses, read from its fields without verifying anything. The authenticator
 * dispatches on it, and {@link requestBinding} uses it to name what an error response to a request
 * that was not (or could not be) authenticated binds to.
 */
import { fieldLines, type HttpRequest } from '../message.js';
import { SIGNATURE_PROFILES, type SignatureProfile } from '../profile.js';
import { parseSignatureInput } from '../rfc9421/index.js';
import { dpopBinding, signatureBinding, wptBinding, type ProofType, type RequestBinding } from '../binding.js';

/** The legacy (wpt-01) field carrying a Workload Proof Token. */
export const LEGACY_WPT_HEADER = 'workload-proof-token';

/** What {@link detectProof} decides from a request's fields. */
export type DetectedProof =
  /** An HTTP message signature of `profile` (its signature input or its token field is present). */
  | { readonly proof: 'http-signature'; readonly profile: SignatureProfile }
  /** `Authorization: DPoP <token>`; `token` is what follows the scheme, trimmed (possibly empty). */
  | { readonly proof: 'dpop'; readonly token: string }
  /**
   * A Workload Proof Token: from `Authorization: WPT <wpt>`, or with `legacy` from the
   * `Workload-Proof-Token` field, then with the `Authorization: Bearer` token it binds, if any.
   */
  | { readonly proof: 'wpt'; readonly wpt: string; readonly legacy: boolean; readonly bearer?: string }
  /** A proof of this type was presented, and the options do not accept it. */
  | { readonly proof: 'not-accepted'; readonly presented: ProofType }
  /** The request names a proof but its fields are malformed (e.g. a repeated proof field). */
  | { readonly proof: 'malformed'; readonly message: string }
  /** No proof at all. */
  | { readonly proof: 'none' };

/** Options of {@link detectProof}. */
export interface DetectProofOptions {
  /** The accepted proofs. Default all: `http-signature`, `dpop` and `wpt`. */
  proofs?: readonly ProofType[];
  /** Also look for a WPT in the legacy `Workload-Proof-Token` field. Default false. */
  legacyProofHeader?: boolean;
  /** The accepted HTTP-signature profiles, in the order they are looked for. Default: {@link SIGNATURE_PROFILES}. */
  profiles?: readonly SignatureProfile[];
}

const ALL_PROOFS: readonly ProofType[] = Object.freeze(['http-signature', 'dpop', 'wpt']);

/**
 * Says which proof `request` uses, among those `options` accept, without verifying anything. The
 * order is fixed: `Authorization: WPT`, the legacy WPT field (when enabled), `Authorization: DPoP`,
 * then an HTTP signature (its `Signature-Input` or the profile's token field); a proof that is
 * present but not accepted is named as such.
 *
 * @example
 * ```ts
 * const detected = detectProof(request, { proofs: ['http-signature', 'dpop'] })
 * if (detected.proof === 'dpop') console.log('DPoP-bound token of', detected.token.length, 'bytes')
 * ```
 */
export function detectProof(request: Pick<HttpRequest, 'headers'>, options: DetectProofOptions = {}): DetectedProof {
  const proofs = options.proofs ?? ALL_PROOFS;
  const profiles = options.profiles ?? SIGNATURE_PROFILES;
  const acceptsWpt = proofs.includes('wpt');
  const headers = request.headers;
  const authorization = fieldLines(headers, 'authorization');
  const single = authorization?.length === 1 ? authorization[0]!.trim() : undefined;
  if (acceptsWpt && single !== undefined && /^wpt /i.test(single)) return { proof: 'wpt', wpt: single.slice(4).trim(), legacy: false };
  const legacy = options.legacyProofHeader === true && acceptsWpt ? fieldLines(headers, LEGACY_WPT_HEADER) : undefined;
  if (legacy) {
    if (legacy.length !== 1) return { proof: 'malformed', message: 'exactly one Workload-Proof-Token field line is allowed' };
    const bearer = single !== undefined ? /^bearer (.+)$/i.exec(single)?.[1] : undefined;
    return { proof: 'wpt', wpt: legacy[0]!.trim(), legacy: true, ...(bearer !== undefined ? { bearer } : {}) };
  }
  if (proofs.includes('dpop') && single !== undefined && /^dpop /i.test(single)) return { proof: 'dpop', token: single.slice(5).trim() };
  const signatureInput = fieldLines(headers, 'signature-input');
  if (proofs.includes('http-signature')) {
    const profile = signatureInput ? profiles[0] : profiles.find((p) => fieldLines(headers, p.tokenHeader));
    if (profile) return { proof: 'http-signature', profile };
  }
  const first = authorization?.[0]?.trim() ?? '';
  if (authorization && /^dpop /i.test(first)) return { proof: 'not-accepted', presented: 'dpop' };
  if (signatureInput) return { proof: 'not-accepted', presented: 'http-signature' };
  if (authorization && /^wpt /i.test(first)) return { proof: 'not-accepted', presented: 'wpt' };
  return { proof: 'none' };
}

/** Options of {@link requestBinding}. */
export interface RequestBindingOptions {
  /** The HTTP-signature profiles to look for. Default: {@link SIGNATURE_PROFILES}. */
  profiles?: readonly SignatureProfile[];
}

/**
 * The binding a request asks for, read from its fields without trusting them: for signing the
 * response to a request that was not authenticated (an error, or an optional route). A DPoP
 * binding needs the `DPoP` field, a WPT binding `Authorization: WPT`; otherwise the first
 * signature tagged with an accepted profile's tag gives its nonce and whether a signed response
 * was asked for. Undefined when the request names none of these, or its signature fields are
 * malformed.
 *
 * @example
 * ```ts
 * const response = problemResponse(error)
 * Object.assign(response.headers, await signResponse(response, request, requestBinding(request) ?? fallback, credential))
 * ```
 */
export function requestBinding(request: Pick<HttpRequest, 'headers'>, options: RequestBindingOptions = {}): RequestBinding | undefined {
  const profiles = options.profiles ?? SIGNATURE_PROFILES;
  const detected = detectProof(request, { proofs: ALL_PROOFS, profiles });
  if (detected.proof === 'dpop' && fieldLines(request.headers, 'dpop')) return dpopBinding();
  if (detected.proof === 'wpt') return wptBinding();
  try {
    for (const entry of parseSignatureInput(fieldLines(request.headers, 'signature-input')).values()) {
      const profile = profiles.find((p) => p.tag === entry.params.tag);
      if (!profile) continue;
      const { nonce, [profile.audienceParam]: audience } = entry.params;
      return signatureBinding(profile, {
        nonce: typeof nonce === 'string' ? nonce : undefined,
        audience: typeof audience === 'string' ? audience : undefined,
        signResponse: entry.params[profile.signResponseParam] === true,
        headers: request.headers,
      });
    }
  } catch {
    return undefined;
  }
  return undefined;
}
