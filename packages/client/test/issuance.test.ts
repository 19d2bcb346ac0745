// The client obtaining its ICT from a real @oidc2/issuer over loopback, in both request forms and
// with each kind of credential the issuer accepts.
import { createClient, serviceCredential, type ClientOptions, type IssuanceOptions } from '@oidc2/client';
import { apiKeys, clientAssertions, createIssuer, hashApiKey, jwtAccessTokens, type IssuerOptions, type ListeningIssuer } from '@oidc2/issuer';
import { SignJWT, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import { newIssuer, newKey, type TestIssuer } from '../../../test/support/credentials';
import { listen, startNodeService, type RunningServer } from '../../../test/support/node-service';
import { settledCode as codeOf } from '../../../test/support/error-code';
import { SERVICE_URL, workloadService } from './support/workload-service';

const API_KEY = 'k'.repeat(43);
let login: TestIssuer; // the OAuth authorization server that issues users' access tokens
let services: TestIssuer;
let workloadJwks: { keys: JWK[] };
let workloadKey: JWK;
const running: Array<ListeningIssuer | RunningServer> = [];

beforeAll(async () => {
  login = await newIssuer('https://login.test.example');
  services = await newIssuer('https://attest.test.example');
  const pair = await generateKeyPair('ES256', { extractable: true });
  workloadKey = { ...(await exportJWK(pair.privateKey)), kid: 'w1', alg: 'ES256' };
  workloadJwks = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'w1', alg: 'ES256' }] };
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.close()));
});

async function startIssuer(extra: Partial<IssuerOptions> = {}): Promise<{ url: string; issuer: string }> {
  // The issuer identifier must be known before the port is: listen on a helper port first.
  const probe = await listen(() => undefined);
  const port = new URL(probe.url).port;
  await probe.close();
  const issuer = `http://127.0.0.1:${port}`;
  const server = await createIssuer({
    issuer,
    authenticators: [
      jwtAccessTokens({ issuer: login.issuer, audience: issuer, jwks: login.jwks }),
      apiKeys({ keys: [{ hash: hashApiKey(API_KEY), subject: 'spiffe://test.example/batch', contexts: ['batch'] }] }),
      clientAssertions({ clients: { billing: { jwks: workloadJwks, subject: 'spiffe://test.example/billing', contexts: ['billing'] } } }),
    ],
    ...extra,
  });
  running.push(await server.listen({ port: Number(port) }));
  return { url: issuer, issuer };
}

async function accessToken(issuer: string, scope = 'openid e2e_auth_payments e2e_auth_profile'): Promise<string> {
  const key = await importJWK(login.key.privateJwk, 'ES256');
  return new SignJWT({ scope, client_id: 'spa' })
    .setProtectedHeader({ alg: 'ES256', kid: login.kid, typ: 'at+jwt' })
    .setIssuer(login.issuer)
    .setAudience(issuer)
    .setSubject('alice')
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(key);
}

async function assertion(issuer: string): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: 'w1' })
    .setIssuer('billing')
    .setSubject('billing')
    .setAudience(issuer)
    .setJti(crypto.randomUUID())
    .setIssuedAt()
    .setExpirationTime('2m')
    .sign(await importJWK(workloadKey, 'ES256'));
}

function client(issuer: IssuanceOptions, extra: Partial<ClientOptions> = {}) {
  return createClient({ serviceIssuers: [{ issuer: services.issuer, jwks: services.jwks }], issuer, ...extra });
}

