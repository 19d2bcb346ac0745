// Express 5: GET /hello, bare, behind express-jwt, or behind @oidc2/express; in mode e2ee the JSON
// echo routes behind @oidc2/express (see common.mjs).
import { BACKLOG, BODY, BODY_LIMIT, ECHO, SEALED, SESSION_ENDPOINT, announce, config, factory, loadPackage, mode, oidc2Options, rootRequire } from './common.mjs';

const express = rootRequire('express');
const app = express();
if (mode === 'bearer') {
  const { expressjwt } = rootRequire('express-jwt');
  const { publicPem, issuer, audience } = config.bearer;
  app.use(expressjwt({ secret: publicPem, algorithms: ['ES256'], issuer, audience }));
}
const adapter = mode === 'oidc2' || mode === 'e2ee' ? await loadPackage('express') : undefined;
if (mode === 'oidc2') app.use(factory(adapter)(await oidc2Options()));
if (mode === 'e2ee') {
  // One oidc2 middleware per request (express.md): mounted per route, before the body parser.
  const auth = factory(adapter)(await oidc2Options());
  const json = express.json({ limit: BODY_LIMIT });
  const echo = (req, res) => res.json(req.body);
  app.post(SESSION_ENDPOINT, auth);
  app.post(ECHO, auth, json, echo);
  app.post(SEALED, auth.with({ encryption: 'required' }), json, echo);
} else {
  app.get('/hello', (req, res) => {
    res.json(BODY);
  });
  // The bearer baseline of the e2ee section: the same JSON echo behind express-jwt (and bare in mode hello).
  if (mode === 'bearer' || mode === 'hello') app.post(ECHO, express.json({ limit: BODY_LIMIT }), (req, res) => res.json(req.body));
}
// The adapter's own renderer of signed problem responses, then a generic one.
if (adapter?.oidc2ErrorHandler) app.use(adapter.oidc2ErrorHandler());
app.use((err, req, res, next) => {
  if (res.headersSent) return next(err);
  res.status(err.status ?? 500).json({ error: err.code ?? 'error' });
});
const server = app.listen(0, '127.0.0.1', BACKLOG, () => announce(server.address().port));
