// End to end over real sockets: a pod attests to @oidc2/issuer with its Kubernetes projected
// service-account token and gets a WIT; a service using @oidc2/core (keys through the issuer's
// discovery document) accepts the workload's WIT + WPT calls; the workload then exchanges the WIT,
// proven with its key, for an ICT and calls the same service with it as a DPoP-bound token.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { createAuthenticator, createDpopProof, importKey, isOidc2Error, normalizeFields, wimseTokenHash, type HttpRequest } from '@oidc2/core';
import {
  createIssuer,
  ICT_TOKEN_TYPE,
  JWT_BEARER_ASSERTION_TYPE,
  kubernetesServiceAccounts,
  TOKEN_EXCHANGE_GRANT_TYPE,
  WIT_TOKEN_TYPE,
  type ListeningIssuer,
} from '@oidc2/issuer';

const SERVICE = 'https://orders.e2e.test';
const WORKLOAD = 'spiffe://e2e.test/ns/shop/sa/checkout';

interface Pair {
  alg: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
  privateJwk: JWK;
}

async function pair(alg = 'ES256'): Promise<Pair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { alg, privateKey, publicJwk: await exportJWK(publicKey), privateJwk: await exportJWK(privateKey) };
}

async function listen(handler: Parameters<typeof createServer>[1]): Promise<{ url: string; server: Server }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

const close = (server: Server) =>
  new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });

let cluster: { url: string; server: Server; key: Pair };
let issuerId: string;
let issuer: ListeningIssuer;
let discovery: Record<string, string>;
// The service: ICTs and WITs of the issuer, both with keys through its discovery document.
let service: ReturnType<typeof createAuthenticator>;
const now = () => Math.floor(Date.now() / 1000);

beforeAll(async () => {
  // The cluster issuer: discovery and JWKS as kube-apiserver serves them.
  const key = await pair('RS256');
  const jwks = { keys: [{ ...key.publicJwk, kid: 'k8s-1', alg: 'RS256', use: 'sig' }] };
  const c = await listen((req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.url === '/.well-known/openid-configuration') {
      return res.end(JSON.stringify({ issuer: c.url, jwks_uri: `${c.url}/openid/v1/jwks`, response_types_supported: ['id_token'], subject_types_supported: ['public'], id_token_signing_alg_values_supported: ['RS256'] }));
    }
    if (req.url === '/openid/v1/jwks') return res.end(JSON.stringify(jwks));
    res.statusCode = 404;
    res.end('{}');
  });
  cluster = { ...c, key };

  // The issuer's URL must be known before it is created: take a free port, then listen on it.
  const probe = await listen(() => undefined);
  const port = Number(new URL(probe.url).port);
  await close(probe.server);
  issuerId = `http://127.0.0.1:${port}`;
  const created = await createIssuer({
    issuer: issuerId,
    authenticators: [kubernetesServiceAccounts({ issuer: cluster.url, audience: issuerId, trustDomain: 'e2e.test' })],
    workloads: { trustDomain: 'e2e.test' },
    subjects: { [WORKLOAD]: { contexts: ['orders'] } },
  });
  issuer = await created.listen({ port });
  discovery = (await (await fetch(`${issuerId}/.well-known/openid-configuration`)).json()) as Record<string, string>;
  service = createAuthenticator({
    issuers: [{ issuer: issuerId }],
    audiences: [SERVICE],
    workloads: { trustDomains: [{ trustDomain: 'e2e.test', issuer: issuerId }] },
  });
});

afterAll(async () => {
  await issuer.close();
  await close(cluster.server);
});

/** A projected service-account token for the pod, audience the issuer. */
function serviceAccountToken(): Promise<string> {
  const t = now();
  return new SignJWT({
    aud: [issuerId],
    exp: t + 3600,
    iat: t,
    nbf: t,
    iss: cluster.url,
    jti: randomUUID(),
    'kubernetes.io': { namespace: 'shop', pod: { name: 'checkout-5f7d8-abcde', uid: randomUUID() }, serviceaccount: { name: 'checkout', uid: randomUUID() } },
    sub: 'system:serviceaccount:shop:checkout',
  })
    .setProtectedHeader({ alg: 'RS256', kid: 'k8s-1' })
    .sign(cluster.key.privateKey);
}

