/**
 * Replay detection for signature nonces and DPoP `jti`s: a value seen once is rejected for as long
 * as the proof that carried it could still be accepted.
 */
import { Oidc2Error } from './errors.js';
import { digest, digestSync, randomBytes } from './lib/crypto.js';
import { encodeBase64Url, utf8 } from './lib/base64.js';
import { argumentError, assertOptions } from './lib/validate.js';

/**
 * Where seen nonces are recorded. Use a shared store (`RedisReplayStore` from `@oidc2/redis`, or
 * your own: one atomic set-if-absent with a time to live of `expiresAt - now`) when several
 * instances serve the same audience: each instance's {@link MemoryReplayStore} only sees its own
 * traffic.
 */
export interface ReplayStore {
  /**
   * Records `key` until `expiresAt` (unix seconds). Returns true when the key was new, false when
   * it was already recorded and not expired. Must be atomic: of two concurrent calls with the same
   * key, at most one returns true. Throw (ideally an `Oidc2Error` `replay_store_unavailable`) when
   * the key cannot be recorded; never return true without recording it.
   */
  checkAndRecord(key: string, expiresAt: number, now: number): boolean | Promise<boolean>;
}

/** Options of {@link MemoryReplayStore}. */
export interface MemoryReplayStoreOptions {
  /**
   * Most keys held at once. The table is allocated once with room for twice this many slots
   * (rounded up to a power of two) at 12 bytes each, so memory is fixed at construction: see
   * {@link MemoryReplayStore.maxBytes}. When every held key is still live, new keys are refused
   * with `replay_store_unavailable` (503) rather than evicting one. Default `1_048_576` (2^20:
   * a 2^21-slot table, 24 MiB).
   */
  maxEntries?: number;
  /**
   * Write the whole table once at construction, so that the operating system maps its pages then
   * instead of one by one as the first nonces land on them. Without it a new store's resident size
   * grows to {@link MemoryReplayStore.maxBytes} over its first traffic (for the default table, the
   * first tens of thousands of nonces), and each of those nonces pays a page fault. Default false.
   */
  prefault?: boolean;
}

/** Every key of {@link MemoryReplayStoreOptions}: any other key is refused with `ERR_UNKNOWN_OPTION`. */
export const MEMORY_REPLAY_STORE_OPTION_KEYS = Object.freeze(['maxEntries', 'prefault'] as const satisfies ReadonlyArray<keyof MemoryReplayStoreOptions>);

const SLOT_BYTES = 12;
const MAX_EXPIRY = 0xffffffff;

/**
 * An in-process {@link ReplayStore} with strictly bounded memory and O(1) operations.
 *
 * Keys are not stored: each is reduced to a 64-bit fingerprint, the first 8 bytes of
 * SHA-256(salt || key) with a random per-instance salt, kept with its expiry in typed arrays
 * (a linear-probing table, at most half full; each slot's three words side by side, so that a probe
 * touches one cache line and one page of the table, not three). So memory does not depend on key length, and
 * nobody who does not know the salt can choose keys that collide or pile up in one probe run.
 * A new key is reported as seen only if its fingerprint equals that of a live key: with `n` live
 * keys the chance per check is at most n / 2^64 (5.7e-14 for 2^20).
 *
 * Expired keys are removed when a probe meets them and, when the table is full, by one sweep
 * that runs only once some held key can have expired. A live key is never evicted, since that
 * would reopen its replay window: when all held keys are live the store fails closed.
 *
 * @example
 * ```ts
 * const store = new MemoryReplayStore({ maxEntries: 100_000 });
 * await store.checkAndRecord('sig:' + nonce, expires + 60, now); // true, then false until expiry
 * ```
 */
export class MemoryReplayStore implements ReplayStore {
  /** Most keys held at once. */
  readonly maxEntries: number;
  /** Slots in the table (a power of two, at least twice {@link maxEntries}). */
  readonly capacity: number;
  readonly #mask: number;
  readonly #saltText = encodeBase64Url(randomBytes(16));
  // Slot i is words 3i (fingerprint high), 3i + 1 (low) and 3i + 2 (expiry in unix seconds; 0 marks
  // an empty slot).
  readonly #slots: Uint32Array;
  #occupied = 0;
  // No held key expires before this, so a sweep before then would free nothing.
  #earliestExpiry = Infinity;

  constructor(options: MemoryReplayStoreOptions = {}) {
    assertOptions(options as unknown, MEMORY_REPLAY_STORE_OPTION_KEYS, 'options');
    if (options.prefault !== undefined && typeof options.prefault !== 'boolean') throw argumentError('ERR_INVALID_ARG_TYPE', 'options.prefault must be a boolean');
    const max = options.maxEntries ?? 2 ** 20;
    if (!Number.isInteger(max) || max < 1 || max > 2 ** 28) {
      throw argumentError('ERR_INVALID_ARG_VALUE', 'options.maxEntries must be an integer between 1 and 2^28');
    }
    this.maxEntries = max;
    let capacity = 16;
    while (capacity < 2 * max) capacity *= 2;
    this.capacity = capacity;
    this.#mask = capacity - 1;
    this.#slots = new Uint32Array(capacity * 3);
    // Empty slots are zero already: writing the zeros maps every page.
    if (options.prefault) this.#slots.fill(0);
  }

