/**
 * `@oidc2/client`: a `fetch` for Node and browsers that authenticates every request with the
 * client's Identity Certification Token (docs/protocol.md sections 2 and 3), or as a workload with its
 * Workload Identity Token (section 2.3), and accepts only responses signed by a trusted service
 * (section 3).
 *
 * @packageDocumentation
 */
import {
  OIDC2_PROFILE,
  Oidc2Error,
  TXN_TOKEN_HEADER,
  WIMSE_06_PROFILE,
  WIMSE_PROFILE,
  WIT_HEADER,
  createContentDigest,
  createDpopProof,
  createIctVerifier,
  createWitVerifier,
  createWpt,
  dpopBinding,
  fieldLines,
  isOidc2Error,
  normalizeFields,
  signRequest,
  verifyResponse,
  wptBinding,
  type HttpRequest,
  type HttpResponse,
  type IctVerifier,
  type RequestBinding,
  type ServiceIdentity,
  type SignatureProfile,
  type TrustedIssuer,
  type WimseTrustDomain,
  type WitVerifier,
  type RemoteCause,
  type Oidc2EventListener,
} from '@oidc2/core';
import type { JWK } from 'jose';
import { CredentialRefresher, argumentError, assertEventListener, assertOptions, createEventSink, failureOf, isArgumentError, readBoundedBody } from '@oidc2/core/adapter';
import { NULL_BODY_STATUS } from './lib/null-body-status.js';
import { inspectIct, type HeldIct } from './lib/ict-holder.js';
import { inspectWit } from './lib/wit-holder.js';
import { assertKeyPair, clientKey, type ClientAlgorithm, type ClientKey } from './lib/keys.js';
import { issueCredential, validateIssuerOptions, type CredentialKind, type IssuanceOptions } from './lib/issuance.js';
import {
  E2eeClient,
  audienceOf,
  e2eeConfig,
  problemCode,
  rawThumbprint,
  type E2eeOptions,
  type EncryptionMode,
  type Exchanged,
  type Outgoing,
  type ResponseEncryption,
  type SendParams,
  type VerificationReport,
} from './lib/e2ee.js';
import { isReadableStream, streamsEncryptedBody } from './lib/e2ee-stream.js';
import { signWithSessionMac, verifySessionMacSigned } from './lib/e2ee-symmetric.js';

export type {
  CredentialRefreshEvent,
  IssuerGrantEvent,
  Oidc2Event,
  Oidc2EventListener,
  ResponseVerificationEvent,
  ServiceIdentity,
  TrustedIssuer,
  WimseTrustDomain,
} from '@oidc2/core';
export { OIDC2_EVENT_CHANNELS } from '@oidc2/core';
export type { ClientAlgorithm } from './lib/keys.js';
export type { IssuanceOptions, IssuerCredential } from './lib/issuance.js';
export { serviceCredential, type ServiceCredentialOptions, type ServiceIctCredential, type ServiceWitCredential } from './service-credential.js';
export type { E2eeOptions, E2eeSuite, EncryptionMode, ResponseEncryption } from './lib/e2ee.js';

/**
 * How the client proves its identity to a service:
 * - with an ICT: `'http-signature'` (docs/protocol.md section 2) or `'dpop'` (2.2);
 * - as a workload, with a WIT (2.3): `'wimse-signature'` (an RFC 9421 signature of
 *   draft-ietf-wimse-http-signature) or `'wpt'` (a Workload Proof Token, draft-ietf-wimse-wpt).
 */
export type ProofMode = 'http-signature' | 'dpop' | 'wimse-signature' | 'wpt';

/** The form of WIMSE request signatures: draft-ietf-wimse-http-signature-07, or its -06 form. */
export type WimseDraft = '07' | '06';

/**
 * Supplies an ICT for the client's public key, e.g. from an issuer this package does not speak
 * to. Called again shortly before the current ICT expires.
 */
export type IctProvider = (publicJwk: JWK) => Promise<string>;

/**
 * Supplies a WIT (`typ` `wit+jwt`) for the client's public key, e.g. from a SPIFFE agent or an
 * issuer this package does not speak to. `publicJwk` carries `alg`, the algorithm of the client's
 * proofs, which the WIT's `cnf.jwk` must carry too. Called again shortly before the current WIT
 * expires.
 */
export type WitProvider = (publicJwk: JWK) => Promise<string>;

