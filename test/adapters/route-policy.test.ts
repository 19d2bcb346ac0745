// A bad per-route policy is a programming error: every adapter reports it where the route is declared,
// naming the field, instead of failing on the first request.
import Fastify from 'fastify';
import { oidc2 as expressOidc2 } from '@oidc2/express';
import { oidc2 as fastifyOidc2 } from '@oidc2/fastify';
import { oidc2 as koaOidc2 } from '@oidc2/koa';

const options = { issuers: [{ issuer: 'https://op.example.test', jwksUri: 'https://op.example.test/jwks' }], audiences: ['https://api.example.test'] };
const bad = { contexts: 'mfa' } as never;

describe('per-route policies are validated when declared', () => {
  it('express .with()', () => {
    expect(() => expressOidc2(options).with(bad)).toThrow(/policy\.contexts/);
  });

  it('koa .with()', () => {
    expect(() => koaOidc2(options).with(bad)).toThrow(/policy\.contexts/);
  });

  it('fastify route config', async () => {
    const app = Fastify();
    await app.register(fastifyOidc2, options);
    expect(() => app.get('/x', { config: { oidc2: bad } }, async () => 'x')).toThrow(/config\.oidc2\.contexts/);
    await app.close();
  });
});
