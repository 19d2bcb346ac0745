/**
 * Request authentication (docs/protocol.md sections 2 and 5): one call turns an HTTP request into the
 * caller's verified identity or a coded error with status and challenge headers. The proof is
 * named by {@link detectProof}, and each proof is verified by its own module under `proofs/`.
 */
import type { JWK, JWTPayload } from 'jose';
import { Oidc2Error, isOidc2Error } from './errors.js';
import { fieldLines, type HttpRequest } from './message.js';
import { createIctVerifier } from './ict.js';
import type { TrustedIssuer } from './issuer-keys.js';
import { DPOP_NONCE_OPTION_KEYS, createDpopNonces, type DpopNonceOptions } from './dpop.js';
import { MemoryReplayStore, type ReplayStore } from './replay-store.js';
import { verifyContentDigest } from './content-digest.js';
import { ASYMMETRIC_JWA } from './lib/crypto.js';
import { argumentError, assertOptions, numberOption } from './lib/validate.js';
import { OIDC2_PROFILE, WIMSE_06_PROFILE, WIMSE_PROFILE, type SignatureProfile } from './profile.js';
import { WIMSE_TRUST_DOMAIN_KEYS, createWitVerifier, type WimseTrustDomain } from './wimse.js';
import { TXN_TOKEN_HEADER, createTxnTokenVerifier, type TransactionContext, type TransactionTokenOptions } from './txn-token.js';
import { audienceMatcher } from './lib/audience.js';
import type { AcceptedProof, ProofType, RequestBinding } from './binding.js';
import { detectProof, type DetectProofOptions } from './proofs/detect.js';
import type { ProofContext, ProofHooks } from './proofs/context.js';
import { verifyHttpSignatureProof } from './proofs/http-signature.js';
import { verifyDpopRequest } from './proofs/dpop.js';
import { verifyWptRequest } from './proofs/wpt.js';
import { assertEventListener, createEventSink, type EventSink, type Oidc2EventListener } from './events.js';
import { sessionMacInputs, verifySessionMacRequest, type SessionMacHost } from './e2ee/symmetric.js';

export type { AcceptedProof, ProofType, RequestBinding } from './binding.js';

/** Options of {@link createAuthenticator}. */
export interface AuthenticatorOptions {
  /** Trusted ICT issuers with their key sources. Required, at least one. */
  issuers: TrustedIssuer[];
  /**
   * The service's public base URLs as callers know them (e.g. `https://api.example.com` or
   * `https://example.com/api`). The signature profile's audience parameter and DPoP `htu` must equal one of them joined with the
   * request path. Required, at least one.
   */
  audiences: string[];
  /**
   * Accepted proofs: `'http-signature'` (OIDC² profile, an ICT), `'dpop'`, and with `workloads`
   * `'wpt'` and `'wimse-signature'` (the WIMSE HTTP-signature profile, a WIT). Default
   * `['http-signature', 'dpop']`, plus `'wpt'` and `'wimse-signature'` when `workloads` is set.
   */
  proofs?: AcceptedProof[];
  /** Replay store for signature nonces and DPoP `jti`s. Default: a {@link MemoryReplayStore}. */
  replayStore?: ReplayStore;
  /** Allowed clock skew in seconds for ICTs, signatures and proofs. Default 60. */
  clockTolerance?: number;
  /** Largest accepted `expires - created` of a request signature (and WPT lifetime), in seconds. Default 300. */
  maxSignatureAge?: number;
  /** Largest accepted ICT lifetime (`exp - iat`) in seconds. Default 3600. */
  maxTokenAge?: number;
  /**
   * Values accepted in an ICT's `aud` claim when it has one (an ICT without `aud` is accepted).
   * Default: `aud` is not checked, because OIDC² issuers set it to the caller's own client ID
   * (`with_audience`), not to the services the caller may reach. An issuer's own
   * `tokenAudiences` (`issuers[].tokenAudiences`) takes precedence for its ICTs.
   */
  tokenAudiences?: string[];
  /**
   * Receives the verifier's events (docs/events.md): here, one per fetch of an issuer's or trust
   * domain's keys. A service built on this authenticator (`createOidc2Service`, the adapters) also
   * publishes authentication, response-signing and credential events. Default none.
   */
  onEvent?: Oidc2EventListener;
  /** Components the signature must cover beyond the profile's, e.g. `['@authority']`. Default none. */
  requiredComponents?: string[];
  /** Require RFC 9449 server nonces in DPoP proofs. `true` uses a random secret. Default off. */
  dpopNonces?: boolean | DpopNonceOptions;
  /** Largest accepted size in bytes of any one credential or signature header. Default 8192. */
  maxHeaderBytes?: number;
  /** Clock in unix seconds. Default `Date.now() / 1000`. */
  now?: () => number;
  /** `fetch` used for issuer keys and discovery. Default: a GET over node:http(s) on Node, else `globalThis.fetch` (see `IssuerKeyOptions.fetch`). */
  fetch?: typeof fetch;
  /** Entries in the verified-ICT cache. Default 10000. */
  cacheSize?: number;
  /**
   * Verify `Txn-Token` headers from this Transaction Token Service and expose them as
   * `identity.transaction`. Default none: a `Txn-Token` is covered by the request signature but not
   * interpreted.
   */
  transactionTokens?: TransactionTokenOptions;
  /**
   * Accept WIMSE workloads: a Workload Identity Token (`Workload-Identity-Token`) from one of these
   * trust domains with a Workload Proof Token (`Authorization: WPT <jwt>`) or an HTTP message
   * signature of the WIMSE profile (`tag="wimse-workload-to-workload"`). Default none.
   */
  workloads?: WorkloadOptions;
}

