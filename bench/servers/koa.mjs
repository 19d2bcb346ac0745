// Koa 3: GET /hello, bare, behind koa-jwt, or behind @oidc2/koa; in mode e2ee the JSON echo routes
// behind @oidc2/koa, before @koa/bodyparser (see common.mjs).
import { BACKLOG, BODY, BODY_LIMIT, ECHO, SEALED, announce, config, factory, loadPackage, mode, oidc2Options, rootRequire } from './common.mjs';

const Koa = rootRequire('koa');
const app = new Koa();
if (mode === 'bearer') {
  const { publicPem, issuer, audience } = config.bearer;
  app.use(rootRequire('koa-jwt')({ secret: publicPem, algorithms: ['ES256'], issuer, audience }));
} else if (mode === 'oidc2') {
  app.use(factory(await loadPackage('koa'))(await oidc2Options()));
}
if (mode === 'e2ee') {
  // One oidc2 middleware per request (koa.md): the route's policy picks which.
  const auth = factory(await loadPackage('koa'))(await oidc2Options());
  const sealed = auth.with({ encryption: 'required' });
  app.use((ctx, next) => (ctx.path === SEALED ? sealed(ctx, next) : auth(ctx, next)));
  app.use(rootRequire('@koa/bodyparser').bodyParser({ jsonLimit: BODY_LIMIT }));
  app.use((ctx) => {
    if (ctx.method === 'POST' && (ctx.path === ECHO || ctx.path === SEALED)) ctx.body = ctx.request.body;
  });
} else {
  // The bearer baseline of the e2ee section: the same JSON echo behind koa-jwt (and bare in mode hello).
  // (parsed on that route only, so GET /hello of the HTTP section pays nothing for it).
  if (mode === 'bearer' || mode === 'hello') {
    const json = rootRequire('@koa/bodyparser').bodyParser({ jsonLimit: BODY_LIMIT });
    app.use((ctx, next) => (ctx.path === ECHO ? json(ctx, next) : next()));
  }
  app.use((ctx) => {
    if (ctx.method === 'GET' && ctx.path === '/hello') ctx.body = BODY;
    else if ((mode === 'bearer' || mode === 'hello') && ctx.method === 'POST' && ctx.path === ECHO) ctx.body = ctx.request.body;
  });
}
const server = app.listen(0, '127.0.0.1', BACKLOG, () => announce(server.address().port));
