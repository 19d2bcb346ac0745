// Express 5: GET /hello, bare, behind express-jwt, or behind @oidc2/express.
import { BACKLOG, BODY, announce, config, factory, loadPackage, mode, rootRequire } from './common.mjs';

const express = rootRequire('express');
const app = express();
if (mode === 'bearer') {
  const { expressjwt } = rootRequire('express-jwt');
  const { publicPem, issuer, audience } = config.bearer;
  app.use(expressjwt({ secret: publicPem, algorithms: ['ES256'], issuer, audience }));
}
const adapter = mode === 'oidc2' ? await loadPackage('express') : undefined;
if (adapter) app.use(factory(adapter)(config.oidc2));
app.get('/hello', (req, res) => {
  res.json(BODY);
});
// The adapter's own renderer of signed problem responses, then a generic one.
if (adapter?.oidc2ErrorHandler) app.use(adapter.oidc2ErrorHandler());
app.use((err, req, res, next) => {
  if (res.headersSent) return next(err);
  res.status(err.status ?? 500).json({ error: err.code ?? 'error' });
});
const server = app.listen(0, '127.0.0.1', BACKLOG, () => announce(server.address().port));
