// Fastify 5: GET /hello, bare, behind @fastify/jwt, or behind @oidc2/fastify; in mode e2ee the JSON
// echo routes behind @oidc2/fastify (see common.mjs).
import { BACKLOG, BODY, BODY_LIMIT, ECHO, SEALED, announce, config, factory, loadPackage, mode, oidc2Options, rootRequire } from './common.mjs';

const app = rootRequire('fastify')({ logger: false, bodyLimit: BODY_LIMIT });
if (mode === 'bearer') {
  const { publicPem, issuer, audience } = config.bearer;
  await app.register(rootRequire('@fastify/jwt'), {
    secret: { public: publicPem },
    verify: { algorithms: ['ES256'], allowedIss: issuer, allowedAud: audience },
  });
  app.addHook('onRequest', async (request) => {
    await request.jwtVerify();
  });
} else if (mode === 'oidc2' || mode === 'e2ee') {
  await app.register(factory(await loadPackage('fastify')), await oidc2Options());
}
if (mode === 'e2ee') {
  // The plugin decrypts in preParsing, so Fastify's own JSON parser sees the plaintext.
  app.post(ECHO, async (request) => request.body);
  app.post(SEALED, { config: { oidc2: { encryption: 'required' } } }, async (request) => request.body);
} else {
  app.get('/hello', async () => BODY);
  // The bearer baseline of the e2ee section: the same JSON echo behind @fastify/jwt (and bare in mode hello).
  if (mode === 'bearer' || mode === 'hello') app.post(ECHO, async (request) => request.body);
}
await app.listen({ port: 0, host: '127.0.0.1', backlog: BACKLOG });
announce(app.server.address().port);
