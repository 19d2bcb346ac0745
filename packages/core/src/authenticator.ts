/**
 * Request authentication (PROFILE sections 2.1, 2.2 and 4): one call turns an HTTP request into the
 * caller's verified identity or a coded error with status and challenge headers.
 */
import { decodeJwt, type JWK, type JWTPayload } from 'jose';
import { Oidc2Error, isOidc2Error } from './errors.js';
import { fieldLines, type HttpRequest } from './message.js';
import { createIctVerifier, type VerifiedIct } from './ict.js';
import type { TrustedIssuer } from './issuer-keys.js';
import { createDpopNonces, verifyDpopProof, type DpopNonceOptions } from './dpop.js';
import { MemoryReplayStore, type ReplayStore } from './replay-store.js';
import { verifyContentDigest } from './content-digest.js';
import { parseSignature, parseSignatureInput, verifyMessageSignature, type ComponentIdentifier, type SignatureInputEntry } from './rfc9421/index.js';
import { decodeBase64Url } from './lib/base64.js';
import { ASYMMETRIC_JWA } from './lib/crypto.js';
import { numberOption } from './lib/validate.js';
import { COVERED_WHEN_PRESENT, ICT_HEADER, ICT_SIGNATURE_TAG, REQUIRED_REQUEST_COMPONENTS } from './profile.js';
import { WIT_HEADER, createWitVerifier, verifyWpt, type WimseTrustDomain } from './wimse.js';
import { TXN_TOKEN_HEADER, createTxnTokenVerifier, type TransactionContext, type TransactionTokenOptions } from './txn-token.js';
import { audienceMatcher, normalizeTarget, type AudienceMatcher } from './lib/audience.js';
import { argumentError } from './lib/validate.js';

/** The proof a caller used. */
export type ProofType = 'http-signature' | 'dpop' | 'wpt';

/** Options of {@link createAuthenticator}. */
export interface AuthenticatorOptions {
  /** Trusted ICT issuers with their key sources. Required, at least one. */
  issuers: TrustedIssuer[];
  /**
   * The service's public base URLs as callers know them (e.g. `https://api.example.com` or
   * `https://example.com/api`). `oidc2-aud` and DPoP `htu` must equal one of them joined with the
   * request path. Required, at least one.
   */
  audiences: string[];
  /** Accepted proofs. Default `['http-signature', 'dpop']`, plus `'wpt'` when `workloads` is set. */
  proofs?: ProofType[];
  /** Replay store for signature nonces and DPoP `jti`s. Default: a {@link MemoryReplayStore}. */
  replayStore?: ReplayStore;
  /** Allowed clock skew in seconds for ICTs, signatures and proofs. Default 60. */
  clockTolerance?: number;
  /** Largest accepted `expires - created` of a request signature, in seconds. Default 300. */
  maxSignatureAge?: number;
  /** Largest accepted ICT lifetime (`exp - iat`) in seconds. Default 3600. */
  maxTokenAge?: number;
  /**
   * Values accepted in an ICT's `aud` claim when it has one (an ICT without `aud` is accepted).
   * Default: `aud` is not checked, because OIDC² issuers set it to the caller's own client ID
   * (`with_audience`), not to the services the caller may reach.
   */
  tokenAudiences?: string[];
  /** Components the signature must cover beyond the profile's, e.g. `['@authority']`. Default none. */
  requiredComponents?: string[];
  /** Require RFC 9449 server nonces in DPoP proofs. `true` uses a random secret. Default off. */
  dpopNonces?: boolean | DpopNonceOptions;
  /** Largest accepted size in bytes of any one credential or signature header. Default 8192. */
  maxHeaderBytes?: number;
  /** Clock in unix seconds. Default `Date.now() / 1000`. */
  now?: () => number;
  /** `fetch` used for issuer keys and discovery. Default `globalThis.fetch`. */
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
   * trust domains with a Workload Proof Token (`Authorization: WPT <jwt>`). Default none.
   */
  workloads?: WorkloadOptions;
}

/** WIMSE workload authentication (draft-ietf-wimse-workload-creds, -wpt). */
export interface WorkloadOptions {
  /** Trust domains whose WITs are accepted, with their keys. Required, at least one. */
  trustDomains: WimseTrustDomain[];
  /** Largest accepted WIT age in seconds. Default 86400. */
  maxTokenAge?: number;
  /** Also accept the WPT in the legacy `Workload-Proof-Token` header (wpt-01). Default false. */
  legacyProofHeader?: boolean;
}

