/**
 * A Redis-backed {@link ReplayStore}: every service instance that shares one Redis sees the
 * signature nonces and DPoP `jti`s the others have accepted, so a request accepted by one instance
 * cannot be replayed against another. And a Redis-backed session-token key store
 * ({@link RedisSessionKeyStore}) for end-to-end encryption, so every instance opens every session.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Oidc2Error, isOidc2Error, type ReplayStore } from '@oidc2/core';
import { argumentError, assertOptions, stekTimes, type SessionKey, type SessionKeyStore } from '@oidc2/core/adapter';

/**
 * The part of a Redis client this store uses: one `SET` with the `PX` and `NX` options, as
 * node-redis v4 and v5 clients and cluster clients (`createClient()`, `createCluster()`) spell it.
 * Any other client fits through a small wrapper that sends `SET key value PX ms NX` and resolves
 * to `'OK'` when the key was set and `null` when it already existed.
 */
export interface RedisSetClient {
  /** `SET key value PX options.PX NX`: resolves to `'OK'` when set, `null` when the key exists. */
  set(key: string, value: string, options: { PX: number; NX: true }): Promise<unknown>;
}

/** Options of {@link RedisReplayStore}. */
export interface RedisReplayStoreOptions {
  /**
   * A connected client, created and owned by the application: the store neither connects nor
   * closes it. Required.
   */
  client: RedisSetClient;
  /**
   * Prefix of every key the store writes; the rest of the key is a fixed-size fingerprint of the
   * recorded value. Give services that must not share a replay window different prefixes.
   * At most 256 characters. Default `'oidc2:replay:'`.
   */
  prefix?: string;
  /**
   * Milliseconds to wait for Redis's reply before failing the check with `replay_store_unavailable`
   * (503): the round trip, not time this process's event loop spent on other work (a reply already
   * received when the deadline passes is taken, and a deadline that passed while the loop was busy
   * runs once more). An integer from 1 to 60000. Default `200`.
   */
  timeoutMs?: number;
}

const TIMED_OUT: unique symbol = Symbol('timed out');

/**
 * One Redis round trip with a deadline of `ms`: resolves to the reply, or to {@link TIMED_OUT} when
 * none came in time; rejects with the client's error.
 *
 * The deadline measures Redis, not this process. When the event loop was busy (other requests'
 * work), the command may have been written late and its reply may sit unread: timers run before I/O
 * in each turn of Node's event loop. So a timer that fires later than half the deadline past its
 * time (the loop was busy, not waiting) is armed once more for the whole deadline, and any verdict
 * waits one more turn (`setImmediate` runs after the I/O poll), in which a reply already received is
 * read. Only a reply that has not arrived after a deadline the loop spent waiting counts as late.
 */
