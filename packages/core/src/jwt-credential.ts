/**
 * The verifier core shared by the tokens that certify a caller's key (ICT, WIT): a bounded token,
 * compact-JWS parsing, the `alg` allow-list and `typ` before any key is touched, the issuer's key
 * chosen from the token's own claims by the caller's rules, the signature check (lib/jws.ts), time claims
 * with tolerance, `cnf.jwk` parsing, and a cache of verified tokens (with concurrent first
 * presentations sharing one verification). Each token type supplies its claim rules and error codes.
 */
import type { JWK, JWTPayload } from 'jose';
import type { Oidc2Error } from './errors.js';
import type { IssuerKeyResolver } from './issuer-keys.js';
import { decodeBase64Url, decodeJsonSegment } from './lib/base64.js';
import { ASYMMETRIC_JWA, importKey, importVerifyKeySync, type KeyHandle } from './lib/crypto.js';
import { jwkAlgorithm, jwkThumbprint, jwkThumbprintSync, parsePublicJwk } from './lib/jwk.js';
import { LruCache } from './lib/lru.js';
import { verifyJwsSignature } from './lib/jws.js';
import { argumentError } from './lib/validate.js';

const ALGORITHMS: readonly string[] = ASYMMETRIC_JWA;
// Three base64url segments, the first two not empty.
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** Makes the token type's error for a failed check. */
export type CredentialError = (message: string) => Oidc2Error;

/** The rules of one token type, given to {@link createJwtCredentialVerifier}. */
export interface JwtCredentialRules<T> {
  /** Largest accepted token, in characters. */
  maxTokenBytes: number;
  /** Verified tokens kept; `0` disables the cache. */
  cacheSize: number;
  /** The current time in unix seconds. */
  now: () => number;
  /** Whether a compact JWS with an empty signature segment is parsed (and then fails the signature check). */
  allowEmptySignature: boolean;
  /** Whether a `typ` value (as sent) is this token type's. */
  acceptsType: (typ: string) => boolean;
  /** Errors of the shared checks: oversize, not a compact JWS or JSON, `alg`, `typ`. */
  errors: { oversize: CredentialError; malformed: CredentialError; alg: CredentialError; typ: CredentialError };
  /** Checks the claims that name the issuer (before any key is touched) and returns its key lookup. */
  resolver: (payload: JWTPayload) => IssuerKeyResolver;
  /** The error for a failed signature check (jose's error, or the key source's `Oidc2Error`). */
  signatureError: (error: unknown) => Oidc2Error;
  /** Checks the remaining claims of a token whose signature verified, and makes the result. */
  claims: (token: string, header: Record<string, unknown>, payload: JWTPayload, t: number) => T | Promise<T>;
  /** Checks a result's time claims at `t` (also for cached results). */
  checkTime: (result: T, t: number) => void;
}

/** A verifier of one token type: the shared checks, then the type's rules. */
export interface JwtCredentialVerifier<T> {
  /** Verifies `token` (or returns its cached result after checking its time claims again). */
  verify(token: string): Promise<T>;
  /**
   * {@link verify} for a token verified before, without a promise: its cached result after checking
   * its time claims again, or undefined when it is not cached. Throws as `verify` rejects.
   */
  cached(token: string): T | undefined;
}

/**
 * Creates a verifier of one token type. Order: size; compact JWS; header; `alg` (asymmetric
 * allow-list); `typ`; payload; the rules' issuer claims and key lookup; the signature; the rules'
 * claims. Results are cached by the full token until evicted; a cached result is returned only
 * while its time claims hold.
 *
 * @example
 * ```ts
 * const core = createJwtCredentialVerifier({ ...rules })
 * const verified = await core.verify(token)
 * ```
 */
