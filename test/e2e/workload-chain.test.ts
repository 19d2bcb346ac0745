// End to end over real sockets, workloads as first-class callers: a pod attests to @oidc2/issuer
// with its Kubernetes service-account token (a local cluster issuer serves discovery and JWKS) and
// gets a WIT; with @oidc2/client it calls service A (Express) with WIMSE HTTP signatures, carrying
// the Txn-Token of its transaction; A calls service B (Fastify) with its own workload client and
// forwards the same Txn-Token. Every answer is signed with the answering service's WIT and
// verified by its caller (B's by A's client, A's by the pod's). Also: one hop with a WPT, one
// end-to-end encrypted call, and every refusal a workload caller can meet, by its code.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import express from 'express';
import Fastify from 'fastify';
import { SignJWT, decodeJwt, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { createClient, type ClientOptions, type Oidc2Fetch } from '@oidc2/client';
import type { Identity, Oidc2Options } from '@oidc2/core';
import { oidc2 as expressOidc2, oidc2ErrorHandler } from '@oidc2/express';
import { oidc2 as fastifyOidc2 } from '@oidc2/fastify';
import { createIssuer, kubernetesServiceAccounts, type ListeningIssuer } from '@oidc2/issuer';
import { settledCode } from '../support/error-code';

const TRUST_DOMAIN = 'chain.test';
const id = (namespace: string, sa: string) => `spiffe://${TRUST_DOMAIN}/ns/${namespace}/sa/${sa}`;
const CHECKOUT = id('shop', 'checkout');
const ORDERS = id('shop', 'orders'); // service A
const LEDGER = id('finance', 'ledger'); // service B

interface Pair {
  privateKey: CryptoKey;
  publicJwk: JWK;
}

async function pair(alg: string): Promise<Pair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { privateKey, publicJwk: await exportJWK(publicKey) };
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const close = (server: Server) =>
  new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });

const now = () => Math.floor(Date.now() / 1000);
const servers: Server[] = [];
let cluster: { url: string; key: Pair };
let tts: { key: Pair; jwks: { keys: JWK[] } };
let issuerId: string;
let issuer: ListeningIssuer;
let a: { url: string; calls: number };
let b: { url: string; seen: Identity[] };
const closers: Array<() => Promise<void>> = [];

/** A projected service-account token for a pod of `namespace`/`sa`, audience the issuer, signed by the cluster (or by `key`). */
function serviceAccountToken(namespace: string, sa: string, key = cluster.key): Promise<string> {
  const t = now();
  return new SignJWT({
    iss: cluster.url,
    sub: `system:serviceaccount:${namespace}:${sa}`,
    aud: [issuerId],
    iat: t,
    nbf: t,
    exp: t + 3600,
    jti: randomUUID(),
    'kubernetes.io': { namespace, serviceaccount: { name: sa, uid: randomUUID() }, pod: { name: `${sa}-7d4b9c-xk2lp`, uid: randomUUID() } },
  })
    .setProtectedHeader({ alg: 'RS256', kid: 'k8s-1' })
    .sign(key.privateKey);
}

/** The trust domain as services and clients configure it: keys through the issuer's discovery document. */
const trustDomains = () => [{ trustDomain: TRUST_DOMAIN, issuer: issuerId }];

/** A workload client of the pod `namespace`/`sa`, attested by its service-account token at the issuer's WIT endpoint. */
function workloadClient(namespace: string, sa: string, extra: Partial<ClientOptions> = {}): Oidc2Fetch {
  return createClient({
    proof: 'wimse-signature',
    serviceTrustDomains: trustDomains(),
    issuer: { url: issuerId, grant: 'wit', subject: id(namespace, sa), credential: { clientAssertion: () => serviceAccountToken(namespace, sa) } },
    ...extra,
  } as ClientOptions);
}

/** A Txn-Token of the Transaction Token Service for the trust domain. */
function txnToken(txn: string): Promise<string> {
  const t = now();
  return new SignJWT({ txn, sub: 'alice@shop.chain.test', aud: TRUST_DOMAIN, iat: t, exp: t + 120, tctx: { order: 'o-1' } })
    .setProtectedHeader({ alg: 'ES256', kid: 'tts-1', typ: 'txntoken+jwt' })
    .sign(tts.key.privateKey);
}

/** What every route answers of its caller. */
const who = (identity: Identity | null | undefined) => ({
  caller: identity?.subject ?? null,
  kind: identity?.kind ?? null,
  proof: identity?.proof ?? null,
  transaction: identity?.transaction?.transactionId ?? null,
});

