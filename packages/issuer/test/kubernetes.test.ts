// Workload attestation with Kubernetes projected service-account tokens, against a local "cluster
// issuer": a loopback server that serves discovery and JWKS as the API server does
// (/.well-known/openid-configuration, /openid/v1/jwks) and mints RS256 tokens shaped like the
// TokenRequest API's.
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { createWitVerifier } from '@oidc2/core';
import {
  clientAssertions,
  createIssuer,
  ICT_TOKEN_TYPE,
  JWT_BEARER_ASSERTION_TYPE,
  JWT_TOKEN_TYPE,
  kubernetesServiceAccounts,
  TOKEN_EXCHANGE_GRANT_TYPE,
  WIT_TOKEN_TYPE,
  type ClientAuthenticator,
  type Issuer,
  type KubernetesServiceAccountOptions,
} from '@oidc2/issuer';
import { clock, dpopProof, form, keyPair, lateServer, popToken, T0, type KeyPair } from './helpers';

const clk = clock();
beforeEach(() => clk.set(T0));
const AUDIENCE = 'https://wit.example.org';

interface Cluster {
  url: string;
  fetches: string[];
  /** A projected service-account token; `claims` override or (as undefined) remove members. */
  token(claims?: Record<string, unknown>, options?: { key?: CryptoKey; lifetime?: number; typ?: string }): Promise<string>;
  close(): Promise<void>;
}

/** A cluster issuer: OIDC discovery and JWKS as kube-apiserver serves them, tokens as it signs them. */
async function cluster(): Promise<Cluster> {
  const srv = await lateServer();
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const kid = 'k8s-' + randomUUID().slice(0, 8);
  const jwks = { keys: [{ ...(await exportJWK(publicKey)), use: 'sig', kid, alg: 'RS256' }] };
  const fetches: string[] = [];
  srv.use((req, res) => {
    fetches.push(req.url ?? '');
    res.setHeader('content-type', 'application/json');
    if (req.url === '/.well-known/openid-configuration') {
      return res.end(
        JSON.stringify({
          issuer: srv.url,
          jwks_uri: `${srv.url}/openid/v1/jwks`,
          response_types_supported: ['id_token'],
          subject_types_supported: ['public'],
          id_token_signing_alg_values_supported: ['RS256'],
        }),
      );
    }
    if (req.url === '/openid/v1/jwks') return res.end(JSON.stringify(jwks));
    res.statusCode = 404;
    res.end('{}');
  });
  return {
    url: srv.url,
    fetches,
    async token(claims = {}, options = {}) {
      const iat = clk.now();
      const payload: Record<string, unknown> = {
        aud: [AUDIENCE],
        exp: iat + (options.lifetime ?? 3600),
        iat,
        iss: srv.url,
        jti: randomUUID(),
        'kubernetes.io': {
          namespace: 'payments',
          node: { name: 'worker-1', uid: randomUUID() },
          pod: { name: 'billing-7d4b9c-xk2lp', uid: randomUUID() },
          serviceaccount: { name: 'billing', uid: randomUUID() },
          warnafter: iat + 2880,
        },
        nbf: iat,
        sub: 'system:serviceaccount:payments:billing',
      };
      for (const [k, v] of Object.entries(claims)) {
        if (v === undefined) delete payload[k];
        else payload[k] = v;
      }
      return new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid, ...(options.typ ? { typ: options.typ } : {}) }).sign(options.key ?? privateKey);
    },
    close: srv.close,
  };
}

/** The kubernetes.io claim with some members replaced. */
function k8s(extra: Record<string, unknown>): Record<string, unknown> {
  return {
    'kubernetes.io': {
      namespace: 'payments',
      pod: { name: 'billing-7d4b9c-xk2lp', uid: randomUUID() },
      serviceaccount: { name: 'billing', uid: randomUUID() },
      ...extra,
    },
  };
}

