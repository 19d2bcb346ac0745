/**
 * OIDC² for Fastify 5: `await app.register(oidc2, options)` authenticates callers (PROFILE
 * section 2), puts them on `request.identity` and signs every response with the service's
 * credential (section 3).
 */
import { Readable } from 'node:stream';
import fp from 'fastify-plugin';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import {
  Oidc2Error,
  assertRoutePolicy,
  createOidc2Service,
  isOidc2Error,
  normalizeFields,
  type AuthResult,
  type HttpRequest,
  type Identity,
  type Oidc2Options,
  type Oidc2Service,
  type RequestBinding,
  type RoutePolicy,
} from '@oidc2/core';
import { problemResponse } from '@oidc2/node';

export type { Identity, Oidc2Error, Oidc2Options, RoutePolicy } from '@oidc2/core';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated caller; `null` on an optional route when authentication failed, and on routes with `config.oidc2: false`. */
    identity: Identity | null;
    /** Why authentication failed on an optional route (`policy.optional`), else `null`. */
    identityError: Oidc2Error | null;
  }
  interface FastifyContextConfig {
    /** This route's policy, or `false` for a route without authentication. Default: the plugin's `policy` option. */
    oidc2?: RoutePolicy | false;
  }
}

interface Exchange {
  message: HttpRequest;
  binding: RequestBinding | undefined;
}

const exchanges = new WeakMap<FastifyRequest, Exchange>();

type Source = Iterable<Uint8Array | string> | AsyncIterable<Uint8Array | string>;

// Reads a body up to `limit` bytes. Beyond the limit: a stream of everything read so far and the
// rest, and a way to stop reading instead.
async function readUpTo(source: Source, limit: number): Promise<Buffer | { rest: Readable; cancel: () => void }> {
  const iterator = Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : source[Symbol.iterator]();
  const chunks: Buffer[] = [];
  let size = 0;
  for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
    const chunk = Buffer.from(next.value);
    chunks.push(chunk);
    if ((size += chunk.length) > limit) {
      const rest = async function* () {
        yield* chunks;
        for (let n = await iterator.next(); !n.done; n = await iterator.next()) yield Buffer.from(n.value);
      };
      return { rest: Readable.from(rest()), cancel: () => void iterator.return?.() };
    }
  }
  return Buffer.concat(chunks, size);
}

// Replaces the reply with the core's signed error response, from within onSend; returns its body.
async function answer(service: Oidc2Service, exchange: Exchange, reply: FastifyReply, error: Oidc2Error): Promise<Buffer> {
  const response = await service.errorResponse(error, exchange.message, exchange.binding);
  for (const name of Object.keys(reply.getHeaders())) reply.removeHeader(name);
  for (const [name, values] of Object.entries(response.headers)) reply.header(name, values.length === 1 ? values[0] : values);
  reply.code(response.status);
  return Buffer.from(response.body ?? []);
}

const plugin: FastifyPluginAsync<Oidc2Options> = async (fastify, options) => {
  const service = createOidc2Service(options);
  fastify.decorateRequest('identity', null);
  fastify.decorateRequest('identityError', null);
  // Per-route policies are checked once, when the route is declared.
  fastify.addHook('onRoute', (route) => {
    const policy = (route.config as { oidc2?: RoutePolicy | false } | undefined)?.oidc2;
    if (policy !== undefined && policy !== false) assertRoutePolicy(policy, `route ${route.method} ${route.url} config.oidc2`);
  });

  // Authenticates before any body parser runs, over the raw bytes, and hands the parsers the same bytes.
  fastify.addHook('preParsing', (request, reply, payload, next) => {
    const policy = request.routeOptions.config?.oidc2;
    if (policy === false) return next(null, payload);
    const message: HttpRequest = { method: request.raw.method ?? request.method, url: request.raw.url ?? request.url, headers: normalizeFields(request.raw.headersDistinct) };
    // On success the binding comes from authentication; only failures read it from the raw fields (onSend).
    const exchange: Exchange = { message, binding: undefined };
    exchanges.set(request, exchange);
    const accept = (result: AuthResult) => {
      exchange.binding = result.binding;
      request.identity = result.identity;
      request.identityError = result.error ?? null;
    };
    const headers = request.raw.headers;
    const bodyless = headers['transfer-encoding'] === undefined && (headers['content-length'] === undefined || headers['content-length'] === '0');
    (async () => {
      if (bodyless) {
        const result = await service.authenticate(message, policy);
        accept(result);
        return payload;
      }
      const body = await readUpTo(payload, service.maxBodyBytes).catch((cause: unknown) => {
        throw new Oidc2Error('request_malformed', 'the request body was not received completely', { cause });
      });
      if (!Buffer.isBuffer(body)) {
        body.rest.resume(); // drain the rest, so the connection can answer
        throw new Oidc2Error('body_too_large', `the request body exceeds ${service.maxBodyBytes} bytes`);
      }
      if (body.length > 0) message.body = body;
      accept(await service.authenticate(message, policy));
      return Readable.from([body], { objectMode: false });
    })().then(
      (body) => next(null, body),
      (error: unknown) => {
        if (!isOidc2Error(error)) return next(error as Error);
        // Answered without calling next(): the route's parsers and handler never run. The onSend hook signs it.
        const problem = problemResponse(error);
        reply.code(problem.status).headers(problem.headers).send(problem.body);
      },
    );
  });

  fastify.addHook('onSend', (request, reply, payload, next) => {
    const exchange = exchanges.get(request);
    if (!exchange || !service.signsResponses) return next(null, payload);
    exchange.binding ??= service.bindingOf(exchange.message);
    (async () => {
      let body = payload;
      if (body instanceof Response) {
        reply.code(body.status);
        body.headers.forEach((value, name) => reply.header(name, value));
        body = body.body;
      }
      const read = await readUpTo(body == null || typeof body === 'string' || body instanceof Uint8Array ? [body ?? ''] : (body as Source), service.maxResponseBytes);
      const asked = exchange.binding?.signResponse === true;
      if (!Buffer.isBuffer(read)) {
        if (!asked) return read.rest; // nobody asked for a signature: stream it unsigned
        read.cancel();
        return answer(service, exchange, reply, new Oidc2Error('response_signing_unavailable', `the response exceeds ${service.maxResponseBytes} bytes and cannot be signed`));
      }
      const status = reply.statusCode;
      const bodyless = request.method === 'HEAD' || status < 200 || status === 204 || status === 304;
      try {
        const fields = await service.signResponse({ status, headers: normalizeFields(reply.getHeaders()), body: bodyless ? undefined : read }, exchange.message, exchange.binding);
        for (const [name, values] of Object.entries(fields ?? {})) reply.header(name, values.length === 1 ? values[0] : values);
        return read;
      } catch (error) {
        if (!asked) return read;
        // Never an unsigned success for a caller who asked for a signature (PROFILE section 3).
        return answer(service, exchange, reply, isOidc2Error(error) ? error : new Oidc2Error('response_signing_unavailable', 'the response could not be signed', { cause: error }));
      }
    })().then((body) => next(null, body), next);
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
