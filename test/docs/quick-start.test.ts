// The README's service and caller and the set-up of the Express, Fastify and Koa guides, run as
// printed, with only their example URLs, port and API key swapped for a real @oidc2/issuer and a
// port on 127.0.0.1: a signed request from @oidc2/client gets an answer verified as the service the
// snippet configures, and an unsigned one is refused. docs/redis.md runs twice on one real
// redis-server: a request replayed from one instance to the other is refused. docs/issuer.md's
// issuer certifies a user of the OpenID Provider it trusts.
import { createClient } from '@oidc2/client';
import { createIctVerifier, keyHandleFrom, signRequest } from '@oidc2/core';
import { apiKeys, createIssuer, hashApiKey, jwtAccessTokens, type ListeningIssuer } from '@oidc2/issuer';
import { join } from 'node:path';
import { newIssuer, newKey, type TestIssuer } from '../support/credentials';
import { listen, type RunningServer } from '../support/node-service';
import { describeWithRedis, freePort, startRedisServer, type RedisServer } from '../support/redis-server';
import { answering, runSnippet, substitute, type RunningSnippet } from './run-snippet';
import { ROOT, snippetsOf } from './snippets';

const README_KEY = 'docs-readme-key-'.padEnd(48, 'r');
const GUIDE_KEY = 'docs-guide-key-'.padEnd(48, 'g');
const PACKAGE_KEY = 'docs-package-key-'.padEnd(48, 'p');
const README_SERVICE = 'spiffe://example.com/orders';
const GUIDE_SERVICE = 'https://api.bank.example';
const PACKAGE_SERVICE = 'https://api.example.com';

let login: TestIssuer;
let issuerId: string;
let issuer: ListeningIssuer;
let accessToken: string;

beforeAll(async () => {
  login = await newIssuer('https://login.docs.test');
  const port = await freePort();
  issuerId = `http://127.0.0.1:${port}`;
  // One issuer certifies callers (from the login OP's access tokens) and both services (API key).
  const ictIssuer = await createIssuer({
    issuer: issuerId,
    authenticators: [
      jwtAccessTokens({ issuer: login.issuer, audience: issuerId, jwks: login.jwks }),
      apiKeys({
        keys: [
          { hash: hashApiKey(README_KEY), subject: README_SERVICE },
          { hash: hashApiKey(GUIDE_KEY), subject: GUIDE_SERVICE },
          { hash: hashApiKey(PACKAGE_KEY), subject: PACKAGE_SERVICE },
        ],
      }),
    ],
  });
  issuer = await ictIssuer.listen({ port });
  accessToken = await login.mint(await newKey(), { subject: 'alice', typ: 'at+jwt', claims: { aud: issuerId, scope: 'openid e2e_auth_orders', client_id: 'orders-app', cnf: undefined } });
});
afterAll(() => issuer?.close());

/** The snippet of `file` (relative to the root) that contains `marker`. */
function snippet(file: string, marker: string): string {
  const found = snippetsOf(join(ROOT, file)).filter((s) => s.code.includes(marker));
  if (found.length !== 1) throw new Error(`${file}: ${found.length} snippets contain ${marker}`);
  return found[0]!.code;
}

/** A user's client that accepts only `expectedService` as the answering service. */
const caller = (expectedService: string) => createClient({ serviceIssuers: [{ issuer: issuerId }], expectedService, issuer: { url: issuerId, credential: { accessToken }, subject: 'alice', clientId: 'orders-app' } });

describe('README: a service and its caller', () => {
  let service: RunningSnippet | undefined;
  let url: string;
  afterAll(() => service?.stop());

  it('the service answers a signed request, signed as its subject, and refuses an unsigned one', async () => {
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    const code = substitute(snippet('README.md', "from '@oidc2/express'"), [
      ['https://op.example.com', issuerId],
      ['https://api.example.com', url],
    ]);
    service = await runSnippet(`${code}\napp.listen(${port}, '127.0.0.1')\n`, { OIDC2_API_KEY: README_KEY });
    await answering(service, url);

    const unsigned = await fetch(`${url}/me`);
    expect(unsigned.status).toBe(401);
    expect(((await unsigned.json()) as { code: string }).code).toBe('ict_missing');
    const res = await caller(README_SERVICE)(`${url}/me`);
    expect(res.status).toBe(200);
    expect(res.service.subject).toBe(README_SERVICE);
    expect(await res.json()).toEqual({ caller: 'alice' });
  });

  it('the caller, run as printed, prints the verified service and body', async () => {
    expect(service).toBeDefined();
    const code = substitute(snippet('README.md', "import { createClient } from '@oidc2/client'"), [
      ['https://op.example.com', issuerId],
      ['https://api.example.com', url],
    ]);
    // The reader's session: the user's access token from the login OP.
    const session = `const session = { accessToken: ${JSON.stringify(accessToken)}, userId: 'alice' }\n`;
    const run = await runSnippet(session + code);
    const { code: exit, stdout, stderr } = await run.exited;
    expect(stderr).toBe('');
    expect(exit).toBe(0);
    expect(stdout.trim()).toBe(`${README_SERVICE} { caller: 'alice' }`);
  });
});

