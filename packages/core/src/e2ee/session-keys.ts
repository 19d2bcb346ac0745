/**
 * Session-token encryption keys (STEKs): 32 random octets with a `kid`, rotated, kept for decryption
 * while tokens made under them can still be valid, then deleted (docs/protocol.md, encryption
 * section; docs/e2ee.md on handling them in production).
 */
import { Oidc2Error } from '../errors.js';
import { decodeBase64Url, encodeBase64Url } from '../lib/base64.js';
import { randomBytes } from '../lib/crypto.js';
import { argumentError, assertOptions, integerOption } from '../lib/validate.js';

/** One STEK. */
export interface SessionKey {
  /** Its identifier, carried as the session token's `kid`. */
  readonly kid: string;
  /** 32 octets (A256GCM). */
  readonly key: Uint8Array;
}

/**
 * Where session-token keys come from. Every instance of a service must see the same keys (the
 * in-memory store serves one instance). Implementations fail with `session_keys_unavailable` (503)
 * when their backing store cannot be reached.
 */
export interface SessionKeyStore {
  /** The key new tokens are encrypted under, at `now` (unix seconds). */
  current(now: number): Promise<SessionKey> | SessionKey;
  /** The key named `kid`, if it is still kept at `now`; `undefined` once deleted or never known. */
  find(kid: string, now: number): Promise<SessionKey | undefined> | SessionKey | undefined;
}

/** Options of {@link MemorySessionKeyStore}. */
export interface MemorySessionKeyStoreOptions {
  /** Seconds a key is current before the next one replaces it. Default 600. */
  rotationSeconds?: number;
  /**
   * Seconds a key is kept for decryption after it stopped being current (the session epoch plus
   * leeway), then deleted. Default 660, so that a key lives at most 1,260 s.
   */
  retentionSeconds?: number;
}

const STEK_BYTES = 32;

/**
 * STEKs in this process's memory, one per rotation period, deleted after the retention. For a single
 * instance; several instances need a shared store (`@oidc2/redis`) or {@link StaticSessionKeyStore}.
 */
export class MemorySessionKeyStore implements SessionKeyStore {
  readonly #rotation: number;
  readonly #retention: number;
  readonly #keys = new Map<number, SessionKey>();

  constructor(options: MemorySessionKeyStoreOptions = {}) {
    assertOptions(options, ['rotationSeconds', 'retentionSeconds'], 'options');
    this.#rotation = integerOption('options.rotationSeconds', options.rotationSeconds, 600, false);
    this.#retention = integerOption('options.retentionSeconds', options.retentionSeconds, 660);
  }

  // A key of period p is current until (p + 1) * rotation and deleted retention later.
  #expiry(period: number): number {
    return (period + 1) * this.#rotation + this.#retention;
  }

  #prune(now: number): void {
    for (const period of this.#keys.keys()) if (this.#expiry(period) <= now) this.#keys.delete(period);
  }

  current(now: number): SessionKey {
    const period = Math.floor(now / this.#rotation);
    this.#prune(now);
    let key = this.#keys.get(period);
    if (!key) {
      key = { kid: `m${period}.${encodeBase64Url(randomBytes(6))}`, key: randomBytes(STEK_BYTES) };
      this.#keys.set(period, key);
    }
    return key;
  }

  find(kid: string, now: number): SessionKey | undefined {
    this.#prune(now);
    for (const key of this.#keys.values()) if (key.kid === kid) return key;
    return undefined;
  }
}

/** An operator-supplied symmetric JWK: `{ kty: 'oct', kid, k }` with a 32-octet `k`. */
export interface SessionKeyJwk {
  kty: 'oct';
  kid: string;
  k: string;
  alg?: string;
  use?: string;
}

/**
 * A fixed set of operator-supplied keys: the first is current, all are accepted for decryption. The
 * operator rotates them by replacing the set, and is responsible for deleting retired keys
 * everywhere they were stored (configuration, backups), which bounds forward secrecy.
 */
export class StaticSessionKeyStore implements SessionKeyStore {
  readonly #keys: SessionKey[];

  constructor(jwks: { keys: SessionKeyJwk[] }) {
    if (typeof jwks !== 'object' || jwks === null || !Array.isArray(jwks.keys) || jwks.keys.length === 0) {
      throw argumentError('ERR_INVALID_ARG_VALUE', 'jwks.keys must list at least one oct JWK');
    }
    const kids = new Set<string>();
    this.#keys = jwks.keys.map((jwk, i) => {
      const where = `jwks.keys[${i}]`;
      assertOptions(jwk, ['kty', 'kid', 'k', 'alg', 'use'], where);
      if (jwk.kty !== 'oct') throw argumentError('ERR_INVALID_ARG_VALUE', `${where}.kty must be oct`);
      if (typeof jwk.kid !== 'string' || jwk.kid.length === 0 || jwk.kid.length > 64) throw argumentError('ERR_INVALID_ARG_VALUE', `${where}.kid must be a string of 1 to 64 characters`);
      if (kids.has(jwk.kid)) throw argumentError('ERR_INVALID_ARG_VALUE', `${where}.kid is not unique`);
      kids.add(jwk.kid);
      const key = typeof jwk.k === 'string' ? decodeBase64Url(jwk.k) : undefined;
      if (!key || key.length !== STEK_BYTES) throw argumentError('ERR_INVALID_ARG_VALUE', `${where}.k must be 32 octets, base64url`);
      return { kid: jwk.kid, key };
    });
  }

  current(): SessionKey {
    return this.#keys[0]!;
  }

  find(kid: string): SessionKey | undefined {
    return this.#keys.find((k) => k.kid === kid);
  }
}

/** Wraps a store's failure as the coded 503. */
export function sessionKeysUnavailable(cause: unknown): Oidc2Error {
  return new Oidc2Error('session_keys_unavailable', 'the session-token keys cannot be reached', { cause });
}
