/**
 * WIMSE workload credentials (docs/protocol.md sections 3a and 3a): the Workload Identity Token (WIT,
 * draft-ietf-wimse-workload-creds) that binds a workload's key to its Workload Identifier, and the
 * Workload Proof Token (WPT, draft-ietf-wimse-wpt-02) that proves possession of that key for one
 * request. Every failure a caller can cause is a 400, as the WIMSE drafts say.
 */
import type { JWK, JWTPayload } from 'jose';
import { Oidc2Error, isOidc2Error, type Oidc2ErrorCode } from './errors.js';
import { checkTimeClaims, confirmationKey, createJwtCredentialVerifier, type ConfirmationKey } from './jwt-credential.js';
import type { EventSink } from './events.js';
import { assertTrustedIssuer, createIssuerKeyResolver, createSpiffeBundleResolver, type IssuerKeyResolver } from './issuer-keys.js';
import { decodeBase64Url, decodeJsonSegment, encodeBase64Url, utf8 } from './lib/base64.js';
import { ASYMMETRIC_JWA, algorithmSpec, digest, digestSync, randomBytes, sign as signBytes, timingSafeEqual, verify as verifySignature, type KeyHandle } from './lib/crypto.js';
import type { ReplayStore } from './replay-store.js';
import { assertOptions, deepFreeze, numberOption } from './lib/validate.js';
import { argumentError } from './lib/validate.js';

/** Header carrying the WIT. */
export { WIT_HEADER } from './profile.js';
/** The `typ` of WITs (compared case-insensitively). */
export const WIT_TYPE = 'wit+jwt';
/** The `typ` of WPTs (compared case-insensitively). */
export const WPT_TYPE = 'wpt+jwt';

/** A trust domain whose WITs are accepted, and where its issuer's keys come from. */
export interface WimseTrustDomain {
  /**
   * The trust domain: the authority of the `spiffe://` or `wimse://` Workload Identifier in a WIT's
   * `sub`, e.g. `example.com`. Compared case-insensitively. Required.
   */
  trustDomain: string;
  /** The issuer's public keys, inline. Exactly one of `jwks`, `jwksUri` and `spiffeBundleUrl` (or `issuer` alone). */
  jwks?: { keys: JWK[] };
  /** The issuer's JWKS URL (configured, never taken from a token). */
  jwksUri?: string;
  /**
   * The trust domain's SPIFFE bundle endpoint (an https URL; http only on a loopback host): its
   * `jwt-svid` keys verify the WITs, refreshed as its `spiffe_refresh_hint` says.
   */
  spiffeBundleUrl?: string;
  /**
   * The issuer's identifier. When set and a WIT carries `iss`, the two must be equal. Without
   * `jwks`, `jwksUri` or `spiffeBundleUrl`, keys come from OIDC discovery under this https URL.
   * Default `wimse://<trustDomain>` (then a key source is required) and `iss` is not checked.
   */
  issuer?: string;
}

/** Options of {@link createWitVerifier}. Durations in seconds. */
export interface WitVerifierOptions {
  /** The trust domains whose WITs are accepted. Required, at least one, each domain once. */
  trustDomains: WimseTrustDomain[];
  /** Leeway for `exp`, `iat` and `nbf`. Default `60`. */
  clockTolerance?: number;
  /** The current time in unix seconds. Default `() => Date.now() / 1000`. */
  now?: () => number;
  /** fetch for JWKS and discovery requests. Default: a GET over node:http(s) on Node, else `globalThis.fetch` (see `IssuerKeyOptions.fetch`). */
  fetch?: typeof fetch;
  /** Largest accepted lifetime: `exp - iat`, or `exp - now` when the WIT has no `iat`. Default `86400`. */
  maxTokenAge?: number;
  /** Verified WITs kept, keyed by the full token string; `0` disables the cache. Default `10_000`. */
  cacheSize?: number;
}

