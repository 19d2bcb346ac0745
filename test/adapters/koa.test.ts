import Koa from 'koa';
import Router from '@koa/router';
import { bodyParser } from '@koa/bodyparser';
import type { Server } from 'node:http';
import { Readable } from 'node:stream';
import { oidc2 } from '@oidc2/koa';
import { ROUTE_POLICIES, runAdapterSuite, type AppFactory } from './suite';

const createApp: AppFactory = async (options, { parser }) => {
  const app = new Koa();
  // The usual Koa error middleware, outermost: what it renders after oidc2 ran is signed too.
  app.use(async (ctx, next) => {
    try {
      await next();
    } catch {
      ctx.status = 500;
      ctx.body = { error: 'internal' };
    }
  });
  const auth = oidc2(options);
  const router = new Router();
  if (parser === 'before') app.use(bodyParser());
  router.get('/me', auth, (ctx) => {
    ctx.body = { subject: ctx.state.identity?.subject, issuer: ctx.state.identity?.issuer, proof: ctx.state.identity?.proof };
  });
  const echo = (ctx: Koa.Context) => {
    ctx.body = { subject: ctx.state.identity?.subject, body: ctx.request.body as unknown };
  };
  if (parser === 'after') router.post('/echo', auth, bodyParser(), echo);
  else router.post('/echo', auth, echo);
  for (const route of ['mfa', 'admin', 'partner', 'workloads'] as const) {
    router.get(`/${route}`, auth.with(ROUTE_POLICIES[route]), (ctx) => {
      ctx.body = { subject: ctx.state.identity?.subject };
    });
  }
  router.get('/optional', auth.with(ROUTE_POLICIES.optional), (ctx) => {
    ctx.body = { subject: ctx.state.identity?.subject ?? null, reason: ctx.state.identityError?.code ?? null };
  });
  router.get('/stream', auth, (ctx) => {
    ctx.type = 'text/plain';
    ctx.body = Readable.from(Array.from({ length: Number(ctx.query.n ?? 8) }, () => Buffer.alloc(1024, 'a')));
  });
  router.get('/boom', auth, () => {
    throw new Error('boom');
  });
  router.get('/public', (ctx) => {
    ctx.body = { public: true };
  });
  app.use(router.routes());
  return new Promise<Server>((resolve) => {
    const server = app.listen(0, '127.0.0.1', () => resolve(server));
  });
};

runAdapterSuite('koa', createApp, ['after', 'before']);