/** The options of a service in the trust domain: WIMSE callers, Txn-Tokens, and its own WIT from its workload client. */
function serviceOptions(url: string, self: Oidc2Fetch, key: CryptoKey): Oidc2Options {
  return {
    issuers: [{ issuer: issuerId }],
    audiences: [url],
    workloads: { trustDomains: trustDomains() },
    transactionTokens: { trustDomain: TRUST_DOMAIN, jwks: tts.jwks },
    credentials: { wit: async () => ({ wit: await self.wit(), privateKey: key }) },
  };
}

beforeAll(async () => {
  // The cluster issuer: discovery and JWKS as kube-apiserver serves them.
  const clusterKey = await pair('RS256');
  const clusterServer = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.url === '/.well-known/openid-configuration') {
      res.end(JSON.stringify({ issuer: cluster.url, jwks_uri: `${cluster.url}/openid/v1/jwks`, response_types_supported: ['id_token'], subject_types_supported: ['public'], id_token_signing_alg_values_supported: ['RS256'] }));
    } else if (req.url === '/openid/v1/jwks') {
      res.end(JSON.stringify({ keys: [{ ...clusterKey.publicJwk, kid: 'k8s-1', alg: 'RS256', use: 'sig' }] }));
    } else {
      res.statusCode = 404;
      res.end('{}');
    }
  });
  servers.push(clusterServer);
  cluster = { url: await listen(clusterServer), key: clusterKey };

  const ttsKey = await pair('ES256');
  tts = { key: ttsKey, jwks: { keys: [{ ...ttsKey.publicJwk, kid: 'tts-1', alg: 'ES256' }] } };

  // The issuer must know its URL before it listens: take a free port, then listen on it.
  const probe = createServer();
  const port = Number(new URL(await listen(probe)).port);
  await close(probe);
  issuerId = `http://127.0.0.1:${port}`;
  const created = await createIssuer({
    issuer: issuerId,
    authenticators: [kubernetesServiceAccounts({ issuer: cluster.url, audience: issuerId, trustDomain: TRUST_DOMAIN })],
    workloads: { trustDomain: TRUST_DOMAIN },
  });
  issuer = await created.listen({ port });

  // Service B, Fastify: answers who called and in which transaction.
  const bKeys = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify'])) as CryptoKeyPair;
  const bSelf = workloadClient('finance', 'ledger', { keyPair: bKeys });
  const bServer = createServer();
  servers.push(bServer);
  const bUrl = await listen(bServer);
  const bSeen: Identity[] = [];
  const fastify = Fastify({ serverFactory: (handler) => bServer.on('request', handler) });
  await fastify.register(fastifyOidc2, serviceOptions(bUrl, bSelf, bKeys.privateKey));
  fastify.post('/entries', async (request) => {
    bSeen.push(request.identity!);
    return { service: 'ledger', ...who(request.identity), received: request.body };
  });
  await fastify.ready();
  closers.push(() => fastify.close());
  b = { url: bUrl, seen: bSeen };

  // Service A, Express: its own workload client calls B, forwarding the Txn-Token it received.
  const aKeys = (await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify'])) as CryptoKeyPair;
  const aServer = createServer();
  servers.push(aServer);
  const aUrl = await listen(aServer);
  const aSelf = workloadClient('shop', 'orders', { algorithm: 'Ed25519', keyPair: aKeys, expectedService: LEDGER });
  const aWpt = workloadClient('shop', 'orders', { algorithm: 'Ed25519', keyPair: aKeys, expectedService: LEDGER, proof: 'wpt' });
  const app = express();
  const state = { url: aUrl, calls: 0 };
  app.use(expressOidc2(serviceOptions(aUrl, aSelf, aKeys.privateKey)), express.json());
  app.get('/whoami', (req, res) => {
    res.json({ service: 'orders', ...who(req.identity) });
  });
  app.post('/vault', (req, res) => {
    res.json({ service: 'orders', ...who(req.identity), received: req.body });
  });
  app.post('/orders', async (req, res) => {
    state.calls++;
    const txn = req.get('txn-token');
    const outbound = req.query.hop === 'wpt' ? aWpt : aSelf;
    const answer = await outbound(`${b.url}/entries`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(txn ? { 'txn-token': txn } : {}) },
      body: JSON.stringify({ order: req.body?.order }),
    });
    res.json({ service: 'orders', ...who(req.identity), ledger: { verified: answer.service.subject, trustDomain: answer.service.trustDomain, body: await answer.json() } });
  });
  app.use(oidc2ErrorHandler());
  aServer.on('request', app);
  a = state;
}, 30_000);

