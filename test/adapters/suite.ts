// The shared adapter suite: the same cases against every framework over real sockets. An adapter
// test supplies only a factory that builds a listening app with the routes below, wired to the
// policies in ROUTE_POLICIES.
//
//   GET  /me        -> 200 { subject, issuer, proof }                   (default policy)
//   POST /echo      -> 200 { subject, body }  body as parsed by the framework's JSON parser
//   GET  /mfa       -> 200 { subject }        ROUTE_POLICIES.mfa
//   GET  /admin     -> 200 { subject }        ROUTE_POLICIES.admin
//   GET  /partner   -> 200 { subject }        ROUTE_POLICIES.partner
//   GET  /workloads -> 200 { subject }        ROUTE_POLICIES.workloads
//   GET  /optional  -> 200 { subject, reason } ROUTE_POLICIES.optional (subject null, reason = error code)
//   GET  /stream?n= -> 200 text/plain, n KiB written as a stream in 1 KiB chunks (default 8)
//   GET  /boom      -> the handler throws an Error: the framework renders its own 500
//   GET  /public    -> 200 { public: true }    no oidc2 on this route
import { request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash, createPublicKey, type JsonWebKey } from 'node:crypto';
import request from 'supertest';
import { httpbis, createVerifier } from 'http-message-signatures';
import { SignJWT, importJWK } from 'jose';
import {
  createDpopProof,
  createIctVerifier,
  createWitVerifier,
  normalizeFields,
  signRequest,
  verifyResponse,
  dpopBinding,
  wimseTokenHash,
  wptBinding,
  type RequestBinding,
  type Fields,
  type HttpRequest,
  type Identity,
  type Oidc2Options,
  type RoutePolicy,
  type SignRequestOptions,
  WIMSE_PROFILE,
} from '@oidc2/core';
import { newIssuer, newKey, type KeyAlg, type MintOptions, type TestIssuer, type TestKey } from '../support/credentials';
import { newTrustDomain, type TestTrustDomain } from '../../packages/core/test/support/wit';

export const BASE = 'https://api.example.test';

export const ROUTE_POLICIES = {
  mfa: { contexts: ['mfa'] },
  admin: { claims: { role: 'admin' } },
  partner: { allow: (identity: Identity) => identity.subject.startsWith('partner-') },
  workloads: { workloads: { trustDomains: ['workloads.example.test'] } },
  optional: { optional: true },
} satisfies Record<string, RoutePolicy>;

/** Where the framework's JSON parser sits relative to oidc2 (adapters that allow both run both). */
export type ParserOrder = 'before' | 'after';

/** Builds a listening app (127.0.0.1, any port) serving the routes above. */
export type AppFactory = (options: Oidc2Options, setup: { parser: ParserOrder }) => Promise<Server>;

interface Caller {
  key: TestKey;
  ict: string;
  subject: string;
}

interface Sent {
  status: number;
  headers: Fields;
  body: Buffer;
  json: Record<string, unknown>;
  /** The request as signed: the response must be bound to it. */
  request: HttpRequest;
  nonce?: string;
}