/** A verified WIT. Frozen; shared between callers presenting the same token. */
export interface VerifiedWit {
  /** `sub`: the Workload Identifier URI. */
  subject: string;
  /** The trust domain of `subject`, as configured. */
  trustDomain: string;
  /** All claims. */
  claims: JWTPayload;
  /** `cnf.jwk`: its public members plus `alg`. */
  jwk: JWK;
  /** `cnf.jwk.alg`: the only algorithm a proof of this workload may use. */
  alg: string;
  /** The confirmation key, imported once for verifying proofs. */
  key: KeyHandle;
  /** RFC 7638 SHA-256 thumbprint of the confirmation key (base64url). */
  thumbprint: string;
  /** `exp`, unix seconds. */
  expiresAt: number;
  /** The WIT as presented. */
  token: string;
}

/** Verifies WITs against a fixed set of trust domains. */
export interface WitVerifier {
  /**
   * Verifies `wit` and returns the workload's identity and confirmation key. Throws `Oidc2Error`
   * `wit_missing`, `wit_invalid`, `wit_expired` or `wit_untrusted` (400), or `issuer_unavailable`
   * (503) when the trust domain's keys cannot be fetched.
   */
  verify(wit: string): Promise<VerifiedWit>;
  /**
   * {@link verify} for a WIT verified before, without a promise: its cached result (time claims
   * checked again), or undefined when it is not cached. Throws as `verify` rejects. Optional: a
   * verifier without it is always asked through {@link verify}.
   */
  verifyCached?(wit: string): VerifiedWit | undefined;
}

/** Options of {@link verifyWpt}. Times in unix seconds, durations in seconds. */
export interface WptVerifyOptions {
  /** The verified WIT presented with the WPT. Required. */
  wit: VerifiedWit;
  /** The WIT as it arrived in `Workload-Identity-Token`; `wth` must be its SHA-256 hash. Required. */
  witToken: string;
  /** The request method. When set and the WPT carries `htm`, the two must be equal. Default: not checked. */
  method?: string;
  /** Accepted `aud` values: the target URIs of this request. Required, at least one. */
  audience: string[];
  /** The current time. Required. */
  now: number;
  /** Leeway for `exp` and `iat`. Default `60`. */
  clockTolerance?: number;
  /** Largest accepted `exp - now`: proofs are short-lived. Default `300`. */
  maxAge?: number;
  /** Where `jti`s are recorded against replay. Required. */
  replayStore: ReplayStore;
  /** The access token sent with the request; then `ath` is required and must be its hash. Default: none (a WPT with `ath` is refused). */
  accessToken?: string;
  /** The `Txn-Token` sent with the request; then `tth` is required and must be its hash. Default: none (a WPT with `tth` is refused). */
  transactionToken?: string;
  /**
   * Other tokens sent with the request, by token type identifier; then `oth` must carry exactly
   * these names, each with the hash of its token. Default: none (a WPT with `oth` is refused).
   */
  otherTokens?: Record<string, string>;
  /**
   * Runs when every check has passed, immediately before the `jti` is recorded; when it throws,
   * the `jti` is not recorded and the error propagates. Default none.
   */
  beforeRecord?: () => Promise<void> | void;
}

/** Every key of {@link WimseTrustDomain}: any other key is refused with `ERR_UNKNOWN_OPTION`. */
export const WIMSE_TRUST_DOMAIN_KEYS = Object.freeze(['trustDomain', 'jwks', 'jwksUri', 'spiffeBundleUrl', 'issuer'] as const satisfies ReadonlyArray<keyof WimseTrustDomain>);

/** Every key of {@link WitVerifierOptions}: any other key is refused with `ERR_UNKNOWN_OPTION`. */
export const WIT_VERIFIER_OPTION_KEYS = Object.freeze([
  'trustDomains',
  'clockTolerance',
  'now',
  'fetch',
  'maxTokenAge',
  'cacheSize',
] as const satisfies ReadonlyArray<keyof WitVerifierOptions>);

