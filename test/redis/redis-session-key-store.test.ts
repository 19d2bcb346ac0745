// RedisSessionKeyStore against a real redis-server started by this file, as the replay store's test
// does (without persistence): instances agree on the STEK of a period, rotation, deletion by TTL after the
// retention, and failing closed (503) while Redis is gone, recovering when it is back. The clock is
// injected everywhere except where Redis's own expiry is under test.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, createCluster } from 'redis';
import { createSessionTokens } from '@oidc2/core/adapter';
import { RedisSessionKeyStore, DEFAULT_STEK_KEY_PREFIX, type RedisStekClient } from '@oidc2/redis';
import { codeOf, rejection } from '../support/error-code';
import { connectRedis, describeWithRedis, startRedisServer, type RedisServer } from '../support/redis-server';

type Client = ReturnType<typeof createClient>;

export type FitsClient = ReturnType<typeof createClient> extends RedisStekClient ? true : never;
export type FitsCluster = ReturnType<typeof createCluster> extends RedisStekClient ? true : never;
const fits: [FitsClient, FitsCluster] = [true, true];
void fits;

const describeRedis = describeWithRedis('Redis session key store');

const T = 1_790_000_400; // a period start for 600-second periods
const PERIOD = T / 600;

// Servers listen on a Unix socket in a fresh temporary directory rather than on a TCP port: the
// restart test brings a server back at the same address, and a TCP port freed for that moment could
// be taken by a server of another test file running in parallel.
const socketDir = mkdtempSync(join(tmpdir(), 'oidc2-stek-'));
let sockets = 0;

// A new socket path, or the given one (to bring a stopped server back at the same address).
async function startRedis(at?: string): Promise<RedisServer> {
  return startRedisServer({ path: at ?? join(socketDir, `redis-${++sockets}.sock`) });
}