/** A version of draft-ietf-wimse-http-signature whose request signatures are accepted. */
export type WimseSignatureDraft = '07' | '06';

/** WIMSE workload authentication (draft-ietf-wimse-workload-creds, -wpt, -http-signature). */
export interface WorkloadOptions {
  /** Trust domains whose WITs are accepted, with their keys. Required, at least one. */
  trustDomains: WimseTrustDomain[];
  /** Largest accepted WIT age in seconds. Default 86400. */
  maxTokenAge?: number;
  /** Also accept the WPT in the legacy `Workload-Proof-Token` header (wpt-01). Default false. */
  legacyProofHeader?: boolean;
  /**
   * The forms of WIMSE request signatures accepted, in order of preference: `'07'` covers `@path`
   * and `@query`, `'06'` covers `@request-target` instead (a compatibility option for callers of
   * draft -06). Responses are signed in the form of the request. Default `['07']`.
   */
  httpSignatureDrafts?: WimseSignatureDraft[];
}

/** The authenticated caller: a user (an ICT) or a workload (a WIT). */
export interface Identity {
  /** `'user'` for a caller with an ICT, `'workload'` for a caller with a WIT. */
  kind: 'user' | 'workload';
  /** `sub` of the ICT or WIT (for a workload, its Workload Identifier URI). */
  subject: string;
  /** `iss` of the ICT or WIT; the empty string for a WIT without `iss`. */
  issuer: string;
  /** The trust domain of a workload's identifier (lower case, as configured); absent for users. */
  trustDomain?: string;
  /** All claims of the ICT or WIT. */
  claims: JWTPayload;
  /** OIDC² authentication contexts (`ctx`), empty when absent (always for workloads). */
  contexts: string[];
  /**
   * The caller's public key (public members only). Absent for a session-authenticated caller
   * ({@link sessionMac}): its session token carries only the key's thumbprint.
   */
  publicKey?: JWK;
  /** RFC 7638 SHA-256 thumbprint of the caller's key, base64url. */
  thumbprint: string;
  /** Which proof the caller used. */
  proof: ProofType;
  /** The request signature parameters the response is bound to. */
  binding: RequestBinding;
  /** The verified Transaction Token of the call chain, when the service accepts them and one was sent. */
  transaction?: TransactionContext;
  /**
   * `true` when the caller authenticated with its session's MAC key instead of a credential and a
   * public-key signature (docs/protocol.md section 7.11): subject, issuer, contexts and thumbprint
   * are those its session token states, `claims` holds only `iss`, `sub` and `ctx`, and
   * `publicKey` is absent.
   */
  sessionMac?: true;
}

