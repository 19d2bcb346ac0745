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

// A misspelt requirement (`context` for `contexts`) would otherwise require nothing: fail closed.
describe('unknown keys in policies and options are rejected where they are declared', () => {
  const misspelt = { context: ['mfa'] } as never;
  const codeOf = (fn: () => unknown): unknown => {
    try {
      fn();
    } catch (error) {
      return { code: (error as { code?: unknown }).code, message: (error as Error).message, type: (error as Error).constructor.name };
    }
    return undefined;
  };

  it('express and koa .with() name the unknown key', () => {
    expect(codeOf(() => expressOidc2(options).with(misspelt))).toMatchObject({ code: 'ERR_UNKNOWN_OPTION', type: 'TypeError', message: expect.stringMatching(/policy\.context\b/) });
    expect(codeOf(() => koaOidc2(options).with(misspelt))).toMatchObject({ code: 'ERR_UNKNOWN_OPTION', message: expect.stringMatching(/policy\.context\b/) });
  });

  it('fastify route config names the route and the key', async () => {
    const app = Fastify();
    await app.register(fastifyOidc2, options);
    expect(codeOf(() => app.get('/x', { config: { oidc2: misspelt } }, async () => 'x'))).toMatchObject({
      code: 'ERR_UNKNOWN_OPTION',
      message: expect.stringMatching(/route GET \/x config\.oidc2\.context\b/),
    });
    await app.close();
  });

  it('the default policy, the service options and the credential', () => {
    expect(codeOf(() => expressOidc2({ ...options, policy: misspelt }))).toMatchObject({ code: 'ERR_UNKNOWN_OPTION', message: expect.stringMatching(/options\.policy\.context\b/) });
    expect(codeOf(() => koaOidc2({ ...options, maxBodyByte: 10 } as never))).toMatchObject({ code: 'ERR_UNKNOWN_OPTION', message: expect.stringMatching(/options\.maxBodyByte\b/) });
    expect(codeOf(() => expressOidc2({ ...options, credential: { ict: 'a.b.c', privateKey: {}, kid: 'x' } } as never))).toMatchObject({
      code: 'ERR_UNKNOWN_OPTION',
      message: expect.stringMatching(/options\.credential\.kid\b/),
    });
    expect(codeOf(() => expressOidc2({ ...options, maxBodyBytes: -1 }))).toMatchObject({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringMatching(/options\.maxBodyBytes/) });
  });
});
