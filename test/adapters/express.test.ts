import express from 'express';
import type { Server } from 'node:http';
import { Readable } from 'node:stream';
import { keepRawBody, oidc2, oidc2ErrorHandler } from '@oidc2/express';
import { ROUTE_POLICIES, runAdapterSuite, type AppFactory } from './suite';

const createApp: AppFactory = async (options, { parser }) => {
  const app = express();
  const auth = oidc2(options);
  const json = parser === 'before' ? express.json({ verify: keepRawBody }) : express.json();
  if (parser === 'before') app.use(json);
  const router = express.Router();
  router.get('/me', auth, (req, res) => {
    res.json({ subject: req.identity?.subject, issuer: req.identity?.issuer, proof: req.identity?.proof });
  });
  router.post('/echo', parser === 'after' ? [auth, json] : [auth], (req: express.Request, res: express.Response) => {
    res.json({ subject: req.identity?.subject, body: req.body as unknown });
  });
  for (const route of ['mfa', 'admin', 'partner'] as const) {
    router.get(`/${route}`, auth.with(ROUTE_POLICIES[route]), (req, res) => {
      res.json({ subject: req.identity?.subject });
    });
  }
  router.get('/optional', auth.with(ROUTE_POLICIES.optional), (req, res) => {
    res.json({ subject: req.identity?.subject ?? null, reason: req.identityError?.code ?? null });
  });
  router.get('/stream', auth, (req, res) => {
    res.type('text/plain');
    Readable.from(Array.from({ length: Number(req.query.n ?? 8) }, () => Buffer.alloc(1024, 'a'))).pipe(res);
  });
  router.get('/boom', auth, () => {
    throw new Error('boom');
  });
  app.get('/public', (_req, res) => {
    res.json({ public: true });
  });
  app.use(router);
  app.use(oidc2ErrorHandler());
  return new Promise<Server>((resolve) => {
    const server = app.listen(0, '127.0.0.1', () => resolve(server));
  });
};

runAdapterSuite('express', createApp, ['after', 'before']);
