// RedisReplayStore against a real redis-server started by this file on 127.0.0.1: atomicity,
// sharing between instances, expiry, key format and failing closed. The clock is the injected
// `now` everywhere except the one expiry test, where Redis owns the clock.
import { createClient, createCluster, createSentinel } from 'redis';
import { createAuthenticator, signRequest, type HttpRequest } from '@oidc2/core';
import { RedisReplayStore, DEFAULT_REPLAY_KEY_PREFIX, type RedisSetClient } from '@oidc2/redis';
import { newIssuer, newKey } from '../support/credentials';
import { rejection } from '../support/error-code';
import { connectRedis, describeWithRedis, freePort, startRedisServer, type RedisServer } from '../support/redis-server';

type Client = ReturnType<typeof createClient>;

// node-redis single-node, cluster and sentinel clients fit the structural client type without a cast.
export type FitsClient = ReturnType<typeof createClient> extends RedisSetClient ? true : never;
export type FitsCluster = ReturnType<typeof createCluster> extends RedisSetClient ? true : never;
export type FitsSentinel = ReturnType<typeof createSentinel> extends RedisSetClient ? true : never;
const fits: [FitsClient, FitsCluster, FitsSentinel] = [true, true, true];
void fits;

const describeRedis = describeWithRedis('Redis replay store');

const T = 1_790_000_000;

// Each server on a loopback port of its own.
async function startRedis(): Promise<RedisServer> {
  return startRedisServer({ host: '127.0.0.1', port: await freePort() });
}

async function allKeys(client: Client): Promise<string[]> {
  const keys: string[] = [];
  for await (const batch of client.scanIterator({ MATCH: '*', COUNT: 100 })) keys.push(...batch);
  return keys.sort();
}