interface Answer {
  status: number;
  body: Record<string, any>;
}

async function post(url: string, body: string, headers: Record<string, string>): Promise<Answer> {
  const res = await fetch(url, { method: 'POST', body, headers });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

function expectError(answer: Answer, status: number, code: string, error?: string): void {
  expect({ status: answer.status, code: answer.body.code }).toEqual({ status, code });
  if (error !== undefined) expect(answer.body.error).toBe(error);
}

async function serve(authenticators: ClientAuthenticator[]): Promise<{ url: string; issuer: Issuer; close(): Promise<void> }> {
  const srv = await lateServer();
  const issuer = await createIssuer({ issuer: srv.url, now: clk.now, authenticators, workloads: { trustDomain: 'example.org' } });
  srv.use(issuer.nodeHandler);
  return { url: srv.url, issuer, close: srv.close };
}

let cl: Cluster;
let iss: Awaited<ReturnType<typeof serve>>;
let assertionKey: KeyPair;
const pods = (extra: Partial<KubernetesServiceAccountOptions> = {}) => kubernetesServiceAccounts({ issuer: cl.url, audience: AUDIENCE, trustDomain: 'example.org', contexts: ['payments'], ...extra });

beforeAll(async () => {
  cl = await cluster();
  assertionKey = await keyPair();
  iss = await serve([clientAssertions({ clients: { reporting: { jwks: { keys: [assertionKey.publicJwk] }, subject: 'spiffe://example.org/reporting' } } }), pods()]);
});
afterAll(async () => {
  await iss.close();
  await cl.close();
});

/** The WIT endpoint with `sat` as client assertion and a PoP token of `kp`. */
async function witRequest(sat: string, options: { url?: string; kp?: KeyPair; sub?: string; popIss?: string } = {}): Promise<Answer> {
  const url = options.url ?? iss.url;
  const pop = await popToken(options.kp ?? (await keyPair()), { iss: options.popIss ?? 'pod', sub: options.sub ?? 'spiffe://example.org/ns/payments/sa/billing', aud: url }, { now: clk.now() });
  return post(`${url}/wit`, form({ pop_token: pop, client_assertion_type: JWT_BEARER_ASSERTION_TYPE, client_assertion: sat }), { 'content-type': 'application/x-www-form-urlencoded' });
}

function witVerifier(url = iss.url) {
  return createWitVerifier({ trustDomains: [{ trustDomain: 'example.org', issuer: url }], now: clk.now });
}

describe('a pod attests with its projected service-account token', () => {
  test('WIT endpoint: spiffe://<trust domain>/ns/<namespace>/sa/<service account>, keys discovered once', async () => {
    const before = cl.fetches.length;
    for (let i = 0; i < 3; i++) {
      const answer = await witRequest(await cl.token());
      expect(answer.status).toBe(201);
      const wit = await witVerifier().verify(answer.body.workload_identity_token);
      expect(wit.subject).toBe('spiffe://example.org/ns/payments/sa/billing');
    }
    // Discovery and JWKS at most once each, and only from the configured cluster issuer.
    expect(cl.fetches.slice(before).filter((p) => p === '/.well-known/openid-configuration').length).toBeLessThanOrEqual(1);
    expect(cl.fetches.slice(before).filter((p) => p === '/openid/v1/jwks').length).toBeLessThanOrEqual(1);
    expect(new Set(cl.fetches)).toEqual(new Set(['/.well-known/openid-configuration', '/openid/v1/jwks']));
  });

  test('the WIT never outlives the service-account token', async () => {
    const answer = await witRequest(await cl.token({}, { lifetime: 600 }));
    expect(answer.status).toBe(201);
    expect(answer.body.expires_in).toBe(600);
  });

  test('token exchange: the token as subject_token of type jwt, for a WIT or an ICT', async () => {
    for (const [requested, issued] of [
      [WIT_TOKEN_TYPE, WIT_TOKEN_TYPE],
      [ICT_TOKEN_TYPE, ICT_TOKEN_TYPE],
    ]) {
      const kp = await keyPair();
      const answer = await post(
        `${iss.url}/token`,
        form({ grant_type: TOKEN_EXCHANGE_GRANT_TYPE, subject_token: await cl.token(), subject_token_type: JWT_TOKEN_TYPE, requested_token_type: requested! }),
        { 'content-type': 'application/x-www-form-urlencoded', dpop: await dpopProof(kp, { htm: 'POST', htu: `${iss.url}/token` }, { now: T0 }) },
      );
      expect(answer.status).toBe(200);
      expect(answer.body.issued_token_type).toBe(issued);
    }
  });

  test('the ICT endpoint: the identifier is the ICT sub, with the configured contexts', async () => {
    const pop = await popToken(await keyPair(), { iss: 'pod', sub: 'spiffe://example.org/ns/payments/sa/billing', aud: iss.url }, { now: T0 });
    const answer = await post(`${iss.url}/ict`, form({ pop_token: pop, client_assertion_type: JWT_BEARER_ASSERTION_TYPE, client_assertion: await cl.token() }), {
      'content-type': 'application/x-www-form-urlencoded',
    });
    expect(answer.status).toBe(201);
    expect(answer.body.e2e_auth_contexts).toEqual(['payments']);
  });

  test('clientAssertions earlier in the chain still serves its own clients and passes the pod on', async () => {
    const assertion = await new SignJWT({ iss: 'reporting', sub: 'reporting', aud: `${iss.url}/wit`, iat: T0, exp: T0 + 60, jti: randomUUID() })
      .setProtectedHeader({ alg: 'ES256' })
      .sign(assertionKey.privateKey);
    const answer = await witRequest(assertion, { sub: 'spiffe://example.org/reporting', popIss: 'reporting' });
    expect(answer.status).toBe(201);
    expect((await witVerifier().verify(answer.body.workload_identity_token)).subject).toBe('spiffe://example.org/reporting');
  });

  test('a subject template or function maps the token to another identifier', async () => {
    const templated = await serve([pods({ subject: 'spiffe://example.org/k8s/{namespace}/{serviceAccount}/{pod}' })]);
    const fn = await serve([pods({ subject: (sa) => `spiffe://example.org/team/${sa.namespace === 'payments' ? 'fin' : 'other'}` })]);
    try {
      const a = await witRequest(await cl.token(), { url: templated.url, sub: 'spiffe://example.org/k8s/payments/billing/billing-7d4b9c-xk2lp' });
      expect((await witVerifier(templated.url).verify(a.body.workload_identity_token)).subject).toBe('spiffe://example.org/k8s/payments/billing/billing-7d4b9c-xk2lp');
      const b = await witRequest(await cl.token(), { url: fn.url, sub: 'spiffe://example.org/team/fin' });
      expect((await witVerifier(fn.url).verify(b.body.workload_identity_token)).subject).toBe('spiffe://example.org/team/fin');
    } finally {
      await templated.close();
      await fn.close();
    }
  });

  test('requirePod: false accepts a token bound to no pod (kubectl create token)', async () => {
    const loose = await serve([pods({ requirePod: false })]);
    try {
      const token = await cl.token(k8s({ pod: undefined }));
      expect((await witRequest(token, { url: loose.url })).status).toBe(201);
      expectError(await witRequest(token), 401, 'client_invalid', 'invalid_client');
    } finally {
      await loose.close();
    }
  });
});

describe('rejections', () => {
  test.each<[string, Record<string, unknown>, { lifetime?: number; typ?: string }]>([
    ['another audience', { aud: ['https://kubernetes.default.svc.cluster.local'] }, {}],
    ['no audience', { aud: undefined }, {}],
    ['no exp (a legacy secret-based token)', { exp: undefined }, {}],
    ['no iat', { iat: undefined }, {}],
    ['not valid yet', { nbf: T0 + 600 }, {}],
    ['a lifetime over maxLifetime (an extended year-long token)', {}, { lifetime: 365 * 86400 }],
    ['a sub that is not its service account', { sub: 'system:serviceaccount:payments:admin' }, {}],
    ['a sub of another namespace', { sub: 'system:serviceaccount:kube-system:billing' }, {}],
    ['no kubernetes.io claim', { 'kubernetes.io': undefined }, {}],
    ['a malformed namespace', k8s({ namespace: 'Payments/../x' }), {}],
    ['a service account without uid', k8s({ serviceaccount: { name: 'billing' } }), {}],
    ['a malformed pod', k8s({ pod: { name: 'x' } }), {}],
    ['a token bound to no pod', k8s({ pod: undefined }), {}],
    ['the typ of another token', {}, { typ: 'wit+jwt' }],
    // Every row has three members: jest hands a `done` callback to a test taking more arguments than its row.
  ])('%s: 401 client_invalid', async (_name, claims, options) => {
    expectError(await witRequest(await cl.token(claims, options)), 401, 'client_invalid', 'invalid_client');
  });

  test('expired: 401 client_invalid at the WIT endpoint, 400 invalid_request at the token endpoint', async () => {
    const token = await cl.token({}, { lifetime: 600 });
    clk.advance(600 + 61);
    expectError(await witRequest(token), 401, 'client_invalid', 'invalid_client');
    const answer = await post(`${iss.url}/token`, form({ grant_type: TOKEN_EXCHANGE_GRANT_TYPE, subject_token: token, subject_token_type: JWT_TOKEN_TYPE, requested_token_type: WIT_TOKEN_TYPE }), {
      'content-type': 'application/x-www-form-urlencoded',
      dpop: await dpopProof(await keyPair(), { htm: 'POST', htu: `${iss.url}/token` }, { now: clk.now() }),
    });
    expectError(answer, 400, 'client_invalid', 'invalid_request');
  });

  test('signed by a key the cluster does not publish: 401 client_invalid', async () => {
    const { privateKey } = await generateKeyPair('RS256');
    expectError(await witRequest(await cl.token({}, { key: privateKey })), 401, 'client_invalid');
  });

  test('from an unknown cluster issuer: 401 client_invalid, and nothing fetched from it', async () => {
    const other = await cluster();
    try {
      expectError(await witRequest(await other.token()), 401, 'client_invalid', 'invalid_client');
      // Same token claims, issuer rewritten to the trusted cluster but signed by the other one.
      expectError(await witRequest(await other.token({ iss: cl.url })), 401, 'client_invalid');
      expect(other.fetches).toEqual([]);
    } finally {
      await other.close();
    }
  });

  test('a namespace outside the allow-list: 403 access_denied', async () => {
    const only = await serve([pods({ namespaces: ['frontend'] })]);
    try {
      expectError(await witRequest(await cl.token(), { url: only.url }), 403, 'access_denied', 'access_denied');
    } finally {
      await only.close();
    }
  });

  test('a mapping that yields an identifier outside the trust domain: 403 access_denied', async () => {
    const elsewhere = await serve([pods({ subject: 'spiffe://other.org/ns/{namespace}/sa/{serviceAccount}' })]);
    try {
      expectError(await witRequest(await cl.token(), { url: elsewhere.url, sub: 'spiffe://other.org/ns/payments/sa/billing' }), 403, 'access_denied', 'access_denied');
    } finally {
      await elsewhere.close();
    }
  });

  test('a template placeholder the token cannot fill, or a function yielding nothing: 403 access_denied', async () => {
    const byPod = await serve([pods({ requirePod: false, subject: 'spiffe://example.org/pod/{podUid}' })]);
    const none = await serve([pods({ subject: () => undefined })]);
    try {
      expectError(await witRequest(await cl.token(k8s({ pod: undefined })), { url: byPod.url }), 403, 'access_denied');
      expectError(await witRequest(await cl.token(), { url: none.url }), 403, 'access_denied');
    } finally {
      await byPod.close();
      await none.close();
    }
  });

  test('a cluster whose keys cannot be fetched: 503 issuer_unavailable, never a success', async () => {
    const gone = await cluster();
    const token = await gone.token();
    await gone.close();
    const down = await serve([kubernetesServiceAccounts({ issuer: gone.url, audience: AUDIENCE, trustDomain: 'example.org', remoteKeys: { timeout: 1 } })]);
    try {
      expectError(await witRequest(token, { url: down.url }), 503, 'issuer_unavailable', 'temporarily_unavailable');
    } finally {
      await down.close();
    }
  });

  test('a discovery document naming another issuer: 503 issuer_unavailable', async () => {
    const liar = await lateServer();
    liar.use((_req, res) => res.end(JSON.stringify({ issuer: 'https://kubernetes.default.svc', jwks_uri: `${liar.url}/openid/v1/jwks` })));
    const down = await serve([kubernetesServiceAccounts({ issuer: liar.url, audience: AUDIENCE, trustDomain: 'example.org' })]);
    try {
      expectError(await witRequest(await cl.token({ iss: liar.url }), { url: down.url }), 503, 'issuer_unavailable');
    } finally {
      await down.close();
      await liar.close();
    }
  });
});

describe('options are checked at construction', () => {
  const jwks = { keys: [{ kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0' } as JWK] };
  const base = { issuer: 'https://k8s.example.org', audience: AUDIENCE, trustDomain: 'example.org', jwks };
  const thrown = (extra: Record<string, unknown>) => {
    try {
      kubernetesServiceAccounts({ ...base, ...extra } as KubernetesServiceAccountOptions);
    } catch (err) {
      const e = err as { name: string; code: string; message: string };
      return { name: e.name, code: e.code, message: e.message };
    }
    return undefined;
  };

  test.each([
    ['kubernetesServiceAccounts options.namespace', { namespace: 'x' }],
    ['kubernetesServiceAccounts options.remoteKeys.maxBytes', { remoteKeys: { maxBytes: 1 } }],
  ])('unknown key %s: ERR_UNKNOWN_OPTION', (path, extra) => {
    const err = thrown(extra);
    expect({ name: err?.name, code: err?.code, namesPath: err?.message.includes(path) }).toEqual({ name: 'TypeError', code: 'ERR_UNKNOWN_OPTION', namesPath: true });
  });

  test.each<[string, Record<string, unknown>]>([
    ['no audience', { audience: [] }],
    ['neither trustDomain nor subject', { trustDomain: undefined }],
    ['{trustDomain} without a trust domain', { trustDomain: undefined, subject: 'spiffe://{trustDomain}/x' }],
    ['an upper-case trust domain', { trustDomain: 'Example.org' }],
    ['an unknown placeholder', { subject: 'spiffe://example.org/{namespaces}' }],
    ['a symmetric algorithm', { algorithms: ['HS256'] }],
    ['a zero maxLifetime', { maxLifetime: 0 }],
    ['requirePod that is not a boolean', { requirePod: 'yes' }],
    ['a plain-http jwksUri on a public host', { jwks: undefined, jwksUri: 'http://k8s.example.org/openid/v1/jwks' }],
    ['both jwks and jwksUri', { jwksUri: 'https://k8s.example.org/openid/v1/jwks' }],
    ['discovery from a plain-http public issuer', { jwks: undefined, issuer: 'http://k8s.example.org' }],
  ])('%s: TypeError', (_name, extra) => {
    expect(thrown(extra)?.name).toBe('TypeError');
  });

  test('a subject function needs no trust domain', () => {
    expect(thrown({ trustDomain: undefined, subject: () => 'spiffe://example.org/x' })).toBeUndefined();
  });
});