function roundTrip<T>(command: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let timer: ReturnType<typeof setTimeout>;
    let extended = false;
    const arm = () => {
      const due = performance.now() + ms;
      timer = setTimeout(() => {
        if (!extended && performance.now() - due > ms / 2) {
          extended = true;
          arm();
          return;
        }
        setImmediate(() => {
          if (settled) return;
          settled = true;
          resolve(TIMED_OUT);
        });
      }, ms);
    };
    arm();
    command.then(
      (reply) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(reply);
      },
      (error: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** Calls `run` so that a synchronous throw of the client becomes a rejected promise. */
function call<T>(run: () => Promise<T>): Promise<T> {
  try {
    return Promise.resolve(run());
  } catch (error) {
    return Promise.reject(error);
  }
}

/** Default key prefix of {@link RedisReplayStore}. */
export const DEFAULT_REPLAY_KEY_PREFIX = 'oidc2:replay:';

/**
 * A {@link ReplayStore} over Redis, for services that run as several instances.
 *
 * Each check is one atomic `SET <prefix><fingerprint> 1 PX <ms> NX`: `'OK'` means the value was
 * new and is now held, `null` that it was already held. The fingerprint is the base64url SHA-256
 * of the value, so callers who choose nonces cannot choose Redis key names or sizes, and Redis
 * never sees a nonce. The hold time is `expiresAt - now` as the service computed it, so expiry does
 * not depend on Redis's wall clock agreeing with the service's.
 *
 * It fails closed: a Redis error, an unexpected reply or no answer within `timeoutMs` rejects with
 * `Oidc2Error` `replay_store_unavailable` (status 503), and the request is refused.
 *
 * @example
 * ```ts
 * import express from 'express'
 * import { createClient } from 'redis'
 * import { oidc2 } from '@oidc2/express'
 * import { RedisReplayStore } from '@oidc2/redis'
 *
 * const client = createClient({ url: process.env.REDIS_URL })
 * client.on('error', (err) => console.error('redis', err))       // node-redis needs a listener
 * await client.connect()
 *
 * const app = express()
 * app.use(oidc2({
 *   issuers: [{ issuer: 'https://login.bank.example' }],
 *   audiences: ['https://api.bank.example'],
 *   credential: async () => ({ ict: await fetchServiceIct(), privateKey: serviceKey }),
 *   replayStore: new RedisReplayStore({ client }),
 * }))
 * ```
 */
export class RedisReplayStore implements ReplayStore {
  /** Prefix of every key the store writes. */
  readonly prefix: string;
  /** Milliseconds to wait for Redis before failing closed. */
  readonly timeoutMs: number;
  readonly #client: RedisSetClient;

  constructor(options: RedisReplayStoreOptions) {
    if (typeof options !== 'object' || options === null) {
      throw argumentError('ERR_INVALID_ARG_TYPE', 'options must be an object');
    }
    const { client, prefix = DEFAULT_REPLAY_KEY_PREFIX, timeoutMs = 200 } = options;
    if (typeof client !== 'object' || client === null || typeof client.set !== 'function') {
      throw argumentError('ERR_INVALID_ARG_TYPE', 'options.client must be a Redis client with a set() method');
    }
    if (typeof prefix !== 'string' || prefix.length > 256) {
      throw argumentError('ERR_INVALID_ARG_VALUE', 'options.prefix must be a string of at most 256 characters');
    }
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 60_000) {
      throw argumentError('ERR_INVALID_ARG_VALUE', 'options.timeoutMs must be an integer between 1 and 60000');
    }
    this.#client = client;
    this.prefix = prefix;
    this.timeoutMs = timeoutMs;
  }

  /**
   * Records `key` until `expiresAt` (unix seconds, judged against `now`). Resolves to true when
   * the key was new, false when it is already held. A key whose `expiresAt` is not after `now` is
   * outside its window: it resolves to true and nothing is written. Rejects with `Oidc2Error`
   * `replay_store_unavailable` when Redis fails or does not answer in time, and with a `TypeError`
   * for arguments of the wrong type.
   */
  async checkAndRecord(key: string, expiresAt: number, now: number): Promise<boolean> {
    if (typeof key !== 'string') throw argumentError('ERR_INVALID_ARG_TYPE', 'key must be a string');
    if (!Number.isFinite(expiresAt) || !Number.isFinite(now)) {
      throw argumentError('ERR_INVALID_ARG_VALUE', 'expiresAt and now must be finite numbers');
    }
    if (expiresAt <= now) return true;
    const ttlMs = Math.min(Math.ceil((expiresAt - now) * 1000), Number.MAX_SAFE_INTEGER);
    const name = this.prefix + createHash('sha256').update(key, 'utf8').digest('base64url');

    let reply: unknown;
    try {
      reply = await roundTrip(call(() => this.#client.set(name, '1', { PX: ttlMs, NX: true })), this.timeoutMs);
    } catch (error) {
      // The cause is Redis's own error; it cannot hold the nonce, which Redis never receives.
      throw new Oidc2Error('replay_store_unavailable', 'the replay store failed', { cause: error });
    }
    // A late answer is dropped: the request is refused even if the key was recorded after all.
    if (reply === TIMED_OUT) throw new Oidc2Error('replay_store_unavailable', 'the replay store did not answer in time');
    if (reply === 'OK') return true;
    if (reply === null) return false;
    throw new Oidc2Error('replay_store_unavailable', 'the replay store gave an unexpected reply');
  }
}

// ---------------------------------------------------------------------------------------------
// Session-token encryption keys (STEKs) for end-to-end encryption, shared by every instance.

/**
 * The part of a Redis client {@link RedisSessionKeyStore} uses: `SET key value EX s NX` and `GET`,
 * as node-redis v4 and v5 clients and cluster clients spell them. Another client fits through a
 * wrapper whose `set` resolves to `'OK'` when it set the key and `null` when the key existed, and
 * whose `get` resolves to the string value or `null`.
 */
export interface RedisStekClient {
  /** `SET key value EX options.EX NX`: `'OK'` when set, `null` when the key exists. */
  set(key: string, value: string, options: { EX: number; NX: true }): Promise<unknown>;
  /** `GET key`: the value, or `null`. */
  get(key: string): Promise<unknown>;
}

/** Options of {@link RedisSessionKeyStore}. */
export interface RedisSessionKeyStoreOptions {
  /** A connected client, created and owned by the application. Required. */
  client: RedisStekClient;
  /** Prefix of every key written; the rest is the period number. At most 256 characters. Default `'oidc2:stek:'`. */
  prefix?: string;
  /**
   * Milliseconds to wait for each Redis reply before failing with `session_keys_unavailable` (503):
   * the round trip, not time this process's event loop spent on other work (a reply already received
   * when the deadline passes is taken). A call makes at most three round trips, and none while the
   * STEK it needs is held. 1 to 60000. Default `200`.
   */
  timeoutMs?: number;
  /** Seconds a STEK is current; periods start at multiples of this (unix time). Default 600. */
  stekRotationSeconds?: number;
  /**
   * Seconds a STEK is kept from the start of its period, then deleted by Redis's expiry. At least
   * `stekRotationSeconds`; should be `stekRotationSeconds` + the session `epochSeconds` + leeway.
   * Default 1260.
   */
  stekRetentionSeconds?: number;
  /** The clock, unix seconds. Default `Date.now() / 1000`. */
  now?: () => number;
}

/** Default key prefix of {@link RedisSessionKeyStore}. */
export const DEFAULT_STEK_KEY_PREFIX = 'oidc2:stek:';

const STEK_KID = /^p(\d{1,15})\.[A-Za-z0-9_-]{16}$/;

/** A STEK held in process memory: until `deleteAt` (unix seconds), read from Redis at `readAt`. */
interface HeldStek {
  stek: SessionKey;
  deleteAt: number;
  readAt: number;
}

function stekUnavailable(message: string, cause?: unknown): Oidc2Error {
  return new Oidc2Error('session_keys_unavailable', message, cause === undefined ? undefined : { cause });
}

/**
 * A {@link SessionKeyStore} over Redis: every instance that shares the Redis uses the same STEK in
 * each rotation period, so a session token made by one instance opens on all of them.
 *
 * The STEK of period `p` (`floor(now / stekRotationSeconds)`) lives under `<prefix><p>` as
 * `{"kid":"p<p>.<random>","k":"<base64url of 32 random octets>"}`. The first instance that needs it
 * creates it with one `SET <prefix><p> <value> EX <ttl> NX` and then every instance, the losers of
 * that race included, reads back the value that won with `GET`. `ttl` is what is left of the
 * retention counted from the start of the period, so Redis deletes the key at `period start +
 * stekRetentionSeconds` whoever created it and when. A token's `kid` names its period, so a lookup is
 * one `GET`, and a `kid` whose period is in the future or past its retention is refused without
 * asking Redis.
 *
 * A STEK read from Redis is held in process memory until its deletion time (`period start +
 * stekRetentionSeconds`, when Redis's expiry deletes it too) and dropped then, so a busy service asks
 * Redis once per period rather than once per session request; at most one STEK per period within the
 * retention is held. A `kid` of a held period that names another STEK makes the store read the
 * period's STEK again (at most once a second per period), so instances converge on what Redis holds
 * after Redis lost its data; a STEK deleted from Redis by hand stays usable where it is held until
 * its deletion time.
 *
 * It fails closed: a Redis error, an unexpected or malformed reply, or no answer within
 * `timeoutMs` rejects with `Oidc2Error` `session_keys_unavailable` (503) whenever Redis had to be
 * asked. After Redis restarts without its data, the next period's STEK is new everywhere, and
 * sessions made under a STEK that instances do not hold fail with `session_invalid` (their callers
 * handshake again).
 *
 * The keyspace must not be persisted (no RDB snapshot, no AOF) or replicated to anything that
 * persists: a STEK written to disk outlives its deletion and opens every session made under it.
 * See docs/redis.md.
 *
 * @example
 * ```ts
 * const stekClient = createClient({ url: process.env.STEK_REDIS_URL }) // a Redis with save "" and appendonly no
 * stekClient.on('error', (err) => log.warn({ err }, 'redis'))
 * await stekClient.connect()
 * const keys = new RedisSessionKeyStore({ client: stekClient })
 * ```
 */
export class RedisSessionKeyStore implements SessionKeyStore {
  /** Prefix of every key the store writes. */
  readonly prefix: string;
  /** Milliseconds to wait for Redis per call. */
  readonly timeoutMs: number;
  /** Seconds a STEK is current. */
  readonly stekRotationSeconds: number;
  /** Seconds a STEK is kept from the start of its period. */
  readonly stekRetentionSeconds: number;
  readonly #client: RedisStekClient;
  readonly #now: () => number;
  /** The STEKs read from Redis, by period, each until its deletion time. */
  readonly #keys = new Map<number, HeldStek>();
  /** The reads of a period's STEK under way for {@link current}. */
  readonly #loading = new Map<number, Promise<SessionKey>>();

  constructor(options: RedisSessionKeyStoreOptions) {
    assertOptions(options, ['client', 'prefix', 'timeoutMs', 'stekRotationSeconds', 'stekRetentionSeconds', 'now'], 'options');
    const { client, prefix = DEFAULT_STEK_KEY_PREFIX, timeoutMs = 200 } = options as RedisSessionKeyStoreOptions;
    if (typeof client !== 'object' || client === null || typeof client.set !== 'function' || typeof client.get !== 'function') {
      throw argumentError('ERR_INVALID_ARG_TYPE', 'options.client must be a Redis client with set() and get() methods');
    }
    if (typeof prefix !== 'string' || prefix.length > 256) {
      throw argumentError('ERR_INVALID_ARG_VALUE', 'options.prefix must be a string of at most 256 characters');
    }
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 60_000) {
      throw argumentError('ERR_INVALID_ARG_VALUE', 'options.timeoutMs must be an integer between 1 and 60000');
    }
    const now: unknown = options.now;
    if (now !== undefined && typeof now !== 'function') throw argumentError('ERR_INVALID_ARG_TYPE', 'options.now must be a function');
    const { rotation, retention } = stekTimes(options as RedisSessionKeyStoreOptions, 'options');
    this.#client = client;
    this.#now = (now as (() => number) | undefined) ?? (() => Date.now() / 1000);
    this.prefix = prefix;
    this.timeoutMs = timeoutMs;
    this.stekRotationSeconds = rotation;
    this.stekRetentionSeconds = retention;
  }

  async current(): Promise<SessionKey> {
    const now = this.#clock();
    const period = Math.floor(now / this.stekRotationSeconds);
    const held = this.#held(period, now);
    if (held) return held.stek;
    // Concurrent first calls of a period share one read (and at most one write).
    let loading = this.#loading.get(period);
    if (!loading) {
      loading = this.#load(period, now).finally(() => this.#loading.delete(period));
      this.#loading.set(period, loading);
    }
    return loading;
  }

  #load(period: number, now: number): Promise<SessionKey> {
    return this.#guarded(async () => {
      const name = this.prefix + String(period);
      const existing = await this.#redis(() => this.#client.get(name));
      if (existing !== null) return this.#hold(this.#decode(existing, period), period);
      const kid = `p${period}.${randomBytes(12).toString('base64url')}`;
      const value = JSON.stringify({ kid, k: randomBytes(32).toString('base64url') });
      const ttl = Math.max(1, Math.ceil(this.#deletionTime(period) - now));
      const reply = await this.#redis(() => this.#client.set(name, value, { EX: ttl, NX: true }));
      if (reply !== 'OK' && reply !== null) throw stekUnavailable('the session key store gave an unexpected reply');
      // Whether this instance won or lost the race, the value in Redis is the period's STEK.
      const winner = await this.#redis(() => this.#client.get(name));
      if (winner === null) throw stekUnavailable('the session key store lost the key it just wrote');
      return this.#hold(this.#decode(winner, period), period);
    });
  }

  async get(kid: string): Promise<SessionKey | undefined> {
    if (typeof kid !== 'string') return undefined;
    const match = STEK_KID.exec(kid);
    if (match === null) return undefined;
    const period = Number(match[1]);
    const now = this.#clock();
    const currentPeriod = Math.floor(now / this.stekRotationSeconds);
    if (period > currentPeriod || this.#deletionTime(period) <= now) return undefined;
    const held = this.#held(period, now);
    if (held) {
      if (held.stek.kid === kid) return held.stek;
      // Another STEK for a held period: Redis may have lost its data and another instance made a
      // new one. Asked again at most once a second per period, whatever kids callers invent.
      if (now - held.readAt < 1) return undefined;
    }
    return this.#guarded(async () => {
      const value = await this.#redis(() => this.#client.get(this.prefix + String(period)));
      if (value === null) {
        this.#keys.delete(period);
        return undefined;
      }
      const stek = this.#hold(this.#decode(value, period), period);
      return stek.kid === kid ? stek : undefined;
    });
  }

  /** When Redis deletes the STEK of `period` (its TTL runs to this instant, whoever made it). */
  #deletionTime(period: number): number {
    return period * this.stekRotationSeconds + this.stekRetentionSeconds;
  }

  /** The STEK held for `period`, if it is not yet due for deletion; drops every STEK that is. */
  #held(period: number, now: number): HeldStek | undefined {
    for (const [p, entry] of this.#keys) if (entry.deleteAt <= now) this.#keys.delete(p);
    return this.#keys.get(period);
  }

  #hold(stek: SessionKey, period: number): SessionKey {
    const now = this.#clock();
    const held = this.#keys.get(period);
    // The same STEK read again keeps the object already handed out.
    const kept = held && held.stek.kid === stek.kid ? held.stek : stek;
    this.#keys.set(period, { stek: kept, deleteAt: this.#deletionTime(period), readAt: now });
    return kept;
  }

  /** One Redis command within `timeoutMs` of round trip. */
  async #redis(run: () => Promise<unknown>): Promise<unknown> {
    const reply = await roundTrip(call(run), this.timeoutMs);
    if (reply === TIMED_OUT) throw stekUnavailable('the session key store did not answer in time');
    return reply;
  }

  #clock(): number {
    const now = this.#now();
    if (typeof now !== 'number' || !Number.isFinite(now)) throw argumentError('ERR_INVALID_RETURN_VALUE', 'options.now must return a finite number');
    return now;
  }

  #decode(value: unknown, period: number): SessionKey {
    if (typeof value !== 'string' || value.length > 256) throw stekUnavailable('the session key store holds a malformed key');
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch (error) {
      throw stekUnavailable('the session key store holds a malformed key', error);
    }
    const { kid, k } = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as { kid?: unknown; k?: unknown };
    const match = typeof kid === 'string' ? STEK_KID.exec(kid) : null;
    const key = typeof k === 'string' && /^[A-Za-z0-9_-]{43}$/.test(k) ? new Uint8Array(Buffer.from(k, 'base64url')) : undefined;
    if (match === null || Number(match[1]) !== period || key === undefined || key.length !== 32) {
      throw stekUnavailable('the session key store holds a malformed key');
    }
    return { kid: kid as string, key };
  }

  // A late answer is dropped and the call has failed; the client's own errors become 503s.
  async #guarded<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      if (isOidc2Error(error)) throw error;
      // The cause is the client's own error; it never holds a key, which only travels in replies.
      throw stekUnavailable('the session key store failed', error);
    }
  }
}