/** Every key of {@link WptVerifyOptions}: any other key is refused with `ERR_UNKNOWN_OPTION`. */
export const WPT_VERIFY_OPTION_KEYS = Object.freeze([
  'wit',
  'witToken',
  'method',
  'audience',
  'now',
  'clockTolerance',
  'maxAge',
  'replayStore',
  'accessToken',
  'transactionToken',
  'otherTokens',
  'beforeRecord',
] as const satisfies ReadonlyArray<keyof WptVerifyOptions>);

/** What a verified WPT yields. */
export interface VerifiedWpt {
  jti: string;
  /** `exp`, unix seconds. */
  exp: number;
}

const ALGORITHMS: readonly string[] = ASYMMETRIC_JWA;
const SEGMENT = /^[A-Za-z0-9_-]+$/;
const MAX_TOKEN_BYTES = 8192;
const MAX_JTI_LENGTH = 256;
// A Workload Identifier as the SPIFFE ID rules spell it (draft-ietf-wimse-identifier): lower-case
// scheme and trust domain (letters, digits, '.', '-', '_'; no port, no userinfo), and a path of one
// or more non-empty segments of [A-Za-z0-9._-], none of them '.' or '..'; no trailing '/', no
// percent-encoding, no query or fragment. Anything else is refused, not normalised, so that a
// policy comparing identifiers as strings sees exactly one spelling of each.
const WORKLOAD_ID = /^(spiffe|wimse):\/\/([a-z0-9._-]+)((?:\/[A-Za-z0-9._-]+)+)$/;
const DOT_SEGMENT = /\/\.{1,2}(?=\/|$)/;
const DOMAIN = /^[a-z0-9._-]+$/;

function fail(code: Oidc2ErrorCode, message: string): never {
  throw new Oidc2Error(code, message);
}

function isNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

/** base64url(SHA-256(ASCII value)), the hash every WPT binding claim carries. */
async function tokenHash(value: string): Promise<Uint8Array> {
  const bytes = utf8(value);
  return digestSync('SHA-256', bytes) ?? digest('SHA-256', bytes);
}

// Constant-time: a claim that is not canonical base64url of 32 bytes simply does not match.
async function hashMatches(claim: unknown, value: string): Promise<boolean> {
  if (typeof claim !== 'string') return false;
  const got = decodeBase64Url(claim);
  const want = await tokenHash(value);
  return got !== undefined && timingSafeEqual(got, want);
}

interface DomainEntry {
  trustDomain: string;
  issuer?: string;
  resolver: IssuerKeyResolver;
}

/**
 * Creates a WIT verifier. Checks run in this order, and nothing is fetched before `sub` names a
 * configured trust domain: size and compact JWS shape, header `alg` (asymmetric allow-list), `typ`
 * (`wit+jwt`), `sub` (a `spiffe://` or `wimse://` Workload Identifier of a configured trust domain),
 * `iss` (when the domain names an issuer); then the signature with the domain's keys; then `exp`,
 * `iat`, `nbf`, lifetime and `cnf.jwk` (public, with an `alg` that fits it). Verified WITs are cached
 * by their full string, so a returning workload costs neither a signature check nor a key import.
 *
 * @example
 * ```ts
 * const wits = createWitVerifier({ trustDomains: [{ trustDomain: 'example.com', jwksUri: 'https://wit-issuer.example.com/jwks' }] });
 * const wit = await wits.verify(request.headers[WIT_HEADER]);
 * ```
 */
