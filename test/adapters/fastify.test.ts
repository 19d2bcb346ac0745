import Fastify from 'fastify';
import type { Server } from 'node:http';
import { Readable } from 'node:stream';
import { oidc2 } from '@oidc2/fastify';
import { ROUTE_POLICIES, runAdapterSuite, type AppFactory } from './suite';

const createApp: AppFactory = async (options) => {
  const app = Fastify();
  await app.register(oidc2, options);
  app.get('/me', async (request) => ({ subject: request.identity?.subject, issuer: request.identity?.issuer, proof: request.identity?.proof }));
  app.post('/echo', async (request) => ({ subject: request.identity?.subject, body: request.body }));
  for (const route of ['mfa', 'admin', 'partner'] as const) {
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
