/**
 * OIDC² for Fastify 5: `await app.register(oidc2, options)` authenticates callers (docs/protocol.md
 * section 2), puts them on `request.identity` and signs every response with the service's
 * credential (section 3).
 */
import { Readable } from 'node:stream';
import fp from 'fastify-plugin';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { assertRoutePolicy, createOidc2Service, isAbsoluteForm, normalizeFields, type Body, type Exchange, type ExchangeResponse, type Identity, type Oidc2Error, type Oidc2Options, type RoutePolicy } from '@oidc2/core';

export type { Identity, Oidc2Error, Oidc2Options, RoutePolicy } from '@oidc2/core';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated caller; `null` on an optional route when authentication failed, and on routes with `config.oidc2: false`. */
    identity: Identity | null;
    /** Why authentication failed on an optional route (`policy.optional`), else `null`. */
    identityError: Oidc2Error | null;
  }
  interface FastifyInstance {
    /** The oidc2 service of this plugin: `await fastify.oidc2.ready()` checks its credentials at start-up. */
    oidc2: { ready(): Promise<void> };
  }
  interface FastifyContextConfig {
    /** This route's policy, or `false` for a route without authentication. Default: the plugin's `policy` option. */
    oidc2?: RoutePolicy | false;
  }
}

const exchanges = new WeakMap<object, Exchange>();

// The chunks of a route's reply stream. Stopped early (the exchange gave up on it), the stream is
// destroyed, so that what produces it stops (and releases its file or cursor) instead of running on
// for nobody.
async function* replyChunks(payload: Readable): AsyncGenerator<Uint8Array> {
  let ended = false;
  try {
    for await (const chunk of payload.iterator({ destroyOnReturn: false })) yield typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Uint8Array);
    ended = true;
  } finally {
    if (!ended) payload.destroy();
  }
}

// The chunks of a request payload as they arrive, read with read() and 'readable' (a stream's own async
// iterator costs several promises and listeners per request). Stopped early (a refusal), the rest is
// read on and dropped so the connection can answer and serve again.
async function* requestChunks(payload: Readable): AsyncGenerator<Uint8Array> {
  let ended = false;
  try {
    for (;;) {
      for (let chunk: Buffer | string | null; (chunk = payload.read() as Buffer | string | null) !== null; ) yield typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      if (payload.readableEnded) break;
      const more = await new Promise<boolean>((resolve, reject) => {
        const done = (error: unknown, value: boolean) => {
          payload.off('readable', onReadable).off('end', onEnd).off('error', onError).off('close', onClose);
          if (error) reject(error as Error);
          else resolve(value);
        };
        const onReadable = () => done(undefined, true);
        const onEnd = () => done(undefined, false);
        const onError = (error: unknown) => done(error, false);
        const onClose = () => done(payload.readableEnded ? undefined : new Error('the request body was not received completely'), false);
        payload.on('readable', onReadable).on('end', onEnd).on('error', onError).on('close', onClose);
        if (payload.destroyed) onClose();
        else if (payload.readableLength > 0) done(undefined, true);
      });
      if (!more) break;
    }
    ended = true;
  } finally {
    if (!ended) payload.resume();
  }
}

// A body the parsers read next: one pushed buffer, or a stream of chunks.
function parserPayload(body: Body): Readable {
  if (!(body instanceof Uint8Array)) return Readable.from(body, { objectMode: false });
  const stream = new Readable({ read() {} });
  stream.push(body);
  stream.push(null);
  return stream;
}

// What a route's reply carries, as the exchange's body.
function bodyOf(payload: unknown): Body | undefined {
  if (payload == null) return undefined;
  if (typeof payload === 'string') return Buffer.from(payload);
  if (payload instanceof Uint8Array) return payload;
  return replyChunks(payload as Readable);
}