export function createWitVerifier(options: WitVerifierOptions, events?: EventSink): WitVerifier {
  assertOptions(options as unknown, WIT_VERIFIER_OPTION_KEYS, 'options');
  if (!Array.isArray(options.trustDomains) || options.trustDomains.length === 0) {
    throw argumentError('ERR_INVALID_ARG_VALUE', 'options.trustDomains must list at least one trust domain');
  }
  const tolerance = numberOption('options.clockTolerance', options.clockTolerance, 60);
  const maxTokenAge = numberOption('options.maxTokenAge', options.maxTokenAge, 86400);
  const cacheSize = numberOption('options.cacheSize', options.cacheSize, 10_000);
  if (!Number.isInteger(cacheSize)) throw argumentError('ERR_INVALID_ARG_VALUE', 'options.cacheSize must be an integer');
  const now = options.now ?? (() => Date.now() / 1000);
  if (typeof now !== 'function') throw argumentError('ERR_INVALID_ARG_TYPE', 'options.now must be a function');

  const domains = new Map<string, DomainEntry>();
  options.trustDomains.forEach((config, i) => {
    const where = `options.trustDomains[${i}]`;
    assertOptions(config as unknown, WIMSE_TRUST_DOMAIN_KEYS, where);
    const name = typeof config.trustDomain === 'string' ? config.trustDomain.toLowerCase() : '';
    if (!DOMAIN.test(name)) throw argumentError('ERR_INVALID_ARG_VALUE', `${where}.trustDomain must be a host name such as example.com`);
    if (domains.has(name)) throw argumentError('ERR_INVALID_ARG_VALUE', `${where} repeats a trust domain`);
    let resolver: IssuerKeyResolver;
    if (config.spiffeBundleUrl !== undefined) {
      if (config.jwks !== undefined || config.jwksUri !== undefined) throw argumentError('ERR_INVALID_ARG_VALUE', `${where} takes one of jwks, jwksUri and spiffeBundleUrl`);
      if (config.issuer !== undefined && (typeof config.issuer !== 'string' || config.issuer.length === 0)) throw argumentError('ERR_INVALID_ARG_VALUE', `${where}.issuer must be a non-empty string`);
      resolver = createSpiffeBundleResolver(name, config.spiffeBundleUrl, { fetch: options.fetch }, `${where}.spiffeBundleUrl`, events);
    } else {
      const issuerConfig = { issuer: config.issuer ?? `wimse://${name}`, jwks: config.jwks, jwksUri: config.jwksUri };
      assertTrustedIssuer(issuerConfig, where);
      resolver = createIssuerKeyResolver(issuerConfig, { fetch: options.fetch }, events);
    }
    domains.set(name, { trustDomain: name, ...(config.issuer !== undefined ? { issuer: config.issuer } : {}), resolver });
  });

  const invalid = (message: string) => new Oidc2Error('wit_invalid', message);
  const core = createJwtCredentialVerifier<VerifiedWit>({
    maxTokenBytes: MAX_TOKEN_BYTES,
    cacheSize,
    now,
    allowEmptySignature: false,
    acceptsType: (typ) => typ.toLowerCase() === WIT_TYPE,
    errors: { oversize: invalid, malformed: invalid, alg: invalid, typ: invalid },
    resolver: (claims) => domainOf(claims).resolver,
    // Keys that cannot be fetched are the service's problem (503), everything else the token's.
    signatureError: (err) => (isOidc2Error(err) ? err : invalid('the WIT signature does not verify with the trust domain keys')),
    claims,
    checkTime: (result, t) => checkTimeClaims(result.claims, t, tolerance, (m) => new Oidc2Error('wit_expired', m), invalid),
  });

  // sub names the trust domain, whose keys verify the WIT; iss, when both are set, must be its issuer.
  function domainOf(claims: JWTPayload): DomainEntry {
    const sub = claims.sub;
    const id = typeof sub === 'string' && !DOT_SEGMENT.test(sub) ? WORKLOAD_ID.exec(sub) : null;
    if (!id) fail('wit_invalid', 'the WIT sub is not a spiffe or wimse Workload Identifier');
    const domain = domains.get(id[2]!.toLowerCase());
    if (!domain) fail('wit_untrusted', 'the WIT trust domain is not trusted');
    if (claims.iss !== undefined && domain.issuer !== undefined && claims.iss !== domain.issuer) fail('wit_untrusted', 'the WIT issuer is not the trust domain issuer');
    return domain;
  }

  function claims(token: string, _header: Record<string, unknown>, claims: JWTPayload, t: number): VerifiedWit | Promise<VerifiedWit> {
    const domain = domainOf(claims);
    const { exp, iat, nbf, cnf } = claims;
    if (exp === undefined) fail('wit_invalid', 'the WIT has no exp');
    for (const claim of [exp, iat, nbf]) {
      if (claim !== undefined && !isNumber(claim)) fail('wit_invalid', 'the WIT exp, iat and nbf must be numbers');
    }
    checkTimeClaims(claims, t, tolerance, (m) => new Oidc2Error('wit_expired', m), invalid);
    if (exp - (iat ?? t) > maxTokenAge) fail('wit_invalid', `the WIT lifetime exceeds ${maxTokenAge} seconds`);
    const member = typeof cnf === 'object' && cnf !== null ? (cnf as { jwk?: unknown }).jwk : undefined;
    if (member === undefined) fail('wit_invalid', 'the WIT has no cnf.jwk');
    // The key is imported without a promise where the runtime allows (node:crypto).
    const confirming = confirmationKey(member, true, invalid);
    const result = (confirmed: ConfirmationKey): VerifiedWit => {
      const jwk = deepFreeze({ ...confirmed.jwk, alg: confirmed.alg });
      deepFreeze(claims);
      // The key handle stays as imported: it wraps runtime key objects and shared algorithm specs.
      return Object.freeze({
        subject: claims.sub as string,
        trustDomain: domain.trustDomain,
        claims,
        jwk,
        alg: confirmed.alg,
        key: confirmed.key,
        thumbprint: confirmed.thumbprint,
        expiresAt: exp,
        token,
      });
    };
    return confirming instanceof Promise ? confirming.then(result) : result(confirming);
  }

  async function verify(wit: string): Promise<VerifiedWit> {
    if (wit === undefined || wit === null || wit === '') fail('wit_missing', 'no Workload-Identity-Token was sent');
    return core.verify(wit);
  }

  function verifyCached(wit: string): VerifiedWit | undefined {
    return typeof wit === 'string' && wit !== '' ? core.cached(wit) : undefined;
  }

  return { verify, verifyCached };
}

