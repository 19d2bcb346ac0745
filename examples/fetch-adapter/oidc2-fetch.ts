/**
 * A fourth oidc2 adapter, for any framework built on the Fetch API's `Request` and `Response` (Hono,
 * Deno, Bun, service workers): the whole contract is the core's exchange, and this file only moves
 * bytes between it and the Fetch objects. docs/adapters.md walks through it; the shared adapter
 * suite runs against it like against Express, Fastify and Koa.
 */
import {
  assertRoutePolicy,
  createOidc2Service,
  normalizeFields,
  type Body,
  type ExchangeResponse,
  type Identity,
  type Oidc2Error,
  type Oidc2Options,
  type RoutePolicy,
} from '@oidc2/core';

/** What a protected handler learns about its caller. */
export interface Caller {
  /** The caller; null on an optional route when authentication failed. */
  identity: Identity | null;
  /** Why authentication failed on an optional route. */
  error?: Oidc2Error;
}

/** A route: the request (with the body the exchange handed back) and its caller. */
export type Handler = (request: Request, caller: Caller) => Response | Promise<Response>;

/** The chunks of a Fetch body stream. */
async function* chunks(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (let next = await reader.read(); !next.done; next = await reader.read()) yield next.value;
  } finally {
    reader.releaseLock();
  }
}

function toStream(body: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  const iterator = body[Symbol.asyncIterator]();
  return new ReadableStream({
    async pull(controller) {
      const next = await iterator.next();
      if (next.done) controller.close();
      else controller.enqueue(next.value);
    },
    async cancel() {
      await iterator.return?.();
    },
  });
}

function toHeaders(fields: Record<string, string[]>): Headers {
  const headers = new Headers();
  for (const [name, values] of Object.entries(fields)) for (const value of values) headers.append(name, value);
  return headers;
}

function toResponse(response: ExchangeResponse): Response {
  const body: Body | undefined = response.body;
  const nullBody = [101, 204, 205, 304].includes(response.status);
  return new Response(nullBody || body === undefined ? null : body instanceof Uint8Array ? (body as Uint8Array<ArrayBuffer>) : toStream(body), {
    status: response.status,
    headers: toHeaders(response.headers),
  });
}

/**
 * Creates the adapter: options are validated once, here. `protect(handler, policy?)` returns a
 * Fetch handler that authenticates, runs `handler` only when admitted, and signs what it answers.
 *
 * @example
 * ```ts
 * const protect = oidc2({ issuers: [{ issuer: 'https://op.example.com' }], audiences: ['https://api.example.com'], credential })
 * export default { fetch: protect(async (_request, { identity }) => Response.json({ sub: identity?.subject })) }
 * ```
 */
export function oidc2(options: Oidc2Options): (handler: Handler, policy?: RoutePolicy) => (request: Request) => Promise<Response> {
  const service = createOidc2Service(options);
  return (handler, policy) => {
    assertRoutePolicy(policy);
    return async (request) => {
      const url = new URL(request.url);
      const exchange = service.exchange({ method: request.method, url: url.pathname + url.search, headers: normalizeFields(request.headers) }, policy);
      const admission = await exchange.admit(exchange.expectsBody && request.body ? chunks(request.body) : undefined);
      if (admission.answered) return toResponse(admission.response);
      const headers = new Headers(request.headers);
      for (const [name, value] of Object.entries(admission.headerChanges)) {
        if (value === undefined) headers.delete(name);
        else headers.set(name, value);
      }
      const body = admission.body === undefined ? null : admission.body instanceof Uint8Array ? (admission.body as Uint8Array<ArrayBuffer>) : toStream(admission.body);
      const routed = new Request(request.url, { method: request.method, headers, body, duplex: 'half' } as RequestInit);
      let answer: Response;
      try {
        answer = await handler(routed, { identity: admission.identity, ...(admission.error ? { error: admission.error } : {}) });
      } catch {
        answer = new Response(null, { status: 500 }); // the route failed: a bare 500, signed like any answer
      }
      const out = await exchange.respond({ status: answer.status, headers: normalizeFields(answer.headers), body: answer.body ? chunks(answer.body) : undefined });
      return toResponse(out);
    };
  };
}
