/**
 * Identity Certification Token (ICT) verification (PROFILE.md section 1.1): a JWT from a trusted
 * issuer that certifies the caller's public key (`cnf`), like an X.509 certificate.
 */
import { compactVerify, type JWK, type JWSHeaderParameters, type JWTPayload } from 'jose';
import { Oidc2Error, isOidc2Error, type Oidc2ErrorCode } from './errors.js';
import { ISSUER_KEY_OPTION_KEYS, assertTrustedIssuer, createIssuerKeyResolver, type IssuerKeyOptions, type IssuerKeyResolver, type TrustedIssuer } from './issuer-keys.js';
import { decodeBase64Url, decodeJsonSegment } from './lib/base64.js';
import { jwkAlgorithm, jwkThumbprint, parsePublicJwk } from './lib/jwk.js';
import { ASYMMETRIC_JWA, importKey, type KeyHandle } from './lib/crypto.js';
import { LruCache } from './lib/lru.js';
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
   * must be listed; an ICT without `aud` is accepted. Default: `aud` is not checked.
   */
  audiences?: string[];
  /** Largest accepted `exp - iat`; an issuer's own `maxTokenAge` overrides it. Default `3600`. */
  maxTokenAge?: number;
  /** Leeway for `exp`, `nbf` and `iat`. Default `60`. */
  clockTolerance?: number;
  /** The current time in unix seconds. Default `() => Date.now() / 1000`. */
  now?: () => number;
  /** fetch for JWKS and discovery requests. Default `globalThis.fetch`. */
  fetch?: typeof fetch;
  /** Verified ICTs kept, keyed by the full token string; `0` disables the cache. Default `10_000`. */
  cacheSize?: number;
  /** Largest accepted token, in bytes. Default `8192`. */
  maxTokenBytes?: number;
  /** Remote key set behaviour; see {@link IssuerKeyOptions} for each field's default. */
  jwks?: Omit<IssuerKeyOptions, 'fetch'>;
}

