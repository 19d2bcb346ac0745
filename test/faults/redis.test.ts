// Faults of the Redis replay store, against a real redis-server this file starts on a free
// loopback port: Redis slow (writes paused past the store's timeout), stopped mid-run, restarted.
// The service fails closed with 503 replay_store_unavailable, answers within the store's timeout
// rather than hanging, and recovers when Redis answers again.
import { RedisReplayStore } from '@oidc2/redis';
import { startFramework, type FrameworkService } from '../support/frameworks';
import { newIssuer, newKey, type TestIssuer, type TestKey } from '../support/credentials';
import { connectRedis, describeWithRedis, freePort, startRedisServer, type RedisClient, type RedisServer } from '../support/redis-server';
import { signedGet } from './support';

const describeRedis = describeWithRedis('Redis fault');

describeRedis('Redis replay store faults', () => {
  let op: TestIssuer;
  let alice: TestKey;
  let port: number;
  let server: RedisServer;
  let client: RedisClient;
  let service: FrameworkService;

  beforeAll(async () => {
    op = await newIssuer('https://op.example');
    alice = await newKey('ES256');
    port = await freePort();
    server = await startRedisServer({ host: '127.0.0.1', port });
    client = await connectRedis(server.address, { reconnect: true });
    const replayStore = new RedisReplayStore({ client, timeoutMs: 200 });
    service = await startFramework('fastify', (url) => ({ issuers: [{ issuer: op.issuer, jwks: op.jwks }], audiences: [url], replayStore }));
  });

  afterAll(async () => {
    await service?.close();
    if (client?.isOpen) client.destroy();
    await server?.stop();
  });

  const get = () => signedGet(`${service.url}/whoami`, op, alice);

  async function until(condition: () => boolean, ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error('condition not reached');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it('serves while Redis answers', async () => {
    expect(await get()).toMatchObject({ status: 200 });
  });

  it('slow Redis (writes paused for 1.5 s): 503 replay_store_unavailable within the 200 ms timeout, then served again', async () => {
    const admin = await connectRedis(server.address);
    try {
      await admin.sendCommand(['CLIENT', 'PAUSE', '1500', 'WRITE']);
      const paused = await get();
      expect(paused).toMatchObject({ status: 503, code: 'replay_store_unavailable' });
      expect(paused.ms).toBeLessThan(1_200);
      await new Promise((r) => setTimeout(r, 1_600));
      expect(await get()).toMatchObject({ status: 200 });
    } finally {
      admin.destroy();
    }
  });

  it('Redis stopped mid-run: 503 within the timeout for every request; restarted: served again', async () => {
    await server.stop();
    const results = await Promise.all([get(), get(), get()]);
    for (const r of results) {
      expect(r).toMatchObject({ status: 503, code: 'replay_store_unavailable' });
      expect(r.ms).toBeLessThan(1_500);
    }
    server = await startRedisServer({ host: '127.0.0.1', port });
    await until(() => client.isReady, 10_000);
    expect(await get()).toMatchObject({ status: 200 });
    expect(await get()).toMatchObject({ status: 200 });
  });
});