afterAll(async () => {
  for (const c of closers) await c();
  await issuer?.close();
  for (const s of servers) await close(s);
});

describe('a workload call chain: pod -> A (Express) -> B (Fastify)', () => {
  it('the pod is attested by its service-account token (WIT endpoint or token exchange) and holds a WIT for its key', async () => {
    const pod = workloadClient('shop', 'checkout');
    const claims = decodeJwt(await pod.wit());
    expect(claims).toMatchObject({ iss: issuerId, sub: CHECKOUT, cnf: { jwk: { ...(await pod.publicKey()), alg: 'ES256' } } });
    // The same attestation by RFC 8693 token exchange (the service-account token as subject_token, the key by DPoP).
    const exchanged = workloadClient('shop', 'checkout', {
      algorithm: 'Ed25519',
      issuer: { url: issuerId, grant: 'token-exchange', credential: { clientAssertion: () => serviceAccountToken('shop', 'checkout') } },
      expectedService: ORDERS,
    });
    expect(decodeJwt(await exchanged.wit())).toMatchObject({ sub: CHECKOUT, cnf: { jwk: { ...(await exchanged.publicKey()), alg: 'Ed25519' } } });
    expect((await exchanged(`${a.url}/whoami`)).service.subject).toBe(ORDERS);
  });

  it('WIMSE signatures on both hops carry the Txn-Token: B sees the same transaction as A, and every answer is WIT-signed and verified', async () => {
    const pod = workloadClient('shop', 'checkout', { expectedService: ORDERS });
    const token = await txnToken('txn-chain-1');
    const response = await pod(`${a.url}/orders`, { method: 'POST', headers: { 'content-type': 'application/json', 'txn-token': token }, body: JSON.stringify({ order: 'o-1' }) });
    expect(response.status).toBe(200);
    expect(response.service).toMatchObject({ subject: ORDERS, issuer: issuerId, trustDomain: TRUST_DOMAIN });
    const body = await response.json();
    expect(body).toMatchObject({ service: 'orders', caller: CHECKOUT, kind: 'workload', proof: 'http-signature', transaction: 'txn-chain-1' });
    expect(body.ledger).toEqual({
      verified: LEDGER,
      trustDomain: TRUST_DOMAIN,
      body: { service: 'ledger', caller: ORDERS, kind: 'workload', proof: 'http-signature', transaction: 'txn-chain-1', received: { order: 'o-1' } },
    });
    // B saw the Txn-Token the pod sent, unchanged.
    expect(b.seen.at(-1)!.transaction?.claims).toEqual(decodeJwt(token));
  });

  it("A's hop to B with a WPT binds the forwarded Txn-Token (tth); B's answer is still WIT-signed and verified by A", async () => {
    const pod = workloadClient('shop', 'checkout', { expectedService: ORDERS });
    const response = await pod(`${a.url}/orders?hop=wpt`, { method: 'POST', headers: { 'content-type': 'application/json', 'txn-token': await txnToken('txn-chain-2') }, body: '{"order":"o-2"}' });
    const body = await response.json();
    expect(body.transaction).toBe('txn-chain-2');
    expect(body.ledger).toMatchObject({ verified: LEDGER, body: { caller: ORDERS, proof: 'wpt', transaction: 'txn-chain-2', received: { order: 'o-2' } } });
  });

  it('one hop with a WPT: the pod proves with a WPT, A answers with its WIT', async () => {
    const pod = workloadClient('shop', 'checkout', { proof: 'wpt', algorithm: 'Ed25519', expectedService: ORDERS });
    const response = await pod(`${a.url}/whoami`, { headers: { 'txn-token': await txnToken('txn-wpt') } });
    expect(response.service.subject).toBe(ORDERS);
    expect(await response.json()).toEqual({ service: 'orders', caller: CHECKOUT, kind: 'workload', proof: 'wpt', transaction: 'txn-wpt' });
  });

  it('end-to-end encrypted with WIMSE signatures: A reads the body, the wire carries only ciphertext', async () => {
    const wire: Buffer[] = [];
    const recording: typeof fetch = async (input, init) => {
      const request = new Request(input, init);
      wire.push(Buffer.from(await request.clone().arrayBuffer()));
      const response = await fetch(request);
      wire.push(Buffer.from(await response.clone().arrayBuffer()));
      return response;
    };
    const pod = workloadClient('shop', 'checkout', { expectedService: ORDERS, encryption: 'required', fetch: recording });
    const secret = { card: '4111 1111 1111 1111', cvc: '737' };
    const response = await pod(`${a.url}/vault`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(secret) });
    expect(response.encryption).toEqual({ suite: 'x25519', mode: 'session', epoch: 0, bodyEncrypted: true });
    expect(response.service.subject).toBe(ORDERS);
    expect(await response.json()).toEqual({ service: 'orders', caller: CHECKOUT, kind: 'workload', proof: 'http-signature', transaction: null, received: secret });
    const seen = Buffer.concat(wire).toString('latin1');
    expect(seen).not.toContain(secret.card);
    expect(seen).not.toContain('"caller"');
  });
});