/**
 * Verifies a Workload Proof Token (draft-ietf-wimse-wpt-02) for a request that presented `wit`.
 * Order: compact JWS shape; header `typ` (`wpt+jwt`) and `alg` (must equal the WIT's `cnf.jwk.alg`);
 * the signature with the WIT's confirmation key; `exp` (required, not past, at most `maxAge`
 * ahead), `iat` (if present, not in the future), `jti` (required), `aud` (one of `audience`),
 * `htm` (if present and `method` given), `wth`, `ath`, `tth`, `oth` (hashes compared in constant
 * time); and last, when everything else holds, the `jti` is recorded in the replay store under
 * `wpt:<WIT thumbprint>:<jti>` until `exp` plus the tolerance.
 * Throws `Oidc2Error` `wpt_invalid` (400) for every proof failure, including a replayed `jti`, and
 * whatever the replay store throws (e.g. `replay_store_unavailable`, 503).
 *
 * @example
 * ```ts
 * const wit = await wits.verify(witHeader);
 * await verifyWpt(wptFromAuthorization, { wit, witToken: witHeader, audience: [targetUri], now: Date.now() / 1000, replayStore });
 * ```
 */
export async function verifyWpt(wpt: string, options: WptVerifyOptions): Promise<VerifiedWpt> {
  assertOptions(options as unknown, WPT_VERIFY_OPTION_KEYS, 'options');
  const { wit, witToken, audience, now, replayStore } = options;
  if (typeof wit !== 'object' || wit === null || typeof wit.alg !== 'string' || wit.key === undefined) throw argumentError('ERR_INVALID_ARG_TYPE', 'options.wit must be a VerifiedWit');
  if (typeof witToken !== 'string') throw argumentError('ERR_INVALID_ARG_TYPE', 'options.witToken must be a string');
  if (!Array.isArray(audience) || audience.length === 0 || audience.some((a) => typeof a !== 'string' || a.length === 0)) {
    throw argumentError('ERR_INVALID_ARG_VALUE', 'options.audience must list at least one non-empty string');
  }
  if (!isNumber(now)) throw argumentError('ERR_INVALID_ARG_TYPE', 'options.now must be a number');
  if (typeof replayStore !== 'object' || replayStore === null || typeof replayStore.checkAndRecord !== 'function') {
    throw argumentError('ERR_INVALID_ARG_TYPE', 'options.replayStore must be a ReplayStore');
  }
  const tolerance = numberOption('options.clockTolerance', options.clockTolerance, 60);
  const maxAge = numberOption('options.maxAge', options.maxAge, 300);
  const { accessToken, transactionToken, otherTokens } = options;
  if (otherTokens !== undefined && (typeof otherTokens !== 'object' || otherTokens === null || Object.values(otherTokens).some((v) => typeof v !== 'string'))) {
    throw argumentError('ERR_INVALID_ARG_TYPE', 'options.otherTokens must map names to token strings');
  }
  if (wpt === undefined || wpt === null || wpt === '') fail('wpt_invalid', 'no Workload Proof Token was sent');
  if (typeof wpt !== 'string') throw argumentError('ERR_INVALID_ARG_TYPE', 'wpt must be a string');
  if (wpt.length > MAX_TOKEN_BYTES) fail('wpt_invalid', `the WPT exceeds ${MAX_TOKEN_BYTES} bytes`);

  // 1. Shape and header.
  const parts = wpt.split('.');
  if (parts.length !== 3 || !parts.every((p) => SEGMENT.test(p))) fail('wpt_invalid', 'the WPT is not a compact JWS');
  const header = decodeJsonSegment(parts[0]!);
  if (!header) fail('wpt_invalid', 'the WPT header is not a JSON object');
  if (typeof header.typ !== 'string' || header.typ.toLowerCase() !== WPT_TYPE) fail('wpt_invalid', 'the WPT typ is not wpt+jwt');
  if (typeof header.alg !== 'string' || !ALGORITHMS.includes(header.alg) || header.alg !== wit.alg) {
    fail('wpt_invalid', 'the WPT alg is not the alg of the WIT confirmation key');
  }
  // No JWS extension is understood here (RFC 7515 section 4.1.11), so any crit is refused.
  if (header.crit !== undefined) fail('wpt_invalid', 'the WPT header carries crit');

  // 2. Signature with the WIT's confirmation key.
  const signature = decodeBase64Url(parts[2]!);
  if (!signature || !(await verifySignature(wit.key, utf8(`${parts[0]}.${parts[1]}`), signature))) {
    fail('wpt_invalid', 'the WPT signature does not verify with the WIT confirmation key');
  }

  // 3. Claims.
  const claims = decodeJsonSegment(parts[1]!);
  if (!claims) fail('wpt_invalid', 'the WPT payload is not a JSON object');
  const { exp, iat, jti, aud, htm, wth, ath, tth, oth } = claims;
  if (!isNumber(exp)) fail('wpt_invalid', 'the WPT exp is missing or not a number');
  if (exp <= now - tolerance) fail('wpt_invalid', 'the WPT has expired');
  if (exp > now + maxAge + tolerance) fail('wpt_invalid', `the WPT expires more than ${maxAge} seconds ahead`);
  if (iat !== undefined && (!isNumber(iat) || iat > now + tolerance)) fail('wpt_invalid', 'the WPT iat is not a past time');
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > MAX_JTI_LENGTH) fail('wpt_invalid', `the WPT jti must be a string of 1 to ${MAX_JTI_LENGTH} characters`);
  const audiences = typeof aud === 'string' ? [aud] : aud;
  if (!Array.isArray(audiences) || !audiences.some((a) => typeof a === 'string' && audience.includes(a))) fail('wpt_invalid', 'the WPT aud does not name this request');
  if (htm !== undefined && options.method !== undefined && htm !== options.method) fail('wpt_invalid', 'the WPT htm is not the request method');
  if (!(await hashMatches(wth, witToken))) fail('wpt_invalid', 'the WPT wth is not the hash of the WIT');
  if (accessToken !== undefined ? !(await hashMatches(ath, accessToken)) : ath !== undefined) fail('wpt_invalid', 'the WPT ath does not bind the access token sent');
  if (transactionToken !== undefined ? !(await hashMatches(tth, transactionToken)) : tth !== undefined) fail('wpt_invalid', 'the WPT tth does not bind the Txn-Token sent');
  if (otherTokens !== undefined || oth !== undefined) {
    const names = Object.keys(otherTokens ?? {});
    if (typeof oth !== 'object' || oth === null || Array.isArray(oth)) fail('wpt_invalid', 'the WPT oth does not bind the other tokens sent');
    const bound = oth as Record<string, unknown>;
    if (Object.keys(bound).length !== names.length) fail('wpt_invalid', 'the WPT oth does not bind exactly the other tokens sent');
    for (const name of names) {
      if (!Object.prototype.hasOwnProperty.call(bound, name) || !(await hashMatches(bound[name], otherTokens![name]!))) {
        fail('wpt_invalid', 'the WPT oth does not bind the other tokens sent');
      }
    }
  }

  // 4. Replay, last: a proof that fails any other check never consumes its jti.
  await options.beforeRecord?.();
  if (!(await replayStore.checkAndRecord(`wpt:${wit.thumbprint}:${jti}`, exp + tolerance, now))) fail('wpt_invalid', 'the WPT jti was already used');
  return { jti, exp };
}

