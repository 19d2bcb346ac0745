/**
 * The wire profiles as data (docs/protocol.md sections 2 and 4): every name an HTTP-signature profile
 * fixes on the wire lives here, once. Request signing, request verification, response signing and
 * response verification read these values instead of spelling the names themselves. Two profiles
 * exist: OIDC² ({@link OIDC2_PROFILE}, an ICT in `Identity-Certification-Token`) and the WIMSE
 * workload-to-workload profile of draft-ietf-wimse-http-signature ({@link WIMSE_PROFILE}, a WIT in
 * `Workload-Identity-Token`; {@link WIMSE_06_PROFILE} is its -06 form). They differ only in these
 * values and in the verifier of their token kind.
 */
import { decodeBase64Url } from './lib/base64.js';

/** Which verifier checks the token a profile carries in {@link SignatureProfile.tokenHeader}. */
export type TokenKind = 'ict' | 'wit';

/** The names an HTTP-signature profile fixes on the wire. Field names are lower case. */
export interface SignatureProfile {
  /** The `tag` parameter of request and response signatures of this profile. */
  readonly tag: string;
  /** The signature label this implementation writes (verifiers select by tag, never by label). */
  readonly label: string;
  /** The signature parameter naming the target URI the caller meant (the audience). */
  readonly audienceParam: string;
  /** The boolean signature parameter by which a caller asks for a signed response. */
  readonly signResponseParam: string;
  /** The response signature parameter that repeats the request signature's `nonce`. */
  readonly requestNonceParam: string;
  /** The field carrying the caller's (and the responder's) token beside the signature. */
  readonly tokenHeader: string;
  /** The kind of token in {@link tokenHeader}: which configured verifier checks it. */
  readonly token: TokenKind;
  /** Components every request signature of this profile covers. */
  readonly requiredComponents: readonly string[];
  /** Request fields the request signature must cover whenever they are present. */
  readonly coveredWhenPresent: readonly string[];
  /** Response fields the response signature covers whenever they are present (besides `content-digest`). */
  readonly responseCoveredWhenPresent: readonly string[];
  /** Request components every response signature covers with `;req` (besides the binding's request fields). */
  readonly responseRequestComponents: readonly string[];
  /**
   * Whether every response carries and covers `Content-Digest` (`'always'`), or only a response with
   * a body must, one without covering it when present (`'with-body'`).
   */
  readonly responseDigest: 'always' | 'with-body';
  /**
   * The least randomness a request `nonce` must carry, in bits of base64url; `0` accepts any
   * string of 1 to 256 characters (uniqueness per sender is then all the replay store relies on).
   */
  readonly minNonceBits: number;
}

/** The field carrying a WIMSE Workload Identity Token. */
export const WIT_HEADER = 'workload-identity-token';

const ICT_HEADER = 'identity-certification-token';
// What both profiles cover when present: the draft's fields, `content-encoding` and the e2ee fields.
const COVERED_WHEN_PRESENT = Object.freeze(['content-type', 'content-encoding', 'content-digest', 'authorization', 'txn-token', 'oidc2-key-share', 'oidc2-session']);
const RESPONSE_COVERED_WHEN_PRESENT = Object.freeze(['content-type', 'content-encoding', 'oidc2-key-share', 'oidc2-session']);
const PATH_AND_QUERY = Object.freeze(['@method', '@path', '@query']);
const MAX_NONCE_LENGTH = 256;

/** The OIDC² HTTP-signature profile: ICT-bound RFC 9421 signatures (docs/protocol.md sections 2 and 4). */
export const OIDC2_PROFILE: SignatureProfile = Object.freeze({
  tag: 'oidc2-ict',
  label: 'sig',
  audienceParam: 'oidc2-aud',
  signResponseParam: 'oidc2-sign-response',
  requestNonceParam: 'oidc2-req-nonce',
  tokenHeader: ICT_HEADER,
  token: 'ict',
  requiredComponents: Object.freeze([...PATH_AND_QUERY, ICT_HEADER]),
  coveredWhenPresent: COVERED_WHEN_PRESENT,
  responseCoveredWhenPresent: RESPONSE_COVERED_WHEN_PRESENT,
  responseRequestComponents: PATH_AND_QUERY,
  responseDigest: 'always',
  minNonceBits: 128,
} as const);

/**
 * The WIMSE workload-to-workload profile of draft-ietf-wimse-http-signature-07 (docs/protocol.md section 3a): a
 * WIT-bound RFC 9421 signature tagged `wimse-workload-to-workload`. Beyond the draft's lists it
 * covers `content-encoding` and the end-to-end encryption fields when present, as the OIDC²
 * profile does (docs/wimse.md says why).
 */
export const WIMSE_PROFILE: SignatureProfile = Object.freeze({
  tag: 'wimse-workload-to-workload',
  label: 'wimse',
  audienceParam: 'wimse-aud',
  signResponseParam: 'wimse-sign-response',
  requestNonceParam: 'wimse-req-nonce',
  tokenHeader: WIT_HEADER,
  token: 'wit',
  requiredComponents: Object.freeze([...PATH_AND_QUERY, WIT_HEADER]),
  coveredWhenPresent: COVERED_WHEN_PRESENT,
  responseCoveredWhenPresent: RESPONSE_COVERED_WHEN_PRESENT,
  responseRequestComponents: PATH_AND_QUERY,
  responseDigest: 'with-body',
  minNonceBits: 0,
} as const);

/**
 * The same profile as draft-ietf-wimse-http-signature-06 has it: `@request-target` where -07
 * covers `@path` and `@query`, in requests and (with `;req`) in responses. Same tag: a verifier
 * that accepts both tells them apart by the components a signature covers.
 */
export const WIMSE_06_PROFILE: SignatureProfile = Object.freeze({
  ...WIMSE_PROFILE,
  requiredComponents: Object.freeze(['@method', '@request-target', WIT_HEADER]),
  responseRequestComponents: Object.freeze(['@method', '@request-target']),
} as const);

/**
 * Whether `nonce` satisfies the nonce rule of `profile` ({@link SignatureProfile.minNonceBits}):
 * base64url of at least that many random bits (22 to 128 characters), or with `0` any string of 1
 * to 256 characters.
 */
export function nonceAccepted(profile: SignatureProfile, nonce: string): boolean {
  if (profile.minNonceBits === 0) return nonce.length > 0 && nonce.length <= MAX_NONCE_LENGTH;
  return /^[A-Za-z0-9_-]{22,128}$/.test(nonce) && (decodeBase64Url(nonce)?.length ?? 0) * 8 >= profile.minNonceBits;
}

/** What {@link nonceAccepted} takes under `profile`, for error messages. */
export function nonceRule(profile: SignatureProfile): string {
  return profile.minNonceBits === 0 ? `1 to ${MAX_NONCE_LENGTH} characters` : `at least ${profile.minNonceBits} random bits, base64url`;
}

/** The HTTP-signature profiles this implementation verifies, in the order they are looked for. */
export const SIGNATURE_PROFILES: readonly SignatureProfile[] = Object.freeze([OIDC2_PROFILE, WIMSE_PROFILE, WIMSE_06_PROFILE]);