interface Setup {
  file: string;
  /** The snippet's URLs of the issuer trusted for callers and of the service's own issuer. */
  callerIssuer: string;
  serviceIssuer: string;
  /** Its audience (the service's public base URL), its subject and the API key the issuer knows it by. */
  audience: string;
  subject: string;
  apiKey: string;
  listen: [RegExp, (port: number) => string];
  /** What the reader brings that the snippet uses: their route handlers. */
  prelude?: string;
}

const listenExpress: Setup['listen'] = [/\.listen\(8080\)/, (port) => `.listen(${port}, '127.0.0.1')`];
const listenFastify: Setup['listen'] = [/app\.listen\(\{ port: 8080 \}\)/, (port) => `app.listen({ port: ${port}, host: '127.0.0.1' })`];
const GUIDE = { callerIssuer: 'https://login.bank.example', serviceIssuer: 'https://issuer.bank.example', audience: GUIDE_SERVICE, subject: GUIDE_SERVICE, apiKey: GUIDE_KEY };
const PACKAGE = { callerIssuer: 'https://login.example.com', serviceIssuer: 'https://issuer.example.com', audience: PACKAGE_SERVICE, subject: PACKAGE_SERVICE, apiKey: PACKAGE_KEY };
const SETUPS: Setup[] = [
  { file: 'docs/express.md', ...GUIDE, listen: listenExpress },
  { file: 'docs/fastify.md', ...GUIDE, listen: listenFastify },
  { file: 'docs/koa.md', ...GUIDE, listen: listenExpress },
  {
    file: 'packages/express/README.md',
    ...PACKAGE,
    listen: listenExpress,
    prelude: "const transfer = (_req: unknown, res: { status(code: number): { end(): void } }) => res.status(204).end()\n",
  },
  {
    file: 'packages/fastify/README.md',
    ...PACKAGE,
    listen: listenFastify,
    prelude: 'const transfer = async () => ({ done: true })\n',
  },
  { file: 'packages/koa/README.md', ...PACKAGE, listen: listenExpress },
  { file: 'packages/node/README.md', ...PACKAGE, listen: listenExpress },
];

describe('the framework set-ups', () => {
  // Started together: each is a Node process of its own, so they start in parallel.
  const started = new Map<string, Promise<{ url: string; service: RunningSnippet }>>();
  beforeAll(() => {
    for (const { file, callerIssuer, serviceIssuer, audience, apiKey, listen: [listenCall, listenOn], prelude = '' } of SETUPS) {
      const start = async () => {
        const port = await freePort();
        const url = `http://127.0.0.1:${port}`;
        const code = substitute(snippet(file, 'serviceCredential('), [
          [callerIssuer, issuerId],
          [serviceIssuer, issuerId],
          // The audience only: the service's subject stays the one the snippet asks the issuer for.
          [`audiences: ['${audience}']`, `audiences: ['${url}']`],
          [listenCall, listenOn(port)],
        ]);
        return { url, service: await runSnippet(prelude + code, { OIDC2_API_KEY: apiKey }) };
      };
      const promise = start();
      promise.catch(() => undefined); // reported by the test of that file
      started.set(file, promise);
    }
  });
  afterAll(async () => {
    for (const promise of started.values()) await promise.then(({ service }) => service.stop(), () => undefined);
  });

  it.each(SETUPS)('$file: answers a signed request with the caller, signed as the configured subject; refuses an unsigned one', async ({ file, subject }) => {
    const { url, service } = await started.get(file)!;
    await answering(service, url);

    const unsigned = await fetch(`${url}/me`);
    expect(unsigned.status).toBe(401);
    expect(((await unsigned.json()) as { code: string }).code).toBe('ict_missing');
    const res = await caller(subject)(`${url}/me`);
    expect(res.status).toBe(200);
    expect(res.service.subject).toBe(subject);
    expect(((await res.json()) as { subject: string }).subject).toBe('alice');
  });
});