/** base64url(SHA-256(`token`)): the value of `wth`, `ath` and `tth` for a token. */
export async function wimseTokenHash(token: string): Promise<string> {
  if (typeof token !== 'string') throw argumentError('ERR_INVALID_ARG_TYPE', 'token must be a string');
  return encodeBase64Url(await tokenHash(token));
}

/** Options of {@link createWpt}. Times in unix seconds, durations in seconds. */
export interface WptCreateOptions {
  /**
   * The WIT sent with the proof in `Workload-Identity-Token`: `wth` is its hash, and its
   * `cnf.jwk.alg` is the proof's `alg` (a WIT without one is refused). Required.
   */
  wit: string;
  /** The private key the WIT certifies, as a handle from `importKey(jwk, alg, 'sign')` or `keyHandleFrom`. Required. */
  key: KeyHandle;
  /** `aud`: the target URI of the request; a query and fragment are removed. Required. */
  audience: string;
  /** Lifetime, `exp - now`: an integer from 1 to 300. Default `60`. */
  expiresIn?: number;
  /** The `Txn-Token` sent with the request: bound by `tth`. Default none (no `tth`). */
  transactionToken?: string;
  /** An access token sent with the request: bound by `ath`. Default none (no `ath`). */
  accessToken?: string;
  /** Other tokens sent with the request, by token type identifier: bound by `oth`. Default none (no `oth`). */
  otherTokens?: Record<string, string>;
  /** The proof's `jti`, never used twice: 1 to 256 characters. Default: 128 random bits, base64url. */
  jti?: string;
  /** Clock in unix seconds. Default `() => Date.now() / 1000`. */
  now?: () => number;
}