/** Options of {@link createClient}. */
export interface ClientOptions {
  /**
   * The issuers trusted to certify services: a response counts only when it is signed with the
   * key of an ICT from one of these. Required, at least one, with an ICT proof (`'http-signature'`,
   * `'dpop'`). With `'wpt'` optional: then a service without a WIT, which answers WPT callers under
   * the OIDC² profile with its ICT, is verified against these. Refused with `'wimse-signature'`
   * (services answer it with their WIT only).
   */
  serviceIssuers?: TrustedIssuer[];
  /**
   * The WIMSE trust domains trusted for services, with where their WIT issuers' keys come from
   * (inline `jwks`, `jwksUri`, `spiffeBundleUrl`, or discovery under `issuer`): a response to a
   * workload proof counts only when it is signed with the key of a WIT from one of these.
   * Required, at least one, with a workload proof (`'wimse-signature'`, `'wpt'`); refused with an
   * ICT proof.
   */
  serviceTrustDomains?: WimseTrustDomain[];
  /**
   * The service subject (`sub` of its ICT, or of its WIT: its Workload Identifier) that must have
   * signed the response: one value, a list, or a function of the request URL returning either (or
   * `undefined` for any subject of a trusted issuer or trust domain). Default: any such subject.
   */
  expectedService?: string | string[] | ((url: URL) => string | string[] | undefined);
  /**
   * The request proof. With an ICT: `'http-signature'` (an RFC 9421 signature over method, path,
   * query, token, content type and digest; docs/protocol.md section 2) or `'dpop'` (`Authorization: DPoP <ICT>`
   * with an RFC 9449 proof; docs/protocol.md section 3, which does not protect the body or the query). As a
   * workload, with a WIT (docs/protocol.md section 3a): `'wimse-signature'` (`Workload-Identity-Token` and an RFC
   * 9421 signature tagged `wimse-workload-to-workload`, covering what `'http-signature'` covers)
   * or `'wpt'` (`Workload-Identity-Token` and `Authorization: WPT <proof>`, which binds the WIT and
   * any `Txn-Token` but, like DPoP, neither the body nor the query). A workload proof needs a WIT
   * (`getWit`, or `issuer` with grant `'wit'` or `'token-exchange'`) and `serviceTrustDomains`.
   * Default `'http-signature'`.
   */
  proof?: ProofMode;
  /**
   * The form of WIMSE request signatures (`proof: 'wimse-signature'` only): `'07'`
   * (draft-ietf-wimse-http-signature-07, covering `@path` and `@query`) or `'06'` (covering
   * `@request-target`, for services that accept only the -06 form). Default `'07'`.
   */
  wimseDraft?: WimseDraft;
  /** Algorithm of the generated key pair. Default `'ES256'`. */
  algorithm?: ClientAlgorithm;
  /**
   * A key pair to use instead of generating one (e.g. one kept in IndexedDB). It must fit
   * `algorithm`. Default: a fresh pair, generated on first use.
   */
  keyPair?: CryptoKeyPair;
  /** Generate an extractable private key. Default `false` (the private key never leaves WebCrypto). */
  extractable?: boolean;
  /**
   * Where the client's credential comes from: an issuer this package speaks to, for an ICT (grant
   * `'ict'` or `'token-exchange'`) or, with a workload proof, a WIT (grant `'wit'` or
   * `'token-exchange'`). Exactly one of `issuer` and `getIct` (ICT proofs) or `getWit` (workload
   * proofs) is required.
   */
  issuer?: IssuanceOptions;
  /** Where ICTs come from: your own provider. With an ICT proof, exactly one of `issuer` and `getIct` is required. */
  getIct?: IctProvider;
  /** Where WITs come from: your own provider. With a workload proof, exactly one of `issuer` and `getWit` is required. */
  getWit?: WitProvider;
  /**
   * Seconds before the ICT or WIT expires at which a new one is obtained (at most half its
   * lifetime). Default `60`.
   */
  refreshMargin?: number;
  /** Lifetime of request signatures (`expires - created`) and WPTs (`exp - now`), in seconds (1 to 300). Default `60`. */
  signatureLifetime?: number;
  /** Components every request signature covers beyond the profile's, e.g. `['@authority']`. Default none. */
  components?: string[];
  /** Digest algorithm of `Content-Digest` on request bodies. Default `'sha-256'`. */
  digestAlgorithm?: 'sha-256' | 'sha-512';
  /**
   * Largest response body, in bytes, read for verification; a larger one is rejected. A streamed
   * encrypted body (docs/protocol.md section 7.7) is not read whole and not bounded by it. Default 16 MiB.
   */
  maxResponseBytes?: number;
  /** Allowed clock skew in seconds when checking the service's ICT or WIT and signature. Default `60`. */
  clockTolerance?: number;
  /**
   * Largest accepted lifetime (`exp - iat`) of a service ICT or WIT, in seconds. Default `3600` for
   * an ICT, `86400` for a WIT.
   */
  maxServiceTokenAge?: number;
  /** The `fetch` used for services, the issuer and issuer keys. Default `globalThis.fetch`. */
  fetch?: typeof fetch;
  /** Clock in unix seconds. Default `() => Date.now() / 1000`. */
  now?: () => number;
  /**
   * End-to-end encryption of bodies (docs/protocol.md section 7), on top of the request signature, so that
   * TLS-terminating proxies see neither request nor response bodies:
   * - `'required'`: every request runs in an e2ee session and every response body must be
   *   encrypted; a service that cannot is an error (its signed refusal's code, e.g.
   *   `e2ee_unavailable`), never a request in clear.
   * - `'preferred'`: as `'required'`, except that after a *signed* `e2ee_unavailable` or
   *   `e2ee_kem_unsupported` from the expected service the request is sent again in clear, and that
   *   route (or, when the session endpoint said so, that service) is remembered as clear-only.
   * - `'off'`: no encryption.
   *
   * Sessions are opened on the first request without a body, or at the service's session endpoint
   * before a request with one (a handshake body would travel in clear), kept in memory per service
   * and pinned to the service that opened them. A refused session (`session_expired`,
   * `session_invalid`) costs one new handshake and one resend. An unsigned answer to an e2ee request
   * is `e2ee_response_unsigned` in both modes.
   *
   * Streamed bodies (docs/protocol.md section 7.7): an answer whose signed head carries no `Content-Digest` is
   * handed over once its head is verified, its body a stream decrypted record by record as it is
   * read, which errors with `e2ee_response_decrypt_failed` (never ends early) when a record is cut,
   * changed, lost, repeated or reordered. A `ReadableStream` request body (with `duplex: 'half'`) is
   * encrypted record by record as it is sent, without `Content-Digest`, for routes that take streamed
   * bodies; it is sent once (never again after a refused session, never in clear) and with
   * `redirect: 'error'`.
   *
   * Only with `proof: 'http-signature'` or `'wimse-signature'` (a DPoP proof or a WPT covers
   * neither e2ee field); anything else with `'dpop'` or `'wpt'` is a `TypeError`. A workload's
   * sessions are bound to its WIT's `iss` (empty when absent), `sub` and key, as the service binds
   * them. Headers, URL, status and lengths stay visible. Default `'off'`.
   */
  encryption?: EncryptionMode;
  /** Suites, ratchet, session endpoint and session cache of end-to-end encryption. Default: see {@link E2eeOptions}. */
  e2ee?: E2eeOptions;
  /**
   * Receives the client's decision events (docs/events.md): a `response_verification` event for
   * every response verified or refused (the service's subject, issuer and key thumbprint, status,
   * method and the URL's origin and path, never its query; with `e2ee` the handshake, session or
   * rekey it belonged to), a `credential_refresh` event (`side: 'client'`) each time the ICT or WIT
   * is obtained or fails to be, and with `issuer` an `issuer_grant` event per request to the
   * issuer. Never a token, proof, key, body or session token. On Node the same events go to
   * `node:diagnostics_channel`. A throwing listener changes nothing. Default none.
   */
  onEvent?: Oidc2EventListener;
}

