// What RedisSessionKeyStore and RedisReplayStore ask of a real redis-server under load: a STEK is
// read once and held until its deletion time, instances converge after Redis lost its data, and a
// reply that Redis sent in time is taken even when this process's event loop was busy past the
// deadline (it used to be refused with a 503), while a Redis that does not answer still fails closed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'redis';
import { RedisReplayStore, RedisSessionKeyStore, type RedisStekClient } from '@oidc2/redis';
import { rejection } from '../support/error-code';
import { connectRedis, describeWithRedis, startRedisServer, type RedisServer } from '../support/redis-server';

type Client = ReturnType<typeof createClient>;
const describeRedis = describeWithRedis('Redis STEK cache and round-trip deadline');

const T = 1_790_000_400; // a period start for 600-second periods
const PERIOD = T / 600;
const socketDir = mkdtempSync(join(tmpdir(), 'oidc2-stek-cache-'));
afterAll(() => rmSync(socketDir, { recursive: true, force: true }));

/** The real client, counting the commands the store sends. */
function counting(client: Client): RedisStekClient & { commands: string[] } {
  const commands: string[] = [];
  return {
    commands,
    set: (key, value, options) => (commands.push('SET'), client.set(key, value, options)),
    get: (key) => (commands.push('GET'), client.get(key)),
  };
}

/** Blocks the event loop for `ms`, as a burst of CPU-bound requests does. */
function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // spin
  }
}

describeRedis('RedisSessionKeyStore holds STEKs', () => {
  let server: RedisServer;
  let a: Client;
  let admin: Client;
  let now = T;
  const clock = () => now;

  beforeAll(async () => {
    server = await startRedisServer({ path: join(socketDir, 'redis.sock') });
    [a, admin] = await Promise.all([connectRedis(server.address), connectRedis(server.address)]);
  });
  afterAll(async () => {
    for (const client of [a, admin]) if (client?.isOpen) client.destroy();
    await server?.stop();
  });
  beforeEach(async () => {
    now = T;
    await admin.flushAll();
  });

  it('reads a period once: later current() and get(kid) calls send nothing to Redis', async () => {
    const client = counting(a);
    const store = new RedisSessionKeyStore({ client, now: clock });
    const [stek] = await Promise.all(Array.from({ length: 50 }, () => store.current()));
    expect(client.commands).toEqual(['GET', 'SET', 'GET']);
    for (let i = 0; i < 100; i++) {
      now = T + i;
      expect((await store.current()).kid).toBe(stek!.kid);
      expect((await store.get(stek!.kid))?.kid).toBe(stek!.kid);
    }
    expect(client.commands).toEqual(['GET', 'SET', 'GET']);
    // Another instance reads it once too.
    const other = counting(a);
    const second = new RedisSessionKeyStore({ client: other, now: clock });
    for (let i = 0; i < 20; i++) expect((await second.get(stek!.kid))?.key).toEqual(stek!.key);
    expect(other.commands).toEqual(['GET']);
  });

  it('drops a STEK at its deletion time, as Redis does, without asking Redis', async () => {
    const client = counting(a);
    const store = new RedisSessionKeyStore({ client, now: clock });
    const stek = await store.current();
    now = T + 1260 - 0.001;
    expect((await store.get(stek.kid))?.kid).toBe(stek.kid);
    const sent = client.commands.length;
    now = T + 1260;
    expect(await store.get(stek.kid)).toBeUndefined();
    expect(client.commands.length).toBe(sent);
  });

  it('converges on what Redis holds after Redis lost its data, asking at most once a second per period', async () => {
    const clientA = counting(a);
    const storeA = new RedisSessionKeyStore({ client: clientA, now: clock });
    const old = await storeA.current();
    await admin.flushAll(); // as after a Redis restart without its data
    const storeB = new RedisSessionKeyStore({ client: a, now: clock });
    const fresh = await storeB.current();
    expect(fresh.kid).not.toBe(old.kid);
    now = T + 5;
    const sent = clientA.commands.length;
    // A session made on B reaches A: A reads the period again and adopts what Redis holds.
    expect((await storeA.get(fresh.kid))?.key).toEqual(fresh.key);
    expect((await storeA.current()).kid).toBe(fresh.kid);
    expect(await storeA.get(old.kid)).toBeUndefined();
    expect(clientA.commands.length).toBe(sent + 1);
    // Made-up kids of the period cost at most one read a second.
    for (let i = 0; i < 20; i++) expect(await storeA.get(`p${PERIOD}.${String(i).padStart(16, 'A')}`)).toBeUndefined();
    expect(clientA.commands.length).toBe(sent + 1);
    now = T + 6.5;
    expect(await storeA.get(`p${PERIOD}.BBBBBBBBBBBBBBBB`)).toBeUndefined();
    expect(clientA.commands.length).toBe(sent + 2);
  });

  it('takes a reply received while the event loop was busy past the deadline', async () => {
    const store = new RedisSessionKeyStore({ client: a, timeoutMs: 50, now: clock });
    const pending = store.current();
    busy(200);
    const stek = await pending;
    expect(stek.kid.startsWith(`p${PERIOD}.`)).toBe(true);
    const reader = new RedisSessionKeyStore({ client: a, timeoutMs: 50, now: clock });
    const read = reader.get(stek.kid);
    busy(200);
    expect((await read)?.kid).toBe(stek.kid);
  });

  it('still fails closed when Redis itself does not answer within the deadline', async () => {
    const store = new RedisSessionKeyStore({ client: a, timeoutMs: 50, now: clock });
    await admin.sendCommand(['CLIENT', 'PAUSE', '600', 'ALL']);
    try {
      const started = Date.now();
      const pending = rejection(store.current());
      busy(20); // a busy loop shorter than half the deadline changes nothing
      const error = await pending;
      expect(error.code).toBe('session_keys_unavailable');
      expect(error.status).toBe(503);
      expect(Date.now() - started).toBeLessThan(500);
    } finally {
      await admin.sendCommand(['CLIENT', 'UNPAUSE']);
    }
  });
});

describeRedis('RedisReplayStore round-trip deadline', () => {
  let server: RedisServer;
  let a: Client;
  let admin: Client;

  beforeAll(async () => {
    server = await startRedisServer({ path: join(socketDir, 'redis-replay.sock') });
    [a, admin] = await Promise.all([connectRedis(server.address), connectRedis(server.address)]);
  });
  afterAll(async () => {
    for (const client of [a, admin]) if (client?.isOpen) client.destroy();
    await server?.stop();
  });

  it('takes a reply received while the event loop was busy past the deadline, and still refuses the replay', async () => {
    const store = new RedisReplayStore({ client: a, timeoutMs: 50 });
    const now = Date.now() / 1000;
    const first = store.checkAndRecord('nonce-busy', now + 60, now);
    busy(200);
    expect(await first).toBe(true);
    const again = store.checkAndRecord('nonce-busy', now + 60, now);
    busy(200);
    expect(await again).toBe(false);
  });

  it('fails closed with replay_store_unavailable when Redis does not answer within the deadline', async () => {
    const store = new RedisReplayStore({ client: a, timeoutMs: 50 });
    await admin.sendCommand(['CLIENT', 'PAUSE', '600', 'WRITE']);
    try {
      const now = Date.now() / 1000;
      const error = await rejection(store.checkAndRecord('nonce-paused', now + 60, now));
      expect(error.code).toBe('replay_store_unavailable');
      expect(error.status).toBe(503);
    } finally {
      await admin.sendCommand(['CLIENT', 'UNPAUSE']);
    }
  });
});
