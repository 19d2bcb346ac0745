/**
 * A Redis-backed {@link ReplayStore}: every service instance that shares one Redis sees the
 * signature nonces and DPoP `jti`s the others have accepted, so a request accepted by one instance
 * cannot be replayed against another.
 */
import { createHash } from 'node:crypto';
import { Oidc2Error, type ReplayStore } from '@oidc2/core';
import { argumentError } from '@oidc2/core/adapter';

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
   * Milliseconds to wait for Redis before failing the check with `replay_store_unavailable` (503).
   * An integer from 1 to 60000. Default `200`.
   */
  timeoutMs?: number;
}

const TIMED_OUT: unique symbol = Symbol('timed out');

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

    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
      timer = setTimeout(resolve, this.timeoutMs, TIMED_OUT);
    });
    let reply: unknown;
    try {
      reply = await Promise.race([this.#client.set(name, '1', { PX: ttlMs, NX: true }), timeout]);
    } catch (error) {
      // The cause is Redis's own error; it cannot hold the nonce, which Redis never receives.
      throw new Oidc2Error('replay_store_unavailable', 'the replay store failed', { cause: error });
    } finally {
      clearTimeout(timer);
    }
    // A late answer is dropped: the request is refused even if the key was recorded after all.
    if (reply === TIMED_OUT) throw new Oidc2Error('replay_store_unavailable', 'the replay store did not answer in time');
    if (reply === 'OK') return true;
    if (reply === null) return false;
    throw new Oidc2Error('replay_store_unavailable', 'the replay store gave an unexpected reply');
  }
}
