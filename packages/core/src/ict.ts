/**
 * Identity Certification Token (ICT) verification (docs/protocol.md section 1): a JWT from a trusted
 * issuer that certifies the caller's public key (`cnf`), like an X.509 certificate.
 */
import type { JWK, JWSHeaderParameters, JWTPayload } from 'jose';
import { Oidc2Error, isOidc2Error, type Oidc2ErrorCode } from './errors.js';
import type { EventSink } from './events.js';
import { ISSUER_KEY_OPTION_KEYS, assertTrustedIssuer, createIssuerKeyResolver, type IssuerKeyOptions, type IssuerKeyResolver, type TrustedIssuer } from './issuer-keys.js';
import { decodeBase64Url, decodeJsonSegment } from './lib/base64.js';
import { checkTimeClaims, confirmationKey, createJwtCredentialVerifier, type ConfirmationKey } from './jwt-credential.js';
import type { KeyHandle } from './lib/crypto.js';
import { assertOptions, deepFreeze, numberOption } from './lib/validate.js';
import { argumentError } from './lib/validate.js';

/** `typ` values accepted for ICTs, compared case-insensitively. `ict+jwt` is what this project issues. */
export const ICT_TYPES = ['ict+jwt', 'application/ict+jwt', 'jwt+ict'] as const;

/** Options of {@link createIctVerifier}. Durations in seconds. */
export interface IctVerifierOptions {
  /** The issuers whose ICTs are accepted. Required, at least one; `issuer` values must be unique. */
  issuers: TrustedIssuer[];
  /**
   * Accepted `aud` values. When set (here or on the issuer) and the ICT has `aud`, one of its values
   * must be listed; an ICT without `aud` is accepted. Default: `aud` is not checked. (Formerly
   * `audiences`, which names the service's public base URLs everywhere else.)
   */
  tokenAudiences?: string[];
  /** Largest accepted `exp - iat`; an issuer's own `maxTokenAge` overrides it. Default `3600`. */
  maxTokenAge?: number;
  /** Leeway for `exp`, `nbf` and `iat`. Default `60`. */
  clockTolerance?: number;
  /** The current time in unix seconds. Default `() => Date.now() / 1000`. */
  now?: () => number;
  /** fetch for JWKS and discovery requests. Default: a GET over node:http(s) on Node, else `globalThis.fetch` (see `IssuerKeyOptions.fetch`). */
  fetch?: typeof fetch;
  /** Verified ICTs kept, keyed by the full token string; `0` disables the cache. Default `10_000`. */
  cacheSize?: number;
  /** Largest accepted token, in bytes. Default `8192`. */
  maxTokenBytes?: number;
  /**
   * How remote key sets are fetched and cached; see {@link IssuerKeyOptions} for each field's
   * default. (Formerly `jwks`, which names an inline key set everywhere else.)
   */
  keyFetch?: Omit<IssuerKeyOptions, 'fetch'>;
}

/** Every key of {@link IctVerifierOptions}: any other key is refused with `ERR_UNKNOWN_OPTION`. */
export const ICT_VERIFIER_OPTION_KEYS = Object.freeze([
  'issuers',
  'tokenAudiences',
  'maxTokenAge',
  'clockTolerance',
  'now',
  'fetch',
  'cacheSize',
  'maxTokenBytes',
  'keyFetch',
] as const satisfies ReadonlyArray<keyof IctVerifierOptions>);

/** Options of one {@link IctVerifier.verify} call. */
export interface IctVerifyOptions {
  /**
   * Accept `cnf.jkt` (a key thumbprint) instead of `cnf.jwk`. Only for DPoP, where the proof's
   * `jwk` header supplies the key. Default `false`.
   */
  allowJkt?: boolean;
}

/** A verified ICT. Frozen; shared between callers presenting the same token. */
export interface VerifiedIct {
  header: JWSHeaderParameters;
  payload: JWTPayload;
  issuer: string;
  subject: string;
  /** OIDC² authentication contexts (`ctx`), `[]` when absent or null. */
  contexts: string[];
  /** `cnf.jwk` (public members only), or undefined when the ICT uses `cnf.jkt`. */
  jwk?: JWK;
  /** RFC 7638 SHA-256 thumbprint of the confirmation key (base64url). */
  thumbprint: string;
  /** JWA `alg` of the confirmation key (its `alg` member or the curve default), when `jwk` is present. */
  alg?: string;
  /** The confirmation key, imported once for verifying request signatures, when `jwk` is present. */
  key?: KeyHandle;
  /** `exp`, unix seconds. */
  expiresAt: number;
}

/** Verifies ICTs against a fixed set of trusted issuers. */
export interface IctVerifier {
  /**
   * Verifies `token` and returns its identity and confirmation key. Throws `Oidc2Error` with an
   * `ict_*` code (401), or `issuer_unavailable` (503) when keys cannot be fetched.
   */
  verify(token: string, options?: IctVerifyOptions): Promise<VerifiedIct>;
  /**
   * {@link verify} for a token verified before, without a promise: its cached result (time claims
   * checked again), or undefined when it is not cached. Throws as `verify` rejects. Optional: a
   * verifier without it is always asked through `verify`.
   */
  verifyCached?(token: string, options?: IctVerifyOptions): VerifiedIct | undefined;
}