/** Every key of {@link WptCreateOptions}: any other key is refused with `ERR_UNKNOWN_OPTION`. */
export const WPT_CREATE_OPTION_KEYS = Object.freeze([
  'wit',
  'key',
  'audience',
  'expiresIn',
  'transactionToken',
  'accessToken',
  'otherTokens',
  'jti',
  'now',
] as const satisfies ReadonlyArray<keyof WptCreateOptions>);

/**
 * Creates a Workload Proof Token (draft-ietf-wimse-wpt-02) for one request, as {@link verifyWpt}
 * checks it: header `typ` `wpt+jwt` and `alg` = the WIT's `cnf.jwk.alg`; claims `aud`, `exp`,
 * `jti`, `wth` (the WIT's hash) and, for the tokens given, `tth`, `ath` and `oth`. Send it as
 * `Authorization: WPT <wpt>` beside `Workload-Identity-Token: <wit>`; the service's answer is
 * verified with `wptBinding()`.
 *
 * @example
 * ```ts
 * const wpt = await createWpt({ wit, key: await importKey(witPrivateJwk, 'ES256', 'sign'), audience: 'https://api.example.com/orders', transactionToken })
 * await fetch('https://api.example.com/orders', { headers: { 'workload-identity-token': wit, authorization: `WPT ${wpt}`, 'txn-token': transactionToken } })
 * ```
 */
