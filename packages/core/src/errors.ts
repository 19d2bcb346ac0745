/**
 * Coded errors. Every failure a caller can trigger is an {@link Oidc2Error} with a stable `code`,
 * an HTTP `status`, and the challenge headers an adapter must forward. Check errors with
 * {@link isOidc2Error} or by `code`, never with `instanceof` across package boundaries.
 */

const BRAND = Symbol.for('oidc2.error');

/** Stable machine-readable error codes and the HTTP status each one maps to. */
export const ERROR_STATUS = {
  // 400: malformed input
  request_malformed: 400,
  header_too_large: 400,
  body_too_large: 413,
  signature_ambiguous: 400,
  digest_unsupported: 400,
  component_unsupported: 400,
  // 401: missing or invalid credential or proof
  ict_missing: 401,
  ict_malformed: 401,
  ict_invalid: 401,
  ict_expired: 401,
  ict_not_yet_valid: 401,
  ict_lifetime_exceeded: 401,
  ict_untrusted_issuer: 401,
  ict_unknown_key: 401,
  ict_alg_not_allowed: 401,
  ict_typ_invalid: 401,
  ict_cnf_invalid: 401,
  ict_audience_mismatch: 401,
  ict_claim_missing: 401,
  signature_missing: 401,
  signature_invalid: 401,
  signature_params_invalid: 401,
  signature_expired: 401,
  signature_not_yet_valid: 401,
  component_not_covered: 401,
  component_missing: 401,
  digest_missing: 401,
  digest_mismatch: 401,
  replay_detected: 401,
  replay_store_unavailable: 503,
  audience_mismatch: 401,
  proof_not_accepted: 401,
  dpop_invalid: 401,
  dpop_nonce_required: 401,
  txn_token_missing: 401,
  txn_token_invalid: 401,
  // 400: WIMSE workload credentials (the WIMSE drafts answer workload authentication failures with 400)
  wit_missing: 400,
  wit_invalid: 400,
  wit_expired: 400,
  wit_untrusted: 400,
  wpt_invalid: 400,
  // every failure of a WIMSE request signature (draft-ietf-wimse-http-signature: 400, not 401);
  // the problem's `reason` member names the failure with its OIDC² code
  wimse_signature_invalid: 400,
  // end-to-end encryption (docs/protocol.md section 7.10)
  e2ee_key_share_invalid: 400,
  e2ee_kem_unsupported: 400,
  e2ee_proof_unsupported: 400,
  e2ee_unavailable: 400,
  e2ee_encoding_invalid: 400,
  e2ee_key_missing: 400,
  e2ee_decrypt_failed: 400,
  e2ee_required: 401,
  session_invalid: 401,
  session_expired: 401,
  session_binding_mismatch: 401,
  // symmetric session authentication (docs/protocol.md section 7.11)
  session_mac_unavailable: 401,
  session_mac_not_allowed: 401,
  e2ee_body_not_encrypted: 415,
  session_keys_unavailable: 503,
  // 403: valid identity, denied by policy
  context_required: 403,
  access_denied: 403,
  // 5xx: the service side
  issuer_unavailable: 503,
  response_signing_unavailable: 501,
  // the ICT endpoint (packages/issuer): each also maps to an OAuth `error` there
  method_not_allowed: 405,
  media_type_unsupported: 415,
  grant_type_unsupported: 400,
  token_type_unsupported: 400,
  client_invalid: 401,
  access_token_missing: 401,
  access_token_invalid: 401,
  access_token_expired: 401,
  pop_invalid: 400,
  pop_typ_invalid: 400,
  pop_key_invalid: 400,
  pop_expired: 400,
  pop_not_yet_valid: 400,
  pop_lifetime_exceeded: 400,
  context_not_allowed: 400,
  claim_unavailable: 404,
  // client-side verification of responses (never sent on the wire by a service)
  response_unsigned: 502,
  response_signature_invalid: 502,
  response_untrusted: 502,
  e2ee_response_unsigned: 502,
  e2ee_response_key_share_missing: 502,
  e2ee_response_suite_mismatch: 502,
  e2ee_response_not_encrypted: 502,
  e2ee_response_decrypt_failed: 502,
  // client-side: a function the client was given for its credential at the issuer (an access token,
  // API key or client assertion supplier) threw
  credential_supplier_failed: 500,
} as const;