describeRedis('RedisSessionKeyStore', () => {
  let server: RedisServer;
  let a: Client;
  let b: Client;
  let admin: Client;
  let now = T;
  const clock = () => now;

  beforeAll(async () => {
    server = await startRedis();
    [a, b, admin] = await Promise.all([connectRedis(server.address), connectRedis(server.address), connectRedis(server.address)]);
  });

  afterAll(async () => {
    for (const client of [a, b, admin]) if (client?.isOpen) client.destroy();
    await server?.stop();
    rmSync(socketDir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    now = T;
    await admin.flushAll();
  });

  it('gives every instance the same STEK in a period, made once with SET NX EX', async () => {
    const first = new RedisSessionKeyStore({ client: a, now: clock });
    const second = new RedisSessionKeyStore({ client: b, now: clock });
    const [x, y] = await Promise.all([first.current(), second.current()]);
    expect(x.kid).toBe(y.kid);
    expect(Buffer.from(x.key).equals(Buffer.from(y.key))).toBe(true);
    expect(x.kid).toMatch(new RegExp(`^p${PERIOD}\\.[A-Za-z0-9_-]{16}$`));
    expect(await admin.keys('*')).toEqual([`${DEFAULT_STEK_KEY_PREFIX}${PERIOD}`]);
    const ttl = await admin.ttl(`${DEFAULT_STEK_KEY_PREFIX}${PERIOD}`);
    expect(ttl).toBeGreaterThan(1250);
    expect(ttl).toBeLessThanOrEqual(1260);
    expect((await second.get(x.kid))?.key).toEqual(x.key);
  });

  it('lets exactly one of many concurrent creators win, and every loser uses the winner', async () => {
    const stores = Array.from({ length: 20 }, (_, i) => new RedisSessionKeyStore({ client: i % 2 ? a : b, now: clock, timeoutMs: 10_000 }));
    const keys = await Promise.all(stores.map((store) => store.current()));
    expect(new Set(keys.map((k) => k.kid)).size).toBe(1);
    expect(new Set(keys.map((k) => Buffer.from(k.key).toString('hex'))).size).toBe(1);
  });

  it('rotates each period, keeps the old STEK for decryption, and sets TTL to the retention left', async () => {
    const store = new RedisSessionKeyStore({ client: a, now: clock });
    const old = await store.current();
    now = T + 600 + 300; // half-way through the next period
    const next = await store.current();
    expect(next.kid).not.toBe(old.kid);
    expect(next.kid.startsWith(`p${PERIOD + 1}.`)).toBe(true);
    expect((await store.get(old.kid))?.kid).toBe(old.kid);
    const ttl = await admin.ttl(`${DEFAULT_STEK_KEY_PREFIX}${PERIOD + 1}`);
    expect(ttl).toBeGreaterThan(940); // 600 + 1260 - 900 = 960 left, not 1260
    expect(ttl).toBeLessThanOrEqual(960);
  });

  it('refuses kids past their retention, from the future, or of another shape without asking Redis', async () => {
    const calls: string[] = [];
    const spy: RedisStekClient = { set: async () => (calls.push('set'), 'OK'), get: async () => (calls.push('get'), null) };
    const store = new RedisSessionKeyStore({ client: spy, now: clock });
    expect(await store.get(`p${PERIOD - 3}.AAAAAAAAAAAAAAAA`)).toBeUndefined(); // T - 1800 + 1260 <= T
    expect(await store.get(`p${PERIOD + 1}.AAAAAAAAAAAAAAAA`)).toBeUndefined();
    expect(await store.get('k1')).toBeUndefined();
    expect(calls).toEqual([]);
    expect(await store.get(`p${PERIOD - 1}.AAAAAAAAAAAAAAAA`)).toBeUndefined();
    expect(calls).toEqual(['get']);
  });

  it('refuses a kid of the right period that Redis does not hold (another random part)', async () => {
    const store = new RedisSessionKeyStore({ client: a, now: clock });
    const stek = await store.current();
    expect(await store.get(stek.kid.slice(0, -1) + (stek.kid.endsWith('A') ? 'B' : 'A'))).toBeUndefined();
  });

  it('is deleted by Redis once its retention is over, and dropped by the store at the same time', async () => {
    // The real clock, which Redis's expiry and the store's deletion time both follow.
    const store = new RedisSessionKeyStore({ client: a, stekRotationSeconds: 1, stekRetentionSeconds: 2 });
    const stek = await store.current();
    const name = `${DEFAULT_STEK_KEY_PREFIX}${stek.kid.slice(1, stek.kid.indexOf('.'))}`;
    expect(await admin.exists(name)).toBe(1);
    expect((await store.get(stek.kid))?.kid).toBe(stek.kid);
    await new Promise((resolve) => setTimeout(resolve, 2100));
    expect(await admin.exists(name)).toBe(0);
    expect(await store.get(stek.kid)).toBeUndefined();
  });

  it('keeps stores with different prefixes apart', async () => {
    const one = await new RedisSessionKeyStore({ client: a, prefix: 'svc-a:', now: clock }).current();
    const two = await new RedisSessionKeyStore({ client: a, prefix: 'svc-b:', now: clock }).current();
    expect(one.kid).not.toBe(two.kid);
  });

  it('opens on instance B a session token made on instance A', async () => {
    const tokensA = createSessionTokens({ keys: new RedisSessionKeyStore({ client: a, now: clock }), now: clock });
    const tokensB = createSessionTokens({ keys: new RedisSessionKeyStore({ client: b, now: clock }), now: clock });
    const caller = { iss: 'https://op.example', sub: 'alice', jkt: new Uint8Array(32).fill(1) };
    const { token } = await tokensA.issue({ sid: new Uint8Array(16), rk: new Uint8Array(32).fill(2), suite: 'x25519', epoch: 0, audience: 'https://api.example', caller });
    now = T + 650;
    expect((await tokensB.verify(token, 'https://api.example')).caller.sub).toBe('alice');
    await admin.flushAll(); // as after a Redis restart without its data
    // B holds the STEK it read until its deletion time; an instance that never read it cannot open the token.
    expect((await tokensB.verify(token, 'https://api.example')).caller.sub).toBe('alice');
    const tokensC = createSessionTokens({ keys: new RedisSessionKeyStore({ client: b, now: clock }), now: clock });
    expect(await codeOf(() => tokensC.verify(token, 'https://api.example'))).toBe('session_invalid');
  });

  describe('fails closed', () => {
    it('with session_keys_unavailable (503) while Redis is stopped for what it does not hold, and recovers once it is back', async () => {
      const doomed = await startRedis();
      const client = await connectRedis(doomed.address, { reconnect: true });
      try {
        const store = new RedisSessionKeyStore({ client, timeoutMs: 500, now: clock });
        const before = await store.current();
        await doomed.stop();
        // The held STEK still serves its period; the next period's, and a kid of a period it never
        // read, need Redis.
        expect((await store.current()).kid).toBe(before.kid);
        expect((await store.get(before.kid))?.kid).toBe(before.kid);
        now = T + 600;
        for (const call of [() => store.current(), () => store.get(`p${PERIOD - 1}.AAAAAAAAAAAAAAAA`)]) {
          const error = await rejection(call());
          expect(error.code).toBe('session_keys_unavailable');
          expect(error.status).toBe(503);
        }
        const restarted = await startRedis((doomed.address as { path: string }).path);
        try {
          // The client reconnects by itself; the store answers again as soon as it has.
          const deadline = Date.now() + 5000;
          let after: Awaited<ReturnType<typeof store.current>> | undefined;
          while (after === undefined) {
            try {
              after = await store.current();
            } catch (error) {
              expect((error as { code?: unknown }).code).toBe('session_keys_unavailable');
              if (Date.now() > deadline) throw error;
              await new Promise((resolve) => setTimeout(resolve, 50));
            }
          }
          expect(after.kid.startsWith(`p${PERIOD + 1}.`)).toBe(true);
          expect((await store.get(before.kid))?.kid).toBe(before.kid); // held until its deletion time
        } finally {
          if (client.isOpen) client.destroy();
          await restarted.stop();
        }
      } finally {
        if (client.isOpen) client.destroy();
        await doomed.stop();
      }
    });

    it('when Redis does not answer in time', async () => {
      const store = new RedisSessionKeyStore({ client: a, timeoutMs: 100, now: clock });
      await admin.sendCommand(['CLIENT', 'PAUSE', '1000', 'ALL']);
      try {
        const started = Date.now();
        expect((await rejection(store.current())).code).toBe('session_keys_unavailable');
        expect(Date.now() - started).toBeLessThan(800);
      } finally {
        await admin.sendCommand(['CLIENT', 'UNPAUSE']);
      }
    });

    it('when the client throws, answers something unexpected, or Redis holds a malformed key', async () => {
      const clients: RedisStekClient[] = [
        { set: async () => 'OK', get: () => { throw new Error('boom'); } },
        { set: async () => 'QUEUED', get: async () => null },
        { set: async () => 'OK', get: async () => null }, // lost the key it just wrote
        { set: async () => 'OK', get: async () => 'not json' },
        { set: async () => 'OK', get: async () => JSON.stringify({ kid: `p${PERIOD}.AAAAAAAAAAAAAAAA`, k: 'short' }) },
        { set: async () => 'OK', get: async () => JSON.stringify({ kid: `p${PERIOD - 1}.AAAAAAAAAAAAAAAA`, k: Buffer.alloc(32).toString('base64url') }) },
      ];
      for (const client of clients) {
        expect(await codeOf(() => new RedisSessionKeyStore({ client, now: clock }).current())).toBe('session_keys_unavailable');
      }
    });

    it('never puts a key into an error', async () => {
      const k = Buffer.alloc(32, 0x42).toString('base64url');
      const value = JSON.stringify({ kid: `p${PERIOD}.AAAAAAAAAAAAAAAA`, k: k + 'x' });
      const error = await rejection(new RedisSessionKeyStore({ client: { set: async () => 'OK', get: async () => value }, now: clock }).current());
      expect(`${error.message} ${String(error.cause)} ${JSON.stringify(error.toProblem())}`).not.toContain(k);
    });
  });

  describe('arguments', () => {
    it('validates options at construction, naming the option, and rejects unknown keys', () => {
      const client: RedisStekClient = { set: async () => 'OK', get: async () => null };
      const bad: [unknown, RegExp][] = [
        [undefined, /options/],
        [{}, /options\.client/],
        [{ client: { set: async () => 'OK' } }, /options\.client/],
        [{ client, prefix: 7 }, /options\.prefix/],
        [{ client, timeoutMs: 0 }, /options\.timeoutMs/],
        [{ client, stekRotationSeconds: 0 }, /options\.stekRotationSeconds/],
        [{ client, stekRetentionSeconds: 10 }, /options\.stekRetentionSeconds/],
        [{ client, now: 'now' }, /options\.now/],
      ];
      for (const [options, name] of bad) {
        expect(() => new RedisSessionKeyStore(options as never)).toThrow(TypeError);
        expect(() => new RedisSessionKeyStore(options as never)).toThrow(name);
      }
      let code: unknown;
      try {
        new RedisSessionKeyStore({ client, ttl: 5 } as never);
      } catch (error) {
        code = (error as { code?: unknown }).code;
      }
      expect(code).toBe('ERR_UNKNOWN_OPTION');
      const store = new RedisSessionKeyStore({ client });
      expect([store.prefix, store.timeoutMs, store.stekRotationSeconds, store.stekRetentionSeconds]).toEqual(['oidc2:stek:', 200, 600, 1260]);
    });
  });
});