/** Every key of {@link ClientOptions}: any other key is refused with `ERR_UNKNOWN_OPTION`. */
const CLIENT_OPTION_KEYS = [
  'serviceIssuers',
  'serviceTrustDomains',
  'expectedService',
  'proof',
  'wimseDraft',
  'algorithm',
  'keyPair',
  'extractable',
  'issuer',
  'getIct',
  'getWit',
  'refreshMargin',
  'signatureLifetime',
  'components',
  'digestAlgorithm',
  'maxResponseBytes',
  'clockTolerance',
  'maxServiceTokenAge',
  'fetch',
  'now',
  'encryption',
  'e2ee',
  'onEvent',
] as const satisfies ReadonlyArray<keyof ClientOptions>;

/** Fields the client sets on e2ee requests, which a caller must not set itself. */
const E2EE_REQUEST_FIELDS = ['content-encoding', 'oidc2-key-share', 'oidc2-session'];

/** Fields the client derives from the exchange and removes from the decrypted response it hands over. */
const E2EE_RESPONSE_FIELDS = ['content-encoding', 'content-digest', 'oidc2-key-share', 'oidc2-session'];

const PROOFS: readonly ProofMode[] = ['http-signature', 'dpop', 'wimse-signature', 'wpt'];
const WIMSE_DRAFTS: Record<WimseDraft, SignatureProfile> = { '07': WIMSE_PROFILE, '06': WIMSE_06_PROFILE };
const ICT_HEADER = OIDC2_PROFILE.tokenHeader;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/**
 * A response whose signature, service ICT (or WIT), binding to its request and body digest were verified.
 * The body is the verified bytes (the decrypted plaintext of an end-to-end encrypted response),
 * readable once as with any `Response`. A streamed encrypted response (docs/protocol.md section 7.7) is handed over
 * once its head is verified: its body is decrypted and authenticated record by record as it is read,
 * and errors with `e2ee_response_decrypt_failed` rather than end short; it is complete only once
 * it has ended without an error.
 */
export class VerifiedResponse extends Response {
  /** Who answered: the verified identity from the service's ICT, or its WIT (then with `trustDomain`). */
  readonly service: ServiceIdentity;
  /**
   * How the exchange was end-to-end encrypted, or `null` when it ran in clear (encryption off, a
   * service that answers only in clear, or a signed refusal of the service's middleware, which is
   * never encrypted). When not null, the body is the decrypted plaintext, and the fields that
   * described the ciphertext (`Content-Encoding`, `Content-Digest`) and the e2ee fields
   * (`Oidc2-Key-Share`, `Oidc2-Session`, which the client keeps to itself) are removed;
   * `Content-Length`, when present, is the plaintext's.
   */
  readonly encryption: ResponseEncryption | null;

  /** @internal */
  constructor(body: Uint8Array | ReadableStream<Uint8Array> | null, source: Response, service: ServiceIdentity, encryption: ResponseEncryption | null = null) {
    let headers = source.headers;
    if (encryption) {
      headers = new Headers(source.headers);
      for (const name of E2EE_RESPONSE_FIELDS) headers.delete(name);
      // A streamed plaintext's length is known only at its end.
      if (isReadableStream(body)) headers.delete('content-length');
      else if (source.headers.has('content-length')) headers.set('content-length', String(body?.length ?? 0));
    }
    super(body as BodyInit | null, { status: source.status, statusText: source.statusText, headers });
    this.service = service;
    this.encryption = encryption;
    // A constructed Response has no URL; keep the one that was fetched.
    Object.defineProperty(this, 'url', { value: source.url, enumerable: true });
  }
}

/**
 * A `fetch`-compatible function that signs requests and verifies responses, created by
 * {@link createClient}. It rejects with an `Oidc2Error` (`response_unsigned`,
 * `response_untrusted`, `response_signature_invalid`) for any response it cannot verify; it never
 * resolves with one. With end-to-end encryption it also rejects, fail-closed, with
 * `e2ee_response_unsigned` (an unsigned answer to an e2ee request, never retried in clear),
 * `e2ee_response_key_share_missing`, `e2ee_response_suite_mismatch`, `e2ee_response_not_encrypted`
 * and `e2ee_response_decrypt_failed` (which a streamed body's reading also errors with), and with the code of a signed e2ee refusal it cannot get past
 * (e.g. `e2ee_unavailable` when encryption is required, `session_expired` after its one new
 * handshake, `session_binding_mismatch`). Before sending, it rejects when it has no usable
 * credential: `issuer_unavailable` (the issuer or the `getIct` / `getWit` provider failed), the
 * issuer's own refusal code (e.g. `client_invalid`, `pop_invalid`, `access_denied`), or the code of
 * a credential that does not fit (`ict_*`, `wit_invalid`, `wit_expired`); and with a `TypeError`
 * for a request it will not send (a `txn-token` that is not one compact JWT, an `Authorization`
 * it sets itself).
 */
