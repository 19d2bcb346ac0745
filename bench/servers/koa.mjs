// Koa 3: GET /hello, bare, behind koa-jwt, or behind @oidc2/koa.
import { BACKLOG, BODY, announce, config, factory, loadPackage, mode, rootRequire } from './common.mjs';

const Koa = rootRequire('koa');
const app = new Koa();
if (mode === 'bearer') {
  const { publicPem, issuer, audience } = config.bearer;
  app.use(rootRequire('koa-jwt')({ secret: publicPem, algorithms: ['ES256'], issuer, audience }));
} else if (mode === 'oidc2') {
  app.use(factory(await loadPackage('koa'))(config.oidc2));
}
app.use((ctx) => {
  if (ctx.method === 'GET' && ctx.path === '/hello') ctx.body = BODY;
});
const server = app.listen(0, '127.0.0.1', BACKLOG, () => announce(server.address().port));
