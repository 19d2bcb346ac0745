// One OIDC² service per framework, each behind its adapter, on 127.0.0.1. The server listens
// before the app is built, so the app can be configured with its own URL as audience.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import Koa from 'koa';
import { bodyParser } from '@koa/bodyparser';
import { oidc2 as expressOidc2, oidc2ErrorHandler } from '@oidc2/express';
import { oidc2 as fastifyOidc2 } from '@oidc2/fastify';
import { oidc2 as koaOidc2 } from '@oidc2/koa';
import type { Identity, Oidc2Options } from '@oidc2/core';

export const FRAMEWORKS = ['express', 'fastify', 'koa'] as const;
export type Framework = (typeof FRAMEWORKS)[number];

export interface FrameworkService {
  framework: Framework;
  url: string;
  close(): Promise<void>;
}

/** What every service answers on `POST /echo` and `GET /whoami`. */
export function answer(framework: Framework, identity: Identity | null | undefined, body: unknown): Record<string, unknown> {
  return { framework, caller: identity?.subject ?? null, issuer: identity?.issuer ?? null, proof: identity?.proof ?? null, echo: body ?? null };
}

/** Starts `framework` with `options(url)` (the options may name the service's own URL). */
export async function startFramework(framework: Framework, options: (url: string) => Oidc2Options): Promise<FrameworkService> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const config = options(url);
  const closeServer = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });

  if (framework === 'express') {
    const app = express();
    app.use(expressOidc2(config), express.json());
    app.get('/whoami', (req, res) => {
      res.json(answer('express', req.identity, undefined));
    });
    app.post('/echo', (req, res) => {
      res.json(answer('express', req.identity, req.body));
    });
    app.use(oidc2ErrorHandler());
    server.on('request', app);
    return { framework, url, close: closeServer };
  }

  if (framework === 'koa') {
    const app = new Koa();
    app.use(koaOidc2(config));
    app.use(bodyParser());
    app.use((ctx) => {
      if (ctx.path !== '/echo' && ctx.path !== '/whoami') return;
      ctx.body = answer('koa', ctx.state.identity, ctx.path === '/echo' ? ctx.request.body : undefined);
    });
    server.on('request', app.callback());
    return { framework, url, close: closeServer };
  }

  const app = Fastify({
    serverFactory: (handler) => {
      server.on('request', handler);
      return server;
    },
  });
  await app.register(fastifyOidc2, config);
  app.get('/whoami', async (request) => answer('fastify', request.identity, undefined));
  app.post('/echo', async (request) => answer('fastify', request.identity, request.body));
  await app.ready();
  return {
    framework,
    url,
    close: async () => {
      // Fastify closes only servers it started listening itself; this one was listening before.
      await app.close();
      await closeServer();
    },
  };
}