describeWithRedis('docs/redis.md')('docs/redis.md: the set-up', () => {
  let redis: RedisServer;
  const instances: RunningSnippet[] = [];
  beforeAll(async () => {
    redis = await startRedisServer({ host: '127.0.0.1', port: await freePort() });
  });
  afterAll(async () => {
    for (const instance of instances) await instance.stop();
    await redis?.stop();
  });

  it('two instances of one audience share the replay store: a request replayed to the other is replay_detected', async () => {
    const urls: string[] = [];
    for (let i = 0; i < 2; i++) {
      const port = await freePort();
      // The snippet as printed, audience included (both instances serve it), plus the route and the port.
      const code = substitute(snippet('docs/redis.md', 'RedisReplayStore({ client })'), [
        ['https://login.bank.example', issuerId],
        ['https://issuer.bank.example', issuerId],
      ]);
      const log = 'const log = { warn: (...args: unknown[]) => console.error(...args) }\n';
      const route = `\napp.get('/me', (req, res) => { res.json({ subject: req.identity?.subject }) })\napp.listen(${port}, '127.0.0.1')\n`;
      const { host, port: redisPort } = redis.address as { host: string; port: number };
      instances.push(await runSnippet(log + code + route, { OIDC2_API_KEY: GUIDE_KEY, REDIS_URL: `redis://${host}:${redisPort}` }));
      urls.push(`http://127.0.0.1:${port}`);
      await answering(instances[i]!, urls[i]!);
    }

    // One signed request, for the audience both instances serve, sent to each in turn.
    const keyPair = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify'])) as CryptoKeyPair;
    const ict = await createClient({ serviceIssuers: [{ issuer: issuerId }], keyPair, issuer: { url: issuerId, credential: { accessToken }, subject: 'alice', clientId: 'orders-app' } }).ict();
    const signed = await signRequest({ method: 'GET', url: `${urls[0]}/me` }, { ict, key: keyHandleFrom(keyPair.privateKey, 'ES256', 'sign'), audience: `${GUIDE_SERVICE}/me`, signResponse: false });
    const send = (url: string) => fetch(`${url}/me`, { headers: Object.entries(signed.headers).flatMap(([name, lines]) => lines.map((line) => [name, line] as [string, string])) });

    const first = await send(urls[0]!);
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ subject: 'alice' });
    const replayed = await send(urls[1]!);
    expect(replayed.status).toBe(401);
    expect(((await replayed.json()) as { code: string }).code).toBe('replay_detected');
  });
});

describe('docs/issuer.md: the set-up', () => {
  let jwks: RunningServer;
  let service: RunningSnippet | undefined;
  afterAll(async () => {
    await service?.stop();
    await jwks?.close();
  });

  it("issues a user's ICT for the access token of the OpenID Provider it trusts, with the client's contexts", async () => {
    // The OpenID Provider's JWKS, where the snippet's jwksUri points.
    jwks = await listen((_req, res) => res.end(JSON.stringify(login.jwks)));
    const port = await freePort();
    const ictIssuer = `http://127.0.0.1:${port}/oidc2`;
    const code = substitute(snippet('docs/issuer.md', "app.use('/oidc2', issuer.nodeHandler)"), [
      ['https://login.bank.example/jwks', `${jwks.url}/jwks`],
      ['https://login.bank.example', login.issuer],
      ['https://op.bank.example/oidc2', ictIssuer],
      ['app.listen(8080)', `app.listen(${port}, '127.0.0.1')`],
    ]);
    service = await runSnippet(code);
    await answering(service, ictIssuer);

    // A user of the snippet's client 'mail-app' who granted the email context.
    const token = await login.mint(await newKey(), { subject: 'bob', typ: 'at+jwt', claims: { aud: ictIssuer, scope: 'openid e2e_auth_email', client_id: 'mail-app', cnf: undefined } });
    const ict = await createClient({ serviceIssuers: [{ issuer: ictIssuer }], issuer: { url: ictIssuer, credential: { accessToken: token }, subject: 'bob', clientId: 'mail-app' } }).ict();
    const verified = await createIctVerifier({ issuers: [{ issuer: ictIssuer }] }).verify(ict); // keys by discovery
    expect(verified.subject).toBe('bob');
    expect(verified.contexts).toEqual(['email']);
  });
});