/** Options of one {@link Authenticator.authenticate} call. */
export interface AuthenticateOptions {
  /**
   * Runs with the verified identity after every check of the proof and immediately before its
   * signature nonce, DPoP `jti` or WPT `jti` is recorded in the replay store (e.g. to check an
   * end-to-end session and decrypt the body). When it throws, nothing is recorded and the error
   * propagates (decorated with challenge headers when it is a 401 `Oidc2Error`). Default none.
   */
  beforeRecord?: (identity: Identity) => Promise<void> | void;
  /**
   * The request's body is an end-to-end encrypted body sent without `Content-Digest`, left unread to
   * be decrypted record by record once admitted (docs/protocol.md section 7.7, the one exception to the digest rule of
   * section 2.1): no digest is demanded of it. Set by the exchange for a session request on a route
   * that accepts streamed bodies. Default false.
   */
  streamedEncryptedBody?: boolean;
  /**
   * Verify a request signed with a session MAC (a signature tagged `oidc2-session`, docs/protocol.md
   * section 7.11) against the service's session tokens; `routeAllows: false` refuses it with
   * `session_mac_unavailable`. Set by the exchange of a service with end-to-end encryption.
   * Default none: such a request names no accepted proof.
   */
  sessionMac?: { readonly host: SessionMacHost; readonly routeAllows: boolean; readonly token?: string };
}

/** Every key of {@link AuthenticatorOptions}: any other key is refused with `ERR_UNKNOWN_OPTION`. */
export const AUTHENTICATOR_OPTION_KEYS = Object.freeze([
  'issuers',
  'audiences',
  'proofs',
  'replayStore',
  'clockTolerance',
  'maxSignatureAge',
  'maxTokenAge',
  'tokenAudiences',
  'onEvent',
  'requiredComponents',
  'dpopNonces',
  'maxHeaderBytes',
  'now',
  'fetch',
  'cacheSize',
  'transactionTokens',
  'workloads',
] as const satisfies ReadonlyArray<keyof AuthenticatorOptions>);

/** Every key of {@link WorkloadOptions}. */
export const WORKLOAD_OPTION_KEYS = Object.freeze(['trustDomains', 'maxTokenAge', 'legacyProofHeader', 'httpSignatureDrafts'] as const satisfies ReadonlyArray<keyof WorkloadOptions>);

const ACCEPTED_PROOFS: readonly AcceptedProof[] = ['http-signature', 'wimse-signature', 'dpop', 'wpt'];
const WIMSE_DRAFT_PROFILES: Record<WimseSignatureDraft, SignatureProfile> = { '07': WIMSE_PROFILE, '06': WIMSE_06_PROFILE };

/** An authenticator created by {@link createAuthenticator}. */
export interface Authenticator {
  /**
   * Authenticates one request; throws an `Oidc2Error` with status and challenge headers on failure.
   * `options.beforeRecord` runs after every check, immediately before the request's nonce or `jti`
   * is recorded; when it throws, nothing is recorded.
   */
  authenticate(request: HttpRequest, options?: AuthenticateOptions): Promise<Identity>;
  /** The challenge headers for a 401 with the given error code (also set on thrown errors). */
  challenge(code?: string): Record<string, string>;
  /** The accepted proofs (normalised option). */
  readonly proofs: readonly AcceptedProof[];
}

/**
 * Creates the request authenticator. Options are validated once, here.
 *
 * @example
 * ```ts
 * const auth = createAuthenticator({
 *   issuers: [{ issuer: 'https://op.example.com' }],
 *   audiences: ['https://api.example.com'],
 * })
 * const identity = await auth.authenticate({ method, url, headers, body })
 * ```
 */
