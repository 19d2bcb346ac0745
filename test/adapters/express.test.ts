import express from 'express';
import type { Server } from 'node:http';
import { Readable } from 'node:stream';
import { keepRawBody, oidc2, oidc2ErrorHandler } from '@oidc2/express';
import request from 'supertest';
import { signRequest } from '@oidc2/core';
import { newIssuer, newKey } from '../support/credentials';
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
  for (const route of ['mfa', 'admin', 'partner', 'workloads'] as const) {
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

describe('express adapter: mounting mistakes fail closed', () => {
  async function setup(mount: (app: express.Express, auth: ReturnType<typeof oidc2>) => void) {
    const issuer = await newIssuer();
    const key = await newKey();
    const auth = oidc2({ issuers: [{ issuer: issuer.issuer, jwks: issuer.jwks }], audiences: ['https://api.example.test'] });
    const app = express();
    mount(app, auth);
    app.use(oidc2ErrorHandler());
    const body = Buffer.from('{"a":1}');
    const message = await signRequest(
      { method: 'POST', url: 'https://api.example.test/x', headers: { 'content-type': 'application/json' }, body },
      { ict: await issuer.mint(key), key: key.signer, signResponse: false },
    );
    let req = request(app).post('/x');
    for (const [name, lines] of Object.entries(message.headers)) req = req.set(name, lines[0]!);
    return req.serialize((b: unknown) => b as string).send(body);
  }
  const ok = (req: express.Request, res: express.Response) => {
    res.json({ subject: req.identity?.subject });
  };

  it('a body parser before oidc2 without keepRawBody is a server error, never an unchecked body', async () => {
    expect((await setup((app, auth) => app.post('/x', express.json(), auth, ok))).status).toBe(500);
    expect((await setup((app, auth) => app.post('/x', express.json({ verify: keepRawBody }), auth, ok))).body).toEqual({ subject: 'alice' });
  });

  it('two oidc2 middlewares on one request are a server error', async () => {
    const res = await setup((app, auth) => {
      app.use(auth);
      app.post('/x', auth.with({ contexts: ['mfa'] }), ok);
    });
    expect(res.status).toBe(500);
  });
});

describe('express adapter: error delivery', () => {
  it('answers an authentication failure itself with the signed problem, without oidc2ErrorHandler', async () => {
    const issuer = await newIssuer();
    const serviceKey = await newKey('Ed25519');
    const app = express();
    app.use(
      oidc2({
        issuers: [{ issuer: issuer.issuer, jwks: issuer.jwks }],
        audiences: ['https://api.example.test'],
        credential: { ict: await issuer.mint(serviceKey, { subject: 'api' }), privateKey: serviceKey.privateJwk },
      }),
    );
    let ran = false;
    app.get('/x', (_req, res) => {
      ran = true;
      res.json({});
    });
    const res = await request(app).get('/x');
    expect(res.status).toBe(401);
    expect(res.headers['content-type']).toBe('application/problem+json');
    expect(res.body).toMatchObject({ code: 'ict_missing', status: 401 });
    expect(res.headers['signature-input']).toContain('tag="oidc2-ict"');
    expect(res.headers['www-authenticate']).toContain('Oidc2');
    expect(ran).toBe(false);
  });
});