export function createJwtCredentialVerifier<T>(rules: JwtCredentialRules<T>): JwtCredentialVerifier<T> {
  const { errors } = rules;
  const cache = new LruCache<string, T>(rules.cacheSize);
  const inflight = new Map<string, Promise<T>>();

  async function verifyUncached(token: string, t: number): Promise<T> {
    // 1. Shape, header, alg, typ and the issuer claims: all before any key is looked up.
    const parts = token.split('.');
    // The signature segment must be canonical base64url (RFC 4648 section 3.5): jose's decoder
    // ignores spare bits, so without this one token would have several accepted spellings.
    const signature = parts.length === 3 && COMPACT_JWS.test(token) && (rules.allowEmptySignature || parts[2] !== '') ? decodeBase64Url(parts[2]!) : undefined;
    if (!signature) throw errors.malformed('the token is not a compact JWS');
    const header = decodeJsonSegment(parts[0]!);
    if (!header) throw errors.malformed('the token header is not a JSON object');
    if (typeof header.alg !== 'string' || !ALGORITHMS.includes(header.alg)) throw errors.alg('the token alg is not an allowed asymmetric algorithm');
    if (typeof header.typ !== 'string' || !rules.acceptsType(header.typ)) throw errors.typ('the token typ is not accepted');
    const payload = decodeJsonSegment(parts[1]!) as JWTPayload | undefined;
    if (!payload) throw errors.malformed('the token payload is not a JSON object');
    const resolver = rules.resolver(payload);

    // 2. Signature. Claims are checked by the rules, once, so a JWS check suffices: on node:crypto
    // with the key jose's lookup chose, or jose's compactVerify (lib/jws.ts).
    try {
      await verifyJwsSignature(token, parts, header, resolver, ALGORITHMS as string[], signature);
    } catch (error) {
      throw rules.signatureError(error);
    }

    // 3. Claims.
    return rules.claims(token, header, payload, t);
  }

  function cachedAt(token: string, t: number): T | undefined {
    if (typeof token !== 'string') throw argumentError('ERR_INVALID_ARG_TYPE', 'token must be a string');
    if (token.length > rules.maxTokenBytes) throw errors.oversize(`the token exceeds ${rules.maxTokenBytes} bytes`);
    const cached = cache.get(token);
    if (cached) {
      try {
        rules.checkTime(cached, t);
      } catch (error) {
        cache.delete(token);
        throw error;
      }
    }
    return cached;
  }

  async function verify(token: string): Promise<T> {
    const t = rules.now();
    const cached = cachedAt(token, t);
    if (cached) return cached;
    // Concurrent first presentations of a token share one verification; the first one ends it.
    let pending = inflight.get(token);
    const first = !pending;
    if (!pending) {
      pending = verifyUncached(token, t);
      inflight.set(token, pending);
    }
    try {
      const result = await pending;
      cache.set(token, result);
      return result;
    } finally {
      if (first) inflight.delete(token);
    }
  }

  return { verify, cached: (token) => cachedAt(token, rules.now()) };
}

/** Time claims: `exp` past (with tolerance) is `expired`; `iat` or `nbf` ahead is `notYetValid`. */
export function checkTimeClaims(claims: JWTPayload, t: number, tolerance: number, expired: CredentialError, notYetValid: CredentialError): void {
  if ((claims.exp as number) <= t - tolerance) throw expired('the token has expired');
  if (claims.iat !== undefined && (claims.iat as number) > t + tolerance) throw notYetValid('the token was issued in the future');
  if (claims.nbf !== undefined && (claims.nbf as number) > t + tolerance) throw notYetValid('the token is not valid yet');
}

/** A parsed, imported `cnf.jwk`. */
export interface ConfirmationKey {
  /** The public members of the key. */
  jwk: JWK;
  /** The algorithm it signs with. */
  alg: string;
  /** The key, imported for verifying. */
  key: KeyHandle;
  /** Its RFC 7638 SHA-256 thumbprint. */
  thumbprint: string;
}

/**
 * Parses a `cnf.jwk` member: a supported public key, with an algorithm that fits it (its `alg`
 * member, which `requireAlg` demands, or the curve default), imported for verifying. Throws
 * `invalid(...)` for anything else. On Node the result comes without a promise (the key imported
 * and its thumbprint computed synchronously on node:crypto: lib/crypto.ts, lib/jwk.ts); elsewhere as a promise, by
 * the reference path: lib/crypto.ts `importKey` and `jwkThumbprint`.
 */
export function confirmationKey(member: unknown, requireAlg: boolean, invalid: CredentialError): ConfirmationKey | Promise<ConfirmationKey> {
  const jwk = parsePublicJwk(member);
  if (!jwk) throw invalid('cnf.jwk is not a supported public key');
  const declared = (member as JWK).alg;
  if (requireAlg && typeof declared !== 'string') throw invalid('cnf.jwk has no alg');
  // jwkAlgorithm returns the declared alg only when it is allowed and fits the key.
  const alg = jwkAlgorithm(member as JWK);
  if (!alg || (requireAlg && alg !== declared)) throw invalid('cnf.jwk has no usable alg, or it does not fit the key');
  let key: KeyHandle | undefined;
  try {
    key = importVerifyKeySync(jwk, alg);
  } catch {
    throw invalid('cnf.jwk cannot be imported');
  }
  const thumbprint = key && jwkThumbprintSync(jwk);
  return key && thumbprint !== undefined ? { jwk, alg, key, thumbprint } : importConfirmationKey(jwk, alg, invalid);
}

async function importConfirmationKey(jwk: JWK, alg: string, invalid: CredentialError): Promise<ConfirmationKey> {
  let key: KeyHandle;
  try {
    key = await importKey(jwk, alg, 'verify');
  } catch {
    throw invalid('cnf.jwk cannot be imported');
  }
  return { jwk, alg, key, thumbprint: await jwkThumbprint(jwk) };
}