describeRedis('RedisReplayStore', () => {
  let server: RedisServer;
  let a: Client;
  let b: Client;
  let admin: Client;

  beforeAll(async () => {
    server = await startRedis();
    [a, b, admin] = await Promise.all([connectRedis(server.address), connectRedis(server.address), connectRedis(server.address)]);
  });

  afterAll(async () => {
    for (const client of [a, b, admin]) if (client?.isOpen) client.destroy();
    await server?.stop();
  });

  beforeEach(async () => {
    await admin.flushAll();
  });

  describe('check and record', () => {
    it('reports a new key as new once, then as seen', async () => {
      const store = new RedisReplayStore({ client: a });
      expect(await store.checkAndRecord('sig:n1', T + 60, T)).toBe(true);
      expect(await store.checkAndRecord('sig:n1', T + 60, T)).toBe(false);
      expect(await store.checkAndRecord('sig:n1', T + 600, T + 30)).toBe(false);
      expect(await store.checkAndRecord('sig:n2', T + 60, T)).toBe(true);
    });

    it('holds a key for expiresAt - now as the caller counts it, whatever Redis\'s own clock says', async () => {
      const store = new RedisReplayStore({ client: a });
      // T is months away from the server's wall clock; the hold must still be 60 s.
      expect(await store.checkAndRecord('sig:n1', T + 60, T)).toBe(true);
      const [key] = await allKeys(admin);
      const ttl = await admin.pTTL(key!);
      expect(ttl).toBeGreaterThan(59_000);
      expect(ttl).toBeLessThanOrEqual(60_000);
      // A fractional window is rounded up to the next millisecond, never down (1,000.4 ms: 1,001 ms;
      // a window long enough that a loaded machine still sees the key before it runs out).
      expect(await store.checkAndRecord('sig:n2', T + 1.0004, T)).toBe(true);
      const n2 = (await allKeys(admin)).find((k) => k !== key);
      expect(await admin.pTTL(n2!)).toBeGreaterThan(900);
      expect(await admin.pTTL(n2!)).toBeLessThanOrEqual(1001);
      expect(await store.checkAndRecord('sig:n2', T + 1.0004, T)).toBe(false);
      // Never down to zero: Redis refuses PX 0, which would make the store fail.
      expect(await store.checkAndRecord('sig:n3', T + 0.0001, T)).toBe(true);
    });

    it('accepts a key whose window has ended without writing anything', async () => {
      const store = new RedisReplayStore({ client: a });
      expect(await store.checkAndRecord('sig:old', T, T)).toBe(true);
      expect(await store.checkAndRecord('sig:old', T - 5, T)).toBe(true);
      expect(await admin.dbSize()).toBe(0);
    });

    it('forgets a key once its hold has run out (real expiry, Redis owns this clock)', async () => {
      const store = new RedisReplayStore({ client: a });
      const now = Math.floor(Date.now() / 1000);
      expect(await store.checkAndRecord('sig:short', now + 1, now)).toBe(true);
      expect(await store.checkAndRecord('sig:short', now + 1, now)).toBe(false);
      await new Promise((resolve) => setTimeout(resolve, 1100));
      expect(await admin.dbSize()).toBe(0);
      expect(await store.checkAndRecord('sig:short', now + 1, now)).toBe(true);
    });

    it('shares one window between instances with their own clients', async () => {
      const first = new RedisReplayStore({ client: a });
      const second = new RedisReplayStore({ client: b });
      expect(await first.checkAndRecord('dpop:thumb:jti1', T + 60, T)).toBe(true);
      expect(await second.checkAndRecord('dpop:thumb:jti1', T + 60, T)).toBe(false);
      expect(await second.checkAndRecord('dpop:thumb:jti2', T + 60, T)).toBe(true);
      expect(await first.checkAndRecord('dpop:thumb:jti2', T + 60, T)).toBe(false);
    });

    it('keeps windows with different prefixes apart', async () => {
      const one = new RedisReplayStore({ client: a, prefix: 'svc-a:' });
      const two = new RedisReplayStore({ client: a, prefix: 'svc-b:' });
      expect(await one.checkAndRecord('sig:n', T + 60, T)).toBe(true);
      expect(await two.checkAndRecord('sig:n', T + 60, T)).toBe(true);
      expect(await one.checkAndRecord('sig:n', T + 60, T)).toBe(false);
    });

    it('lets exactly one of 200 concurrent checks of one key through, across two instances', async () => {
      const stores = [new RedisReplayStore({ client: a }), new RedisReplayStore({ client: b })];
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) => stores[i % 2]!.checkAndRecord('sig:race', T + 60, T)));
      expect(results.filter(Boolean)).toHaveLength(1);
    });
  });

  describe('key format', () => {
    it('stores only prefixed fixed-size fingerprints, never the value', async () => {
      const store = new RedisReplayStore({ client: a });
      const nonces = ['sig:plain-nonce', 'sig:' + 'x'.repeat(10_000), 'sig:*?[]\r\n {}', 'dpop:thumb:jti'];
      for (const nonce of nonces) expect(await store.checkAndRecord(nonce, T + 60, T)).toBe(true);
      const keys = await allKeys(admin);
      expect(keys).toHaveLength(nonces.length);
      for (const key of keys) {
        expect(key).toMatch(/^oidc2:replay:[A-Za-z0-9_-]{43}$/);
        expect(await admin.get(key)).toBe('1');
      }
      expect(keys.join(' ')).not.toContain('nonce');
      expect(keys.join(' ')).not.toContain('jti');
      expect(DEFAULT_REPLAY_KEY_PREFIX).toBe('oidc2:replay:');
    });

    it('derives the same key in every instance, under the configured prefix', async () => {
      await new RedisReplayStore({ client: a, prefix: 'bank:api:' }).checkAndRecord('sig:n', T + 60, T);
      await new RedisReplayStore({ client: b, prefix: 'bank:api:' }).checkAndRecord('sig:n', T + 60, T);
      // SHA-256('sig:n'), base64url
      expect(await allKeys(admin)).toEqual(['bank:api:' + require('node:crypto').createHash('sha256').update('sig:n').digest('base64url')]);
    });
  });

  describe('fails closed', () => {
    it('rejects with replay_store_unavailable (503) when Redis does not answer in time', async () => {
      const store = new RedisReplayStore({ client: a, timeoutMs: 100 });
      await admin.sendCommand(['CLIENT', 'PAUSE', '1000', 'WRITE']);
      try {
        const started = Date.now();
        const error = await rejection(store.checkAndRecord('sig:paused', T + 60, T));
        expect(error.code).toBe('replay_store_unavailable');
        expect(error.status).toBe(503);
        expect(Date.now() - started).toBeLessThan(800);
      } finally {
        await admin.sendCommand(['CLIENT', 'UNPAUSE']);
      }
    });

    it('rejects with replay_store_unavailable when Redis answers with an error', async () => {
      const store = new RedisReplayStore({ client: a });
      await admin.configSet({ maxmemory: '1', 'maxmemory-policy': 'noeviction' });
      try {
        const error = await rejection(store.checkAndRecord('sig:oom', T + 60, T));
        expect(error.code).toBe('replay_store_unavailable');
        expect(error.status).toBe(503);
        expect(error.cause).toBeDefined();
      } finally {
        await admin.configSet({ maxmemory: '0' });
      }
      expect(await store.checkAndRecord('sig:oom', T + 60, T)).toBe(true);
    });

    it('rejects when the server is gone, whether the client gives up or keeps reconnecting', async () => {
      const doomed = await startRedis();
      const closing = await connectRedis(doomed.address);
      const reconnecting = await connectRedis(doomed.address, { reconnect: true });
      try {
        const stores = [new RedisReplayStore({ client: closing, timeoutMs: 100 }), new RedisReplayStore({ client: reconnecting, timeoutMs: 100 })];
        expect(await stores[0]!.checkAndRecord('sig:before', T + 60, T)).toBe(true);
        await doomed.stop();
        for (const store of stores) {
          const error = await rejection(store.checkAndRecord('sig:after', T + 60, T));
          expect(error.code).toBe('replay_store_unavailable');
          expect(error.status).toBe(503);
        }
      } finally {
        for (const client of [closing, reconnecting]) if (client.isOpen) client.destroy();
        await doomed.stop();
      }
    });

    it('rejects a client that is closed, throws, or answers something unexpected', async () => {
      const closed = await connectRedis(server.address);
      closed.destroy();
      const clients: RedisSetClient[] = [
        closed,
        { set: () => { throw new Error('boom'); } },
        { set: async () => 'QUEUED' },
        { set: async () => undefined },
      ];
      for (const client of clients) {
        const error = await rejection(new RedisReplayStore({ client }).checkAndRecord('sig:x', T + 60, T));
        expect(error.code).toBe('replay_store_unavailable');
      }
    });

    it('never puts the value into the error', async () => {
      const secret = 'sig:do-not-leak-this-nonce';
      const error = await rejection(new RedisReplayStore({ client: { set: async () => { throw new Error('down'); } } }).checkAndRecord(secret, T + 60, T));
      expect(error.message).not.toContain('do-not-leak');
      expect(JSON.stringify(error.toProblem())).not.toContain('do-not-leak');
      expect(String(error.cause)).not.toContain('do-not-leak');
    });

    it('sends the fingerprint and the relative hold, and nothing when the window has ended', async () => {
      const calls: unknown[][] = [];
      const store = new RedisReplayStore({ client: { set: async (...args: unknown[]) => (calls.push(args), 'OK') }, prefix: 'p:' });
      await store.checkAndRecord('sig:n', T + 90, T);
      await store.checkAndRecord('sig:n', T, T);
      expect(calls).toEqual([[expect.stringMatching(/^p:[A-Za-z0-9_-]{43}$/), '1', { PX: 90_000, NX: true }]]);
    });
  });

  describe('arguments', () => {
    it('validates options at construction, naming the option', () => {
      const client = { set: async () => 'OK' };
      const bad: [unknown, RegExp][] = [
        [undefined, /options/],
        [null, /options/],
        [{}, /options\.client/],
        [{ client: {} }, /options\.client/],
        [{ client: { set: 'SET' } }, /options\.client/],
        [{ client, prefix: 7 }, /options\.prefix/],
        [{ client, prefix: 'p'.repeat(257) }, /options\.prefix/],
        [{ client, timeoutMs: 0 }, /options\.timeoutMs/],
        [{ client, timeoutMs: 1.5 }, /options\.timeoutMs/],
        [{ client, timeoutMs: 60_001 }, /options\.timeoutMs/],
        [{ client, timeoutMs: '200' }, /options\.timeoutMs/],
      ];
      for (const [options, name] of bad) {
        expect(() => new RedisReplayStore(options as never)).toThrow(TypeError);
        expect(() => new RedisReplayStore(options as never)).toThrow(name);
      }
      const store = new RedisReplayStore({ client, prefix: '', timeoutMs: 60_000 });
      expect(store.prefix).toBe('');
      expect(store.timeoutMs).toBe(60_000);
      expect(new RedisReplayStore({ client }).timeoutMs).toBe(200);
    });

    it('rejects arguments of the wrong type with a TypeError, as a rejected promise', async () => {
      const store = new RedisReplayStore({ client: { set: async () => 'OK' } });
      await expect(store.checkAndRecord(7 as never, T + 60, T)).rejects.toThrow(TypeError);
      await expect(store.checkAndRecord('k', Number.NaN, T)).rejects.toThrow(TypeError);
      await expect(store.checkAndRecord('k', T + 60, Number.POSITIVE_INFINITY)).rejects.toThrow(TypeError);
    });
  });

  describe('with the authenticator', () => {
    it('rejects at instance B a signed request that instance A accepted', async () => {
      const BASE = 'https://api.example.com';
      const op = await newIssuer('https://op.example.com');
      const alice = await newKey('ES256');
      const ict = await op.mint(alice, { now: T - 10, subject: 'alice' });
      const options = { issuers: [{ issuer: op.issuer, jwks: op.jwks }], audiences: [BASE], now: () => T };
      const instanceA = createAuthenticator({ ...options, replayStore: new RedisReplayStore({ client: a }) });
      const instanceB = createAuthenticator({ ...options, replayStore: new RedisReplayStore({ client: b }) });

      const signed = await signRequest({ method: 'GET', url: BASE + '/orders?id=7' }, { ict, key: alice.signer, now: () => T });
      const request: HttpRequest = { method: signed.method, url: '/orders?id=7', headers: signed.headers, body: signed.body };

      expect((await instanceA.authenticate(request)).subject).toBe('alice');
      const error = await rejection(instanceB.authenticate(request));
      expect(error.code).toBe('replay_detected');
      expect(error.status).toBe(401);

      // A fresh signature (new nonce) is accepted by B.
      const again = await signRequest({ method: 'GET', url: BASE + '/orders?id=7' }, { ict, key: alice.signer, now: () => T });
      expect((await instanceB.authenticate({ method: 'GET', url: '/orders?id=7', headers: again.headers })).subject).toBe('alice');
    });

    it('refuses the request with 503 when Redis is unreachable', async () => {
      const op = await newIssuer('https://op.example.com');
      const alice = await newKey('ES256');
      const ict = await op.mint(alice, { now: T - 10 });
      const auth = createAuthenticator({
        issuers: [{ issuer: op.issuer, jwks: op.jwks }],
        audiences: ['https://api.example.com'],
        now: () => T,
        replayStore: new RedisReplayStore({ client: { set: () => new Promise(() => {}) }, timeoutMs: 20 }),
      });
      const signed = await signRequest({ method: 'GET', url: 'https://api.example.com/x' }, { ict, key: alice.signer, now: () => T });
      const error = await rejection(auth.authenticate({ method: 'GET', url: '/x', headers: signed.headers }));
      expect(error.code).toBe('replay_store_unavailable');
      expect(error.status).toBe(503);
    });
  });
});