/** What the response signature binds to: taken from the request. */
export interface RequestBinding {
  /** `created`-independent nonce of the request signature (HTTP-signature proof). */
  nonce?: string;
  /** Whether the caller asked for a signed response (`oidc2-sign-response`). */
  signResponse: boolean;
  /** The proof type. */
  proof: ProofType;
}

/** The authenticated caller. */
export interface Identity {
  /** `sub` of the ICT. */
  subject: string;
  /** `iss` of the ICT. */
  issuer: string;
  /** All ICT claims. */
  claims: JWTPayload;
  /** OIDC² authentication contexts (`ctx`), empty when absent. */
  contexts: string[];
  /** The caller's public key (public members only). */
  publicKey: JWK;
  /** RFC 7638 SHA-256 thumbprint of the caller's key, base64url. */
  thumbprint: string;
  /** Which proof the caller used. */
  proof: ProofType;
  /** The request signature parameters the response is bound to. */
  binding: RequestBinding;
  /** The verified Transaction Token of the call chain, when the service accepts them and one was sent. */
  transaction?: TransactionContext;
}

/** An authenticator created by {@link createAuthenticator}. */
export interface Authenticator {
  /** Authenticates one request; throws an `Oidc2Error` with status and challenge headers on failure. */
  authenticate(request: HttpRequest): Promise<Identity>;
  /** The challenge headers for a 401 with the given error code (also set on thrown errors). */
  challenge(code?: string): Record<string, string>;
  /** Normalised options. */
  readonly proofs: readonly ProofType[];
}