async function obtainWit(key: Pair): Promise<string> {
  const t = now();
  const pop = await new SignJWT({ iss: 'checkout', sub: WORKLOAD, aud: issuerId, iat: t, exp: t + 60, jti: randomUUID() })
    .setProtectedHeader({ alg: key.alg, typ: 'jwt+pop', jwk: key.publicJwk })
    .sign(key.privateKey);
  const res = await fetch(discovery.wit_endpoint!, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ pop_token: pop, client_assertion_type: JWT_BEARER_ASSERTION_TYPE, client_assertion: await serviceAccountToken() }).toString(),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { workload_identity_token: string }).workload_identity_token;
}

function request(headers: Record<string, string>): HttpRequest {
  return { method: 'GET', url: '/orders', headers: normalizeFields({ host: 'orders.e2e.test', ...headers }) };
}

async function wpt(key: Pair, wit: string, aud = `${SERVICE}/orders`): Promise<string> {
  return new SignJWT({ aud, exp: now() + 60, jti: randomUUID(), wth: await wimseTokenHash(wit) }).setProtectedHeader({ alg: key.alg, typ: 'wpt+jwt' }).sign(key.privateKey);
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'accepted';
  } catch (err) {
    if (isOidc2Error(err)) return `${err.code}/${err.status}`;
    throw err;
  }
}

test('discovery names the WIT endpoint and the Workload Identifier Origin', () => {
  expect(discovery).toMatchObject({ wit_endpoint: `${issuerId}/wit`, workload_identifier_origin: 'spiffe://e2e.test' });
});

test('a pod attests with its service-account token; its WIT and WPT authenticate it at a service', async () => {
  const key = await pair('ES256');
  const wit = await obtainWit(key);
  const identity = await service.authenticate(request({ 'workload-identity-token': wit, authorization: `WPT ${await wpt(key, wit)}` }));
  expect(identity).toMatchObject({ subject: WORKLOAD, issuer: issuerId, proof: 'wpt' });
  // Another key cannot use the WIT; a WPT for another service is refused.
  expect(await codeOf(service.authenticate(request({ 'workload-identity-token': wit, authorization: `WPT ${await wpt(await pair(), wit)}` })))).toBe('wpt_invalid/400');
  expect(await codeOf(service.authenticate(request({ 'workload-identity-token': wit, authorization: `WPT ${await wpt(key, wit, 'https://other.e2e.test/orders')}` })))).toBe('wpt_invalid/400');
});

test('the WIT, proven with its key by DPoP, is exchanged for an ICT that authenticates DPoP calls', async () => {
  const key = await pair('Ed25519');
  const wit = await obtainWit(key);
  const handle = await importKey(key.privateJwk, 'Ed25519', 'sign');
  const exchange = await fetch(discovery.token_endpoint!, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      dpop: await createDpopProof({ method: 'POST', url: discovery.token_endpoint!, key: handle, jwk: key.publicJwk }),
    },
    body: new URLSearchParams({ grant_type: TOKEN_EXCHANGE_GRANT_TYPE, subject_token: wit, subject_token_type: WIT_TOKEN_TYPE, requested_token_type: ICT_TOKEN_TYPE }).toString(),
  });
  expect(exchange.status).toBe(200);
  const answer = (await exchange.json()) as { access_token: string; issued_token_type: string; scope: string };
  expect(answer).toMatchObject({ issued_token_type: ICT_TOKEN_TYPE, scope: 'e2e_auth_orders' });

  const ict = answer.access_token;
  const proof = await createDpopProof({ method: 'GET', url: `${SERVICE}/orders`, key: handle, jwk: key.publicJwk, accessToken: ict });
  const identity = await service.authenticate(request({ authorization: `DPoP ${ict}`, dpop: proof }));
  expect(identity).toMatchObject({ subject: WORKLOAD, issuer: issuerId, proof: 'dpop', contexts: ['orders'] });

  // The WIT is not an ICT, and the ICT is not a WIT.
  const asIct = await createDpopProof({ method: 'GET', url: `${SERVICE}/orders`, key: handle, jwk: key.publicJwk, accessToken: wit });
  expect(await codeOf(service.authenticate(request({ authorization: `DPoP ${wit}`, dpop: asIct })))).toMatch(/^ict_/);
  expect(await codeOf(service.authenticate(request({ 'workload-identity-token': ict, authorization: `WPT ${await wpt(key, ict)}` })))).toBe('wit_invalid/400');
});
