/**
 * The wire profile as data (PROFILE.md sections 2 and 3): every name an HTTP-signature profile fixes
 * on the wire lives here, once. Request signing, request verification, response signing and
 * response verification read these values instead of spelling the names themselves, so a second
 * profile (the WIMSE workload-to-workload signature profile, whose token kind is `'wit'` and whose
 * token header is {@link WIT_HEADER}) is one more {@link SignatureProfile} value plus the verifier
 * of its token kind.
 */

/** Which verifier checks the token a profile carries in {@link SignatureProfile.tokenHeader}. */
export type TokenKind = 'ict' | 'wit';

/** The names an HTTP-signature profile fixes on the wire. Field names are lower case. */
export interface SignatureProfile {
  /** The `tag` parameter of request and response signatures of this profile. */
  readonly tag: string;
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
  /** Response fields the response signature covers whenever they are present. */
  readonly responseCoveredWhenPresent: readonly string[];
}

/** The field carrying a WIMSE Workload Identity Token. */
export const WIT_HEADER = 'workload-identity-token';

const ICT_HEADER = 'identity-certification-token';

/** The OIDC² HTTP-signature profile: ICT-bound RFC 9421 signatures (PROFILE.md 2.1 and 3). */
export const OIDC2_PROFILE: SignatureProfile = Object.freeze({
  tag: 'oidc2-ict',
  audienceParam: 'oidc2-aud',
  signResponseParam: 'oidc2-sign-response',
  requestNonceParam: 'oidc2-req-nonce',
  tokenHeader: ICT_HEADER,
  token: 'ict',
  requiredComponents: Object.freeze(['@method', '@path', '@query', ICT_HEADER]),
  coveredWhenPresent: Object.freeze(['content-type', 'content-encoding', 'content-digest', 'authorization', 'txn-token', 'oidc2-key-share', 'oidc2-session']),
  responseCoveredWhenPresent: Object.freeze(['content-type', 'content-encoding', 'oidc2-key-share', 'oidc2-session']),
} as const);

/** The HTTP-signature profiles this implementation verifies, in the order they are looked for. */
export const SIGNATURE_PROFILES: readonly SignatureProfile[] = Object.freeze([OIDC2_PROFILE]);
