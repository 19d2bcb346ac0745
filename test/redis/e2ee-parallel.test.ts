// One e2ee session hammered in parallel over loopback: 1,000 requests, 50 at a time, spread over a
// Fastify and a Koa instance of one service that share a RedisSessionKeyStore on a real
// redis-server. Every tenth request is a rekey, so the chain forks a hundred times with requests on
// the parent token still in flight (docs/protocol.md section 7.6): all succeed, and every successor token works
// afterwards on either instance. The only state the instances share is the one STEK in Redis.
import { createIctVerifier, type IctVerifier, type SuiteName } from '@oidc2/core';
import { RedisSessionKeyStore } from '@oidc2/redis';
import { newIssuer, newKey } from '../support/credentials';
import { startFramework, type FrameworkService } from '../support/frameworks';
import { openE2ee, openSession, prepareE2ee, sendE2ee, type E2eeCaller, type E2eeSession } from '../support/e2ee-caller';
import { connectRedis, describeWithRedis, freePort, startRedisServer, type RedisClient, type RedisServer } from '../support/redis-server';

const PUBLIC = 'https://api.example.test';
const REQUESTS = 1000;
const CONCURRENCY = 50;
const REKEY_EVERY = 10;
const PREFIX = 'oidc2:stek:parallel:';

/** Runs `task(0..count-1)` with at most `limit` in flight; resolves to the results in order. */
async function bounded<T>(count: number, limit: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      results[i] = await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker));
  return results;
}

describeWithRedis('e2ee parallel sessions')('one session, 1,000 parallel requests and 100 forks over two instances sharing Redis STEKs', () => {
  let server: RedisServer;
  let clients: RedisClient[] = [];
  let instances: FrameworkService[] = [];
  let verifier: IctVerifier;
  let alice: E2eeCaller;

  beforeAll(async () => {
    server = await startRedisServer({ host: '127.0.0.1', port: await freePort() });
    clients = await Promise.all([connectRedis(server.address), connectRedis(server.address), connectRedis(server.address)]);
    const callers = await newIssuer('https://op.example.test', 'Ed25519');
    const services = await newIssuer('https://attest.example.test', 'Ed25519');
    const serviceKey = await newKey('Ed25519');
    const serviceIct = await services.mint(serviceKey, { subject: 'svc', lifetime: 3600 });
    verifier = createIctVerifier({ issuers: [{ issuer: services.issuer, jwks: services.jwks }] });
    const key = await newKey('Ed25519');
    alice = { key, ict: await callers.mint(key, { lifetime: 3600 }) };
    const options = (client: RedisClient) => () => ({
      issuers: [{ issuer: callers.issuer, jwks: callers.jwks }],
      audiences: [PUBLIC],
      credential: { ict: serviceIct, privateKey: serviceKey.privateJwk },
      // A generous deadline: with 50 requests in flight on a small machine the event loop, not
      // Redis, decides when a reply is read, and this test is about forks, not about timeouts.
      e2ee: { sessionKeys: new RedisSessionKeyStore({ client, prefix: PREFIX, timeoutMs: 10_000 }) },
    });
    instances = [await startFramework('fastify', options(clients[0]!)), await startFramework('koa', options(clients[1]!))];
  });

  afterAll(async () => {
    await Promise.all(instances.map((i) => i.close()));
    for (const c of clients) if (c.isOpen) c.destroy();
    await server?.stop();
  });

  async function call(at: FrameworkService, session: E2eeSession, i: number, rekey: boolean): Promise<E2eeSession> {
    const offer: SuiteName[] = rekey ? [i % 20 === 0 ? 'p256' : 'x25519'] : [];
    const p = await prepareE2ee(alice, { method: 'POST', url: `${PUBLIC}/echo`, session, offer, body: JSON.stringify({ i }), headers: { 'content-type': 'application/json' } });
    const res = await sendE2ee(at.url, p.request);
    if (res.status !== 200) throw new Error(`request ${i} on ${at.framework}: ${res.status} ${new TextDecoder().decode(res.body)}`);
    const opened = await openE2ee(p, res, verifier, alice);
    const answer = JSON.parse(new TextDecoder().decode(opened.plaintext)) as { framework: string; echo: { i: number } };
    if (answer.echo.i !== i || answer.framework !== at.framework) throw new Error(`request ${i}: a mismatched answer`);
    if (opened.mode !== (rekey ? 'rekey' : 'session')) throw new Error(`request ${i}: mode ${opened.mode}`);
    return opened.session!;
  }

  it('all succeed, and every successor token works afterwards on both instances', async () => {
    const root = await openSession(alice, PUBLIC, verifier, { origin: instances[0]!.url });
    const outcomes = await bounded(REQUESTS, CONCURRENCY, (i) => call(instances[i % 2]!, root, i, i % REKEY_EVERY === 0));
    const successors = outcomes.filter((_, i) => i % REKEY_EVERY === 0);
    expect(successors).toHaveLength(REQUESTS / REKEY_EVERY);
    // A hundred distinct branches, each one epoch on from the root, with its own root key.
    expect(new Set(successors.map((s) => s.token)).size).toBe(successors.length);
    expect(new Set(successors.map((s) => Buffer.from(s.rk).toString('hex'))).size).toBe(successors.length);
    expect(successors.every((s) => Buffer.from(s.sid).equals(Buffer.from(root.sid)))).toBe(true);
    expect(new Set(successors.map((s) => s.suite))).toEqual(new Set(['x25519', 'p256']));

    // Every successor, on the instance that did not make it and on the one that did.
    await bounded(successors.length * 2, CONCURRENCY, (j) => call(instances[j % 2]!, successors[j >> 1]!, REQUESTS + j, false));
    // The parent token stays valid too (no server state marks it used).
    await call(instances[1]!, root, 2 * REQUESTS, false);
    // The one thing the instances share: the period's STEK.
    expect(await clients[2]!.keys(`${PREFIX}*`)).toHaveLength(1);
  }, 60_000);
});
