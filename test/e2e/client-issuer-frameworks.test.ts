// End to end over real sockets: @oidc2/client obtains its ICT from a running @oidc2/issuer and
// calls an Express, a Fastify and a Koa service (each with its own adapter and its own ICT from
// the same issuer); every answer must come back verified, and a changed or foreign one rejected.
import { createClient, type ClientOptions, type IssuanceOptions } from '@oidc2/client';
import type { CredentialInput } from '@oidc2/core';
import { apiKeys, createIssuer, hashApiKey, jwtAccessTokens, type ListeningIssuer } from '@oidc2/issuer';
import { newIssuer, newKey, type TestIssuer } from '../support/credentials';
import { FRAMEWORKS, startFramework, type Framework, type FrameworkService } from '../support/frameworks';
import { freeLoopbackUrl, startTamperProxy, type TamperProxy } from '../support/node-service';
import { settledCode as codeOf } from '../support/error-code';

const WORKLOAD_KEY = 'workload-key-'.padEnd(48, 'w');
const serviceKey = (fw: Framework) => `service-key-${fw}-`.padEnd(48, 's');
const serviceSubject = (fw: Framework) => `spiffe://e2e.test/${fw}`;

let login: TestIssuer;
let issuerId: string;
let issuer: ListeningIssuer;
const services = {} as Record<Framework, FrameworkService & { proxy: TamperProxy }>;

beforeAll(async () => {
  login = await newIssuer('https://login.e2e.test');
  const { url, port } = await freeLoopbackUrl();
  issuerId = url;
  const ictIssuer = await createIssuer({
    issuer: issuerId,
    authenticators: [
      jwtAccessTokens({ issuer: login.issuer, audience: issuerId, jwks: login.jwks }),
      apiKeys({
        keys: [
          { hash: hashApiKey(WORKLOAD_KEY), subject: 'spiffe://e2e.test/batch', contexts: ['batch'] },
          ...FRAMEWORKS.map((fw) => ({ hash: hashApiKey(serviceKey(fw)), subject: serviceSubject(fw), contexts: ['service'] })),
        ],
      }),
    ],
  });
  issuer = await ictIssuer.listen({ port });

  for (const fw of FRAMEWORKS) {
    // The service holds its own key and gets its ICT from the issuer, renewed before it expires.
    const pair = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify'])) as CryptoKeyPair;
    const holder = createClient({
      serviceIssuers: [{ issuer: issuerId }],
      keyPair: pair,
      issuer: { url: issuerId, credential: { apiKey: serviceKey(fw) }, subject: serviceSubject(fw) },
    });
    const credential = async (): Promise<CredentialInput> => ({ ict: await holder.ict(), privateKey: pair.privateKey });
    const proxy = await startTamperProxy();
    const service = await startFramework(fw, (url) => ({ issuers: [{ issuer: issuerId }], audiences: [url, proxy.url], credential }));
    proxy.target = service.url;
    services[fw] = Object.assign(service, { proxy });
  }
});

afterAll(async () => {
  for (const s of Object.values(services)) {
    await s.close();
    await s.proxy.close();
  }
  await issuer?.close();
});

async function userToken(): Promise<string> {
  const holder = await newKey();
  // An access token of the login OP: typ at+jwt, for the issuer, granting one OIDC² context.
  return login.mint(holder, { subject: 'alice', typ: 'at+jwt', claims: { aud: issuerId, scope: 'openid e2e_auth_payments', client_id: 'bank-app', cnf: undefined } });
}

function userClient(extra: Partial<ClientOptions>, token: string, grant: IssuanceOptions['grant'] = 'ict') {
  return createClient({
    serviceIssuers: [{ issuer: issuerId }],
    issuer: { url: issuerId, grant, credential: { accessToken: token }, subject: 'alice', clientId: 'bank-app' },
    ...extra,
  });
}

const MATRIX = FRAMEWORKS.flatMap((fw) =>
  (['ES256', 'Ed25519'] as const).flatMap((algorithm) => (['http-signature', 'dpop'] as const).map((proof) => [fw, algorithm, proof] as const)),
);

describe('client -> issuer -> framework -> verified response', () => {
  it.each(MATRIX)('%s, %s key, %s: a user is authenticated and the answer verified', async (fw, algorithm, proof) => {
    const api = userClient({ algorithm, proof, expectedService: serviceSubject(fw) }, await userToken());
    const response = await api(`${services[fw].url}/echo?case=${algorithm}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ amount: 100 }),
    });
    expect(response.status).toBe(200);
    expect(response.service).toMatchObject({ subject: serviceSubject(fw), issuer: issuerId, contexts: ['service'] });
    expect(await response.json()).toEqual({ framework: fw, caller: 'alice', issuer: issuerId, proof, echo: { amount: 100 } });
  });

  it.each(FRAMEWORKS)('%s: a workload gets its ICT by token exchange and calls with both proofs', async (fw) => {
    for (const proof of ['http-signature', 'dpop'] as const) {
      const api = createClient({
        serviceIssuers: [{ issuer: issuerId }],
        expectedService: serviceSubject(fw),
        proof,
        algorithm: 'Ed25519',
        issuer: { url: issuerId, grant: 'token-exchange', credential: { apiKey: WORKLOAD_KEY } },
      });
      const response = await api(`${services[fw].url}/whoami`);
      expect(await response.json()).toMatchObject({ framework: fw, caller: 'spiffe://e2e.test/batch', proof });
      expect(response.service.subject).toBe(serviceSubject(fw));
    }
  });

  it.each(FRAMEWORKS)('%s: a response changed on the way is rejected, for both proofs', async (fw) => {
    const token = await userToken();
    for (const proof of ['http-signature', 'dpop'] as const) {
      const api = userClient({ proof }, token);
      expect(await codeOf(api(`${services[fw].proxy.url}/whoami`))).toBe('response_signature_invalid');
    }
  });

  it.each(FRAMEWORKS)('%s: an answer from another service than the expected one is rejected', async (fw) => {
    const other = FRAMEWORKS.find((f) => f !== fw)!;
    const api = userClient({ expectedService: serviceSubject(other) }, await userToken());
    expect(await codeOf(api(`${services[fw].url}/whoami`))).toBe('response_untrusted');
  });

  it.each(FRAMEWORKS)('%s: a caller certified by an untrusted issuer gets a signed 401', async (fw) => {
    const rogue = await newIssuer('https://rogue.e2e.test');
    const api = createClient({ serviceIssuers: [{ issuer: issuerId }], getIct: (jwk) => rogue.mint(jwk, { subject: 'alice' }) });
    const response = await api(`${services[fw].url}/whoami`);
    expect(response.status).toBe(401);
    expect((await response.json()).code).toBe('ict_untrusted_issuer');
    expect(response.service.subject).toBe(serviceSubject(fw));
  });
});