export interface Oidc2Fetch {
  (input: RequestInfo | URL, init?: RequestInit): Promise<VerifiedResponse>;
  /** The client's public key (public members only), generating the key pair if needed. */
  publicKey(): Promise<JWK>;
  /**
   * The current ICT, obtaining or renewing it if needed. It is a credential: never log it. A
   * client with a workload proof holds a WIT instead: then it rejects with a `TypeError`.
   */
  ict(): Promise<string>;
  /**
   * The current WIT of a client with a workload proof, obtaining or renewing it if needed. It is a
   * credential: never log it. A client with an ICT proof rejects with a `TypeError`.
   */
  wit(): Promise<string>;
}

function nonNegative(name: string, value: number | undefined, fallback: number, integer = false): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (integer && !Number.isInteger(value))) {
    throw argumentError('ERR_INVALID_ARG_VALUE', `options.${name} must be a non-negative ${integer ? 'integer' : 'number'}`);
  }
  return value;
}

function toHeaders(fields: Record<string, string[]>): Headers {
  const headers = new Headers();
  for (const [name, lines] of Object.entries(fields)) for (const line of lines) headers.append(name, line);
  return headers;
}

// RFC 9449 section 9: a service asks for (another) nonce with 401 and a new `DPoP-Nonce` field.
function asksForNonce(response: Response, sent: string | undefined): boolean {
  const nonce = response.headers.get('dpop-nonce');
  return response.status === 401 && !!nonce && nonce !== sent;
}

/**
 * Creates a `fetch` that authenticates as the holder of an ICT (or, as a workload, of a WIT) and
 * verifies who answered.
 *
 * Each request gets `Identity-Certification-Token`, `Content-Digest` (for a body) and an RFC 9421
 * signature tagged with `OIDC2_PROFILE.tag` asking for a signed response, or in `dpop` mode
 * `Authorization: DPoP <ICT>` and a `DPoP` proof. A workload sends `Workload-Identity-Token` and
 * either a signature tagged `wimse-workload-to-workload` (`'wimse-signature'`) or `Authorization:
 * WPT <proof>` (`'wpt'`). A `Txn-Token` field given with a request is sent unchanged, covered by
 * the signature or bound by the WPT's `tth`, so a service forwards its call chain's transaction
 * context by passing on the one it received. The response must carry the service's ICT from one
 * of `serviceIssuers` (or its WIT from one of `serviceTrustDomains`) and a signature bound to this
 * request, covering status, body digest and the request's method, path and query. Redirects are
 * never followed: a 3xx is verified and returned like any other response.
 *
 * The key pair is generated on first use (ES256 by default, private key non-extractable); the ICT
 * or WIT is obtained from `issuer`, `getIct` or `getWit` and renewed before it expires, once for
 * any number of concurrent requests.
 *
 * @example
 * ```ts
 * import { createClient } from '@oidc2/client'
 *
 * const options = {
 *   serviceIssuers: [{ issuer: 'https://attest.example.com' }],
 *   expectedService: 'spiffe://example.com/payments',
 *   issuer: { url: 'https://login.example.com', credential: { accessToken: () => session.accessToken }, subject: session.subject, clientId: 'payments-app' },
 * }
 * const api = createClient(options)
 * const response = await api('https://payments.example.com/v1/balance')
 * console.log(response.service.subject, await response.json())
 *
 * // Bodies end-to-end encrypted, whatever TLS-terminating proxies sit in between:
 * const sealed = createClient({ ...options, encryption: 'required' })
 * const transfer = await sealed('https://payments.example.com/v1/transfers', { method: 'POST', body: JSON.stringify({ amount: 120 }) })
 * console.log(transfer.encryption) // { suite: 'x25519', mode: 'session', epoch: 0, bodyEncrypted: true }
 * ```
 * @example A workload attested by its Kubernetes service-account token, calling with WIMSE signatures
 * ```ts
 * const ledger = createClient({
 *   proof: 'wimse-signature',
 *   serviceTrustDomains: [{ trustDomain: 'bank.example', issuer: 'https://wit.bank.example' }],
 *   expectedService: 'spiffe://bank.example/ns/payments/sa/ledger',
 *   issuer: {
 *     url: 'https://wit.bank.example',
 *     grant: 'wit',
 *     subject: 'spiffe://bank.example/ns/payments/sa/billing',
 *     credential: { clientAssertion: () => readFile('/var/run/secrets/tokens/wit', 'utf8') },
 *   },
 * })
 * // Forward the Txn-Token this service received: it goes on unchanged, covered by the signature.
 * const entry = await ledger('https://ledger.bank.example/entries', { method: 'POST', headers: { 'txn-token': received }, body })
 * ```
 */
// The code and detail of a problem+json answer, when it is one.
function unverifiedProblem(message: HttpResponse): RemoteCause | undefined {
  if (!/^application\/problem\+json\s*(;|$)/i.test(fieldLines(message.headers, 'content-type')?.[0] ?? '') || !message.body || message.body.length > 16384) return undefined;
  try {
    const problem = JSON.parse(new TextDecoder().decode(message.body)) as { code?: unknown; detail?: unknown };
    return {
      status: message.status,
      verified: false,
      ...(typeof problem.code === 'string' ? { code: problem.code.slice(0, 64) } : {}),
      ...(typeof problem.detail === 'string' ? { description: problem.detail.slice(0, 300) } : {}),
    };
  } catch {
    return undefined;
  }
}

