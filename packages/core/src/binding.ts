/**
 * What a response signature binds to (docs/protocol.md section 4): taken from the request once, when the
 * request is authenticated or sent, and handed to response signing and response verification, so
 * neither has to read the request's fields again to learn which proof it used.
 */
import { OIDC2_PROFILE, WIMSE_PROFILE, type SignatureProfile } from './profile.js';
import { fieldLines, type Fields } from './message.js';
import { KEY_SHARE_FIELD, SESSION_FIELD } from './e2ee/fields.js';

/**
 * The proof a caller used. An HTTP message signature is `'http-signature'` under either profile
 * (OIDC² or WIMSE): its binding's `profile` says which.
 */
export type ProofType = 'http-signature' | 'dpop' | 'wpt';

/**
 * A proof a service may accept: the proof types, with HTTP message signatures named by profile:
 * `'http-signature'` for the OIDC² profile (an ICT), `'wimse-signature'` for the WIMSE profile (a WIT).
 */
export type AcceptedProof = ProofType | 'wimse-signature';

/** The accepted-proof name of a signature profile. */
export function profileProof(profile: SignatureProfile): AcceptedProof {
  return profile.token === 'wit' ? 'wimse-signature' : 'http-signature';
}

/** What the response signature binds to: taken from the request. */
export interface RequestBinding {
  /** `created`-independent nonce of the request signature (HTTP-signature proof). */
  nonce?: string;
  /** The request signature's audience parameter as sent (`AUD` of end-to-end encryption). */
  audience?: string;
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
   * `@query`: `dpop` for a DPoP proof, `authorization` for a WPT, and `oidc2-key-share` /
   * `oidc2-session` when the request carried them (docs/protocol.md section 7.8). Default: those of {@link proof}.
   */
  requestFields?: readonly string[];
}

const DPOP_FIELDS: readonly string[] = Object.freeze(['dpop']);
const WPT_FIELDS: readonly string[] = Object.freeze(['authorization']);
const NO_FIELDS: readonly string[] = Object.freeze([]);
const KEY_SHARE_ONLY: readonly string[] = Object.freeze([KEY_SHARE_FIELD]);
const SESSION_ONLY: readonly string[] = Object.freeze([SESSION_FIELD]);
const BOTH_E2EE_FIELDS: readonly string[] = Object.freeze([KEY_SHARE_FIELD, SESSION_FIELD]);

/** The end-to-end encryption fields a request carries, which its response covers with `;req`. */
export function e2eeRequestFields(headers: Fields): readonly string[] {
  const share = fieldLines(headers, KEY_SHARE_FIELD) !== undefined;
  const session = fieldLines(headers, SESSION_FIELD) !== undefined;
  return share ? (session ? BOTH_E2EE_FIELDS : KEY_SHARE_ONLY) : session ? SESSION_ONLY : NO_FIELDS;
}

/** What a request signature states about the response it asks for. */
export interface SignatureBindingInput {
  /** The signature's `nonce` parameter. */
  readonly nonce: string | undefined;
  /** Whether it asked for a signed response. */
  readonly signResponse: boolean;
  /** Its audience parameter. */
  readonly audience?: string | undefined;
  /** The request's fields, for the end-to-end encryption fields it carries. */
  readonly headers: Fields;
}

/**
 * The binding of a request signed with `profile`. A request with an end-to-end encryption field is
 * treated as having asked for a signed response (docs/protocol.md section 7.2), and its response covers those fields
 * with `;req`.
 */
export function signatureBinding(profile: SignatureProfile, input: SignatureBindingInput): RequestBinding {
  const requestFields = e2eeRequestFields(input.headers);
  return {
    proof: 'http-signature',
    profile,
    ...(input.nonce !== undefined ? { nonce: input.nonce } : {}),
    ...(input.audience !== undefined ? { audience: input.audience } : {}),
    signResponse: input.signResponse || requestFields.length > 0,
    requestFields,
  };
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

/**
 * The binding of a request authenticated with a Workload Proof Token: the response covers
 * `"authorization";req`, under the WIMSE profile (the service answers with its WIT). A service
 * without a WIT answers WPT callers under the OIDC² profile with its ICT: pass `OIDC2_PROFILE`.
 */
export function wptBinding(profile: SignatureProfile = WIMSE_PROFILE): RequestBinding {
  return { proof: 'wpt', signResponse: false, requestFields: WPT_FIELDS, profile };
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