/** One of the stable error codes. */
export type Oidc2ErrorCode = keyof typeof ERROR_STATUS;

/**
 * What a remote party answered, carried by a client-side error: the HTTP status and, when the
 * answer was a problem or an OAuth error, its code and description. `verified` says whether the
 * answer was signed by the expected party (a description from an unverified answer is a hint, not
 * a fact).
 */
export interface RemoteCause {
  readonly status: number;
  /** The problem's `code` (or the OAuth `error` when it has no code). */
  readonly code?: string;
  /** The OAuth `error` of an issuer's answer. */
  readonly error?: string;
  /** `error_description` or the problem's `detail`, cut to 300 characters. */
  readonly description?: string;
  readonly verified: boolean;
}

/** RFC 9457 problem details as this project renders them. */
export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  code: Oidc2ErrorCode;
  detail?: string;
  /** Extension members, e.g. `kems` (the service's suites) of `e2ee_kem_unsupported`. */
  [member: string]: unknown;
}

const TITLES: Partial<Record<Oidc2ErrorCode, string>> = {
  context_required: 'Forbidden',
  access_denied: 'Forbidden',
  issuer_unavailable: 'Service Unavailable',
  replay_store_unavailable: 'Service Unavailable',
  response_signing_unavailable: 'Not Implemented',
  body_too_large: 'Content Too Large',
  method_not_allowed: 'Method Not Allowed',
  media_type_unsupported: 'Unsupported Media Type',
  claim_unavailable: 'Not Found',
  e2ee_body_not_encrypted: 'Unsupported Media Type',
  session_keys_unavailable: 'Service Unavailable',
};

/**
 * The error every oidc2 package throws for protocol failures.
 *
 * @example
 * ```ts
 * try { await authenticator.authenticate(request) }
 * catch (err) { if (isOidc2Error(err)) res.writeHead(err.status, err.headers).end(JSON.stringify(err.toProblem())) }
 * ```
 */
export class Oidc2Error extends Error {
  /** The stable machine-readable code. */
  readonly code: Oidc2ErrorCode;
  /** The HTTP status a service answers with. */
  readonly status: number;
  /** Challenge headers (`WWW-Authenticate`, `Accept-Signature`, `DPoP-Nonce`) to send with the error. */
  headers: Record<string, string>;
  /** Extension members of the problem body (RFC 9457 section 3.2), e.g. `kems` of `e2ee_kem_unsupported`. */
  readonly extensions: Readonly<Record<string, unknown>>;
  /** On a client-side error: what the issuer or service answered. Never rendered into a problem. */
  readonly remote?: RemoteCause;

  constructor(code: Oidc2ErrorCode, message: string, options?: { cause?: unknown; headers?: Record<string, string>; extensions?: Record<string, unknown>; remote?: RemoteCause }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'Oidc2Error';
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.headers = { ...options?.headers };
    this.extensions = Object.freeze({ ...options?.extensions });
    if (options?.remote) this.remote = Object.freeze({ ...options.remote });
    Object.defineProperty(this, BRAND, { value: true });
  }

  /** RFC 9457 body. The message never contains tokens, proofs or keys. */
  toProblem(): ProblemDetails {
    return {
      ...this.extensions,
      type: `urn:oidc2:error:${this.code}`,
      title: TITLES[this.code] ?? (this.status === 400 ? 'Bad Request' : this.status === 401 ? 'Unauthorized' : 'Error'),
      status: this.status,
      code: this.code,
      detail: this.message,
    };
  }
}

/** True for errors thrown by any oidc2 package, across package copies and realms. */
export function isOidc2Error(value: unknown): value is Oidc2Error {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
}

/** Media type of error bodies. */
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';