export function createClient(options: ClientOptions): Oidc2Fetch {
  assertOptions(options, CLIENT_OPTION_KEYS, 'options');
  const proof: ProofMode = options.proof ?? 'http-signature';
  if (!PROOFS.includes(proof)) throw argumentError('ERR_INVALID_ARG_VALUE', "options.proof must be 'http-signature', 'dpop', 'wimse-signature' or 'wpt'");
  // Which credential the client holds: an ICT, or a WIT for the workload proofs.
  const kind: CredentialKind = proof === 'wimse-signature' || proof === 'wpt' ? 'wit' : 'ict';
  const nonEmpty = (value: unknown) => Array.isArray(value) && value.length > 0;
  if (kind === 'ict') {
    if (!nonEmpty(options.serviceIssuers)) throw argumentError('ERR_INVALID_ARG_VALUE', 'options.serviceIssuers must list at least one trusted issuer');
    if (options.serviceTrustDomains !== undefined) {
      throw argumentError('ERR_INVALID_ARG_VALUE', `options.serviceTrustDomains applies to the workload proofs 'wimse-signature' and 'wpt': services answer proof '${proof}' with their ICT`);
    }
  } else {
    if (!nonEmpty(options.serviceTrustDomains)) throw argumentError('ERR_INVALID_ARG_VALUE', `options.serviceTrustDomains must list at least one trust domain trusted for services (proof '${proof}')`);
    if (options.serviceIssuers !== undefined && (proof === 'wimse-signature' || !nonEmpty(options.serviceIssuers))) {
      throw argumentError(
        'ERR_INVALID_ARG_VALUE',
        proof === 'wimse-signature' ? "options.serviceIssuers does not apply to proof 'wimse-signature': services answer it with their WIT" : 'options.serviceIssuers must list at least one trusted issuer',
      );
    }
  }
  if (options.wimseDraft !== undefined && (proof !== 'wimse-signature' || !Object.hasOwn(WIMSE_DRAFTS, options.wimseDraft))) {
    throw argumentError('ERR_INVALID_ARG_VALUE', proof === 'wimse-signature' ? "options.wimseDraft must be '07' or '06'" : "options.wimseDraft applies to proof 'wimse-signature' only");
  }
  const wimseProfile = WIMSE_DRAFTS[options.wimseDraft ?? '07'];
  const algorithm: ClientAlgorithm = options.algorithm ?? 'ES256';
  if (algorithm !== 'ES256' && algorithm !== 'Ed25519') throw argumentError('ERR_INVALID_ARG_VALUE', "options.algorithm must be 'ES256' or 'Ed25519'");
  if (options.keyPair !== undefined) assertKeyPair(options.keyPair, algorithm);
  const provider = kind === 'ict' ? 'getIct' : 'getWit';
  const foreign = kind === 'ict' ? 'getWit' : 'getIct';
  if (options[foreign] !== undefined) {
    throw argumentError('ERR_INVALID_ARG_VALUE', `options.${foreign} supplies ${kind === 'ict' ? 'a WIT' : 'an ICT'}, and proof '${proof}' needs ${kind === 'ict' ? 'an ICT' : 'a WIT'}: use options.${provider}`);
  }
  if ((options.issuer === undefined) === (options[provider] === undefined)) {
    throw argumentError('ERR_INVALID_ARG_VALUE', `exactly one of options.issuer and options.${provider} is required`);
  }
  if (options[provider] !== undefined && typeof options[provider] !== 'function') throw argumentError('ERR_INVALID_ARG_TYPE', `options.${provider} must be a function`);
  if (options.issuer !== undefined) validateIssuerOptions(options.issuer, kind);
  const expected = options.expectedService;
  if (
    expected !== undefined &&
    typeof expected !== 'function' &&
    typeof expected !== 'string' &&
    !(Array.isArray(expected) && expected.every((s) => typeof s === 'string'))
  ) {
    throw argumentError('ERR_INVALID_ARG_TYPE', 'options.expectedService must be a string, an array of strings or a function');
  }
  const margin = nonNegative('refreshMargin', options.refreshMargin, 60);
  const signatureLifetime = nonNegative('signatureLifetime', options.signatureLifetime, 60, true);
  if (signatureLifetime < 1 || signatureLifetime > 300) throw argumentError('ERR_INVALID_ARG_VALUE', 'options.signatureLifetime must be an integer from 1 to 300');
  const maxResponseBytes = nonNegative('maxResponseBytes', options.maxResponseBytes, 16 * 1024 * 1024, true);
  const clockTolerance = nonNegative('clockTolerance', options.clockTolerance, 60);
  const digestAlgorithm = options.digestAlgorithm ?? 'sha-256';
  if (digestAlgorithm !== 'sha-256' && digestAlgorithm !== 'sha-512') throw argumentError('ERR_INVALID_ARG_VALUE', "options.digestAlgorithm must be 'sha-256' or 'sha-512'");
  const components = options.components ?? [];
  if (!Array.isArray(components) || components.some((c) => typeof c !== 'string' || c.length === 0)) {
    throw argumentError('ERR_INVALID_ARG_VALUE', 'options.components must be an array of component identifiers');
  }
  const now = options.now ?? (() => Date.now() / 1000);
  if (typeof now !== 'function') throw argumentError('ERR_INVALID_ARG_TYPE', 'options.now must be a function');
  const e2eeOptions = e2eeConfig(options.encryption ?? 'off', options.e2ee);
  if (e2eeOptions && proof !== 'http-signature' && proof !== 'wimse-signature') {
    throw argumentError('ERR_INVALID_ARG_VALUE', `options.encryption needs proof 'http-signature' or 'wimse-signature': a ${proof === 'dpop' ? 'DPoP proof' : 'WPT'} covers no e2ee field`);
  }
  assertEventListener(options.onEvent, 'options.onEvent');
  const events = createEventSink(options.onEvent);

  /** Publishes what became of one response: verified (with the service's problem code on a refusal) or refused. */
  const reportVerification: VerificationReport = (out, mode, { exchanged, plaintext, error }) => {
    if (!events.wants('response_verification')) return;
    const url = new URL(out.url);
    const service = exchanged?.service;
    const status = exchanged?.message.status ?? (isOidc2Error(error) ? error.remote?.status : undefined);
    const remoteCode = exchanged && error === undefined ? problemCode(plaintext ? { ...exchanged.message, body: plaintext } : exchanged.message) : undefined;
    events.publish({
      type: 'response_verification',
      method: out.method,
      url: url.origin + url.pathname,
      ...(error === undefined ? { outcome: 'success' as const } : { outcome: 'failure' as const, ...failureOf(error) }),
      ...(status !== undefined ? { status } : {}),
      ...(service ? { subject: service.subject, issuer: service.issuer, thumbprint: service.thumbprint } : {}),
      ...(mode ? { e2ee: mode } : {}),
      ...(remoteCode !== undefined ? { remoteCode: remoteCode.slice(0, 64) } : {}),
    });
  };
  const e2ee = e2eeOptions && new E2eeClient(e2eeOptions, now, reportVerification);
  if (options.fetch !== undefined && typeof options.fetch !== 'function') throw argumentError('ERR_INVALID_ARG_TYPE', 'options.fetch must be a function');
  // Looked up at each call and called as a plain function: a browser's fetch needs its own `this`.
  const fetchImpl: typeof fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));

  const ictVerifier: IctVerifier | undefined =
    options.serviceIssuers === undefined
      ? undefined
      : createIctVerifier({
          issuers: options.serviceIssuers,
          clockTolerance,
          now,
          fetch: fetchImpl,
          ...(options.maxServiceTokenAge !== undefined ? { maxTokenAge: options.maxServiceTokenAge } : {}),
        });
  let witVerifier: WitVerifier | undefined;
  if (options.serviceTrustDomains !== undefined) {
    try {
      witVerifier = createWitVerifier({
        trustDomains: options.serviceTrustDomains,
        clockTolerance,
        now,
        fetch: fetchImpl,
        ...(options.maxServiceTokenAge !== undefined ? { maxTokenAge: options.maxServiceTokenAge } : {}),
      });
    } catch (error) {
      // The verifier names its own option; the caller wrote serviceTrustDomains.
      if (isArgumentError(error)) throw argumentError(error.code, error.message.replace(/options\.trustDomains/g, 'options.serviceTrustDomains'));
      throw error;
    }
  }

  let keyPromise: Promise<ClientKey> | undefined;
  const key = (): Promise<ClientKey> =>
    (keyPromise ??= clientKey(algorithm, options.extractable === true, options.keyPair).catch((error: unknown) => {
      keyPromise = undefined;
      throw error;
    }));

  const issuerOptions = options.issuer;
  const getIct = options.getIct;
  const getWit = options.getWit;
  const issuance = { fetch: fetchImpl, now, discovery: {}, events };
  let current: HeldIct | undefined;
  async function obtain(k: ClientKey): Promise<HeldIct> {
    if (kind === 'wit') {
      const token = issuerOptions ? await issueCredential(issuerOptions, k, issuance, 'wit') : await getWit!({ ...k.publicJwk, alg: k.alg });
      return inspectWit(token, k.thumbprint, algorithm, now(), margin);
    }
    const token = issuerOptions ? await issueCredential(issuerOptions, k, issuance, 'ict') : await getIct!({ ...k.publicJwk });
    return inspectIct(token, k.thumbprint, now(), margin);
  }
  const holder = new CredentialRefresher<HeldIct>(
    async () => {
      const k = await key();
      const refresh = { type: 'credential_refresh', side: 'client', credential: kind, thumbprint: k.thumbprint } as const;
      try {
        current = await obtain(k);
      } catch (error) {
        if (events.wants('credential_refresh')) {
          const kept = current !== undefined && current.expiresAt > now();
          events.publish({ ...refresh, outcome: 'failure', ...failureOf(error), ...(kept ? { keptPrevious: true } : {}) });
        }
        throw error;
      }
      const { subject, issuer, expiresAt } = current;
      if (events.wants('credential_refresh')) events.publish({ ...refresh, outcome: 'success', ...(subject ? { subject } : {}), ...(issuer ? { issuer } : {}), expiresAt });
      return current;
    },
    now,
    (cause) => (isOidc2Error(cause) ? cause : new Oidc2Error('issuer_unavailable', `no ${kind.toUpperCase()} could be obtained`, { cause })),
  );
  const credential = (wanted: CredentialKind) => async (): Promise<string> => {
    if (wanted !== kind) {
      throw argumentError('ERR_INVALID_ARG_VALUE', `this client holds ${kind === 'ict' ? 'an ICT' : 'a WIT'} (proof '${proof}'): call ${kind}() instead of ${wanted}()`);
    }
    return (await holder.get()).token;
  };

  // The latest DPoP-Nonce each origin sent (RFC 9449 section 8).
  const dpopNonces = new Map<string, string>();

  function expectedFor(url: string): string | string[] | undefined {
    return typeof expected === 'function' ? expected(new URL(url)) : expected;
  }

  async function prepare(
    out: Outgoing,
    k: ClientKey,
    token: string,
    e2eeParams: SendParams | undefined,
  ): Promise<{ sent: HttpRequest; binding: RequestBinding; dpopNonce: string | undefined }> {
    const { method, url, body } = out;
    const headers = { ...out.headers };
    if (proof === 'http-signature' || proof === 'wimse-signature') {
      const signed = await signRequest(
        { method, url, headers, ...(body ? { body } : {}) },
        {
          ...(kind === 'ict' ? { ict: token } : { wit: token, profile: wimseProfile }),
          key: k.signer,
          signResponse: true,
          expiresIn: signatureLifetime,
          components,
          digestAlgorithm,
          now,
          ...(e2eeParams ? { nonce: e2eeParams.nonce, audience: e2eeParams.audience } : {}),
        },
      );
      return { sent: signed, binding: signed.binding, dpopNonce: undefined };
    }
    if (headers['authorization']) throw argumentError('ERR_INVALID_ARG_VALUE', `in ${proof} mode the client sets Authorization itself`);
    if (proof === 'wpt') {
      // The WPT binds the WIT (wth) and the Txn-Token sent beside it (tth); the service refuses a
      // Txn-Token the proof does not bind.
      const txn = fieldLines(headers, TXN_TOKEN_HEADER);
      headers[WIT_HEADER] = [token];
      headers['authorization'] = [
        `WPT ${await createWpt({ wit: token, key: k.signer, audience: audienceOf(new URL(url)), expiresIn: signatureLifetime, now, ...(txn ? { transactionToken: txn[0]!.trim() } : {}) })}`,
      ];
      if (body) headers['content-digest'] = [await createContentDigest(body, digestAlgorithm)];
      return { sent: { method, url, headers, body }, binding: wptBinding(), dpopNonce: undefined };
    }
    const origin = new URL(url).origin;
    const dpopNonce = dpopNonces.get(origin);
    headers['authorization'] = [`DPoP ${token}`];
    headers['dpop'] = [
      await createDpopProof({
        method,
        url,
        key: k.signer,
        jwk: k.publicJwk,
        accessToken: token,
        now,
        ...(dpopNonce !== undefined ? { nonce: dpopNonce } : {}),
      }),
    ];
    if (body) headers['content-digest'] = [await createContentDigest(body, digestAlgorithm)];
    return { sent: { method, url, headers, body }, binding: dpopBinding(), dpopNonce };
  }

  /**
   * The binding a response is verified under: the request's, except that a service without a WIT
   * answers a WPT caller under the OIDC² profile with its ICT (docs/protocol.md section 4), which counts only when
   * `serviceIssuers` trusts it.
   */
  function responseBinding(binding: RequestBinding, message: HttpResponse): RequestBinding {
    if (binding.proof !== 'wpt' || !ictVerifier) return binding;
    return !fieldLines(message.headers, WIT_HEADER) && fieldLines(message.headers, ICT_HEADER) ? wptBinding(OIDC2_PROFILE) : binding;
  }

  /**
   * Verifies a response. For an e2ee message (`e2eeParams`) a head that announces a streamed
   * encrypted body (docs/protocol.md section 7.7) is verified without reading the body, which is left for
   * record-by-record decryption; every other body is read whole, up to `maxResponseBytes`.
   */
  async function verified(response: Response, sent: HttpRequest, binding: RequestBinding, expectFor: string, e2eeParams?: SendParams): Promise<Exchanged> {
    // An opaque redirect (browsers, redirect: 'manual') exposes nothing that could be verified.
    if (response.type === 'opaqueredirect' || response.status === 0) {
      throw new Oidc2Error('response_unsigned', 'the response is an opaque redirect and cannot be verified');
    }
    const headers = normalizeFields(response.headers);
    const streamed = e2eeParams !== undefined && streamsEncryptedBody(headers);
    const body = streamed
      ? undefined
      : await readBoundedBody(response, maxResponseBytes, () => new Oidc2Error('response_signature_invalid', `the response body exceeds ${maxResponseBytes} bytes and cannot be verified`));
    const message: HttpResponse = { status: response.status, headers, body };
    // A session-MAC request's response, MAC-signed by the service pinned at the handshake (docs/protocol.md section 7.11).
    const macService = e2eeParams?.mac && (await verifySessionMacSigned(message, sent, e2eeParams.nonce, e2eeParams.mac, { clockTolerance, now, streamedEncryptedBody: streamed }));
    if (macService) return { response, message, service: macService, streamed };
    const expectedSubject = expectedFor(expectFor);
    let service: ServiceIdentity;
    try {
      service = await verifyResponse(message, {
        request: sent,
        binding: responseBinding(binding, message),
        ...(ictVerifier ? { ictVerifier } : {}),
        ...(witVerifier ? { witVerifier } : {}),
        clockTolerance,
        now,
        ...(expectedSubject !== undefined ? { expectedSubject } : {}),
        streamedEncryptedBody: streamed,
      });
    } catch (error) {
      if (streamed) await response.body?.cancel().catch(() => undefined);
      // What the unverified answer says, as a hint for whoever reads the error (never acted upon).
      const remote = unverifiedProblem(message);
      const said = remote?.code ? `; the unverified answer says ${remote.code}` : '';
      if (isOidc2Error(error) && error.code.startsWith('response_')) {
        throw new Oidc2Error(error.code, `${error.message} (HTTP ${response.status}${said})`, { cause: error, remote: remote ?? { status: response.status, verified: false } });
      }
      throw new Oidc2Error('response_signature_invalid', `the response could not be verified (HTTP ${response.status}${said})`, { cause: error, remote: remote ?? { status: response.status, verified: false } });
    }
    return { response, message, service, streamed };
  }

  /** Signs `out`, sends it and verifies the response. `e2eeParams` fixes the nonce and audience an e2ee message derives keys from. */
  async function exchange(request: Request, out: Outgoing, k: ClientKey, token: string, e2eeParams?: SendParams): Promise<Exchanged> {
    for (let attempt = 0; ; attempt++) {
      const mac = e2eeParams?.mac;
      const { sent, binding, dpopNonce } = mac
        ? { ...(await signWithSessionMac({ method: out.method, url: out.url, headers: { ...out.headers }, ...(out.body ? { body: out.body } : {}) }, mac, { nonce: e2eeParams!.nonce, audience: e2eeParams!.audience, expiresIn: signatureLifetime, digestAlgorithm, now, proof })), dpopNonce: undefined }
        : await prepare(out, k, token, e2eeParams);
      const response = await fetchImpl(sent.url, {
        method: sent.method,
        headers: toHeaders(sent.headers),
        ...(sent.body ? { body: sent.body as BodyInit } : {}),
        // A streamed body goes out as it is encrypted (fetch needs `duplex` for a stream).
        ...(out.stream ? ({ body: out.stream, duplex: 'half' } as RequestInit) : {}),
        // A redirected request would carry a signature for another target (and a spent nonce). A
        // streamed body is never followed: fetch keeps a copy of every chunk of a body it may have to
        // send again (Node's, until the exchange ends), which a redirect it may not follow needs none of.
        redirect: request.redirect === 'error' || out.stream ? 'error' : 'manual',
        // A handshake shared by several requests must not end with the one that started it.
        ...(e2eeParams?.shared ? {} : { signal: request.signal }),
        credentials: request.credentials,
        cache: request.cache,
        mode: request.mode,
        referrerPolicy: request.referrerPolicy,
        keepalive: request.keepalive,
      });
      if (proof === 'dpop') {
        const origin = new URL(sent.url).origin;
        const fresh = response.headers.get('dpop-nonce');
        if (fresh) dpopNonces.set(origin, fresh);
        if (attempt === 0 && asksForNonce(response, dpopNonce)) {
          await response.body?.cancel().catch(() => undefined);
          continue;
        }
      }
      if (e2eeParams) return verified(response, sent, binding, e2eeParams.expectFor, e2eeParams);
      // An e2ee message is reported once it is opened (lib/e2ee.ts); a message in clear here.
      let exchanged: Exchanged;
      try {
        exchanged = await verified(response, sent, binding, sent.url);
      } catch (error) {
        reportVerification(out, undefined, { error });
        throw error;
      }
      reportVerification(out, undefined, { exchanged });
      return exchanged;
    }
  }

  async function oidc2Fetch(input: RequestInfo | URL, init?: RequestInit): Promise<VerifiedResponse> {
    const request = new Request(input, init);
    // With encryption, a body given as a stream is encrypted and sent as it is read (docs/protocol.md section 7.7).
    const stream = e2ee && isReadableStream(init?.body) ? request.body! : undefined;
    const bytes = stream ? undefined : new Uint8Array(await request.arrayBuffer());
    const out: Outgoing = {
      method: request.method,
      url: request.url,
      headers: normalizeFields(request.headers),
      body: bytes && bytes.length > 0 ? bytes : undefined,
      ...(stream ? { stream } : {}),
    };
    // A Txn-Token travels unchanged down the call chain: one compact JWT (docs/protocol.md section 3b), checked
    // here so a mangled one is the caller's error, not the service's refusal.
    const txn = fieldLines(out.headers, TXN_TOKEN_HEADER);
    if (txn && (txn.length !== 1 || !COMPACT_JWS.test(txn[0]!.trim()))) {
      throw argumentError('ERR_INVALID_ARG_VALUE', 'the txn-token header must hold exactly one Transaction Token (a compact JWT)');
    }
    const k = await key();
    const held = await holder.get();
    const send = (message: Outgoing, params?: SendParams) => exchange(request, message, k, held.token, params);
    if (!e2ee) {
      const { response, message, service } = await send(out);
      return new VerifiedResponse(NULL_BODY_STATUS.has(response.status) ? null : (message.body ?? null), response, service);
    }
    for (const field of E2EE_REQUEST_FIELDS) {
      if (fieldLines(out.headers, field)) throw argumentError('ERR_INVALID_ARG_VALUE', `with options.encryption the client sets ${field} itself`);
    }
    // id(C) of the e2ee transcripts: the credential's iss ('' for a WIT without one), sub and key, as the service computes it.
    const caller = { iss: held.issuer, sub: held.subject, jkt: rawThumbprint(k.thumbprint) };
    const { exchanged, body, encryption } = await e2ee.fetch(out, send, caller);
    const { response, service } = exchanged;
    if (NULL_BODY_STATUS.has(response.status)) {
      if (isReadableStream(body)) await body.cancel().catch(() => undefined);
      return new VerifiedResponse(null, response, service, encryption);
    }
    return new VerifiedResponse(body, response, service, encryption);
  }

  return Object.assign(oidc2Fetch, {
    publicKey: async () => ({ ...(await key()).publicJwk }),
    ict: credential('ict'),
    wit: credential('wit'),
  });
}
