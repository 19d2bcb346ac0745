// Mounting the issuer in Express, Fastify and Koa, and standalone, over real sockets.
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import Fastify from 'fastify';
import Koa from 'koa';
import { bodyParser } from '@koa/bodyparser';
import { apiKeys, createIssuer, hashApiKey, type Issuer } from '@oidc2/issuer';
import { keyPair, popToken, T0 } from './helpers';

const now = () => T0;
const authenticators = [apiKeys({ keys: [{ hash: hashApiKey('key'), subject: 'w', contexts: ['c'] }] })];

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** Discovery, an ICT issuance and a route the issuer leaves to the framework. */
async function exercise(base: string, issuer: Issuer): Promise<void> {
  const discovery = await fetch(`${base}/op/.well-known/openid-configuration`);
  expect(discovery.status).toBe(200);
  expect(((await discovery.json()) as { ict_endpoint: string }).ict_endpoint).toBe(issuer.endpoints.ict);
  const pop = await popToken(await keyPair(), { iss: 'w', sub: 'w', aud: issuer.issuer }, { now: T0 });
  const ict = await fetch(`${base}/op/ict`, { method: 'POST', body: pop, headers: { authorization: 'ApiKey key', 'content-type': 'application/jwt+pop' } });
  expect(ict.status).toBe(201);
  expect(((await ict.json()) as { e2e_auth_contexts: string[] }).e2e_auth_contexts).toEqual(['c']);
  const json = await fetch(`${base}/op/ict`, { method: 'POST', body: JSON.stringify({ pop_token: await popToken(await keyPair(), { iss: 'w', sub: 'w', aud: issuer.issuer }, { now: T0 }) }), headers: { authorization: 'ApiKey key', 'content-type': 'application/json' } });
  expect(json.status).toBe(201);
  const big = await fetch(`${base}/op/ict`, { method: 'POST', body: 'x'.repeat(20000), headers: { 'content-type': 'application/jwt+pop' } });
  expect(big.status).toBe(413);
  const other = await fetch(`${base}/op/other`);
  expect(await other.text()).toBe('framework');
}

test('Express: app.use(path, issuer.nodeHandler)', async () => {
  const app = express();
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const issuer = await createIssuer({ issuer: `${base}/op`, now, authenticators });
  app.use('/op', issuer.nodeHandler);
  app.get('/op/other', (_req, res) => {
    res.send('framework');
  });
  try {
    await exercise(base, issuer);
  } finally {
    await close(server);
  }
});

test('Express: mounted after express.json(), the parsed body is re-encoded', async () => {
  const app = express();
  app.use(express.json());
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const issuer = await createIssuer({ issuer: `${base}/op`, now, authenticators });
  app.use('/op', issuer.nodeHandler);
  try {
    const pop = await popToken(await keyPair(), { iss: 'w', sub: 'w', aud: issuer.issuer }, { now: T0 });
    const res = await fetch(`${base}/op/ict`, { method: 'POST', body: JSON.stringify({ pop_token: pop }), headers: { authorization: 'ApiKey key', 'content-type': 'application/json' } });
    expect(res.status).toBe(201);
  } finally {
    await close(server);
  }
});

test('Fastify: app.register(issuer.fastifyPlugin, { prefix })', async () => {
  // Fastify takes no routes after listen, so the issuer URL here carries no port: nothing in the
  // ICT form compares it with the socket.
  const issuer = await createIssuer({ issuer: 'http://127.0.0.1/op', now, authenticators });
  const app = Fastify();
  app.get('/op/other', async () => 'framework');
  await app.register(issuer.fastifyPlugin, { prefix: '/op' });
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  try {
    await exercise(base, issuer);
  } finally {
    await app.close();
  }
});

test('Koa: app.use(issuer.koaMiddleware), also behind @koa/bodyparser', async () => {
  // Koa composes its middleware when it starts listening: build the issuer first.
  const issuer = await createIssuer({ issuer: 'http://127.0.0.1/op', now, authenticators });
  const app = new Koa();
  app.use(bodyParser());
  app.use(issuer.koaMiddleware);
  app.use((ctx) => {
    ctx.body = 'framework';
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  try {
    await exercise(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, issuer);
  } finally {
    await close(server);
  }
});

test('standalone: issuer.listen() on 127.0.0.1', async () => {
  const issuer = await createIssuer({ issuer: 'http://127.0.0.1/op', now, authenticators });
  const { url, close: stop, server } = await issuer.listen();
  try {
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${url}/op/jwks`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { keys: unknown[] }).keys).toHaveLength(1);
    expect((await fetch(`${url}/elsewhere`)).status).toBe(404);
  } finally {
    server.closeAllConnections();
    await stop();
  }
});
