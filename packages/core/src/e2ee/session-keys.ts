/**
 * Session-token encryption keys (STEKs, docs/protocol.md section 7): 32 random octets
 * with a `kid`. A STEK is current for one rotation period, stays available for decryption while the
 * tokens made under it can still be accepted, and is then deleted. The deletion is what bounds the
 * forward secrecy of session traffic: whoever obtains a STEK that still exists can read the root
 * key of every token made under it.
 */
import { Oidc2Error, isOidc2Error } from '../errors.js';
import { decodeBase64Url, encodeBase64Url } from '../lib/base64.js';
import { randomBytes } from '../lib/crypto.js';
import { argumentError, assertOptions, integerOption } from '../lib/validate.js';

/** One STEK. The store owns the octets: never keep, copy or log them. */
export interface SessionKey {
  /** The identifier carried in the session token's `kid` header. Printable ASCII, at most 128 characters. */
  readonly kid: string;
  /** 32 octets (an A256GCM key for `dir`). */
  readonly key: Uint8Array;
}

/**
 * Where session-token keys come from. Every instance that may see a session must see the same
 * keys: the in-memory store serves one instance, `RedisSessionKeyStore` (`@oidc2/redis`) or a static
 * set serve several. Both methods fail with `Oidc2Error` `session_keys_unavailable` (503) when the
 * keys cannot be reached; they never fall back to a key of their own.
 */
export interface SessionKeyStore {
  /** The key that encrypts new tokens now. */
  current(): Promise<SessionKey>;
  /** The key named `kid` while it is kept; `undefined` once it is deleted or when it is unknown. */
  get(kid: string): Promise<SessionKey | undefined>;
}

/** Octets of a STEK. */
export const STEK_LENGTH = 32;
/** Default seconds a STEK is current. */
export const DEFAULT_STEK_ROTATION_SECONDS = 600;
/**
 * Default seconds a STEK is kept from the start of the period in which it is current: the rotation
 * period (600) plus the session epoch (600) plus clock leeway (60).
 */
export const DEFAULT_STEK_RETENTION_SECONDS = 1260;

const MAX_KID_LENGTH = 128;
const KID = /^[\x21-\x7e]{1,128}$/;
const MAX_STATIC_KEYS = 64;

/** True for a `kid` the stores accept: 1 to 128 printable ASCII characters, no space. */
export function isValidKid(kid: unknown): kid is string {
  return typeof kid === 'string' && kid.length <= MAX_KID_LENGTH && KID.test(kid);
}

/**
 * Checks the rotation and retention options shared by the rotating stores and returns them.
 * @internal
 */
export function stekTimes(options: { stekRotationSeconds?: number; stekRetentionSeconds?: number }, path: string): { rotation: number; retention: number } {
  const rotation = integerOption(`${path}.stekRotationSeconds`, options.stekRotationSeconds, DEFAULT_STEK_ROTATION_SECONDS, false);
  const retention = integerOption(`${path}.stekRetentionSeconds`, options.stekRetentionSeconds, DEFAULT_STEK_RETENTION_SECONDS, false);
  if (rotation > 86_400) throw argumentError('ERR_INVALID_ARG_VALUE', `${path}.stekRotationSeconds must be at most 86400`);
  if (retention < rotation || retention > 7 * 86_400) {
    throw argumentError('ERR_INVALID_ARG_VALUE', `${path}.stekRetentionSeconds must be at least stekRotationSeconds and at most 604800`);
  }
  return { rotation, retention };
}

/** Options of {@link MemorySessionKeyStore}. */
export interface MemorySessionKeyStoreOptions {
  /** Seconds a STEK is current; periods start at multiples of this (unix time). Default 600. */
  stekRotationSeconds?: number;
  /**
   * Seconds a STEK is kept, counted from the start of its period, after which it is deleted. Must be
   * at least `stekRotationSeconds`, and should be `stekRotationSeconds` + the session `epochSeconds`
   * + the leeway, or tokens made late in a period fail (`session_invalid`) before they expire.
   * Default 1260.
   */
  stekRetentionSeconds?: number;
  /** The clock, unix seconds. Default `Date.now() / 1000`. */
  now?: () => number;
}

interface HeldKey {
  readonly stek: SessionKey;
  readonly period: number;
  readonly deleteAt: number;
}

const systemNow = (): number => Date.now() / 1000;