/** Every key of {@link IctVerifierOptions}: any other key is refused with `ERR_UNKNOWN_OPTION`. */
export const ICT_VERIFIER_OPTION_KEYS = Object.freeze([
  'issuers',
  'audiences',
  'maxTokenAge',
  'clockTolerance',
  'now',
  'fetch',
  'cacheSize',
  'maxTokenBytes',
  'jwks',
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
  /** OIDC² authentication contexts (`ctx`), `[]` when absent. */
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
}

const ALGORITHMS: readonly string[] = ASYMMETRIC_JWA;
const TYPES = new Set<string>(ICT_TYPES);
const SEGMENT = /^[A-Za-z0-9_-]*$/;
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
  audiences: string[] | undefined;
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
export function createIctVerifier(options: IctVerifierOptions): IctVerifier {
  assertOptions(options as unknown, ICT_VERIFIER_OPTION_KEYS, 'options');
  if (options.jwks !== undefined) assertOptions(options.jwks as unknown, ISSUER_KEY_OPTION_KEYS.filter((k) => k !== 'fetch'), 'options.jwks');
  if (!Array.isArray(options.issuers) || options.issuers.length === 0) {
    throw argumentError('ERR_INVALID_ARG_VALUE', 'options.issuers must list at least one trusted issuer');
  }
  if (options.audiences !== undefined && (!Array.isArray(options.audiences) || options.audiences.some((a) => typeof a !== 'string' || a.length === 0))) {
    throw argumentError('ERR_INVALID_ARG_VALUE', 'options.audiences must be a list of non-empty strings');
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
      resolver: createIssuerKeyResolver(config, { ...options.jwks, fetch: options.fetch }),
      audiences: config.audiences ?? options.audiences,
      maxTokenAge: config.maxTokenAge ?? maxTokenAge,
    });
  });

  const cache = new LruCache<string, VerifiedIct>(cacheSize);
  // Concurrent first presentations of one token share one verification.
  const inflight = new Map<string, Promise<VerifiedIct>>();

  function checkTime(payload: JWTPayload, t: number): void {
    if ((payload.exp as number) <= t - tolerance) fail('ict_expired', 'the ICT has expired');
    if ((payload.iat as number) > t + tolerance) fail('ict_not_yet_valid', 'the ICT was issued in the future');
    if (payload.nbf !== undefined && (payload.nbf as number) > t + tolerance) fail('ict_not_yet_valid', 'the ICT is not valid yet');
  }

  async function verifyUncached(token: string, t: number): Promise<VerifiedIct> {
    // 1. Shape, header, alg, typ, iss: all before any key is looked up.
    const parts = token.split('.');
    if (parts.length !== 3 || !parts.every((p) => SEGMENT.test(p)) || parts[0] === '' || parts[1] === '') {
      fail('ict_malformed', 'the ICT is not a compact JWS');
    }
    const header = decodeJsonSegment(parts[0]!);
    if (!header) fail('ict_malformed', 'the ICT header is not a JSON object');
    if (typeof header.alg !== 'string' || !ALGORITHMS.includes(header.alg)) fail('ict_alg_not_allowed', 'the ICT alg is not an allowed asymmetric algorithm');
    if (typeof header.typ !== 'string' || !TYPES.has(header.typ.toLowerCase())) fail('ict_typ_invalid', 'the ICT typ is not ict+jwt');
    const payload = decodeJsonSegment(parts[1]!) as JWTPayload | undefined;
    if (!payload) fail('ict_malformed', 'the ICT payload is not a JSON object');
    if (typeof payload.iss !== 'string') fail('ict_claim_missing', 'the ICT has no iss');
    const issuer = issuers.get(payload.iss);
    if (!issuer) fail('ict_untrusted_issuer', 'the ICT issuer is not trusted');

    // 2. Signature. Claims are checked below, once, by this module, so jose's compactVerify suffices.
    try {
      await compactVerify(token, issuer.resolver, { algorithms: ALGORITHMS as string[] });
    } catch (err) {
      throw fromJose(err);
    }

    // 3. Claims.
    const { sub, iat, exp, nbf, aud, ctx, cnf } = payload;
    if (sub === undefined || iat === undefined || exp === undefined) fail('ict_claim_missing', 'the ICT must carry sub, iat and exp');
    if (typeof sub !== 'string' || sub.length === 0) fail('ict_invalid', 'the ICT sub must be a non-empty string');
    for (const claim of [iat, exp, nbf]) {
      if (claim !== undefined && (typeof claim !== 'number' || !Number.isFinite(claim))) fail('ict_invalid', 'the ICT iat, exp and nbf must be numbers');
    }
    checkTime(payload, t);
    if (exp - iat > issuer.maxTokenAge) fail('ict_lifetime_exceeded', `the ICT lifetime exceeds ${issuer.maxTokenAge} seconds`);
    if (aud !== undefined) {
      const values = typeof aud === 'string' ? [aud] : aud;
      if (!Array.isArray(values) || values.some((a) => typeof a !== 'string')) fail('ict_invalid', 'the ICT aud must be a string or a list of strings');
      if (issuer.audiences && !values.some((a) => issuer.audiences!.includes(a))) fail('ict_audience_mismatch', 'the ICT audience does not name this service');
    }
    if (ctx !== undefined && (!Array.isArray(ctx) || ctx.some((c) => typeof c !== 'string'))) fail('ict_invalid', 'the ICT ctx must be a list of strings');
    const result: VerifiedIct = {
      header: header as JWSHeaderParameters,
      payload,
      issuer: payload.iss,
      subject: sub,
      contexts: (ctx as string[] | undefined) ?? [],
      thumbprint: '',
      expiresAt: exp,
    };
    await confirmation(cnf, result);
    // The key handle stays as imported: it wraps runtime key objects and shared algorithm specs.
    deepFreeze(result.header);
    deepFreeze(result.payload);
    deepFreeze(result.contexts);
    deepFreeze(result.jwk);
    return Object.freeze(result);
  }

  async function confirmation(cnf: unknown, result: VerifiedIct): Promise<void> {
    if (typeof cnf !== 'object' || cnf === null) fail('ict_cnf_invalid', 'the ICT has no cnf');
    const { jwk: member, jkt } = cnf as { jwk?: unknown; jkt?: unknown };
    if ((member === undefined) === (jkt === undefined)) fail('ict_cnf_invalid', 'the ICT cnf must carry exactly one of jwk and jkt');
    if (jkt !== undefined) {
      if (typeof jkt !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(jkt) || decodeBase64Url(jkt)?.length !== 32) {
        fail('ict_cnf_invalid', 'the ICT cnf.jkt is not a SHA-256 thumbprint');
      }
      result.thumbprint = jkt;
      return;
    }
    const jwk = parsePublicJwk(member);
    if (!jwk) fail('ict_cnf_invalid', 'the ICT cnf.jwk is not a supported public key');
    const alg = jwkAlgorithm(member as JWK);
    if (!alg) fail('ict_cnf_invalid', 'the ICT cnf.jwk has no usable alg (RSA keys must name one)');
    try {
      result.key = await importKey(jwk, alg, 'verify');
    } catch {
      fail('ict_cnf_invalid', 'the ICT cnf.jwk cannot be imported');
    }
    result.jwk = jwk;
    result.alg = alg;
    result.thumbprint = await jwkThumbprint(jwk);
  }

  async function verify(token: string, verifyOptions: IctVerifyOptions = {}): Promise<VerifiedIct> {
    if (typeof token !== 'string') throw argumentError('ERR_INVALID_ARG_TYPE', 'token must be a string');
    if (token.length > maxTokenBytes) fail('ict_malformed', `the ICT exceeds ${maxTokenBytes} bytes`);
    const t = now();
    let result = cache.get(token);
    if (result) {
      try {
        checkTime(result.payload, t);
      } catch (err) {
        cache.delete(token);
        throw err;
      }
    } else {
      let pending = inflight.get(token);
      if (!pending) {
        pending = verifyUncached(token, t).finally(() => inflight.delete(token));
        inflight.set(token, pending);
      }
      result = await pending;
      cache.set(token, result);
    }
    if (!result.jwk && verifyOptions.allowJkt !== true) fail('ict_cnf_invalid', 'cnf.jkt is accepted only with a DPoP proof');
    return result;
  }

  return { verify };
}
