#!/usr/bin/env node
// `pnpm demo`: the whole of oidc2 on loopback, with no configuration. A tiny login OP, a tiny
// Kubernetes cluster issuer and Transaction Token Service, the ICT and WIT issuer, one service per
// framework (Express, Fastify, Koa), a user client and workload clients; then the flows, with a
// trace of what each side sent, verified and proved. Tokens and keys are never printed: only
// header names, sizes and short SHA-256 fingerprints.
//
// It imports the BUILT packages (packages/*/dist), so it shows what a consumer gets.
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { createServer, request as httpRequest } from 'node:http';
import { pathToFileURL } from 'node:url';
import express from 'express';
import Fastify from 'fastify';
import Koa from 'koa';
import { bodyParser } from '@koa/bodyparser';
import { createClient } from '../packages/client/dist/esm/index.js';
import { apiKeys, createIssuer, hashApiKey, jwtAccessTokens, kubernetesServiceAccounts } from '../packages/issuer/dist/esm/index.js';
import { oidc2 as expressOidc2, oidc2ErrorHandler } from '../packages/express/dist/esm/index.js';
import { oidc2 as fastifyOidc2 } from '../packages/fastify/dist/esm/index.js';
import { oidc2 as koaOidc2 } from '../packages/koa/dist/esm/index.js';

const FRAMEWORKS = ['express', 'fastify', 'koa'];
const LOGIN_ISSUER = 'https://login.demo.local';
const TRUST_DOMAIN = 'demo.local';

/** `#` + the first 8 hex digits of SHA-256: enough to follow a value through the trace, useless to an attacker. */
const fingerprint = (value) => `#${createHash('sha256').update(value).digest('hex').slice(0, 8)}`;
const b64url = (value) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
const claimsOf = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
const describeIct = (ict) => {
  const c = claimsOf(ict);
  const key = c.cnf.jwk;
  return `${fingerprint(ict)} sub=${c.sub} ctx=[${c.ctx}] valid ${c.exp - c.iat}s, certifies ${key.kty}/${key.crv} key ${fingerprint(key.x)}`;
};
const describeWit = (wit) => {
  const c = claimsOf(wit);
  const key = c.cnf.jwk;
  return `${fingerprint(wit)} sub=${c.sub} valid ${c.exp - c.iat}s, certifies ${key.kty}/${key.crv} key ${fingerprint(key.x)} for ${key.alg}`;
};
/** A compact ES256 JWS made with node:crypto: the demo's tiny token services sign this way. */
const es256 = (header, claims, privateKey) => {
  const input = `${b64url(header)}.${b64url(claims)}`;
  return `${input}.${sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
};

// How a field is shown: structure where it is not secret, a fingerprint where it is a credential.
function describeField(name, value) {
  switch (name) {
    case 'identity-certification-token':
    case 'workload-identity-token':
    case 'txn-token':
    case 'dpop':
    case 'signature':
      return `${fingerprint(value)} (${value.length} bytes)`;
    case 'authorization': {
      const [scheme, credential = ''] = value.split(' ');
      return `${scheme} ${fingerprint(credential)}`;
    }
    case 'signature-input': {
      const components = /\(([^)]*)\)/.exec(value)?.[1] ?? '';
      const tag = /;tag="([^"]*)"/.exec(value)?.[1];
      const reqNonce = /;(?:oidc2|wimse)-req-nonce="([^"]{0,8})/.exec(value)?.[1];
      return `covers ${components.replace(/"/g, '')}; tag=${tag}${reqNonce ? `; bound to request nonce ${reqNonce}…` : ''}`;
    }
    case 'content-digest':
      return `${value.slice(0, 20)}…`;
    default:
      return value.length > 60 ? `${value.slice(0, 57)}…` : value;
  }
}

const SHOWN = ['authorization', 'content-type', 'content-digest', 'dpop', 'dpop-nonce', 'identity-certification-token', 'workload-identity-token', 'txn-token', 'signature-input', 'signature'];

/** A fetch that prints what goes over the wire (names and fingerprints only). */
function tracingFetch(trace, who) {
  return async (input, init) => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    trace(`    ${who} -> ${request.method} ${url.host}${url.pathname}`);
    for (const name of SHOWN) {
      const value = request.headers.get(name);
      if (value !== null) trace(`        ${name}: ${describeField(name, value)}`);
    }
    const response = await fetch(request);
    trace(`    <- ${response.status} from ${url.host}${url.pathname}`);
    for (const name of SHOWN) {
      const value = response.headers.get(name);
      if (value !== null) trace(`        ${name}: ${describeField(name, value)}`);
    }
    return response;
  };
}

