// A service's own credential from a running @oidc2/issuer through serviceCredential(), on Express,
// Fastify and Koa over real sockets; ready() failing at start-up with the issuer's reason; client
// errors that carry what the issuer or service said (RemoteCause) and credential_supplier_failed
// for a throwing supplier.
import { createClient, serviceCredential } from '@oidc2/client';
import { isOidc2Error, type Oidc2Error } from '@oidc2/core';
import { oidc2 as expressOidc2 } from '@oidc2/express';
import { apiKeys, createIssuer, hashApiKey, type ListeningIssuer } from '@oidc2/issuer';
import { FRAMEWORKS, startFramework, type FrameworkService } from '../support/frameworks';
import { freeLoopbackUrl } from '../support/node-service';

const CALLER_KEY = 'caller-key-'.padEnd(48, 'c');
const SERVICE_KEY = 'service-key-'.padEnd(48, 's');
const SERVICE = 'spiffe://svc.test/api';

let issuerId: string;
let issuer: ListeningIssuer;
beforeAll(async () => {
  const { url, port } = await freeLoopbackUrl();
  issuerId = url;
  const ictIssuer = await createIssuer({
    issuer: issuerId,
    authenticators: [
      apiKeys({
        keys: [
          { hash: hashApiKey(CALLER_KEY), subject: 'spiffe://svc.test/caller', contexts: ['batch'] },
          { hash: hashApiKey(SERVICE_KEY), subject: SERVICE, contexts: ['service'] },
        ],
      }),
    ],
  });
  issuer = await ictIssuer.listen({ port });
});
afterAll(() => issuer?.close());

const caller = () => createClient({ serviceIssuers: [{ issuer: issuerId }], issuer: { url: issuerId, credential: { apiKey: CALLER_KEY }, subject: 'spiffe://svc.test/caller' } });

async function rejection(promise: Promise<unknown>): Promise<Oidc2Error> {
  try {
    await promise;
  } catch (error) {
    if (isOidc2Error(error)) return error;
    throw error;
  }
  throw new Error('resolved');
}

describe.each(FRAMEWORKS)('%s: a service credential from the issuer', (framework) => {
  let svc: FrameworkService;
  beforeAll(async () => {
    const credential = serviceCredential({ issuer: { url: issuerId, credential: { apiKey: SERVICE_KEY }, subject: SERVICE } });
    svc = await startFramework(framework, (url) => ({ issuers: [{ issuer: issuerId }], audiences: [url], credential }));
  });
  afterAll(() => svc.close());

  it('signs responses the caller verifies as the configured subject', async () => {
    const res = await caller()(`${svc.url}/whoami`);
    expect(res.status).toBe(200);
    expect(res.service.subject).toBe(SERVICE);
    expect(((await res.json()) as { caller: string }).caller).toBe('spiffe://svc.test/caller');
  });
});

describe('failures say why', () => {
  it('ready() rejects at start-up with the issuer refusal as cause, and its description', async () => {
    const credential = serviceCredential({ issuer: { url: issuerId, credential: { apiKey: 'wrong-'.padEnd(48, 'x') }, subject: SERVICE } });
    const auth = expressOidc2({ issuers: [{ issuer: issuerId }], audiences: ['http://127.0.0.1:1'], credential });
    const error = await rejection(auth.ready());
    expect(error.code).toBe('response_signing_unavailable');
    const cause = error.cause as Oidc2Error;
    expect(cause.code).toBe('client_invalid');
    expect(cause.remote).toMatchObject({ status: 401, code: 'client_invalid', error: 'invalid_client', description: expect.any(String), verified: false });
    expect(cause.message).toContain(cause.remote!.description!);
  });

  it('a throwing API key supplier is credential_supplier_failed, with the cause', async () => {
    const client = createClient({
      serviceIssuers: [{ issuer: issuerId }],
      issuer: {
        url: issuerId,
        credential: {
          apiKey: () => {
            throw new Error('vault sealed');
          },
        },
        subject: 'spiffe://svc.test/caller',
      },
    });
    const error = await rejection(client.ict());
    expect(error.code).toBe('credential_supplier_failed');
    expect((error.cause as Error).message).toBe('vault sealed');
  });

  it('an unsigned refusal from a service: response_unsigned, with the service code as an unverified hint', async () => {
    // A service without a credential cannot sign: it refuses a caller who asked with an unsigned 501.
    const svc = await startFramework('express', (url) => ({ issuers: [{ issuer: issuerId }], audiences: [url] }));
    try {
      const error = await rejection(caller()(`${svc.url}/whoami`));
      expect(error.code).toBe('response_unsigned');
      expect(error.remote).toMatchObject({ status: 501, code: 'response_signing_unavailable', verified: false });
      expect(error.message).toContain('the unverified answer says response_signing_unavailable');
    } finally {
      await svc.close();
    }
  });
});

it('serviceCredential refuses unknown options and a WIT without a workload grant', () => {
  expect(() => serviceCredential({ issuer: { url: issuerId, credential: { apiKey: SERVICE_KEY }, subject: SERVICE }, audience: 'x' } as never)).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_OPTION' }));
  expect(() => serviceCredential({ issuer: { url: issuerId, credential: { apiKey: SERVICE_KEY }, subject: SERVICE, contexts: ['a'] }, token: 'wit' })).toThrow(
    expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }),
  );
});
