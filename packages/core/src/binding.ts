/**
 * What a response signature binds to (PROFILE section 3): taken from the request once, when the
 * request is authenticated or sent, and handed to response signing and response verification, so
 * neither has to read the request's fields again to learn which proof it used.
 */
import { OIDC2_PROFILE, type SignatureProfile } from './profile.js';

/** The proof a caller used. */
export type ProofType = 'http-signature' | 'dpop' | 'wpt';

/** What the response signature binds to: taken from the request. */
export interface RequestBinding {
  /** `created`-independent nonce of the request signature (HTTP-signature proof). */
  nonce?: string;
  /** Whether the caller asked for a signed response (the profile's `signResponseParam`). */
  signResponse: boolean;
  /** The proof type. */
  proof: ProofType;
  /**
   * The signature profile of an HTTP-signature proof: its tag, token header and parameter names
   * are those of the response. Default {@link OIDC2_PROFILE}.
   */
  profile?: SignatureProfile;
  /**
   * Request fields the response signature covers with `;req` beyond `@method`, `@path` and
   * `@query`: `dpop` for a DPoP proof, `authorization` for a WPT. Default: those of {@link proof}.
   */
  requestFields?: readonly string[];
}

const DPOP_FIELDS: readonly string[] = Object.freeze(['dpop']);
const WPT_FIELDS: readonly string[] = Object.freeze(['authorization']);
const NO_FIELDS: readonly string[] = Object.freeze([]);

/** The binding of a request signed with `profile`, whose signature carries `nonce`. */
export function signatureBinding(profile: SignatureProfile, nonce: string | undefined, signResponse: boolean): RequestBinding {
  return { proof: 'http-signature', profile, ...(nonce !== undefined ? { nonce } : {}), signResponse, requestFields: NO_FIELDS };
}

/**
 * The binding of a request authenticated with a DPoP proof: the response covers `"dpop";req`.
 *
 * @example
 * ```ts
 * await verifyResponse(response, { request, binding: dpopBinding(), ictVerifier })
 * ```
 */
export function dpopBinding(): RequestBinding {
  return { proof: 'dpop', signResponse: false, requestFields: DPOP_FIELDS };
}

/** The binding of a request authenticated with a Workload Proof Token: the response covers `"authorization";req`. */
export function wptBinding(): RequestBinding {
  return { proof: 'wpt', signResponse: false, requestFields: WPT_FIELDS };
}

/** The request fields a response bound by `binding` covers with `;req` (see {@link RequestBinding.requestFields}). */
export function boundRequestFields(binding: RequestBinding): readonly string[] {
  if (binding.requestFields !== undefined) return binding.requestFields;
  return binding.proof === 'dpop' ? DPOP_FIELDS : binding.proof === 'wpt' ? WPT_FIELDS : NO_FIELDS;
}

/** The signature profile of the response to a request bound by `binding`. */
export function bindingProfile(binding: RequestBinding): SignatureProfile {
  return binding.profile ?? OIDC2_PROFILE;
}
