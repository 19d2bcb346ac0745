// Fastify 5: GET /hello, bare, behind @fastify/jwt, or behind @oidc2/fastify.
import { BACKLOG, BODY, announce, config, factory, loadPackage, mode, rootRequire } from './common.mjs';

const app = rootRequire('fastify')({ logger: false });
if (mode === 'bearer') {
  const { publicPem, issuer, audience } = config.bearer;
  await app.register(rootRequire('@fastify/jwt'), {
    secret: { public: publicPem },
    verify: { algorithms: ['ES256'], allowedIss: issuer, allowedAud: audience },
  });
  app.addHook('onRequest', async (request) => {
    await request.jwtVerify();
  });
} else if (mode === 'oidc2') {
  await app.register(factory(await loadPackage('fastify')), config.oidc2);
}
app.get('/hello', async () => BODY);
await app.listen({ port: 0, host: '127.0.0.1', backlog: BACKLOG });
announce(app.server.address().port);
