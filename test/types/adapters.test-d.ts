// Type tests, checked by `pnpm typecheck`: every adapter exposes a typed identity without casts.
import express from 'express';
import Fastify from 'fastify';
import Koa from 'koa';
import Router from '@koa/router';
import { expectTypeOf } from 'expect-type';
import type { Identity, Oidc2Error } from '@oidc2/core';
import { oidc2 as expressOidc2, keepRawBody, oidc2ErrorHandler } from '@oidc2/express';
import { oidc2 as fastifyOidc2 } from '@oidc2/fastify';
import { oidc2 as koaOidc2, type Oidc2State } from '@oidc2/koa';

declare const options: Parameters<typeof expressOidc2>[0];

// Express: req.identity on every request handler.
{
  const app = express();
  const auth = expressOidc2(options);
  app.use(express.json({ verify: keepRawBody }), auth);
  app.get('/me', auth.with({ contexts: ['mfa'] }), (req, res) => {
    expectTypeOf(req.identity).toEqualTypeOf<Identity | null | undefined>();
    expectTypeOf(req.identityError).toEqualTypeOf<Oidc2Error | undefined>();
    if (req.identity) expectTypeOf(req.identity.subject).toBeString();
    res.end();
  });
  app.use(oidc2ErrorHandler());
  // @ts-expect-error a policy is an object, not a list of contexts
  auth.with(['mfa']);
}

// Fastify: request.identity through decorateRequest, per-route policy through config.
void (async () => {
  const app = Fastify();
  await app.register(fastifyOidc2, options);
  app.get('/me', { config: { oidc2: { claims: { role: 'admin' } } } }, async (request) => {
    expectTypeOf(request.identity).toEqualTypeOf<Identity | null>();
    expectTypeOf(request.identityError).toEqualTypeOf<Oidc2Error | null>();
    return { sub: request.identity?.subject };
  });
  app.get('/public', { config: { oidc2: false } }, async () => 'ok');
  // @ts-expect-error route policies are checked: contexts is a list
  app.get('/wrong', { config: { oidc2: { contexts: 'mfa' } } }, async () => 'no');
  // @ts-expect-error the plugin options are checked
  await app.register(fastifyOidc2, { audiences: 'https://api.example.com' });
})();

// Koa: ctx.state.identity with the default state, and with an explicit state type.
{
  const app = new Koa();
  const auth = koaOidc2(options);
  app.use(auth);
  app.use((ctx) => {
    expectTypeOf(ctx.state.identity).toEqualTypeOf<Identity | null | undefined>();
    expectTypeOf(ctx.state.identityError).toEqualTypeOf<Oidc2Error | undefined>();
  });
  const router = new Router<Oidc2State>();
  router.get('/admin', auth.with({ allow: (identity) => identity.contexts.includes('mfa') }), (ctx) => {
    expectTypeOf(ctx.state.identity).toEqualTypeOf<Identity | null | undefined>();
  });
}