  /** Bytes the table occupies; fixed at construction, independent of keys and traffic. */
  get maxBytes(): number {
    return this.capacity * SLOT_BYTES;
  }

  /** Slots in use (live keys plus expired ones not yet removed). */
  get size(): number {
    return this.#occupied;
  }

  /**
   * Returns a boolean synchronously where the runtime hashes synchronously (Node), else a promise.
   * Failures are always a rejected promise.
   */
  checkAndRecord(key: string, expiresAt: number, now: number): boolean | Promise<boolean> {
    try {
      return this.#fingerprintAndRecord(key, expiresAt, now);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #fingerprintAndRecord(key: string, expiresAt: number, now: number): boolean | Promise<boolean> {
    if (typeof key !== 'string') throw argumentError('ERR_INVALID_ARG_TYPE', 'key must be a string');
    if (!Number.isFinite(expiresAt) || !Number.isFinite(now)) throw argumentError('ERR_INVALID_ARG_VALUE', 'expiresAt and now must be finite numbers');
    const expiry = Math.min(Math.max(Math.ceil(expiresAt), 1), MAX_EXPIRY);
    // On Node the fingerprint is computed synchronously: no promise and no copy on the hot path.
    const h = digestSync('SHA-256', this.#saltText + key);
    if (h) return this.#record(h, expiry, now);
    return digest('SHA-256', utf8(this.#saltText + key)).then((d) => this.#record(d, expiry, now));
  }

  #record(h: Uint8Array, expiry: number, now: number): boolean {
    const hi = ((h[0]! << 24) | (h[1]! << 16) | (h[2]! << 8) | h[3]!) >>> 0;
    const lo = ((h[4]! << 24) | (h[5]! << 16) | (h[6]! << 8) | h[7]!) >>> 0;
    // Everything from here on is synchronous, so the check and the record are one atomic step.
    return this.#checkAndRecord(hi, lo, expiry, now, true);
  }

  #checkAndRecord(hi: number, lo: number, expiry: number, now: number, maySweep: boolean): boolean {
    const slots = this.#slots;
    let i = lo & this.#mask;
    for (;;) {
      const e = slots[3 * i + 2]!;
      if (e === 0) break;
      if (e < now) {
        this.#remove(i);
        continue; // slot i now holds the next entry of the run, or is empty
      }
      if (slots[3 * i] === hi && slots[3 * i + 1] === lo) return false;
      i = (i + 1) & this.#mask;
    }
    if (expiry < now) return true; // already outside its window: nothing to hold
    if (this.#occupied >= this.maxEntries) {
      if (!maySweep || !(now > this.#earliestExpiry)) {
        throw new Oidc2Error('replay_store_unavailable', 'the replay store is full of live entries');
      }
      this.#sweep(now);
      return this.#checkAndRecord(hi, lo, expiry, now, false);
    }
    slots[3 * i] = hi;
    slots[3 * i + 1] = lo;
    slots[3 * i + 2] = expiry;
    this.#occupied++;
    if (expiry < this.#earliestExpiry) this.#earliestExpiry = expiry;
    return true;
  }

  #sweep(now: number): void {
    const slots = this.#slots;
    let earliest = Infinity;
    for (let i = 0; i < this.capacity; ) {
      const e = slots[3 * i + 2]!;
      if (e !== 0 && e < now) {
        this.#remove(i);
        continue;
      }
      if (e !== 0 && e < earliest) earliest = e;
      i++;
    }
    this.#earliestExpiry = earliest;
  }

  // Deletion without tombstones (Knuth's algorithm R for linear probing): later entries of the run
  // move back into the hole unless that would put them before their home slot, so every entry
  // stays reachable from its home without crossing an empty slot.
  #remove(hole: number): void {
    const mask = this.#mask;
    const slots = this.#slots;
    let i = hole;
    let j = hole;
    for (;;) {
      j = (j + 1) & mask;
      if (slots[3 * j + 2] === 0) break;
      const home = slots[3 * j + 1]! & mask;
      if (i <= j ? i < home && home <= j : i < home || home <= j) continue;
      slots[3 * i] = slots[3 * j]!;
      slots[3 * i + 1] = slots[3 * j + 1]!;
      slots[3 * i + 2] = slots[3 * j + 2]!;
      i = j;
    }
    slots[3 * i + 2] = 0;
    this.#occupied--;
  }
}