/**
 * A plain HTTP reverse proxy on loopback, standing for a TLS-terminating proxy: it forwards every
 * request to `target`, prints what it can read of each body, and keeps every byte it forwarded.
 */
async function loggingProxy(target, print) {
  const seen = [];
  const show = (direction, headers, body) => {
    seen.push(body);
    const coding = headers['content-encoding'] ?? 'none';
    const preview = body.length === 0 ? '(no body)' : `${body.subarray(0, 24).toString('hex')}${body.length > 24 ? '…' : ''}`;
    print(`    proxy ${direction}: ${body.length} bytes, content-encoding ${coding}: ${preview}`);
  };
  const read = (stream) => new Promise((resolve, reject) => {
    const chunks = [];
    stream.on('data', (chunk) => chunks.push(chunk)).on('end', () => resolve(Buffer.concat(chunks))).on('error', reject);
  });
  const server = createServer(async (req, res) => {
    const body = await read(req);
    show(`<- ${req.method} ${req.url}`, req.headers, body);
    const upstream = httpRequest(`${target}${req.url}`, { method: req.method, headers: { ...req.headers, host: new URL(target).host } }, async (answer) => {
      const payload = await read(answer);
      show(`-> ${answer.statusCode}`, answer.headers, payload);
      res.writeHead(answer.statusCode, answer.headers);
      res.end(payload);
    });
    upstream.on('error', () => res.destroy());
    upstream.end(body);
  });
  const url = await listen(server);
  return { url, seen: () => Buffer.concat(seen), close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }) };
}

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${server.address().port}`));
  });
}

// The demo's own OpenID Provider, reduced to what matters here: it signs access tokens.
function tinyLoginOp() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const kid = 'login-1';
  return {
    issuer: LOGIN_ISSUER,
    jwks: { keys: [{ ...publicKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' }] },
    accessToken({ subject, audience, scope, clientId }) {
      const now = Math.floor(Date.now() / 1000);
      return es256({ alg: 'ES256', kid, typ: 'at+jwt' }, { iss: LOGIN_ISSUER, sub: subject, aud: audience, client_id: clientId, scope, iat: now, exp: now + 600, jti: randomBytes(12).toString('base64url') }, privateKey);
    },
  };
}

// The demo's Kubernetes cluster, reduced to its service-account issuer: OIDC discovery and JWKS on
// loopback, as kube-apiserver serves them, and the projected tokens it signs for pods.
async function tinyCluster() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const kid = 'k8s-1';
  const server = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.url === '/.well-known/openid-configuration') {
      res.end(JSON.stringify({ issuer: url, jwks_uri: `${url}/openid/v1/jwks`, response_types_supported: ['id_token'], subject_types_supported: ['public'], id_token_signing_alg_values_supported: ['ES256'] }));
    } else if (req.url === '/openid/v1/jwks') {
      res.end(JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' }] }));
    } else {
      res.statusCode = 404;
      res.end('{}');
    }
  });
  const url = await listen(server);
  return {
    url,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
    /** The token the kubelet projects into a pod of `namespace`/`serviceAccount`, for `audience`. */
    serviceAccountToken({ namespace, serviceAccount, audience }) {
      const now = Math.floor(Date.now() / 1000);
      const uid = () => randomBytes(16).toString('hex').replace(/(.{8})(.{4})(.{4})(.{4})(.{12})/, '$1-$2-$3-$4-$5');
      return es256({ alg: 'ES256', kid }, {
        iss: url, sub: `system:serviceaccount:${namespace}:${serviceAccount}`, aud: [audience], iat: now, nbf: now, exp: now + 3600, jti: uid(),
        'kubernetes.io': { namespace, serviceaccount: { name: serviceAccount, uid: uid() }, pod: { name: `${serviceAccount}-5f7d8-abcde`, uid: uid() } },
      }, privateKey);
    },
  };
}

// The demo's Transaction Token Service: it signs the Txn-Token that carries a transaction through a call chain.
function tinyTransactionTokenService() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const kid = 'tts-1';
  return {
    jwks: { keys: [{ ...publicKey.export({ format: 'jwk' }), kid, alg: 'ES256' }] },
    txnToken({ txn, subject }) {
      const now = Math.floor(Date.now() / 1000);
      return es256({ alg: 'ES256', kid, typ: 'txntoken+jwt' }, { txn, sub: subject, aud: TRUST_DOMAIN, iat: now, exp: now + 120, tctx: { action: 'ship' } }, privateKey);
    },
  };
}

// What every service answers: the identity the service verified.
const answer = (framework, identity, body) => ({
  framework,
  caller: identity?.subject ?? null,
  issuer: identity?.issuer ?? null,
  contexts: identity?.contexts ?? [],
  proof: identity?.proof ?? null,
  keyThumbprint: identity ? `${identity.thumbprint.slice(0, 8)}…` : null,
  ...(identity?.transaction ? { transaction: identity.transaction.transactionId } : {}),
  received: body ?? null,
});

/**
 * Starts `framework` with `options(url)`. `route(identity, request)`, when given, answers every
 * request in place of {@link answer} (the request is `{ headers, body }`, as the framework parsed it).
 */
async function startService(framework, options, route) {
  const respond = async (identity, headers, body) => (route ? route(identity, { headers, body }) : answer(framework, identity, body));
  const server = createServer();
  const url = await listen(server);
  const config = options(url);
  let close = () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); });
  if (framework === 'express') {
    const app = express();
    app.use(expressOidc2(config), express.json());
    app.all('/{*path}', async (req, res) => { res.json(await respond(req.identity, req.headers, req.body)); });
    app.use(oidc2ErrorHandler());
    server.on('request', app);
  } else if (framework === 'koa') {
    const app = new Koa();
    app.use(koaOidc2(config)).use(bodyParser());
    app.use(async (ctx) => { ctx.body = await respond(ctx.state.identity, ctx.headers, ctx.request.body); });
    server.on('request', app.callback());
  } else {
    const app = Fastify({ serverFactory: (handler) => server.on('request', handler) });
    await app.register(fastifyOidc2, config);
    app.all('/*', async (request) => respond(request.identity, request.headers, request.body));
    await app.ready();
    const closeServer = close;
    close = async () => { await app.close(); await closeServer(); };
  }
  return { framework, url, close };
}

/**
 * Runs the demo. Resolves to the exit status: 0 when every flow behaved as it should, 1 otherwise.
 * Every server is closed before it resolves.
 */
export async function main({ print = (line) => console.log(line) } = {}) {
  const closers = [];
  const results = [];
  const trace = (line) => print(line);
  async function flow(title, run) {
    print('');
    print(`== ${title}`);
    try {
      await run();
      results.push([title, true]);
      print(`   ok: ${title}`);
    } catch (error) {
      results.push([title, false]);
      print(`   FAILED: ${title}: ${error?.code ?? error?.name ?? 'error'}: ${error?.message ?? error}`);
    }
  }
  const expect = (condition, what) => {
    if (!condition) throw new Error(`expected ${what}`);
    trace(`    verified: ${what}`);
  };

  try {
    print('oidc2 demo: an ICT and WIT issuer, three services, users and workloads on 127.0.0.1, no configuration');
    const login = tinyLoginOp();
    const cluster = await tinyCluster();
    closers.push(() => cluster.close());
    const tts = tinyTransactionTokenService();

    // The issuer must know its own URL, so its port is reserved first.
    const probe = createServer();
    const issuerUrl = await listen(probe);
    await new Promise((resolve) => probe.close(resolve));
    const workloadKey = randomBytes(32).toString('base64url');
    const serviceKeys = Object.fromEntries(FRAMEWORKS.map((fw) => [fw, randomBytes(32).toString('base64url')]));
    const issuer = await createIssuer({
      issuer: issuerUrl,
      authenticators: [
        jwtAccessTokens({ issuer: login.issuer, audience: issuerUrl, jwks: login.jwks }),
        apiKeys({
          keys: [
            { hash: hashApiKey(workloadKey), subject: 'spiffe://demo.local/reports', contexts: ['reporting'] },
            ...FRAMEWORKS.map((fw) => ({ hash: hashApiKey(serviceKeys[fw]), subject: `spiffe://demo.local/${fw}`, contexts: ['service'] })),
          ],
        }),
        // Pods attest with the service-account token their cluster projects for this issuer.
        kubernetesServiceAccounts({ issuer: cluster.url, audience: issuerUrl, trustDomain: TRUST_DOMAIN }),
      ],
      workloads: { trustDomain: TRUST_DOMAIN },
    });
    const listening = await issuer.listen({ port: Number(new URL(issuerUrl).port) });
    closers.push(() => listening.close());
    print(`[setup] login OP ${login.issuer}: signs users' access tokens (ES256, kid login-1)`);
    print(`[setup] ICT issuer ${issuerUrl}: discovery, JWKS, ${new URL(issuer.endpoints.ict).pathname} (OIDC² PoP request), ${new URL(issuer.endpoints.token).pathname} (RFC 8693 + DPoP)`);
    print(`[setup] it also issues WITs for trust domain ${TRUST_DOMAIN} at ${new URL(issuer.endpoints.wit).pathname}, attesting pods of the cluster ${cluster.url} (discovery, JWKS; ES256 service-account tokens)`);
    print('[setup] a Transaction Token Service signs Txn-Tokens for the trust domain (ES256, kid tts-1)');

    const services = {};
    for (const fw of FRAMEWORKS) {
      // Each service holds its own key and obtains its own ICT from the issuer with its API key.
      const pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
      const holder = createClient({
        serviceIssuers: [{ issuer: issuerUrl }],
        keyPair: pair,
        issuer: { url: issuerUrl, credential: { apiKey: serviceKeys[fw] }, subject: `spiffe://demo.local/${fw}` },
      });
      const ict = await holder.ict();
      const service = await startService(fw, (url) => ({
        issuers: [{ issuer: issuerUrl }],
        audiences: [url],
        credential: async () => ({ ict: await holder.ict(), privateKey: pair.privateKey }),
      }));
      closers.push(() => service.close());
      services[fw] = service;
      print(`[setup] ${fw} service ${service.url}: ICT ${describeIct(ict)}`);
    }

    // The user: logs in at the OP (here: is handed an access token), then gets an ICT for a fresh
    // key. `wire` stands for the network between the user and the services; two flows below let
    // an attacker on it change or record what passes.
    const accessToken = login.accessToken({ subject: 'alice', audience: issuerUrl, scope: 'openid e2e_auth_banking', clientId: 'demo-app' });
    const serviceByHost = new Map(FRAMEWORKS.map((fw) => [new URL(services[fw].url).host, `spiffe://demo.local/${fw}`]));
    let wire = tracingFetch(trace, 'alice');
    const user = createClient({
      serviceIssuers: [{ issuer: issuerUrl }],
      expectedService: (url) => serviceByHost.get(url.host),
      issuer: { url: issuerUrl, credential: { accessToken }, subject: 'alice', clientId: 'demo-app' },
      fetch: (input, init) => wire(input, init),
    });
    print('[setup] alice logs in at the OP and asks the issuer to certify a fresh key:');
    const aliceIct = await user.ict();
    print(`[setup] alice holds ICT ${describeIct(aliceIct)}`);
    const transfer = (fw) =>
      user(`${services[fw].url}/accounts/42/transfers`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ to: 'bob', amount: 100 }) });

    for (const fw of FRAMEWORKS) {
      await flow(`user alice -> ${fw} (ICT + HTTP Message Signature, ES256)`, async () => {
        const response = await transfer(fw);
        const body = await response.json();
        trace(`    ${fw} proved: ICT sub=${response.service.subject} from ${response.service.issuer}, response signature and body digest verified`);
        trace(`    alice proved to ${fw}: sub=${body.caller} ctx=[${body.contexts}] via ${body.proof}, key ${body.keyThumbprint}`);
        expect(response.status === 200, `${fw} answered 200`);
        expect(response.service.subject === `spiffe://demo.local/${fw}`, `the answer was signed by spiffe://demo.local/${fw}`);
        expect(body.caller === 'alice' && body.received?.amount === 100, `${fw} saw caller alice and the body as sent`);
      });
    }

    await flow('workload spiffe://demo.local/reports -> fastify (RFC 8693 token exchange with API key, DPoP, Ed25519)', async () => {
      const workload = createClient({
        serviceIssuers: [{ issuer: issuerUrl }],
        expectedService: 'spiffe://demo.local/fastify',
        proof: 'dpop',
        algorithm: 'Ed25519',
        issuer: { url: issuerUrl, grant: 'token-exchange', credential: { apiKey: workloadKey } },
        fetch: tracingFetch(trace, 'reports'),
      });
      const response = await workload(`${services.fastify.url}/reports/daily`);
      trace(`    reports holds ICT ${describeIct(await workload.ict())}`);
      const body = await response.json();
      trace(`    fastify proved: ICT sub=${response.service.subject}, response signature covers "dpop";req`);
      trace(`    reports proved to fastify: sub=${body.caller} ctx=[${body.contexts}] via ${body.proof}`);
      expect(response.status === 200, 'fastify answered 200');
      expect(body.caller === 'spiffe://demo.local/reports' && body.proof === 'dpop', 'fastify saw the workload, proven by DPoP');
    });

    await flow('tampered request: the body is changed after signing (amount 100 -> 900)', async () => {
      wire = async (input, init) => {
        const request = new Request(input, init);
        const text = (await request.text()).replace('100', '900');
        trace('    on the way: the body is rewritten; the headers, signature included, stay as signed');
        return tracingFetch(trace, 'mallory')(request.url, { method: request.method, headers: request.headers, body: text, redirect: 'manual' });
      };
      const response = await transfer('koa');
      const problem = await response.json();
      trace(`    koa refused: ${response.status} ${problem.code}; its refusal is signed too, and the client verified it`);
      expect(response.status === 401 && problem.code === 'digest_mismatch', 'koa rejected the request: 401 digest_mismatch');
    });

    await flow('replayed request: a captured signed request is sent again', async () => {
      let captured;
      wire = async (input, init) => {
        const request = new Request(input, init);
        captured = { url: request.url, method: request.method, headers: request.headers, body: await request.arrayBuffer() };
        return tracingFetch(trace, 'alice')(captured.url, { method: captured.method, headers: captured.headers, body: captured.body, redirect: 'manual' });
      };
      const first = await transfer('express');
      expect(first.status === 200, 'the original request was accepted');
      trace('    an eavesdropper sends the identical bytes again:');
      const replay = await tracingFetch(trace, 'mallory')(captured.url, { method: captured.method, headers: captured.headers, body: captured.body });
      const problem = await replay.json();
      expect(replay.status === 401 && problem.code === 'replay_detected', `express rejected the replay: ${replay.status} ${problem.code}`);
    });

    await flow('end-to-end encrypted: alice -> express through a logging proxy that ends TLS (HPKE x25519, aes128gcm)', async () => {
      const proxy = await loggingProxy(services.express.url, trace);
      closers.push(() => proxy.close());
      const secret = { to: 'DE02 1203 0000 0000 2020 51', amount: 120, memo: 'rent, flat 3b' };
      const sealed = createClient({
        serviceIssuers: [{ issuer: issuerUrl }],
        expectedService: 'spiffe://demo.local/express',
        issuer: { url: issuerUrl, credential: { accessToken }, subject: 'alice', clientId: 'demo-app' },
        encryption: 'required',
        // Every request goes through the proxy; the signature still names the service's own URL.
        fetch: (input, init) => fetch(String(input).replace(services.express.url, proxy.url), init),
      });
      const url = `${services.express.url}/accounts/42/transfers`;
      const response = await sealed(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(secret) });
      const body = await response.json();
      trace(`    alice read: ${JSON.stringify(body.received)} from ${response.service.subject}, ${JSON.stringify(response.encryption)}`);
      expect(response.status === 200 && body.received?.memo === secret.memo, 'express received the transfer and alice read the answer');
      expect(response.encryption?.mode === 'session' && response.encryption.bodyEncrypted, 'the body went inside an encrypted session');
      const again = await sealed(`${services.express.url}/accounts/42`);
      expect((await again.json()).caller === 'alice' && again.encryption?.mode === 'session', 'a second request reused the session');
      const seen = proxy.seen().toString('latin1');
      expect(!seen.includes(secret.memo) && !seen.includes(secret.to) && !seen.includes('"caller"'), 'the proxy never saw a byte of either plaintext body');
    });

    await flow('workload call chain: pod checkout -> express -> fastify (Kubernetes attestation, WIT + WIMSE signatures, Txn-Token)', async () => {
      // A workload client of a pod: its WIT comes from the issuer's WIT endpoint, for the pod's
      // service-account token; its calls are WIMSE-signed; answers must be WIT-signed by the trust domain.
      const pod = (namespace, serviceAccount, extra = {}) =>
        createClient({
          proof: 'wimse-signature',
          serviceTrustDomains: [{ trustDomain: TRUST_DOMAIN, issuer: issuerUrl }],
          issuer: {
            url: issuerUrl,
            grant: 'wit',
            subject: `spiffe://${TRUST_DOMAIN}/ns/${namespace}/sa/${serviceAccount}`,
            credential: { clientAssertion: () => cluster.serviceAccountToken({ namespace, serviceAccount, audience: issuerUrl }) },
          },
          ...extra,
        });
      const ORDERS = `spiffe://${TRUST_DOMAIN}/ns/shop/sa/orders`;
      const LEDGER = `spiffe://${TRUST_DOMAIN}/ns/finance/sa/ledger`;
      // Each service takes workloads and Txn-Tokens, and answers workloads with its own WIT, held by its own workload client.
      const workloadService = async (framework, self, keys, route) => {
        const service = await startService(
          framework,
          (url) => ({
            issuers: [{ issuer: issuerUrl }],
            audiences: [url],
            workloads: { trustDomains: [{ trustDomain: TRUST_DOMAIN, issuer: issuerUrl }] },
            transactionTokens: { trustDomain: TRUST_DOMAIN, jwks: tts.jwks },
            credentials: { wit: async () => ({ wit: await self.wit(), privateKey: keys.privateKey }) },
          }),
          route,
        );
        closers.push(() => service.close());
        return service;
      };
      const ledgerKeys = await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify']);
      const ledgerSelf = pod('finance', 'ledger', { algorithm: 'Ed25519', keyPair: ledgerKeys });
      const ledger = await workloadService('fastify', ledgerSelf, ledgerKeys);
      trace(`    fastify (ledger) holds WIT ${describeWit(await ledgerSelf.wit())}`);
      const ordersKeys = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
      const ordersSelf = pod('shop', 'orders', { keyPair: ordersKeys, expectedService: LEDGER, fetch: tracingFetch(trace, 'orders') });
      // The route of orders calls ledger with its own workload client, forwarding the Txn-Token it received.
      const orders = await workloadService('express', ordersSelf, ordersKeys, async (identity, { headers, body }) => {
        const entry = await ordersSelf(`${ledger.url}/entries`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(headers['txn-token'] ? { 'txn-token': headers['txn-token'] } : {}) },
          body: JSON.stringify({ order: body?.order, amount: body?.amount }),
        });
        trace(`    orders verified ledger's answer: WIT sub=${entry.service.subject} of trust domain ${entry.service.trustDomain}`);
        return { ...answer('express', identity, body), ledger: { service: entry.service.subject, ...(await entry.json()) } };
      });
      trace(`    express (orders) holds WIT ${describeWit(await ordersSelf.wit())}`);

      trace('    the pod checkout presents its service-account token (signed by the cluster) to the issuer:');
      const checkout = pod('shop', 'checkout', { expectedService: ORDERS, fetch: tracingFetch(trace, 'checkout') });
      trace(`    checkout holds WIT ${describeWit(await checkout.wit())}`);
      const txnToken = tts.txnToken({ txn: 'txn-demo-1', subject: 'alice' });
      trace(`    the Transaction Token Service issued Txn-Token ${fingerprint(txnToken)} for transaction txn-demo-1`);
      const response = await checkout(`${orders.url}/orders`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'txn-token': txnToken },
        body: JSON.stringify({ order: 'o-17', amount: 42 }),
      });
      const body = await response.json();
      trace(`    express proved: WIT sub=${response.service.subject}, response signature (tag wimse-workload-to-workload) and body digest verified`);
      expect(response.status === 200 && response.service.subject === ORDERS, 'the answer was signed with the WIT of spiffe://demo.local/ns/shop/sa/orders');
      expect(body.caller === `spiffe://${TRUST_DOMAIN}/ns/shop/sa/checkout` && body.proof === 'http-signature', 'express saw the pod checkout, proven by a WIMSE signature');
      expect(body.ledger.service === LEDGER && body.ledger.caller === ORDERS, 'fastify saw orders as its caller, and orders verified the WIT-signed answer of ledger');
      expect(body.transaction === 'txn-demo-1' && body.ledger.transaction === 'txn-demo-1', 'both services saw the same transaction txn-demo-1 from the forwarded Txn-Token');
    });
  } catch (error) {
    results.push(['setup', false]);
    print(`setup FAILED: ${error?.code ?? error?.name}: ${error?.message ?? error}`);
  } finally {
    for (const close of closers.reverse()) await close().catch(() => undefined);
  }

  const failed = results.filter(([, ok]) => !ok);
  print('');
  print(failed.length === 0 ? `all ${results.length} flows behaved as expected` : `${failed.length} of ${results.length} flows did not behave: ${failed.map(([t]) => t).join('; ')}`);
  return failed.length === 0 ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main();
}