export async function createWpt(options: WptCreateOptions): Promise<string> {
  assertOptions(options as unknown, WPT_CREATE_OPTION_KEYS, 'options');
  const { wit, key, transactionToken, accessToken, otherTokens } = options;
  if (typeof wit !== 'string' || wit.length === 0) throw argumentError('ERR_INVALID_ARG_TYPE', 'options.wit must be a compact JWT');
  const parts = wit.split('.');
  const claims = parts.length === 3 ? decodeJsonSegment(parts[1]!) : undefined;
  const cnf = claims?.cnf as { jwk?: { alg?: unknown } } | undefined;
  const alg = cnf?.jwk?.alg;
  if (typeof alg !== 'string' || !ALGORITHMS.includes(alg)) throw argumentError('ERR_INVALID_ARG_VALUE', 'options.wit must be a WIT whose cnf.jwk names an asymmetric alg');
  if (typeof key !== 'object' || key === null || key.usage !== 'sign' || typeof key.spec !== 'object') throw argumentError('ERR_INVALID_ARG_VALUE', 'options.key must be a signing key handle');
  const spec = algorithmSpec(alg)!;
  if (spec.kind !== key.spec.kind || spec.hash !== key.spec.hash || spec.curve !== key.spec.curve || spec.saltLength !== key.spec.saltLength) {
    throw argumentError('ERR_INVALID_ARG_VALUE', `options.key does not sign with ${alg}, the WIT cnf.jwk.alg`);
  }
  const audience = typeof options.audience === 'string' ? options.audience.split(/[?#]/, 1)[0]! : '';
  if (audience.length === 0) throw argumentError('ERR_INVALID_ARG_VALUE', 'options.audience must be the target URI');
  const expiresIn = options.expiresIn ?? 60;
  if (!Number.isInteger(expiresIn) || expiresIn < 1 || expiresIn > 300) throw argumentError('ERR_INVALID_ARG_VALUE', 'options.expiresIn must be an integer from 1 to 300');
  const now = options.now ?? (() => Date.now() / 1000);
  if (typeof now !== 'function') throw argumentError('ERR_INVALID_ARG_TYPE', 'options.now must be a function');
  const jti = options.jti ?? encodeBase64Url(randomBytes(16));
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > MAX_JTI_LENGTH) throw argumentError('ERR_INVALID_ARG_VALUE', `options.jti must be a string of 1 to ${MAX_JTI_LENGTH} characters`);
  for (const [name, value] of [['transactionToken', transactionToken], ['accessToken', accessToken]] as const) {
    if (value !== undefined && (typeof value !== 'string' || value.length === 0)) throw argumentError('ERR_INVALID_ARG_TYPE', `options.${name} must be a non-empty string`);
  }
  if (otherTokens !== undefined && (typeof otherTokens !== 'object' || otherTokens === null || Object.values(otherTokens).some((v) => typeof v !== 'string'))) {
    throw argumentError('ERR_INVALID_ARG_TYPE', 'options.otherTokens must map names to token strings');
  }

  const payload: Record<string, unknown> = { aud: audience, exp: Math.floor(now()) + expiresIn, jti, wth: encodeBase64Url(await tokenHash(wit)) };
  if (accessToken !== undefined) payload.ath = encodeBase64Url(await tokenHash(accessToken));
  if (transactionToken !== undefined) payload.tth = encodeBase64Url(await tokenHash(transactionToken));
  if (otherTokens !== undefined) {
    const oth: Record<string, string> = {};
    for (const [name, value] of Object.entries(otherTokens)) oth[name] = encodeBase64Url(await tokenHash(value));
    payload.oth = oth;
  }
  const input = `${encodeBase64Url(utf8(JSON.stringify({ typ: WPT_TYPE, alg })))}.${encodeBase64Url(utf8(JSON.stringify(payload)))}`;
  return `${input}.${encodeBase64Url(await signBytes(key, utf8(input)))}`;
}