describe('client ICT issuance from @oidc2/issuer', () => {
  it.each(['ict', 'token-exchange'] as const)('%s: a user with an access token gets an ICT for its key', async (grant) => {
    const { issuer } = await startIssuer();
    const token = await accessToken(issuer);
    const api = client({ url: issuer, grant, credential: { accessToken: () => token }, subject: 'alice', clientId: 'spa' });
    const claims = decodeJwt(await api.ict());
    expect(claims.iss).toBe(issuer);
    expect(claims.sub).toBe('alice');
    expect(claims.ctx).toEqual(['payments', 'profile']);
    expect(claims.cnf).toEqual({ jwk: { ...(await api.publicKey()), alg: 'ES256' } });
  });

  it.each([
    ['ict', 'ES256'],
    ['ict', 'Ed25519'],
    ['token-exchange', 'ES256'],
    ['token-exchange', 'Ed25519'],
  ] as const)('%s with %s: a workload with an API key gets an ICT and calls a service with it', async (grant, algorithm) => {
    const { issuer } = await startIssuer();
    const serviceKey = await newKey();
    const svc = await startNodeService({
      issuers: [{ issuer }],
      credential: { ict: await services.mint(serviceKey, { subject: 'spiffe://test.example/ledger' }), privateKey: serviceKey.privateJwk },
    });
    running.push(svc);
    const api = client({ url: issuer, grant, credential: { apiKey: API_KEY }, subject: 'spiffe://test.example/batch' }, { algorithm });
    const response = await api(`${svc.url}/entries`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(await response.json()).toMatchObject({ caller: 'spiffe://test.example/batch' });
    expect(response.service.subject).toBe('spiffe://test.example/ledger');
    expect(decodeJwt(await api.ict()).ctx).toEqual(['batch']);
  });

  it.each(['ict', 'token-exchange'] as const)('%s: a workload with a fresh client assertion per issuance', async (grant) => {
    const { issuer } = await startIssuer();
    let made = 0;
    const api = client({
      url: issuer,
      grant,
      credential: {
        clientAssertion: () => {
          made++;
          return assertion(issuer);
        },
      },
      subject: 'spiffe://test.example/billing',
      clientId: 'billing',
    });
    expect(decodeJwt(await api.ict()).sub).toBe('spiffe://test.example/billing');
    expect(made).toBe(1);
  });

  it('token exchange: requests only the listed contexts', async () => {
    const { issuer } = await startIssuer();
    const token = await accessToken(issuer);
    const api = client({ url: issuer, grant: 'token-exchange', credential: { accessToken: token }, contexts: ['profile'] });
    expect(decodeJwt(await api.ict()).ctx).toEqual(['profile']);
    const greedy = client({ url: issuer, grant: 'token-exchange', credential: { accessToken: token }, contexts: ['admin'] });
    expect(await codeOf(greedy.ict())).toBe('context_not_allowed');
  });

  it('ict: requests claims with the PoP token', async () => {
    const { issuer } = await startIssuer({ subjects: { alice: { claims: { name: 'Alice', email: 'alice@test.example' } } } });
    const token = await accessToken(issuer);
    const api = client({ url: issuer, credential: { accessToken: token }, subject: 'alice', clientId: 'spa', requiredClaims: ['name'] });
    const claims = decodeJwt(await api.ict());
    expect(claims.name).toBe('Alice');
    expect(claims.email).toBeUndefined();
    const needy = client({ url: issuer, credential: { accessToken: token }, subject: 'alice', clientId: 'spa', requiredClaims: ['phone_number'] });
    expect(await codeOf(needy.ict())).toBe('claim_unavailable');
  });

  it('token exchange: retries once with the DPoP nonce the issuer asks for', async () => {
    const { issuer } = await startIssuer({ dpopNonces: true });
    let calls = 0;
    const counting: typeof fetch = (input, init) => {
      calls++;
      return fetch(input, init);
    };
    const api = client({ url: issuer, grant: 'token-exchange', credential: { apiKey: API_KEY } }, { fetch: counting });
    expect(decodeJwt(await api.ict()).sub).toBe('spiffe://test.example/batch');
    expect(calls).toBe(3); // discovery, the refused request, the retry
  });

  it('keeps the issuer’s error code when it refuses', async () => {
    const { issuer } = await startIssuer();
    expect(await codeOf(client({ url: issuer, credential: { apiKey: 'wrong'.repeat(9) }, subject: 'spiffe://test.example/batch' }).ict())).toBe('client_invalid');
    expect(await codeOf(client({ url: issuer, grant: 'token-exchange', credential: { apiKey: 'wrong'.repeat(9) } }).ict())).toBe('client_invalid');
    const token = await accessToken(issuer);
    expect(await codeOf(client({ url: issuer, credential: { accessToken: token }, subject: 'mallory', clientId: 'spa' }).ict())).toBe('pop_invalid');
    expect(await codeOf(client({ url: issuer, credential: { accessToken: await accessToken(issuer, 'openid') }, subject: 'alice', clientId: 'spa' }).ict())).toBe('context_required');
  });

  it('answers issuer_unavailable for an unreachable issuer, a foreign discovery document, a server error or an oversized answer', async () => {
    const closed = await listen(() => undefined);
    await closed.close();
    expect(await codeOf(client({ url: closed.url, credential: { apiKey: API_KEY }, subject: 's' }).ict())).toBe('issuer_unavailable');
    const impostor = await listen((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url === '/.well-known/openid-configuration') res.end(JSON.stringify({ issuer: 'https://elsewhere.example', ict_endpoint: 'http://127.0.0.1:1/ict' }));
      else if (req.url === '/huge') res.end(JSON.stringify({ identity_certification_token: 'x'.repeat(100_000) }));
      else {
        res.statusCode = 500;
        res.end('{"error":"server_error","code":"client_invalid"}');
      }
    });
    running.push(impostor);
    expect(await codeOf(client({ url: impostor.url, credential: { apiKey: API_KEY }, subject: 's' }).ict())).toBe('issuer_unavailable');
    const broken = client({ url: impostor.url, endpoint: `${impostor.url}/ict`, credential: { apiKey: API_KEY }, subject: 's' });
    expect(await codeOf(broken.ict())).toBe('issuer_unavailable');
    const flooding = client({ url: impostor.url, endpoint: `${impostor.url}/huge`, credential: { apiKey: API_KEY }, subject: 's' });
    expect(await codeOf(flooding.ict())).toBe('issuer_unavailable');
  });

  it.each([
    ['no credential', { url: 'https://op.example', subject: 's' }],
    ['two credentials', { url: 'https://op.example', subject: 's', credential: { apiKey: 'a', accessToken: 'b' } }],
    ['a client assertion that is not a function', { url: 'https://op.example', subject: 's', credential: { clientAssertion: 'x' } }],
    ['no subject for the ICT request', { url: 'https://op.example', credential: { apiKey: 'a' } }],
    ['a relative issuer', { url: '/op', subject: 's', credential: { apiKey: 'a' } }],
    ['an unknown grant', { url: 'https://op.example', grant: 'password', credential: { apiKey: 'a' } }],
    ['a bad timeout', { url: 'https://op.example', subject: 's', credential: { apiKey: 'a' }, timeout: 0 }],
  ])('throws TypeError for %s', (_name, issuer) => {
    expect(() => client(issuer as unknown as IssuanceOptions)).toThrow(TypeError);
  });

  it('refuses the former name issuer.issuer with ERR_UNKNOWN_OPTION naming issuer.url, in createClient and serviceCredential', () => {
    const former = { issuer: 'https://op.example', subject: 's', credential: { apiKey: 'a' } } as unknown as IssuanceOptions;
    const renamed = expect.objectContaining({ code: 'ERR_UNKNOWN_OPTION', message: 'options.issuer.issuer is now options.issuer.url' });
    expect(() => client(former)).toThrow(renamed);
    expect(() => serviceCredential({ issuer: former })).toThrow(renamed);
    // Any other unknown member is refused too.
    expect(() => serviceCredential({ issuer: { url: 'https://op.example', subject: 's', credential: { apiKey: 'a' }, audience: 'x' } as unknown as IssuanceOptions })).toThrow(
      expect.objectContaining({ code: 'ERR_UNKNOWN_OPTION' }),
    );
  });
});