/**
 * The default STEK source for a single instance: one fresh random 32-octet STEK per rotation
 * period, made when first needed, kept until `period start + stekRetentionSeconds` and then
 * deleted from memory: its octets are overwritten with zeros and the entry is dropped. Deletion
 * runs on every call and on a timer that does not keep the process alive. At most
 * `ceil(retention / rotation) + 1` keys are held at once.
 *
 * A restarted process starts with no keys, so every session of the old process fails with
 * `session_invalid` and its callers handshake again.
 *
 * @example
 * ```ts
 * const keys = new MemorySessionKeyStore({ stekRotationSeconds: 300, stekRetentionSeconds: 960 })
 * ```
 */
export class MemorySessionKeyStore implements SessionKeyStore {
  /** Seconds a STEK is current. */
  readonly stekRotationSeconds: number;
  /** Seconds a STEK is kept from the start of its period. */
  readonly stekRetentionSeconds: number;
  readonly #now: () => number;
  // kid -> key; a Map keeps insertion order, which is also period order.
  readonly #keys = new Map<string, HeldKey>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(options: MemorySessionKeyStoreOptions = {}) {
    assertOptions(options, ['stekRotationSeconds', 'stekRetentionSeconds', 'now'], 'options');
    const { rotation, retention } = stekTimes(options, 'options');
    const now: unknown = options.now;
    if (now !== undefined && typeof now !== 'function') throw argumentError('ERR_INVALID_ARG_TYPE', 'options.now must be a function');
    this.stekRotationSeconds = rotation;
    this.stekRetentionSeconds = retention;
    this.#now = (now as (() => number) | undefined) ?? systemNow;
  }

  /** Number of STEKs held now (for tests and metrics). */
  get size(): number {
    return this.#keys.size;
  }

  async current(): Promise<SessionKey> {
    const now = this.#clock();
    this.#purge(now);
    const period = Math.floor(now / this.stekRotationSeconds);
    for (const held of this.#keys.values()) if (held.period === period) return held.stek;
    if (this.#closed) throw new Oidc2Error('session_keys_unavailable', 'the session key store is closed');
    const stek: SessionKey = Object.freeze({ kid: encodeBase64Url(randomBytes(12)), key: randomBytes(STEK_LENGTH) });
    this.#keys.set(stek.kid, { stek, period, deleteAt: period * this.stekRotationSeconds + this.stekRetentionSeconds });
    this.#schedule(now);
    return stek;
  }

  async get(kid: string): Promise<SessionKey | undefined> {
    const now = this.#clock();
    this.#purge(now);
    if (typeof kid !== 'string') return undefined;
    return this.#keys.get(kid)?.stek;
  }

  /** Deletes every STEK whose retention has ended; the timer calls it too. */
  purge(): void {
    this.#purge(this.#clock());
  }

  /** Deletes every STEK now and stops the timer; the store then makes no new keys. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const kid of [...this.#keys.keys()]) this.#delete(kid);
  }

  #clock(): number {
    const now = this.#now();
    if (typeof now !== 'number' || !Number.isFinite(now)) throw argumentError('ERR_INVALID_RETURN_VALUE', 'options.now must return a finite number');
    return now;
  }

  #purge(now: number): void {
    for (const [kid, held] of this.#keys) if (held.deleteAt <= now) this.#delete(kid);
  }

  #delete(kid: string): void {
    const held = this.#keys.get(kid);
    if (held === undefined) return;
    held.stek.key.fill(0);
    this.#keys.delete(kid);
  }

  // One timer, for the earliest deletion; it does not keep the process alive.
  #schedule(now: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    let earliest = Infinity;
    for (const held of this.#keys.values()) earliest = Math.min(earliest, held.deleteAt);
    if (earliest === Infinity) return;
    const delay = Math.min(Math.max(Math.ceil((earliest - now) * 1000), 0), 2 ** 31 - 1);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      let at: number;
      try {
        at = this.#clock();
      } catch {
        return; // a broken clock fails the next call instead; deletion then runs on that call
      }
      this.#purge(at);
      this.#schedule(at);
    }, delay);
    (this.#timer as { unref?: () => void }).unref?.();
  }
}

/** An operator-supplied STEK as a JWK. */
export interface SessionKeyJwk {
  kty: 'oct';
  kid: string;
  /** base64url of 32 octets. */
  k: string;
  alg?: 'dir';
  use?: 'enc';
}

/** Options of {@link StaticSessionKeyStore}. */
export interface StaticSessionKeyStoreOptions {
  /** The keys: every one decrypts. At most 64. Required. */
  keys: readonly SessionKeyJwk[];
  /** The `kid` of the key that encrypts new tokens. Default: the first key. */
  currentKid?: string;
}

/**
 * STEKs from an operator-supplied set of `oct` JWKs (each a 32-octet `k` with a unique `kid`),
 * for deployments that distribute keys themselves (a secret manager shared by every instance).
 *
 * This store neither rotates nor deletes anything: the operator is responsible for rotating the
 * current key, for dropping retired keys once the tokens made under them have expired (the
 * rotation period + `epochSeconds` + leeway), and for keeping the keys out of files, backups, crash
 * dumps and logs. A key that outlives that window turns into a long-term key that decrypts every
 * recorded session made under it.
 */
export class StaticSessionKeyStore implements SessionKeyStore {
  readonly #keys = new Map<string, SessionKey>();
  readonly #current: SessionKey;

  constructor(options: StaticSessionKeyStoreOptions) {
    assertOptions(options, ['keys', 'currentKid'], 'options');
    const { keys, currentKid } = options;
    if (!Array.isArray(keys) || keys.length === 0 || keys.length > MAX_STATIC_KEYS) {
      throw argumentError('ERR_INVALID_ARG_VALUE', `options.keys must be an array of 1 to ${MAX_STATIC_KEYS} oct JWKs`);
    }
    keys.forEach((jwk: unknown, i) => {
      const path = `options.keys[${i}]`;
      assertOptions(jwk, ['kty', 'kid', 'k', 'alg', 'use'], path);
      if (jwk.kty !== 'oct') throw argumentError('ERR_INVALID_ARG_VALUE', `${path}.kty must be "oct"`);
      if (jwk.alg !== undefined && jwk.alg !== 'dir') throw argumentError('ERR_INVALID_ARG_VALUE', `${path}.alg must be "dir" when present`);
      if (jwk.use !== undefined && jwk.use !== 'enc') throw argumentError('ERR_INVALID_ARG_VALUE', `${path}.use must be "enc" when present`);
      if (!isValidKid(jwk.kid)) throw argumentError('ERR_INVALID_ARG_VALUE', `${path}.kid must be 1 to 128 printable ASCII characters`);
      const key = typeof jwk.k === 'string' ? decodeBase64Url(jwk.k) : undefined;
      if (key === undefined || key.length !== STEK_LENGTH) throw argumentError('ERR_INVALID_ARG_VALUE', `${path}.k must be base64url of ${STEK_LENGTH} octets`);
      if (this.#keys.has(jwk.kid)) throw argumentError('ERR_INVALID_ARG_VALUE', `${path}.kid repeats another key's kid`);
      this.#keys.set(jwk.kid, Object.freeze({ kid: jwk.kid, key }));
    });
    if (currentKid !== undefined && (typeof currentKid !== 'string' || !this.#keys.has(currentKid))) {
      throw argumentError('ERR_INVALID_ARG_VALUE', 'options.currentKid must name one of options.keys');
    }
    this.#current = this.#keys.get(currentKid ?? (keys[0] as SessionKeyJwk).kid)!;
  }

  async current(): Promise<SessionKey> {
    return this.#current;
  }

  async get(kid: string): Promise<SessionKey | undefined> {
    return typeof kid === 'string' ? this.#keys.get(kid) : undefined;
  }
}

/**
 * Calls a store and maps anything but an `Oidc2Error` `session_keys_unavailable` (a store bug,
 * a bad return value) to that code, so a failing store never lets a request through.
 * @internal
 */
export async function fromStore<T>(call: () => Promise<T>, check: (value: unknown) => value is T): Promise<T> {
  let value: unknown;
  try {
    value = await call();
  } catch (error) {
    if (isOidc2Error(error) && error.code === 'session_keys_unavailable') throw error;
    throw new Oidc2Error('session_keys_unavailable', 'the session key store failed', { cause: error });
  }
  if (!check(value)) throw new Oidc2Error('session_keys_unavailable', 'the session key store returned an invalid key');
  return value;
}

/** True for a {@link SessionKey} of the right shape. @internal */
export function isSessionKey(value: unknown): value is SessionKey {
  if (typeof value !== 'object' || value === null) return false;
  const { kid, key } = value as { kid?: unknown; key?: unknown };
  return isValidKid(kid) && key instanceof Uint8Array && key.length === STEK_LENGTH;
}