export function createAuthenticator(options: AuthenticatorOptions, sink?: EventSink): Authenticator {
  assertOptions(options as unknown, AUTHENTICATOR_OPTION_KEYS, 'options');
  assertEventListener(options.onEvent, 'options.onEvent');
  const events = sink ?? createEventSink(options.onEvent);
  if (!Array.isArray(options.issuers) || options.issuers.length === 0) {
    throw argumentError('ERR_INVALID_ARG_VALUE', 'options.issuers must list at least one trusted issuer');
  }
  if (!Array.isArray(options.audiences) || options.audiences.length === 0) {
    throw argumentError('ERR_INVALID_ARG_VALUE', 'options.audiences must list at least one public base URL');
  }
  const proofs: AcceptedProof[] = options.proofs ?? ['http-signature', 'dpop', ...(options.workloads ? (['wpt', 'wimse-signature'] as const) : [])];
  if (!Array.isArray(proofs) || proofs.length === 0 || proofs.some((p) => !ACCEPTED_PROOFS.includes(p))) {
    throw argumentError('ERR_INVALID_ARG_VALUE', "options.proofs must be a non-empty list of 'http-signature', 'wimse-signature', 'dpop' and 'wpt'");
  }
  for (const workloadProof of ['wpt', 'wimse-signature'] as const) {
    if (proofs.includes(workloadProof) && !options.workloads) throw argumentError('ERR_INVALID_ARG_VALUE', `options.proofs includes '${workloadProof}' but options.workloads is not set`);
  }
  const tolerance = numberOption('options.clockTolerance', options.clockTolerance, 60);
  const maxSignatureAge = numberOption('options.maxSignatureAge', options.maxSignatureAge, 300);
  const maxHeaderBytes = numberOption('options.maxHeaderBytes', options.maxHeaderBytes, 8192);
  const now = options.now ?? (() => Date.now() / 1000);
  if (typeof now !== 'function') throw argumentError('ERR_INVALID_ARG_TYPE', 'options.now must be a function');
  const replayStore = options.replayStore ?? new MemoryReplayStore();
  if (typeof replayStore.checkAndRecord !== 'function') {
    throw argumentError('ERR_INVALID_ARG_TYPE', 'options.replayStore must implement checkAndRecord');
  }
  const audiences = audienceMatcher(options.audiences, 'audiences');
  const extraComponents = (options.requiredComponents ?? []).map((c) => {
    if (typeof c !== 'string' || c.length === 0) throw argumentError('ERR_INVALID_ARG_VALUE', 'options.requiredComponents must be strings');
    return c.toLowerCase();
  });
  const ictVerifier = createIctVerifier({
    issuers: options.issuers,
    tokenAudiences: options.tokenAudiences,
    maxTokenAge: options.maxTokenAge,
    clockTolerance: tolerance,
    now,
    fetch: options.fetch,
    cacheSize: options.cacheSize,
  }, events);
  if (typeof options.dpopNonces === 'object' && options.dpopNonces !== null) assertOptions(options.dpopNonces as unknown, DPOP_NONCE_OPTION_KEYS, 'options.dpopNonces');
  if (options.workloads !== undefined) {
    assertOptions(options.workloads as unknown, WORKLOAD_OPTION_KEYS, 'options.workloads');
    if (Array.isArray(options.workloads.trustDomains)) {
      options.workloads.trustDomains.forEach((domain, i) => assertOptions(domain as unknown, WIMSE_TRUST_DOMAIN_KEYS, `options.workloads.trustDomains[${i}]`));
    }
  }
  const drafts = options.workloads?.httpSignatureDrafts ?? ['07'];
  if (!Array.isArray(drafts) || drafts.length === 0 || new Set(drafts).size !== drafts.length || drafts.some((d) => !Object.hasOwn(WIMSE_DRAFT_PROFILES, d))) {
    throw argumentError('ERR_INVALID_ARG_VALUE', "options.workloads.httpSignatureDrafts must list distinct drafts among '07' and '06'");
  }
  // The signature profiles this service verifies, in the order a signature's tag is matched.
  const profiles: SignatureProfile[] = [...(proofs.includes('http-signature') ? [OIDC2_PROFILE] : []), ...(proofs.includes('wimse-signature') ? drafts.map((d) => WIMSE_DRAFT_PROFILES[d]) : [])];
  const dpopNonces =
    options.dpopNonces === undefined || options.dpopNonces === false
      ? undefined
      : createDpopNonces(options.dpopNonces === true ? {} : options.dpopNonces);
  const txnTokens = options.transactionTokens === undefined ? undefined : createTxnTokenVerifier(options.transactionTokens, { now, clockTolerance: tolerance, fetch: options.fetch, events });
  const witVerifier = options.workloads
    ? createWitVerifier({ trustDomains: options.workloads.trustDomains, maxTokenAge: options.workloads.maxTokenAge, clockTolerance: tolerance, now, fetch: options.fetch, cacheSize: options.cacheSize }, events)
    : undefined;
  const legacyWpt = options.workloads?.legacyProofHeader === true;
  const acceptsWpt = proofs.includes('wpt');
  const acceptsSignature = proofs.includes('http-signature');
  const acceptsDpop = proofs.includes('dpop');
  // RFC 9421 section 5: what each accepted signature profile must cover (the preferred WIMSE form only).
  const acceptSignature = profiles
    .filter((p, i) => profiles.findIndex((q) => q.tag === p.tag) === i)
    .map((p) => `${p.label}=(${[...p.requiredComponents, ...extraComponents].map((c) => `"${c}"`).join(' ')});tag="${p.tag}"`)
    .join(', ');

  function challenge(code?: string, dpopError?: string): Record<string, string> {
    const challenges: string[] = [];
    const headers: Record<string, string> = {};
    if (acceptsSignature) challenges.push(code ? `Oidc2 error="${code}"` : 'Oidc2');
    if (acceptSignature) headers['accept-signature'] = acceptSignature;
    if (acceptsDpop) {
      const err = dpopError ? ` error="${dpopError}",` : '';
      challenges.push(`DPoP${err} algs="${ASYMMETRIC_JWA.join(' ')}"`);
    }
    if (acceptsWpt) challenges.push('WPT');
    headers['www-authenticate'] = challenges.join(', ');
    return headers;
  }

  function hasBody(request: HttpRequest): boolean {
    // The bytes as received decide; the framing fields only when the adapter passed no body.
    if (request.body !== undefined) return request.body.length > 0;
    const length = fieldLines(request.headers, 'content-length');
    if (length && length.some((l) => l.trim() !== '0')) return true;
    return fieldLines(request.headers, 'transfer-encoding') !== undefined;
  }

  const context: ProofContext = {
    ictVerifier,
    ...(witVerifier ? { witVerifier } : {}),
    replayStore,
    now,
    clockTolerance: tolerance,
    maxSignatureAge,
    maxHeaderBytes,
    audiences,
    requiredComponents: extraComponents,
    ...(dpopNonces ? { dpopNonces } : {}),
    // HTTP signatures require a digest of any body; DPoP and WPT cover no body, so a digest sent
    // with them is verified but not demanded (docs/protocol.md section 3).
    // Both answer synchronously when there is nothing to verify, the common case.
    checkDigest(request, requiredForBody) {
      const lines = fieldLines(request.headers, 'content-digest');
      const body = hasBody(request);
      if (!lines && !(body && requiredForBody)) return;
      return verifyContentDigest(lines, request.body ?? new Uint8Array(0), { required: body && requiredForBody });
    },
    // The Txn-Token, verified when the service accepts them; never recorded, so it goes before the nonce.
    transaction(request) {
      const lines = fieldLines(request.headers, TXN_TOKEN_HEADER);
      // One line also where Txn-Tokens are not verified: a WPT's tth binds one, and a second would go unbound.
      if (lines && lines.length !== 1) throw new Oidc2Error('request_malformed', 'exactly one Txn-Token field line is allowed');
      if (!txnTokens) return undefined;
      if (!lines) {
        if (txnTokens.required) throw new Oidc2Error('txn_token_missing', 'this service requires a Txn-Token');
        return undefined;
      }
      return txnTokens.verify(lines[0]!.trim());
    },
  };

  const detectOptions: DetectProofOptions = Object.freeze({ proofs: Object.freeze([...proofs]), legacyProofHeader: legacyWpt, profiles: Object.freeze([...profiles]), maxHeaderBytes });

  const NOT_ACCEPTED: Record<AcceptedProof, string> = {
    'http-signature': 'HTTP message signatures are not accepted by this service',
    'wimse-signature': 'WIMSE workload signatures are not accepted by this service',
    dpop: 'DPoP proofs are not accepted by this service',
    wpt: 'Workload Proof Tokens are not accepted by this service',
  };

  async function authenticate(request: HttpRequest, callOptions: AuthenticateOptions = {}): Promise<Identity> {
    if (typeof callOptions !== 'object' || callOptions === null) throw argumentError('ERR_INVALID_ARG_TYPE', 'options must be an object');
    if (callOptions.beforeRecord !== undefined && typeof callOptions.beforeRecord !== 'function') {
      throw argumentError('ERR_INVALID_ARG_TYPE', 'options.beforeRecord must be a function');
    }
    if (callOptions.streamedEncryptedBody !== undefined && typeof callOptions.streamedEncryptedBody !== 'boolean') {
      throw argumentError('ERR_INVALID_ARG_TYPE', 'options.streamedEncryptedBody must be a boolean');
    }
    const hooks: ProofHooks = { beforeRecord: callOptions.beforeRecord, streamedEncryptedBody: callOptions.streamedEncryptedBody };
    let dpop = false;
    try {
      // Symmetric session authentication (docs/protocol.md section 7.11): a signature tagged oidc2-session.
      const macInputs = callOptions.sessionMac && sessionMacInputs(request.headers, maxHeaderBytes);
      if (macInputs) return await verifySessionMacRequest(request, macInputs, context, hooks, callOptions.sessionMac!.host, callOptions.sessionMac!);
      const detected = detectProof(request, detectOptions);
      switch (detected.proof) {
        case 'wpt':
          return await verifyWptRequest(request, detected.wpt, detected.bearer, context, hooks);
        case 'dpop':
          dpop = true;
          return await verifyDpopRequest(request, detected.token, context, hooks);
        case 'http-signature':
          return await verifyHttpSignatureProof(request, detected.profile, context, hooks, detected.inputs);
        case 'malformed':
          throw new Oidc2Error('request_malformed', detected.message);
        case 'not-accepted':
          throw new Oidc2Error('proof_not_accepted', NOT_ACCEPTED[detected.presented]);
        case 'none':
          throw new Oidc2Error('ict_missing', 'no Identity Certification Token was presented');
      }
    } catch (error) {
      if (!isOidc2Error(error)) throw error;
      if (error.status === 401) {
        const dpopError = !dpop ? undefined : error.code.startsWith('dpop') || error.code === 'replay_detected' ? 'invalid_dpop_proof' : 'invalid_token';
        const own: Record<string, string> = {};
        for (const [k, v] of Object.entries(error.headers)) own[k.toLowerCase()] = v;
        error.headers = { ...challenge(error.code, dpopError), ...own };
      }
      if (dpopNonces && dpop && error.headers['dpop-nonce'] === undefined) {
        error.headers['dpop-nonce'] = await dpopNonces.issue(now());
      }
      throw error;
    }
  }

  return { authenticate, challenge: (code?: string) => challenge(code), proofs };
}
