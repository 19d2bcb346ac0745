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
import type { Identity, Oidc2Options, RoutePolicy } from '@oidc2/core';

export const FRAMEWORKS = ['express', 'fastify', 'koa'] as const;
export type Framework = (typeof FRAMEWORKS)[number];

export interface FrameworkService {
  framework: Framework;
  url: string;
  close(): Promise<void>;
}

/**
 * Routes with their own end-to-end encryption policy (docs/protocol.md section 7.10), beside `/echo` and `/whoami`
 * (which keep the service's default policy):
 * - `GET /clear`: `encryption: 'off'`, answers like `/whoami`;
 * - `POST /secret`: `encryption: 'required'`, answers like `/echo`.
 * And two routes with the default policy for byte-level tests:
 * - `POST /bytes`: answers the raw request body as `application/octet-stream` (up to {@link BYTES_LIMIT});
 * - `GET /ranged`: a 64-octet resource that honours `Range` (206) like a static file server.
 */
export const ROUTE_POLICIES = Object.freeze({
  clear: Object.freeze({ encryption: 'off' }) as RoutePolicy,
  secret: Object.freeze({ encryption: 'required' }) as RoutePolicy,
});

/** Largest body `POST /bytes` takes. */
export const BYTES_LIMIT = 4 * 1024 * 1024;

/** The resource `GET /ranged` serves: octets 0 to 63. */
export const RANGED_RESOURCE = Uint8Array.from({ length: 64 }, (_, i) => i);

// `bytes=a-b` of RANGED_RESOURCE, or undefined when the range is absent or not of that form.
function rangeOf(header: string | undefined): { start: number; end: number } | undefined {
  const m = header === undefined ? null : /^bytes=(\d+)-(\d+)$/.exec(header);
  if (!m) return undefined;
  const start = Number(m[1]);
  const end = Math.min(Number(m[2]), RANGED_RESOURCE.length - 1);
  return start <= end ? { start, end } : undefined;
}

// Status, headers and body of `GET /ranged`.
function ranged(header: string | undefined): { status: number; headers: Record<string, string>; body: Buffer } {
  const range = rangeOf(header);
  const headers: Record<string, string> = { 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes' };
  if (!range) return { status: 200, headers, body: Buffer.from(RANGED_RESOURCE) };
  headers['content-range'] = `bytes ${range.start}-${range.end}/${RANGED_RESOURCE.length}`;
  return { status: 206, headers, body: Buffer.from(RANGED_RESOURCE.subarray(range.start, range.end + 1)) };
}

async function readAll(stream: AsyncIterable<Buffer | string>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const c = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    size += c.length;
    if (size > BYTES_LIMIT) throw new Error('body too large');
    chunks.push(c);
  }
  return Buffer.concat(chunks);
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
    const auth = expressOidc2(config);
    // Routes with their own policy come first, so the app-wide middleware never runs for them.
    app.get('/clear', auth.with(ROUTE_POLICIES.clear), (req, res) => {
      res.json(answer('express', req.identity, undefined));
    });
    app.post('/secret', auth.with(ROUTE_POLICIES.secret), express.json(), (req, res) => {
      res.json(answer('express', req.identity, req.body));
    });
    app.use(auth, express.json());
    app.post('/bytes', express.raw({ type: () => true, limit: BYTES_LIMIT }), (req, res) => {
      res.type('application/octet-stream').send(Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0));
    });
    app.get('/ranged', (req, res) => {
      const r = ranged(req.headers.range);
      res.status(r.status).set(r.headers).send(r.body);
    });
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
    app.silent = true; // errors a test provokes on purpose (a body that is not JSON) are not logged
    const auth = koaOidc2(config);
    const clear = auth.with(ROUTE_POLICIES.clear);
    const secret = auth.with(ROUTE_POLICIES.secret);
    app.use((ctx, next) => (ctx.path === '/clear' ? clear : ctx.path === '/secret' ? secret : auth)(ctx, next));
    app.use(bodyParser());
    app.use(async (ctx) => {
      if (ctx.path === '/bytes' && ctx.method === 'POST') {
        ctx.type = 'application/octet-stream';
        ctx.body = await readAll(ctx.req);
        return;
      }
      if (ctx.path === '/ranged' && ctx.method === 'GET') {
        const r = ranged(ctx.get('range') || undefined);
        ctx.status = r.status;
        ctx.set(r.headers);
        ctx.body = r.body;
        return;
      }
      if (ctx.path === '/clear' && ctx.method === 'GET') ctx.body = answer('koa', ctx.state.identity, undefined);
      if (ctx.path === '/secret' && ctx.method === 'POST') ctx.body = answer('koa', ctx.state.identity, ctx.request.body);
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
  app.get('/clear', { config: { oidc2: ROUTE_POLICIES.clear } }, async (request) => answer('fastify', request.identity, undefined));
  app.post('/secret', { config: { oidc2: ROUTE_POLICIES.secret } }, async (request) => answer('fastify', request.identity, request.body));
  await app.register(async (scope) => {
    // Raw bytes in, the same bytes out, in a scope of its own so other routes keep the JSON parser.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: BYTES_LIMIT }, (_request, body, done) => done(null, body));
    scope.post('/bytes', { bodyLimit: BYTES_LIMIT }, async (request, reply) => {
      reply.type('application/octet-stream');
      return Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    });
  });
  app.get('/ranged', async (request, reply) => {
    const r = ranged(request.headers.range);
    reply.code(r.status).headers(r.headers);
    return r.body;
  });
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