const TYPES = new Set<string>(ICT_TYPES);
function fail(code: Oidc2ErrorCode, message: string): never {
  throw new Oidc2Error(code, message);
}

// jose's messages can quote header or claim values, so they are replaced, never forwarded.
function fromJose(err: unknown): Oidc2Error {
  if (isOidc2Error(err)) return err;
  switch ((err as { code?: unknown } | null)?.code) {
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return new Oidc2Error('ict_unknown_key', 'the issuer has no key matching the ICT header');
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return new Oidc2Error('ict_unknown_key', 'the ICT names no kid and several issuer keys fit');
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return new Oidc2Error('ict_alg_not_allowed', 'the ICT alg is not allowed');
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return new Oidc2Error('ict_invalid', 'the ICT signature does not verify');
    default:
      return new Oidc2Error('ict_invalid', 'the ICT cannot be verified');
  }
}

interface IssuerEntry {
  resolver: IssuerKeyResolver;
  tokenAudiences: string[] | undefined;
  maxTokenAge: number;
}

/**
 * Creates an ICT verifier. Checks run in this order, and nothing is fetched or imported before
 * the token names a configured issuer: size and compact JWS shape, header, `alg` (asymmetric
 * allow-list), `typ`, `iss`; then the signature with the issuer's keys; then `sub`/`iat`/`exp`,
 * time window, lifetime, `aud`, `ctx` and `cnf`. Verified tokens are cached by their full string
 * until `exp`, so a returning caller costs neither a signature check nor a key import.
 *
 * @example
 * ```ts
 * const ict = createIctVerifier({ issuers: [{ issuer: 'https://op.example' }] });
 * const { subject, key } = await ict.verify(request.headers[OIDC2_PROFILE.tokenHeader]);
 * ```
 */