function writeHead(reply: FastifyReply, response: ExchangeResponse): void {
  if (response.added) {
    for (const [name, values] of Object.entries(response.added)) reply.header(name, values.length === 1 ? values[0] : values);
    return;
  }
  for (const name of Object.keys(reply.getHeaders())) if (response.headers[name] === undefined) reply.removeHeader(name);
  for (const [name, values] of Object.entries(response.headers)) reply.header(name, values.length === 1 ? values[0] : values);
  reply.code(response.status);
}

const plugin: FastifyPluginAsync<Oidc2Options> = async (fastify, options) => {
  const service = createOidc2Service(options);
  fastify.decorate('oidc2', { ready: () => service.ready() });
  fastify.decorateRequest('identity', null);
  fastify.decorateRequest('identityError', null);
  // Per-route policies are checked once, when the route is declared.
  fastify.addHook('onRoute', (route) => {
    const policy = (route.config as { oidc2?: RoutePolicy | false } | undefined)?.oidc2;
    if (policy !== undefined && policy !== false) assertRoutePolicy(policy, `route ${route.method} ${route.url} config.oidc2`);
  });

  // Runs the exchange before any body parser, over the raw bytes, and hands the parsers its body.
  fastify.addHook('preParsing', (request, reply, payload, next) => {
    const policy = request.routeOptions.config?.oidc2;
    if (policy === false) return next(null, payload);
    const raw = request.raw;
    const url = raw.url ?? request.url;
    const exchange = service.exchange({ method: raw.method ?? request.method, url, absoluteForm: isAbsoluteForm(url), headers: normalizeFields(raw.headersDistinct ?? raw.headers) }, policy);
    exchanges.set(request, exchange);
    exchange.admit(exchange.expectsBody ? requestChunks(payload) : undefined).then((admission) => {
      if (admission.answered) {
        // Answered without calling next(): the route's parsers and handler never run.
        writeHead(reply, admission.response);
        return reply.send(admission.response.body);
      }
      request.identity = admission.identity;
      request.identityError = admission.error ?? null;
      // A replaced body (a decrypted one) comes with its own length and no content coding.
      for (const [name, value] of Object.entries(admission.headerChanges)) {
        if (value === undefined) delete raw.headers[name];
        else raw.headers[name] = value;
      }
      const body = admission.body;
      next(null, body === undefined ? payload : parserPayload(body));
    }, next);
  });

  fastify.addHook('onSend', (request, reply, payload, next) => {
    const exchange = exchanges.get(request);
    if (!exchange || !service.signsResponses) return next(null, payload);
    let body = payload;
    if (body instanceof Response) {
      reply.code(body.status);
      body.headers.forEach((value, name) => reply.header(name, value));
      body = body.body ? Readable.fromWeb(body.body as import('node:stream/web').ReadableStream) : null;
    }
    exchange.respond({ status: reply.statusCode, headers: normalizeFields(reply.getHeaders()), body: bodyOf(body) }).then((out) => {
      writeHead(reply, out);
      const sent = out.body;
      next(null, sent === undefined ? sent : sent instanceof Uint8Array ? Buffer.from(sent.buffer, sent.byteOffset, sent.byteLength) : Readable.from(sent, { objectMode: false }));
    }, next);
  });
};

/**
 * The OIDC² plugin. Options are validated at registration, once; a bad option throws a
 * `TypeError` naming it. Registered with `fastify-plugin`, so its hooks cover the scope it is
 * registered in; register it inside an encapsulated plugin to protect only that plugin's routes.
 *
 * Per route, `config: { oidc2: policy }` replaces the default policy and `config: { oidc2: false }`
 * turns authentication off. On failure the plugin answers with the core's signed problem+json
 * response before the body is parsed.
 *
 * @example
 * ```ts
 * await app.register(oidc2, { issuers: [{ issuer: 'https://op.example.com' }], audiences: ['https://api.example.com'], credential })
 * app.get('/me', async (request) => ({ sub: request.identity?.subject }))
 * app.post('/transfers', { config: { oidc2: { contexts: ['mfa'] } } }, transfer)
 * ```
 */
export const oidc2 = fp(plugin, { fastify: '5.x', name: '@oidc2/fastify' });
export default oidc2;