describe('client WIT issuance from @oidc2/issuer (workloads)', () => {
  const WORKLOADS = { trustDomain: 'test.example' };
  const trustDomains = (issuer: string) => [{ trustDomain: 'test.example', issuer, jwksUri: `${issuer}/jwks` }];
  function workload(issuer: IssuanceOptions, extra: Partial<ClientOptions> = {}) {
    return createClient({ proof: 'wimse-signature', serviceTrustDomains: trustDomains(issuer.url), issuer, ...extra } as ClientOptions);
  }

  it.each([
    ['wit', 'ES256'],
    ['wit', 'Ed25519'],
    ['token-exchange', 'ES256'],
    ['token-exchange', 'Ed25519'],
  ] as const)('%s with %s: a workload with an API key gets a WIT for its key', async (grant, algorithm) => {
    const { issuer } = await startIssuer({ workloads: WORKLOADS });
    const api = workload({ url: issuer, grant, credential: { apiKey: API_KEY }, subject: 'spiffe://test.example/batch' }, { algorithm });
    const wit = await api.wit();
    expect(decodeProtectedHeader(wit).typ).toBe('wit+jwt');
    const claims = decodeJwt(wit);
    expect(claims).toMatchObject({ iss: issuer, sub: 'spiffe://test.example/batch', cnf: { jwk: { ...(await api.publicKey()), alg: algorithm } } });
    expect(claims.ctx).toBeUndefined();
  });

  it("grant 'wit' is the default for a workload proof; services verify its WITs by the issuer's keys, and answer with their own", async () => {
    const { issuer } = await startIssuer({ workloads: WORKLOADS });
    // The service holds a key of its own and its WIT from the same issuer.
    const pair = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify'])) as CryptoKeyPair;
    const serviceWit = await workload({ url: issuer, credential: { clientAssertion: () => assertion(issuer) }, subject: 'spiffe://test.example/billing', clientId: 'billing' }, { keyPair: pair }).wit();
    expect(decodeJwt(serviceWit).sub).toBe('spiffe://test.example/billing');
    const svc = workloadService({
      issuers: [{ issuer }],
      workloads: { trustDomains: trustDomains(issuer) },
      credentials: { wit: { wit: serviceWit, privateKey: pair.privateKey } },
    });
    // The service runs in process; the issuer on loopback.
    const route: typeof fetch = (input, init) => (String(input instanceof Request ? input.url : input).startsWith(SERVICE_URL) ? svc.fetch(input, init) : fetch(input, init));
    for (const proof of ['wimse-signature', 'wpt'] as const) {
      const api = workload({ url: issuer, credential: { apiKey: API_KEY }, subject: 'spiffe://test.example/batch' }, { proof, expectedService: 'spiffe://test.example/billing', fetch: route });
      const response = await api(`${SERVICE_URL}/entries`, { method: 'POST', body: '{}' });
      expect(await response.json()).toMatchObject({ caller: 'spiffe://test.example/batch', kind: 'workload', issuer, proof: proof === 'wpt' ? 'wpt' : 'http-signature' });
      expect(response.service).toMatchObject({ subject: 'spiffe://test.example/billing', issuer, trustDomain: 'test.example' });
    }
  });

  it('keeps the issuer’s error code when it refuses a WIT', async () => {
    const { issuer } = await startIssuer({ workloads: WORKLOADS });
    expect(await codeOf(workload({ url: issuer, credential: { apiKey: 'wrong'.repeat(9) }, subject: 'spiffe://test.example/batch' }).wit())).toBe('client_invalid');
    expect(await codeOf(workload({ url: issuer, grant: 'token-exchange', credential: { apiKey: 'wrong'.repeat(9) } }).wit())).toBe('client_invalid');
    // The PoP token names someone else than the workload.
    expect(await codeOf(workload({ url: issuer, credential: { apiKey: API_KEY }, subject: 'spiffe://test.example/other' }).wit())).toBe('pop_invalid');
    // A user is no workload.
    const user = workload({ url: issuer, credential: { accessToken: await accessToken(issuer) }, subject: 'alice', clientId: 'spa' });
    expect(await codeOf(user.wit())).toBe('access_denied');
  });

  it('an issuer without workloads advertises no WIT endpoint: issuer_unavailable', async () => {
    const { issuer } = await startIssuer();
    expect(await codeOf(workload({ url: issuer, credential: { apiKey: API_KEY }, subject: 'spiffe://test.example/batch' }).wit())).toBe('issuer_unavailable');
    // Token exchange for a WIT at such an issuer is refused with its code.
    expect(await codeOf(workload({ url: issuer, grant: 'token-exchange', credential: { apiKey: API_KEY } }).wit())).toBe('token_type_unsupported');
  });
});