describe('what a workload caller is refused with, by code', () => {
  it('an answer signed by a WIT of a trust domain the caller does not trust: response_untrusted', async () => {
    const rogue = await pair('ES256');
    const pod = workloadClient('shop', 'checkout', { serviceTrustDomains: [{ trustDomain: 'elsewhere.test', jwks: { keys: [{ ...rogue.publicJwk, kid: 'r', alg: 'ES256' }] } }] });
    expect(await settledCode(pod(`${a.url}/whoami`))).toBe('response_untrusted');
    const wpt = workloadClient('shop', 'checkout', { proof: 'wpt', serviceTrustDomains: [{ trustDomain: 'elsewhere.test', jwks: { keys: [{ ...rogue.publicJwk, kid: 'r', alg: 'ES256' }] } }] });
    expect(await settledCode(wpt(`${a.url}/whoami`))).toBe('response_untrusted');
  });

  it('an answer from another workload than the expected one: response_untrusted', async () => {
    expect(await settledCode(workloadClient('shop', 'checkout', { expectedService: LEDGER })(`${a.url}/whoami`))).toBe('response_untrusted');
  });

  it('an unsigned answer: response_unsigned (and e2ee_response_unsigned to an encrypted request)', async () => {
    const plain = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end('{"ok":true}');
    });
    servers.push(plain);
    const url = await listen(plain);
    expect(await settledCode(workloadClient('shop', 'checkout')(`${url}/whoami`))).toBe('response_unsigned');
    expect(await settledCode(workloadClient('shop', 'checkout', { proof: 'wpt' })(`${url}/whoami`))).toBe('response_unsigned');
    expect(await settledCode(workloadClient('shop', 'checkout', { encryption: 'required' })(`${url}/whoami`))).toBe('e2ee_response_unsigned');
  });

  it('a WIT provider that fails: issuer_unavailable, before anything is sent', async () => {
    const before = a.calls;
    const pod = createClient({ proof: 'wimse-signature', serviceTrustDomains: trustDomains(), getWit: () => Promise.reject(new Error('agent socket closed')) });
    expect(await settledCode(pod(`${a.url}/orders`, { method: 'POST', body: '{}' }))).toBe('issuer_unavailable');
    expect(a.calls).toBe(before);
  });

  it('a pod whose service-account token the cluster did not sign is refused by the issuer: client_invalid', async () => {
    const forged = await pair('RS256');
    const pod = workloadClient('shop', 'checkout', { issuer: { url: issuerId, subject: CHECKOUT, credential: { clientAssertion: () => serviceAccountToken('shop', 'checkout', forged) } } });
    expect(await settledCode(pod(`${a.url}/whoami`))).toBe('client_invalid');
  });

  it("a Txn-Token from another trust domain: A's signed refusal txn_token_invalid, verified and returned", async () => {
    const t = now();
    const foreignTxn = await new SignJWT({ txn: 'x', sub: 'alice', aud: 'elsewhere.test', iat: t, exp: t + 60 }).setProtectedHeader({ alg: 'ES256', kid: 'tts-1', typ: 'txntoken+jwt' }).sign(tts.key.privateKey);
    const response = await workloadClient('shop', 'checkout')(`${a.url}/whoami`, { headers: { 'txn-token': foreignTxn } });
    expect(response.status).toBe(401);
    expect((await response.json()).code).toBe('txn_token_invalid');
    expect(response.service.subject).toBe(ORDERS);
  });
});