const NONCE_PATTERN = /^[A-Za-z0-9_-]{22,128}$/;

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
export function createAuthenticator(options: AuthenticatorOptions): Authenticator {
  if (typeof options !== 'object' || options === null) throw argumentError('ERR_INVALID_ARG_TYPE', 'options must be an object');
  if (!Array.isArray(options.issuers) || options.issuers.length === 0) {
    throw argumentError('ERR_INVALID_ARG_VALUE', 'options.issuers must list at least one trusted issuer');
  }
  if (!Array.isArray(options.audiences) || options.audiences.length === 0) {
    throw argumentError('ERR_INVALID_ARG_VALUE', 'options.audiences must list at least one public base URL');
  }
  const proofs: ProofType[] = options.proofs ?? ['http-signature', 'dpop', ...(options.workloads ? (['wpt'] as const) : [])];
  if (!Array.isArray(proofs) || proofs.length === 0 || proofs.some((p) => p !== 'http-signature' && p !== 'dpop' && p !== 'wpt')) {
    throw argumentError('ERR_INVALID_ARG_VALUE', "options.proofs must be a non-empty list of 'http-signature', 'dpop' and 'wpt'");
  }
  if (proofs.includes('wpt') && !options.workloads) throw argumentError('ERR_INVALID_ARG_VALUE', "options.proofs includes 'wpt' but options.workloads is not set");
  const tolerance = numberOption('options.clockTolerance', options.clockTolerance, 60);
  const maxSignatureAge = numberOption('options.maxSignatureAge', options.maxSignatureAge, 300);
  const maxHeaderBytes = numberOption('options.maxHeaderBytes', options.maxHeaderBytes, 8192);
  const now = options.now ?? (() => Date.now() / 1000);
  if (typeof now !== 'function') throw argumentError('ERR_INVALID_ARG_TYPE', 'options.now must be a function');
  const replayStore = options.replayStore ?? new MemoryReplayStore();
  if (typeof replayStore.checkAndRecord !== 'function') {
    throw argumentError('ERR_INVALID_ARG_TYPE', 'options.replayStore must implement checkAndRecord');
  }
  const audiences: AudienceMatcher = audienceMatcher(options.audiences, 'audiences');
  const extraComponents = (options.requiredComponents ?? []).map((c) => {
    if (typeof c !== 'string' || c.length === 0) throw argumentError('ERR_INVALID_ARG_VALUE', 'options.requiredComponents must be strings');
    return c.toLowerCase();
  });
  const ictVerifier = createIctVerifier({
    issuers: options.issuers,
    audiences: options.tokenAudiences,
    maxTokenAge: options.maxTokenAge,
    clockTolerance: tolerance,
    now,
    fetch: options.fetch,
    cacheSize: options.cacheSize,
  });
  const dpopNonces =
    options.dpopNonces === undefined || options.dpopNonces === false
      ? undefined
      : createDpopNonces(options.dpopNonces === true ? {} : options.dpopNonces);
  const txnTokens = options.transactionTokens === undefined ? undefined : createTxnTokenVerifier(options.transactionTokens, { now, clockTolerance: tolerance, fetch: options.fetch });
  const witVerifier = options.workloads
    ? createWitVerifier({ trustDomains: options.workloads.trustDomains, maxTokenAge: options.workloads.maxTokenAge, clockTolerance: tolerance, now, fetch: options.fetch, cacheSize: options.cacheSize })
    : undefined;
  const legacyWpt = options.workloads?.legacyProofHeader === true;
  const acceptsWpt = proofs.includes('wpt');
  const acceptsSignature = proofs.includes('http-signature');
  const acceptsDpop = proofs.includes('dpop');

  function challenge(code?: string, dpopError?: string): Record<string, string> {
    const challenges: string[] = [];
    const headers: Record<string, string> = {};
    if (acceptsSignature) {
      challenges.push(code ? `Oidc2 error="${code}"` : 'Oidc2');
      headers['accept-signature'] =
        `sig=(${[...REQUIRED_REQUEST_COMPONENTS, ...extraComponents].map((c) => `"${c}"`).join(' ')});tag="${ICT_SIGNATURE_TAG}"`;
    }
    if (acceptsDpop) {
      const err = dpopError ? ` error="${dpopError}",` : '';
      challenges.push(`DPoP${err} algs="${ASYMMETRIC_JWA.join(' ')}"`);
    }
    if (acceptsWpt) challenges.push('WPT');
    headers['www-authenticate'] = challenges.join(', ');
    return headers;
  }

  function single(request: HttpRequest, name: string, missing: () => Oidc2Error): string {
    const lines = fieldLines(request.headers, name);
    if (!lines) throw missing();
    if (lines.length !== 1) throw new Oidc2Error('request_malformed', `exactly one ${name} field line is allowed`);
    const value = lines[0]!.trim();
    if (value.length > maxHeaderBytes) throw new Oidc2Error('header_too_large', `${name} exceeds ${maxHeaderBytes} bytes`);
    return value;
  }

  function hasBody(request: HttpRequest): boolean {
    // The bytes as received decide; the framing fields only when the adapter passed no body.
    if (request.body !== undefined) return request.body.length > 0;
    const length = fieldLines(request.headers, 'content-length');
    if (length && length.some((l) => l.trim() !== '0')) return true;
    return fieldLines(request.headers, 'transfer-encoding') !== undefined;
  }

  function covers(components: ComponentIdentifier[], name: string): boolean {
    return components.some((c) => c.name === name && c.params.key === undefined && c.params.req !== true && c.params.name === undefined && c.params.tr !== true);
  }

  async function authenticateSignature(request: HttpRequest): Promise<Identity> {
    // 1. Parse and bound sizes.
    const inputs = parseSignatureInput(fieldLines(request.headers, 'signature-input'), { maxBytes: maxHeaderBytes });
    let entry: SignatureInputEntry | undefined;
    for (const candidate of inputs.values()) {
      if (candidate.params.tag !== ICT_SIGNATURE_TAG) continue;
      if (entry) throw new Oidc2Error('signature_ambiguous', `more than one signature is tagged ${ICT_SIGNATURE_TAG}`);
      entry = candidate;
    }
    if (!entry) throw new Oidc2Error('signature_missing', `no signature tagged ${ICT_SIGNATURE_TAG}`);
    const signatures = parseSignature(fieldLines(request.headers, 'signature'), { maxBytes: maxHeaderBytes });
    const signature = signatures.get(entry.label);
    if (!signature) throw new Oidc2Error('signature_missing', `no Signature member for label ${entry.label}`);
    const token = single(request, ICT_HEADER, () => new Oidc2Error('ict_missing', 'the Identity-Certification-Token header is missing'));

    // 2. Verify the ICT.
    const ict = await ictVerifier.verify(token);

    // 3. Verify the signature with cnf.jwk: first what it must cover and which parameters it may carry.
    const params = entry.params;
    if (params.keyid !== undefined || params.alg !== undefined) {
      throw new Oidc2Error('signature_params_invalid', 'keyid and alg must not appear: the key and algorithm come from the ICT');
    }
    const required: string[] = [...REQUIRED_REQUEST_COMPONENTS, ...extraComponents];
    for (const field of COVERED_WHEN_PRESENT) if (fieldLines(request.headers, field)) required.push(field);
    for (const name of required) {
      if (!covers(entry.components, name)) throw new Oidc2Error('component_not_covered', `the signature must cover ${name}`);
    }
    const created = params.created;
    const expires = params.expires;
    const nonce = params.nonce;
    const aud = params['oidc2-aud'];
    const signResponse = params['oidc2-sign-response'];
    if (typeof created !== 'number' || typeof expires !== 'number' || !Number.isInteger(created) || !Number.isInteger(expires)) {
      throw new Oidc2Error('signature_params_invalid', 'created and expires are required integers');
    }
    if (expires <= created || expires - created > maxSignatureAge) {
      throw new Oidc2Error('signature_params_invalid', `expires - created must be between 1 and ${maxSignatureAge} seconds`);
    }
    if (typeof nonce !== 'string' || !NONCE_PATTERN.test(nonce) || (decodeBase64Url(nonce)?.length ?? 0) < 16) {
      throw new Oidc2Error('signature_params_invalid', 'nonce must be at least 128 random bits, base64url');
    }
    if (typeof aud !== 'string') throw new Oidc2Error('signature_params_invalid', 'oidc2-aud is required');
    if (signResponse !== undefined && typeof signResponse !== 'boolean') {
      throw new Oidc2Error('signature_params_invalid', 'oidc2-sign-response must be a boolean');
    }
    if (!ict.key) throw new Oidc2Error('ict_cnf_invalid', 'the ICT must carry cnf.jwk for HTTP message signatures');
    if (!(await verifyMessageSignature(request, entry, signature, ict.key))) {
      throw new Oidc2Error('signature_invalid', 'the request signature does not verify with the ICT key');
    }

    // 4. Time window, audience, digest.
    const t = now();
    if (created > t + tolerance) throw new Oidc2Error('signature_not_yet_valid', 'the signature was created in the future');
    if (expires < t - tolerance) throw new Oidc2Error('signature_expired', 'the signature has expired');
    if (!audiences.matches(aud, request.url)) throw new Oidc2Error('audience_mismatch', 'oidc2-aud does not name this service and path');
    await digestCheck(request, true);
    const transaction = await transactionOf(request);

    // 5. Only now record the nonce.
    if (!(await replayStore.checkAndRecord(`sig:${nonce}`, expires + tolerance, t))) {
      throw new Oidc2Error('replay_detected', 'this signature nonce was seen before');
    }
    return identityOf(ict, ict.jwk!, 'http-signature', { nonce, signResponse: signResponse === true, proof: 'http-signature' }, transaction);
  }

  // HTTP signatures require a digest of any body; DPoP and WPT cover no body, so a digest sent
  // with them is verified but not demanded (PROFILE 2.2).
  async function digestCheck(request: HttpRequest, requiredForBody: boolean): Promise<void> {
    const lines = fieldLines(request.headers, 'content-digest');
    const body = hasBody(request);
    if (!lines && !(body && requiredForBody)) return;
    await verifyContentDigest(lines, request.body ?? new Uint8Array(0), { required: body && requiredForBody });
  }

  async function authenticateDpop(request: HttpRequest, authorization: string): Promise<Identity> {
    const token = authorization.slice(5).trim();
    if (token.length === 0) throw new Oidc2Error('ict_missing', 'the DPoP-bound ICT is missing');
    if (token.length > maxHeaderBytes) throw new Oidc2Error('header_too_large', `authorization exceeds ${maxHeaderBytes} bytes`);
    const proof = single(request, 'dpop', () => new Oidc2Error('dpop_invalid', 'the DPoP header is missing'));
    const ict = await ictVerifier.verify(token, { allowJkt: true });
    const transaction = await transactionOf(request);
    // Checked before the proof, whose jti is recorded last.
    await digestCheck(request, false);
    const t = now();
    const htu = dpopTarget(proof, request.url);
    const verified = await verifyDpopProof(proof, {
      method: request.method,
      htu,
      accessToken: token,
      expectedThumbprint: ict.thumbprint,
      now: t,
      clockTolerance: tolerance,
      maxAge: maxSignatureAge,
      replayStore,
      nonces: dpopNonces,
    });
    return identityOf(ict, ict.jwk ?? verified.jwk, 'dpop', { signResponse: false, proof: 'dpop' }, transaction);
  }

  // The proof names the URI the caller used; pick the configured base it claims (the proof
  // verification compares it again), so a service reachable under several names accepts each.
  function dpopTarget(proof: string, requestUrl: string): string {
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

  // WIMSE: WIT plus WPT. Failures are 400, as the WIMSE drafts say; the jti is recorded last.
  async function authenticateWpt(request: HttpRequest, wpt: string, bearer: string | undefined): Promise<Identity> {
    if (wpt.length > maxHeaderBytes) throw new Oidc2Error('header_too_large', `the Workload Proof Token exceeds ${maxHeaderBytes} bytes`);
    const witToken = single(request, WIT_HEADER, () => new Oidc2Error('wit_missing', 'the Workload-Identity-Token header is missing'));
    const wit = await witVerifier!.verify(witToken);
    const transaction = await transactionOf(request);
    await digestCheck(request, false);
    const txn = fieldLines(request.headers, TXN_TOKEN_HEADER);
    await verifyWpt(wpt, {
      wit,
      witToken,
      method: request.method,
      audience: audiences.candidates(request.url),
      now: now(),
      clockTolerance: tolerance,
      maxAge: maxSignatureAge,
      replayStore,
      ...(bearer !== undefined ? { accessToken: bearer } : {}),
      ...(txn?.length === 1 ? { transactionToken: txn[0]!.trim() } : {}),
    });
    return {
      subject: wit.subject,
      issuer: typeof wit.claims.iss === 'string' ? wit.claims.iss : `wimse://${wit.trustDomain}`,
      claims: wit.claims,
      contexts: [],
      publicKey: wit.jwk,
      thumbprint: wit.thumbprint,
      proof: 'wpt',
      binding: { proof: 'wpt', signResponse: false },
      ...(transaction ? { transaction } : {}),
    };
  }

  // The Txn-Token, verified when the service accepts them; never recorded, so it goes before the nonce.
  async function transactionOf(request: HttpRequest): Promise<TransactionContext | undefined> {
    if (!txnTokens) return undefined;
    const lines = fieldLines(request.headers, TXN_TOKEN_HEADER);
    if (!lines) {
      if (txnTokens.required) throw new Oidc2Error('txn_token_missing', 'this service requires a Txn-Token');
      return undefined;
    }
    if (lines.length !== 1) throw new Oidc2Error('request_malformed', 'exactly one Txn-Token field line is allowed');
    return txnTokens.verify(lines[0]!.trim());
  }

  function identityOf(ict: VerifiedIct, publicKey: JWK, proof: ProofType, binding: RequestBinding, transaction?: TransactionContext): Identity {
    return {
      subject: ict.subject,
      issuer: ict.issuer,
      claims: ict.payload,
      contexts: ict.contexts,
      publicKey,
      thumbprint: ict.thumbprint,
      proof,
      binding,
      ...(transaction ? { transaction } : {}),
    };
  }

  async function authenticate(request: HttpRequest): Promise<Identity> {
    let dpop = false;
    try {
      const authorization = fieldLines(request.headers, 'authorization');
      if (acceptsWpt && authorization?.length === 1 && /^wpt /i.test(authorization[0]!.trim())) {
        return await authenticateWpt(request, authorization[0]!.trim().slice(4).trim(), undefined);
      }
      const legacy = legacyWpt && acceptsWpt ? fieldLines(request.headers, 'workload-proof-token') : undefined;
      if (legacy) {
        if (legacy.length !== 1) throw new Oidc2Error('request_malformed', 'exactly one Workload-Proof-Token field line is allowed');
        const bearer = authorization?.length === 1 ? /^bearer (.+)$/i.exec(authorization[0]!.trim())?.[1] : undefined;
        return await authenticateWpt(request, legacy[0]!.trim(), bearer);
      }
      if (acceptsDpop && authorization?.length === 1 && /^dpop /i.test(authorization[0]!.trim())) {
        dpop = true;
        return await authenticateDpop(request, authorization[0]!.trim());
      }
      if (acceptsSignature && (fieldLines(request.headers, 'signature-input') || fieldLines(request.headers, ICT_HEADER))) {
        return await authenticateSignature(request);
      }
      if (authorization && /^dpop /i.test(authorization[0]!.trim())) {
        throw new Oidc2Error('proof_not_accepted', 'DPoP proofs are not accepted by this service');
      }
      if (fieldLines(request.headers, 'signature-input')) {
        throw new Oidc2Error('proof_not_accepted', 'HTTP message signatures are not accepted by this service');
      }
      if (authorization && /^wpt /i.test(authorization[0]!.trim())) {
        throw new Oidc2Error('proof_not_accepted', 'Workload Proof Tokens are not accepted by this service');
      }
      throw new Oidc2Error('ict_missing', 'no Identity Certification Token was presented');
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