export function createIctVerifier(options: IctVerifierOptions, events?: EventSink): IctVerifier {
  assertOptions(options as unknown, ICT_VERIFIER_OPTION_KEYS, 'options', { audiences: 'tokenAudiences', jwks: 'keyFetch' });
  if (options.keyFetch !== undefined) assertOptions(options.keyFetch as unknown, ISSUER_KEY_OPTION_KEYS.filter((k) => k !== 'fetch'), 'options.keyFetch');
  if (!Array.isArray(options.issuers) || options.issuers.length === 0) {
    throw argumentError('ERR_INVALID_ARG_VALUE', 'options.issuers must list at least one trusted issuer');
  }
  if (options.tokenAudiences !== undefined && (!Array.isArray(options.tokenAudiences) || options.tokenAudiences.some((a) => typeof a !== 'string' || a.length === 0))) {
    throw argumentError('ERR_INVALID_ARG_VALUE', 'options.tokenAudiences must be a list of non-empty strings');
  }
  const maxTokenAge = numberOption('options.maxTokenAge', options.maxTokenAge, 3600, false);
  const tolerance = numberOption('options.clockTolerance', options.clockTolerance, 60);
  const cacheSize = numberOption('options.cacheSize', options.cacheSize, 10_000);
  const maxTokenBytes = numberOption('options.maxTokenBytes', options.maxTokenBytes, 8192, false);
  if (!Number.isInteger(cacheSize) || !Number.isInteger(maxTokenBytes)) {
    throw argumentError('ERR_INVALID_ARG_VALUE', 'options.cacheSize and options.maxTokenBytes must be integers');
  }
  const now = options.now ?? (() => Date.now() / 1000);
  if (typeof now !== 'function') throw argumentError('ERR_INVALID_ARG_TYPE', 'options.now must be a function');

  const issuers = new Map<string, IssuerEntry>();
  options.issuers.forEach((config, i) => {
    assertTrustedIssuer(config, `options.issuers[${i}]`);
    if (issuers.has(config.issuer)) throw argumentError('ERR_INVALID_ARG_VALUE', `options.issuers[${i}] repeats an issuer`);
    issuers.set(config.issuer, {
      resolver: createIssuerKeyResolver(config, { ...options.keyFetch, fetch: options.fetch }, events),
      tokenAudiences: config.tokenAudiences ?? options.tokenAudiences,
      maxTokenAge: config.maxTokenAge ?? maxTokenAge,
    });
  });

  const err = (code: Oidc2ErrorCode) => (message: string) => new Oidc2Error(code, message);
  const core = createJwtCredentialVerifier<VerifiedIct>({
    maxTokenBytes,
    cacheSize,
    now,
    allowEmptySignature: true,
    acceptsType: (typ) => TYPES.has(typ.toLowerCase()),
    errors: { oversize: err('ict_malformed'), malformed: err('ict_malformed'), alg: err('ict_alg_not_allowed'), typ: err('ict_typ_invalid') },
    resolver(payload) {
      if (typeof payload.iss !== 'string') fail('ict_claim_missing', 'the ICT has no iss');
      const issuer = issuers.get(payload.iss);
      if (!issuer) fail('ict_untrusted_issuer', 'the ICT issuer is not trusted');
      return issuer.resolver;
    },
    signatureError: fromJose,
    claims,
    checkTime: (result, t) => checkTimeClaims(result.payload, t, tolerance, err('ict_expired'), err('ict_not_yet_valid')),
  });

  function claims(_token: string, header: Record<string, unknown>, payload: JWTPayload, t: number): VerifiedIct | Promise<VerifiedIct> {
    const issuer = issuers.get(payload.iss as string)!;
    const { sub, iat, exp, nbf, aud, ctx, cnf } = payload;
    if (sub === undefined || iat === undefined || exp === undefined) fail('ict_claim_missing', 'the ICT must carry sub, iat and exp');
    if (typeof sub !== 'string' || sub.length === 0) fail('ict_invalid', 'the ICT sub must be a non-empty string');
    for (const claim of [iat, exp, nbf]) {
      if (claim !== undefined && (typeof claim !== 'number' || !Number.isFinite(claim))) fail('ict_invalid', 'the ICT iat, exp and nbf must be numbers');
    }
    checkTimeClaims(payload, t, tolerance, err('ict_expired'), err('ict_not_yet_valid'));
    if (exp - iat > issuer.maxTokenAge) fail('ict_lifetime_exceeded', `the ICT lifetime exceeds ${issuer.maxTokenAge} seconds`);
    if (aud !== undefined) {
      const values = typeof aud === 'string' ? [aud] : aud;
      if (!Array.isArray(values) || values.some((a) => typeof a !== 'string')) fail('ict_invalid', 'the ICT aud must be a string or a list of strings');
      if (issuer.tokenAudiences && !values.some((a) => issuer.tokenAudiences!.includes(a))) fail('ict_audience_mismatch', 'the ICT audience does not name this service');
    }
    // The reference OP writes "ctx": null when no context was granted (a Go nil slice): no contexts.
    if (ctx !== undefined && ctx !== null && (!Array.isArray(ctx) || ctx.some((c) => typeof c !== 'string'))) fail('ict_invalid', 'the ICT ctx must be a list of strings');
    const result: VerifiedIct = {
      header: header as JWSHeaderParameters,
      payload,
      issuer: payload.iss as string,
      subject: sub,
      contexts: (ctx as string[] | null | undefined) ?? [],
      thumbprint: '',
      expiresAt: exp,
    };
    // On Node the confirmation key comes without a promise, and so does the whole result.
    const confirmed = confirmation(cnf, result);
    return confirmed ? confirmed.then(() => frozen(result)) : frozen(result);
  }

  function frozen(result: VerifiedIct): VerifiedIct {
    // The key handle stays as imported: it wraps runtime key objects and shared algorithm specs.
    deepFreeze(result.header);
    deepFreeze(result.payload);
    deepFreeze(result.contexts);
    deepFreeze(result.jwk);
    return Object.freeze(result);
  }

  // Fills in the confirmation members of `result`; a promise only while a key import is pending.
  function confirmation(cnf: unknown, result: VerifiedIct): Promise<void> | undefined {
    if (typeof cnf !== 'object' || cnf === null) fail('ict_cnf_invalid', 'the ICT has no cnf');
    const { jwk: member, jkt } = cnf as { jwk?: unknown; jkt?: unknown };
    if ((member === undefined) === (jkt === undefined)) fail('ict_cnf_invalid', 'the ICT cnf must carry exactly one of jwk and jkt');
    if (jkt !== undefined) {
      if (typeof jkt !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(jkt) || decodeBase64Url(jkt)?.length !== 32) {
        fail('ict_cnf_invalid', 'the ICT cnf.jkt is not a SHA-256 thumbprint');
      }
      result.thumbprint = jkt;
      return undefined;
    }
    const confirmed = confirmationKey(member, false, err('ict_cnf_invalid'));
    const fill = (c: ConfirmationKey) => {
      result.key = c.key;
      result.jwk = c.jwk;
      result.alg = c.alg;
      result.thumbprint = c.thumbprint;
    };
    if (confirmed instanceof Promise) return confirmed.then(fill);
    fill(confirmed);
    return undefined;
  }

  function confirmed(result: VerifiedIct, verifyOptions: IctVerifyOptions): VerifiedIct {
    if (!result.jwk && verifyOptions.allowJkt !== true) fail('ict_cnf_invalid', 'cnf.jkt is accepted only with a DPoP proof');
    return result;
  }

  async function verify(token: string, verifyOptions: IctVerifyOptions = {}): Promise<VerifiedIct> {
    return confirmed(await core.verify(token), verifyOptions);
  }

  function verifyCached(token: string, verifyOptions: IctVerifyOptions = {}): VerifiedIct | undefined {
    const result = core.cached(token);
    return result && confirmed(result, verifyOptions);
  }

  return { verify, verifyCached };
}