export function runAdapterSuite(name: string, createApp: AppFactory, parserOrders: ParserOrder[]): void {
  describe(`${name} adapter`, () => {
    let callerIssuer: TestIssuer;
    let serviceIssuer: TestIssuer;
    let serviceKey: TestKey;
    let serviceIct: string;
    let ictVerifier: ReturnType<typeof createIctVerifier>;
    const servers: Server[] = [];

    beforeAll(async () => {
      callerIssuer = await newIssuer('https://op.example.test');
      serviceIssuer = await newIssuer('https://attestation.example.test', 'Ed25519');
      serviceKey = await newKey('ES256');
      serviceIct = await serviceIssuer.mint(serviceKey, { subject: 'api-service', lifetime: 3600 });
      ictVerifier = createIctVerifier({ issuers: [{ issuer: serviceIssuer.issuer, jwks: serviceIssuer.jwks }] });
    });
    afterAll(async () => {
      await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
    });

    function options(extra: Partial<Oidc2Options> = {}): Oidc2Options {
      return {
        issuers: [{ issuer: callerIssuer.issuer, jwks: callerIssuer.jwks }],
        audiences: [BASE],
        credential: { ict: serviceIct, privateKey: serviceKey.privateJwk },
        ...extra,
      };
    }
    async function app(extra: Partial<Oidc2Options> = {}, parser: ParserOrder = parserOrders[0]!): Promise<Server> {
      const server = await createApp(options(extra), { parser });
      servers.push(server);
      return server;
    }
    async function caller(alg: KeyAlg = 'ES256', mint: MintOptions = {}, issuer = callerIssuer): Promise<Caller> {
      const key = await newKey(alg);
      return { key, ict: await issuer.mint(key, { subject: 'alice', ...mint }), subject: mint.subject ?? 'alice' };
    }

    async function send(server: Server, message: HttpRequest): Promise<Omit<Sent, 'request'>> {
      const path = message.url.slice(BASE.length);
      let req = request(server)[message.method.toLowerCase() as 'get' | 'post' | 'head'](path);
      for (const [field, lines] of Object.entries(message.headers)) for (const line of lines) req = req.set(field, line);
      // Sent byte for byte: superagent would re-serialise a JSON body.
      if (message.body) req = req.serialize((bytes: unknown) => bytes as string).send(Buffer.from(message.body));
      const res = await req.buffer(true).parse((stream, done) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => done(null, Buffer.concat(chunks)));
      });
      const body: Buffer = Buffer.isBuffer(res.body) ? res.body : Buffer.alloc(0); // HEAD has none
      let json: Record<string, unknown> = {};
      try {
        json = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
      } catch {
        // not JSON
      }
      return { status: res.status, headers: normalizeFields(res.headers as Record<string, string>), body, json };
    }

    // Sends the body in two chunks without Content-Length (chunked transfer coding).
    function sendChunked(server: Server, message: HttpRequest): Promise<{ status: number; json: Record<string, unknown> }> {
      const { port } = server.address() as AddressInfo;
      return new Promise((resolve, reject) => {
        const headers = Object.fromEntries(Object.entries(message.headers).map(([k, v]) => [k, v[0]!]));
        const req = httpRequest({ host: '127.0.0.1', port, method: message.method, path: message.url.slice(BASE.length), headers }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(Buffer.concat(chunks).toString() || '{}') as Record<string, unknown> }));
        });
        req.on('error', reject);
        const body = Buffer.from(message.body!);
        req.write(body.subarray(0, body.length >> 1));
        setTimeout(() => req.end(body.subarray(body.length >> 1)), 10);
      });
    }

    async function signed(
      server: Server,
      who: Caller,
      method: string,
      path: string,
      init: { body?: string; sendBody?: string; signing?: Partial<SignRequestOptions> } = {},
    ): Promise<Sent> {
      const body = init.body === undefined ? undefined : Buffer.from(init.body);
      const message = await signRequest(
        { method, url: BASE + path, headers: body ? { 'content-type': 'application/json' } : {}, body },
        { ict: who.ict, key: who.key.signer, ...init.signing },
      );
      const wire = init.sendBody === undefined ? message : { ...message, body: Buffer.from(init.sendBody) };
      return { ...(await send(server, wire)), request: message, nonce: message.nonce };
    }

    async function dpop(server: Server, who: Caller, method: string, path: string, proof?: string): Promise<Sent> {
      const message: HttpRequest = {
        method,
        url: BASE + path,
        headers: {
          authorization: [`DPoP ${who.ict}`],
          dpop: [proof ?? (await createDpopProof({ method, url: BASE + path, key: who.key.signer, jwk: who.key.publicJwk, accessToken: who.ict }))],
        },
      };
      return { ...(await send(server, message)), request: message };
    }

    // Our own verifier: service ICT, signature, request binding and body digest.
    async function verified(sent: Sent, now?: () => number) {
      const verifier = now ? createIctVerifier({ issuers: [{ issuer: serviceIssuer.issuer, jwks: serviceIssuer.jwks }], now }) : ictVerifier;
      // The request's own binding, with the nonce the test names (a swapped nonce must not verify).
      const binding: RequestBinding =
        sent.nonce !== undefined ? { proof: 'http-signature', signResponse: true, nonce: sent.nonce } : sent.request.headers['dpop'] ? dpopBinding() : { proof: 'http-signature', signResponse: false };
      return verifyResponse(
        { status: sent.status, headers: sent.headers, body: sent.body },
        { request: sent.request, binding, ictVerifier: verifier, expectedSubject: 'api-service', now },
      );
    }

    // Verifies a response with http-message-signatures (an independent RFC 9421 implementation) and
    // the public key of the service token in `tokenField`; returns the signature's parameters too.
    async function verifiedIndependently(sent: Sent, key: TestKey, tokenField: string, status = sent.status) {
      const join = (fields: Fields) => Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, v.join(', ')]));
      const publicKey = createPublicKey({ key: key.publicJwk as JsonWebKey, format: 'jwk' });
      const params: Array<Record<string, unknown>> = [];
      const ok = await httpbis.verifyMessage(
        {
          keyLookup: async (p) => {
            params.push(p);
            return { verify: createVerifier(publicKey, 'ecdsa-p256-sha256') };
          },
          requiredFields: ['@status', tokenField, 'content-digest', 'content-type'],
          tolerance: 5,
        },
        { status, headers: join(sent.headers) },
        { method: sent.request.method, url: sent.request.url, headers: join(sent.request.headers) },
      );
      return { ok, params: params[0] };
    }

    function expectProblem(sent: Sent, status: number, code: string): void {
      expect(sent.status).toBe(status);
      expect(sent.headers['content-type']?.[0]).toMatch(/^application\/problem\+json/);
      expect(sent.json.code).toBe(code);
      expect(sent.body.toString()).not.toContain(sent.request.headers['identity-certification-token']?.[0] ?? '\u0000');
    }

    describe('construction', () => {
      it('rejects bad options at construction with a TypeError', async () => {
        await expect(createApp({ ...options(), audiences: [] }, { parser: parserOrders[0]! })).rejects.toThrow(TypeError);
        await expect(createApp({ ...options(), issuers: [] }, { parser: parserOrders[0]! })).rejects.toThrow(/issuers/);
      });
    });

    describe('success', () => {
      it.each(['ES256', 'Ed25519'] as const)('authenticates a %s caller with an HTTP message signature', async (alg) => {
        const server = await app();
        const who = await caller(alg, { subject: `caller-${alg}` });
        const sent = await signed(server, who, 'GET', '/me');
        expect(sent.status).toBe(200);
        expect(sent.json).toEqual({ subject: `caller-${alg}`, issuer: callerIssuer.issuer, proof: 'http-signature' });
        expect((await verified(sent)).subject).toBe('api-service');
      });

      it.each(['ES256', 'Ed25519'] as const)('authenticates a %s caller with a DPoP proof', async (alg) => {
        const server = await app();
        const who = await caller(alg, { subject: `dpop-${alg}` });
        const sent = await dpop(server, who, 'GET', '/me');
        expect(sent.status).toBe(200);
        expect(sent.json).toEqual({ subject: `dpop-${alg}`, issuer: callerIssuer.issuer, proof: 'dpop' });
        // Bound to the request through "dpop";req instead of a request nonce.
        expect(sent.headers['signature-input']?.[0]).toContain('"dpop";req');
        expect((await verified(sent)).subject).toBe('api-service');
      });
    });

    describe('rejections', () => {
      let server: Server;
      beforeAll(async () => {
        server = await app();
      });

      async function expectRejected(sent: Sent, status: number, code: string): Promise<void> {
        expectProblem(sent, status, code);
        if (status === 401) {
          expect(sent.headers['www-authenticate']?.[0]).toMatch(/Oidc2|DPoP/);
        }
        // Error responses are signed and bound to the request as well.
        expect((await verified(sent)).subject).toBe('api-service');
      }

      it('missing ICT: 401 ict_missing with both challenges', async () => {
        const sent = { ...(await send(server, { method: 'GET', url: `${BASE}/me`, headers: {} })), request: { method: 'GET', url: `${BASE}/me`, headers: {} } };
        await expectRejected(sent, 401, 'ict_missing');
        expect(sent.headers['www-authenticate']?.[0]).toMatch(/^Oidc2.*DPoP.*algs="/);
        expect(sent.headers['accept-signature']?.[0]).toContain('tag="oidc2-ict"');
      });

      it('bad signature: 401 signature_invalid', async () => {
        const who = await caller();
        const message = await signRequest({ method: 'GET', url: `${BASE}/me` }, { ict: who.ict, key: who.key.signer });
        const bytes = Buffer.from(/:([^:]+):/.exec(message.headers.signature![0]!)![1]!, 'base64');
        bytes[5] ^= 0xff;
        message.headers.signature = [`sig=:${bytes.toString('base64')}:`];
        const sent = { ...(await send(server, message)), request: message, nonce: message.nonce };
        await expectRejected(sent, 401, 'signature_invalid');
      });

      it('tampered body: 401 digest_mismatch', async () => {
        const sent = await signed(server, await caller(), 'POST', '/echo', { body: '{"amount":1}', sendBody: '{"amount":9}' });
        await expectRejected(sent, 401, 'digest_mismatch');
      });

      it('replay: the second use of a signature is 401 replay_detected', async () => {
        const who = await caller();
        const message = await signRequest({ method: 'GET', url: `${BASE}/me` }, { ict: who.ict, key: who.key.signer });
        expect((await send(server, message)).status).toBe(200);
        const again = { ...(await send(server, message)), request: message, nonce: message.nonce };
        await expectRejected(again, 401, 'replay_detected');
      });

      it('audience mismatch: 401 audience_mismatch', async () => {
        const sent = await signed(server, await caller(), 'GET', '/me', { signing: { audience: 'https://other.example.test/me' } });
        await expectRejected(sent, 401, 'audience_mismatch');
      });

      it('expired ICT: 401 ict_expired', async () => {
        const who = await caller('ES256', { now: Date.now() / 1000 - 7200 });
        await expectRejected(await signed(server, who, 'GET', '/me'), 401, 'ict_expired');
      });

      it('expired signature: 401 signature_expired', async () => {
        const sent = await signed(server, await caller(), 'GET', '/me', { signing: { now: () => Date.now() / 1000 - 600 } });
        await expectRejected(sent, 401, 'signature_expired');
      });

      it('untrusted issuer: 401 ict_untrusted_issuer', async () => {
        const who = await caller('ES256', {}, await newIssuer('https://rogue.example.test'));
        await expectRejected(await signed(server, who, 'GET', '/me'), 401, 'ict_untrusted_issuer');
      });

      it('DPoP proof for another token: 401 dpop_invalid with a DPoP challenge', async () => {
        const who = await caller();
        const proof = await createDpopProof({ method: 'GET', url: `${BASE}/me`, key: who.key.signer, jwk: who.key.publicJwk, accessToken: 'another-token' });
        const sent = await dpop(server, who, 'GET', '/me', proof);
        await expectRejected(sent, 401, 'dpop_invalid');
        expect(sent.headers['www-authenticate']?.[0]).toMatch(/DPoP error="invalid_dpop_proof"/);
      });

      it('body over maxBodyBytes: 413 body_too_large', async () => {
        const small = await app({ maxBodyBytes: 64 });
        const sent = await signed(small, await caller(), 'POST', '/echo', { body: JSON.stringify({ pad: 'x'.repeat(200) }) });
        await expectRejected(sent, 413, 'body_too_large');
      });

      it('chunked body: verified within maxBodyBytes, 413 body_too_large beyond it', async () => {
        const small = await app({ maxBodyBytes: 256 });
        const who = await caller('ES256', { subject: 'dave' });
        const body = (n: number) => Buffer.from(JSON.stringify({ pad: 'x'.repeat(n) }));
        const fits = await signRequest({ method: 'POST', url: `${BASE}/echo`, headers: { 'content-type': 'application/json' }, body: body(100) }, { ict: who.ict, key: who.key.signer });
        expect(await sendChunked(small, fits)).toEqual({ status: 200, json: { subject: 'dave', body: { pad: 'x'.repeat(100) } } });
        const over = await signRequest({ method: 'POST', url: `${BASE}/echo`, headers: { 'content-type': 'application/json' }, body: body(400) }, { ict: who.ict, key: who.key.signer });
        const rejected = await sendChunked(small, over);
        expect(rejected.status).toBe(413);
        expect(rejected.json.code).toBe('body_too_large');
      });

      it('a caller that hangs up mid-body leaves the service serving, and the next request is answered', async () => {
        const server = await app();
        const who = await caller('ES256', { subject: 'erin' });
        const message = await signRequest({ method: 'POST', url: `${BASE}/echo`, headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify({ pad: 'x'.repeat(4000) })) }, { ict: who.ict, key: who.key.signer });
        const { port } = server.address() as AddressInfo;
        await new Promise<void>((resolve) => {
          const headers = Object.fromEntries(Object.entries(message.headers).map(([k, v]) => [k, v[0]!]));
          const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/echo', headers: { ...headers, 'content-length': String(message.body!.length) } });
          req.on('error', () => resolve());
          req.on('response', () => resolve());
          req.write(Buffer.from(message.body!).subarray(0, 1000));
          setTimeout(() => {
            req.destroy();
            resolve();
          }, 50);
        });
        const next = await signed(server, who, 'POST', '/echo', { body: JSON.stringify({ after: 'hang-up' }) });
        expect(next.status).toBe(200);
        expect(next.json).toEqual({ subject: 'erin', body: { after: 'hang-up' } });
      });
    });

    describe('route policy', () => {
      let server: Server;
      beforeAll(async () => {
        server = await app();
      });

      it('requires contexts: 403 context_required without, 200 with', async () => {
        expectProblem(await signed(server, await caller(), 'GET', '/mfa'), 403, 'context_required');
        const ok = await signed(server, await caller('ES256', { contexts: ['pwd', 'mfa'] }), 'GET', '/mfa');
        expect(ok.status).toBe(200);
      });

      it('requires claims: 403 access_denied on another value, 200 on the required one', async () => {
        const denied = await signed(server, await caller('ES256', { claims: { role: 'user' } }), 'GET', '/admin');
        expectProblem(denied, 403, 'access_denied');
        expect((await verified(denied)).subject).toBe('api-service');
        expect((await signed(server, await caller('ES256', { claims: { role: 'admin' } }), 'GET', '/admin')).status).toBe(200);
      });

      it('applies a predicate: 403 access_denied when it returns false', async () => {
        expectProblem(await signed(server, await caller('ES256', { subject: 'alice' }), 'GET', '/partner'), 403, 'access_denied');
        const ok = await signed(server, await caller('Ed25519', { subject: 'partner-7' }), 'GET', '/partner');
        expect(ok.json).toEqual({ subject: 'partner-7' });
      });

      it('optional authentication lets the request through and exposes the reason', async () => {
        const anonymous = { ...(await send(server, { method: 'GET', url: `${BASE}/optional`, headers: {} })), request: { method: 'GET', url: `${BASE}/optional`, headers: {} } };
        expect(anonymous.status).toBe(200);
        expect(anonymous.json).toEqual({ subject: null, reason: 'ict_missing' });
        const expired = await signed(server, await caller('ES256', { now: Date.now() / 1000 - 7200 }), 'GET', '/optional');
        expect(expired.json).toEqual({ subject: null, reason: 'ict_expired' });
        expect((await verified(expired)).subject).toBe('api-service');
        const ok = await signed(server, await caller('ES256', { subject: 'bob' }), 'GET', '/optional');
        expect(ok.json).toEqual({ subject: 'bob', reason: null });
      });
    });

    describe.each(parserOrders)('body parser %s oidc2', (parser) => {
      let server: Server;
      beforeAll(async () => {
        server = await app({}, parser);
      });

      it('parses the JSON body and verifies the digest over the raw bytes', async () => {
        // Unusual spacing and key order: a parser that re-serialised would change the digest.
        const raw = '{ "b":2,  "a" : [1, "ü"] }';
        const sent = await signed(server, await caller('ES256', { subject: 'carol' }), 'POST', '/echo', { body: raw });
        expect(sent.json.code).toBeUndefined();
        expect(sent.status).toBe(200);
        expect(sent.json).toEqual({ subject: 'carol', body: { b: 2, a: [1, 'ü'] } });
        expect((await verified(sent)).subject).toBe('api-service');
      });

      it('still rejects a tampered body', async () => {
        const sent = await signed(server, await caller(), 'POST', '/echo', { body: '{"to":"alice"}', sendBody: '{"to":"mallo"}' });
        expectProblem(sent, 401, 'digest_mismatch');
      });
    });

    describe('response signature', () => {
      let server: Server;
      beforeAll(async () => {
        server = await app();
      });

      // http-message-signatures (an independent RFC 9421 implementation) with the service's public key.
      const independentlyVerified = (sent: Sent, status = sent.status) => verifiedIndependently(sent, serviceKey, 'identity-certification-token', status);

      it('verifies with an independent RFC 9421 implementation and an independent digest', async () => {
        const sent = await signed(server, await caller(), 'GET', '/me?x=1');
        expect(sent.status).toBe(200);
        expect(await independentlyVerified(sent)).toEqual({ ok: true, params: expect.objectContaining({ tag: 'oidc2-ict', 'oidc2-req-nonce': sent.nonce }) });
        expect((await independentlyVerified(sent, 201)).ok).toBe(false);
        expect(sent.headers['signature-input']?.[0]).toContain('"@query";req');
        expect(sent.headers['content-digest']?.[0]).toBe(`sha-256=:${createHash('sha256').update(sent.body).digest('base64')}:`);
        expect(sent.headers['identity-certification-token']?.[0]).toBe(serviceIct);
        expect((await verified(sent)).subject).toBe('api-service');
      });

      it('binds a DPoP response to the proof, verified independently too', async () => {
        const sent = await dpop(server, await caller(), 'GET', '/me');
        expect(sent.status).toBe(200);
        const { ok, params } = await independentlyVerified(sent);
        expect(ok).toBe(true);
        expect(params).not.toHaveProperty('oidc2-req-nonce');
        const otherProof = { ...sent, request: { ...sent.request, headers: { ...sent.request.headers, dpop: ['x.y.z'] } } };
        expect((await independentlyVerified(otherProof)).ok).toBe(false);
      });

      it('fails verification when the response is bound to another request', async () => {
        const first = await signed(server, await caller(), 'GET', '/me');
        const second = await signed(server, await caller(), 'GET', '/me');
        await expect(verified({ ...first, nonce: second.nonce })).rejects.toMatchObject({ code: 'response_signature_invalid' });
      });
    });

    describe('every response of an authenticated route', () => {
      let server: Server;
      beforeAll(async () => {
        server = await app();
      });

      it('HEAD is signed over the empty body', async () => {
        const sent = await signed(server, await caller(), 'HEAD', '/me');
        expect(sent.status).toBe(200);
        expect(sent.body.length).toBe(0);
        expect((await verified(sent)).subject).toBe('api-service');
      });

      it("the framework's own 500 for a throwing route is signed", async () => {
        const sent = await signed(server, await caller(), 'GET', '/boom');
        expect(sent.status).toBe(500);
        expect((await verified(sent)).subject).toBe('api-service');
      });

      it('routes without oidc2 are left alone', async () => {
        const sent = await send(server, { method: 'GET', url: `${BASE}/public`, headers: {} });
        expect(sent.status).toBe(200);
        expect(sent.json).toEqual({ public: true });
        expect(sent.headers.signature).toBeUndefined();
      });
    });

    describe('streamed responses', () => {
      it('buffers and signs a streamed body within maxResponseBytes', async () => {
        const server = await app();
        const sent = await signed(server, await caller(), 'GET', '/stream?n=64');
        expect(sent.status).toBe(200);
        expect(sent.body.length).toBe(64 * 1024);
        expect((await verified(sent)).subject).toBe('api-service');
      });

      it('beyond maxResponseBytes answers a signed 501 when the caller asked for a signature', async () => {
        const server = await app({ maxResponseBytes: 4096 });
        const sent = await signed(server, await caller(), 'GET', '/stream?n=8');
        expectProblem(sent, 501, 'response_signing_unavailable');
        expect((await verified(sent)).subject).toBe('api-service');
      });

      it('beyond maxResponseBytes streams unsigned when nobody asked for a signature', async () => {
        const server = await app({ maxResponseBytes: 4096 });
        const viaDpop = await dpop(server, await caller(), 'GET', '/stream?n=8');
        expect(viaDpop.status).toBe(200);
        expect(viaDpop.body.length).toBe(8 * 1024);
        expect(viaDpop.headers.signature).toBeUndefined();
        const notAsked = await signed(server, await caller(), 'GET', '/stream?n=8', { signing: { signResponse: false } });
        expect(notAsked.status).toBe(200);
        expect(notAsked.body.length).toBe(8 * 1024);
      });

      it('streams a body many times maxResponseBytes unsigned, whole and in order', async () => {
        const server = await app({ maxResponseBytes: 4096 });
        const sent = await signed(server, await caller(), 'GET', '/stream?n=3072', { signing: { signResponse: false } });
        expect(sent.status).toBe(200);
        expect(sent.body.length).toBe(3072 * 1024);
        expect(sent.body.every((b) => b === 0x61)).toBe(true);
      });
    });

    describe('without a service credential', () => {
      it('answers 501 before the route runs when the caller asks for a signed response', async () => {
        const server = await app({ credential: undefined });
        const sent = await signed(server, await caller(), 'GET', '/me');
        expectProblem(sent, 501, 'response_signing_unavailable');
        expect(sent.headers.signature).toBeUndefined();
        const notAsked = await signed(server, await caller(), 'GET', '/me', { signing: { signResponse: false } });
        expect(notAsked.status).toBe(200);
        expect(notAsked.headers.signature).toBeUndefined();
      });
    });

    describe('credential provider', () => {
      it('refreshes the service ICT before it expires', async () => {
        let t = Math.floor(Date.now() / 1000);
        const now = () => t;
        const minted: string[] = [];
        const server = await app({
          now,
          credential: async () => {
            const ict = await serviceIssuer.mint(serviceKey, { subject: 'api-service', now: t, lifetime: 120 });
            minted.push(ict);
            return { ict, privateKey: serviceKey.privateJwk };
          },
        });
        const who = await caller('ES256', { now: t, lifetime: 3600 });
        const at = async () => {
          const sent = await signed(server, who, 'GET', '/me', { signing: { now } });
          expect(sent.status).toBe(200);
          await verified(sent, now);
          return sent.headers['identity-certification-token']?.[0];
        };
        const first = await at();
        t += 30; // 90 s left: more than the 60 s margin
        expect(await at()).toBe(first);
        expect(minted).toHaveLength(1);
        t += 40; // 50 s left: inside the margin
        const second = await at();
        expect(minted).toHaveLength(2);
        expect(second).toBe(minted[1]);
        expect(second).not.toBe(first);
      });
    });

    describe('workloads (WIMSE)', () => {
      let domain: TestTrustDomain;
      let foreign: TestTrustDomain;
      let serviceWitKey: TestKey;
      let serviceWit: string;
      let server: Server;
      beforeAll(async () => {
        domain = await newTrustDomain('workloads.example.test', { issuer: 'https://wit-issuer.workloads.example.test' });
        foreign = await newTrustDomain('foreign.example.test');
        serviceWitKey = await newKey('ES256');
        serviceWit = await domain.mint(serviceWitKey, { subject: 'spiffe://workloads.example.test/api-service', lifetime: 3600 });
        server = await app({
          credential: undefined,
          credentials: { ict: { ict: serviceIct, privateKey: serviceKey.privateJwk }, wit: { wit: serviceWit, privateKey: serviceWitKey.privateJwk } },
          workloads: { trustDomains: [{ trustDomain: domain.trustDomain, issuer: domain.issuer, jwks: domain.jwks }, { trustDomain: foreign.trustDomain, jwks: foreign.jwks }] },
        });
      });

      async function workload(alg: KeyAlg = 'ES256', subject = 'spiffe://workloads.example.test/billing', trust = domain) {
        const key = await newKey(alg);
        return { key, wit: await trust.mint(key, { subject }), subject };
      }
      async function signedByWorkload(who: { key: TestKey; wit: string }, method: string, path: string, init: { body?: string; sendBody?: string } = {}): Promise<Sent> {
        const body = init.body === undefined ? undefined : Buffer.from(init.body);
        const message = await signRequest({ method, url: BASE + path, headers: body ? { 'content-type': 'application/json' } : {}, body }, { wit: who.wit, key: who.key.signer });
        const wire = init.sendBody === undefined ? message : { ...message, body: Buffer.from(init.sendBody) };
        return { ...(await send(server, wire)), request: message, nonce: message.nonce };
      }
      async function withWpt(who: { key: TestKey; wit: string }, method: string, path: string): Promise<Sent> {
        const wpt = await new SignJWT({ aud: BASE + path, exp: Math.floor(Date.now() / 1000) + 60, jti: `wpt-${Math.random()}`, wth: await wimseTokenHash(who.wit) })
          .setProtectedHeader({ alg: who.key.alg, typ: 'wpt+jwt' })
          .sign(await importJWK(who.key.privateJwk, who.key.alg));
        const message: HttpRequest = { method, url: BASE + path, headers: { 'workload-identity-token': [who.wit], authorization: [`WPT ${wpt}`] } };
        return { ...(await send(server, message)), request: message };
      }
      // Our own verifier, under the WIMSE profile, with the service's trust domain.
      async function verifiedWorkloadAnswer(sent: Sent) {
        const binding: RequestBinding = sent.request.headers.authorization ? wptBinding() : { proof: 'http-signature', signResponse: true, nonce: sent.nonce, profile: WIMSE_PROFILE };
        const witVerifier = createWitVerifier({ trustDomains: [{ trustDomain: domain.trustDomain, jwks: domain.jwks }] });
        return verifyResponse({ status: sent.status, headers: sent.headers, body: sent.body }, { request: sent.request, binding, witVerifier, expectedSubject: 'spiffe://workloads.example.test/api-service' });
      }
      // http-message-signatures with the public key of the service's WIT.
      const independentlyVerified = (sent: Sent) => verifiedIndependently(sent, serviceWitKey, 'workload-identity-token');
      function expectWorkloadProblem(sent: Sent, code: string, reason?: string): void {
        expect(sent.status).toBe(400);
        expect(sent.headers['content-type']?.[0]).toMatch(/^application\/problem\+json/);
        expect(sent.json.code).toBe(code);
        if (reason) expect(sent.json.reason).toBe(reason);
        expect(sent.headers['www-authenticate']).toBeUndefined();
        expect(sent.body.toString()).not.toContain(sent.request.headers['workload-identity-token']?.[0] ?? '\u0000');
      }

      it.each(['ES256', 'Ed25519'] as const)('authenticates a %s workload signature and answers with the service WIT', async (alg) => {
        const who = await workload(alg);
        const sent = await signedByWorkload(who, 'GET', '/me?x=1');
        expect(sent.status).toBe(200);
        expect(sent.json).toEqual({ subject: who.subject, issuer: domain.issuer, proof: 'http-signature' });
        expect(sent.headers['workload-identity-token']?.[0]).toBe(serviceWit);
        expect(sent.headers['identity-certification-token']).toBeUndefined();
        expect(sent.headers['signature-input']?.[0]).toContain('"@query";req');
        expect(await independentlyVerified(sent)).toEqual({ ok: true, params: expect.objectContaining({ tag: 'wimse-workload-to-workload', 'wimse-req-nonce': sent.nonce }) });
        expect((await verifiedWorkloadAnswer(sent)).subject).toBe('spiffe://workloads.example.test/api-service');
      });

      it('verifies a workload body over the raw bytes; a tampered body is 400 wimse_signature_invalid, answered signed', async () => {
        const who = await workload();
        const ok = await signedByWorkload(who, 'POST', '/echo', { body: '{ "cones" : 2 }' });
        expect(ok.json).toEqual({ subject: who.subject, body: { cones: 2 } });
        await verifiedWorkloadAnswer(ok);
        const tampered = await signedByWorkload(who, 'POST', '/echo', { body: '{"cones":2}', sendBody: '{"cones":9}' });
        expectWorkloadProblem(tampered, 'wimse_signature_invalid', 'digest_mismatch');
        expect((await independentlyVerified(tampered)).ok).toBe(true);
        await verifiedWorkloadAnswer(tampered);
      });

      it('refuses a replay, a foreign audience and an untrusted trust domain with 400', async () => {
        const who = await workload();
        const message = await signRequest({ method: 'GET', url: `${BASE}/me` }, { wit: who.wit, key: who.key.signer });
        expect((await send(server, message)).status).toBe(200);
        const again = { ...(await send(server, message)), request: message, nonce: message.nonce };
        expectWorkloadProblem(again, 'wimse_signature_invalid', 'replay_detected');
        await verifiedWorkloadAnswer(again);
        const elsewhere = await signRequest({ method: 'GET', url: `${BASE}/me` }, { wit: who.wit, key: who.key.signer, audience: 'https://other.example.test/me' });
        expectWorkloadProblem({ ...(await send(server, elsewhere)), request: elsewhere }, 'wimse_signature_invalid', 'audience_mismatch');
        const rogue = await newTrustDomain('rogue.example.test');
        const outsider = await workload('ES256', 'spiffe://rogue.example.test/x', rogue);
        expectWorkloadProblem(await signedByWorkload(outsider, 'GET', '/me'), 'wit_untrusted');
      });

      it('admits workloads of a trust domain on a workloads route, and refuses users and other domains with 403', async () => {
        const ok = await signedByWorkload(await workload(), 'GET', '/workloads');
        expect(ok.json).toEqual({ subject: 'spiffe://workloads.example.test/billing' });
        const other = await signedByWorkload(await workload('ES256', 'spiffe://foreign.example.test/x', foreign), 'GET', '/workloads');
        expect(other.status).toBe(403);
        expect(other.json.code).toBe('access_denied');
        const user = await signed(server, await caller(), 'GET', '/workloads');
        expectProblem(user, 403, 'access_denied');
        // The user is answered with the ICT, as before.
        expect((await verified(user)).subject).toBe('api-service');
      });

      it('authenticates a WPT and answers with the WIT, bound through "authorization";req', async () => {
        const who = await workload('Ed25519');
        const sent = await withWpt(who, 'GET', '/me');
        expect(sent.status).toBe(200);
        expect(sent.json).toEqual({ subject: who.subject, issuer: domain.issuer, proof: 'wpt' });
        expect(sent.headers['signature-input']?.[0]).toContain('"authorization";req');
        const { ok, params } = await independentlyVerified(sent);
        expect(ok).toBe(true);
        expect(params).not.toHaveProperty('wimse-req-nonce');
        const otherProof = { ...sent, request: { ...sent.request, headers: { ...sent.request.headers, authorization: ['WPT x.y.z'] } } };
        expect((await independentlyVerified(otherProof)).ok).toBe(false);
        expect((await verifiedWorkloadAnswer(sent)).subject).toBe('spiffe://workloads.example.test/api-service');
      });
    });

    describe('concurrency', () => {
      it('200 parallel signed requests all succeed, each answered for its own caller and request', async () => {
        const server = await app();
        const callers = await Promise.all(Array.from({ length: 20 }, (_, i) => caller(i % 2 ? 'Ed25519' : 'ES256', { subject: `user-${i}` })));
        const results = await Promise.all(
          Array.from({ length: 200 }, async (_, i) => {
            const who = callers[i % callers.length]!;
            const sent = await signed(server, who, 'GET', `/me?i=${i}`);
            return { who, sent };
          }),
        );
        for (const { who, sent } of results) {
          expect(sent.status).toBe(200);
          expect(sent.json.subject).toBe(who.subject);
          // Throws unless the signature carries this request's nonce and covers its path and query.
          await verified(sent);
        }
      });
    });
  });
}
