import Fastify from 'fastify';
import type { Server } from 'node:http';
import { Readable } from 'node:stream';
import { oidc2 } from '@oidc2/fastify';
import { ROUTE_POLICIES, runAdapterSuite, type AppFactory } from './suite';
import { signRequest } from '@oidc2/core';
import { newIssuer, newKey } from '../support/credentials';

const createApp: AppFactory = async (options) => {
  const app = Fastify();
  await app.register(oidc2, options);
  app.get('/me', async (request) => ({ subject: request.identity?.subject, issuer: request.identity?.issuer, proof: request.identity?.proof }));
  app.post('/echo', async (request) => ({ subject: request.identity?.subject, body: request.body }));
  for (const route of ['mfa', 'admin', 'partner', 'workloads'] as const) {
    app.get(`/${route}`, { config: { oidc2: ROUTE_POLICIES[route] } }, async (request) => ({ subject: request.identity?.subject }));
  }
  app.get('/optional', { config: { oidc2: ROUTE_POLICIES.optional } }, async (request) => ({
    subject: request.identity?.subject ?? null,
    reason: request.identityError?.code ?? null,
  }));
  app.get<{ Querystring: { n?: string } }>('/stream', async (request, reply) => {
    reply.type('text/plain');
    return reply.send(Readable.from(Array.from({ length: Number(request.query.n ?? 8) }, () => Buffer.alloc(1024, 'a'))));
  });
  app.get('/boom', async () => {
    throw new Error('boom');
  });
  app.get('/public', { config: { oidc2: false } }, async () => ({ public: true }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  return app.server;
};

// Fastify's own content-type parsers run after the plugin's preParsing hook: one order only.
runAdapterSuite('fastify', createApp, ['after']);

// app.inject() is how Fastify apps are usually tested; its request has no headersDistinct.
describe('fastify adapter: app.inject', () => {
  it('authenticates and signs an injected request', async () => {
    const issuer = await newIssuer();
    const key = await newKey();
    const serviceKey = await newKey('Ed25519');
    const app = Fastify();
    await app.register(oidc2, {
      issuers: [{ issuer: issuer.issuer, jwks: issuer.jwks }],
      audiences: ['https://api.example.test'],
      credential: { ict: await issuer.mint(serviceKey, { subject: 'api' }), privateKey: serviceKey.privateJwk },
    });
    app.get('/me', async (request) => ({ subject: request.identity?.subject }));
    const signed = await signRequest({ method: 'GET', url: 'https://api.example.test/me' }, { ict: await issuer.mint(key), key: key.signer });
    const headers = Object.fromEntries(Object.entries(signed.headers).map(([name, lines]) => [name, lines[0]!]));
    const res = await app.inject({ method: 'GET', url: '/me', headers });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ subject: 'alice' });
    expect(res.headers['signature-input']).toContain('tag="oidc2-ict"');
    const refused = await app.inject({ method: 'GET', url: '/me' });
    expect(refused.statusCode).toBe(401);
    expect(refused.json()).toMatchObject({ code: 'ict_missing' });
    await app.close();
  });
});
