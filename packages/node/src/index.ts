/**
 * OIDC² for Node.js `http` servers: authenticates an `IncomingMessage` with the core service and
 * signs whatever is then written to its `ServerResponse` (PROFILE sections 2 and 3). The Express
 * and Koa adapters are built on it; a plain `node:http` server can use it directly.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  Oidc2Error,
  isOidc2Error,
  normalizeFields,
  problemResponse as renderProblem,
  type AuthResult,
  type HttpRequest,
  type Oidc2Service,
  type RequestBinding,
  type RoutePolicy,
} from '@oidc2/core';

/** Options of {@link authenticateRequest}. */
export interface AuthenticateRequestOptions {
  /** The request target exactly as the client sent it (Express `req.originalUrl`, Koa `ctx.originalUrl`). Default `req.url`. */
  url?: string;
  /** This route's policy. Default: the service's `policy` option. */
  policy?: RoutePolicy;
  /**
   * The raw body, when a body parser consumed the stream first and kept a copy (the `verify` hook of
   * `express.json()`, `ctx.request.rawBody` of `@koa/bodyparser`). A string is encoded as UTF-8, so
   * only UTF-8 bodies verify this way. Default: the body is read from `req` and handed back to the
   * parsers that run later.
   */
  rawBody?: Uint8Array | string;
}

/** An unsigned `application/problem+json` response for an error (signed on its way out). */
export interface ProblemResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

const authenticated = new WeakSet<IncomingMessage>();

/**
 * Authenticates one request and, when the service has a credential, makes its response signed:
 * from this call on, everything written to `res` (by the route, an error handler or the framework)
 * is held back until it ends and then sent with the service's ICT, `Content-Digest` and a signature
 * bound to the request. A body larger than `maxResponseBytes` is answered with a signed 501
 * problem when the caller asked for a signed response, and sent unsigned otherwise.
 *
 * The body is read up to `maxBodyBytes` and pushed back into `req`, so body parsers that run later
 * read it as usual.
 *
 * @throws an `Oidc2Error` (render it with {@link problemResponse}) unless the policy is optional.
 * @example
 * ```ts
 * const service = createOidc2Service(options)
 * http.createServer(async (req, res) => {
 *   try {
 *     const { identity } = await authenticateRequest(service, req, res)
 *     res.setHeader('content-type', 'application/json').end(JSON.stringify({ sub: identity?.subject }))
 *   } catch (error) {
 *     if (!isOidc2Error(error)) throw error
 *     const problem = problemResponse(error)
 *     res.writeHead(problem.status, problem.headers).end(problem.body)
 *   }
 * })
 * ```
 */
export async function authenticateRequest(
  service: Oidc2Service,
  req: IncomingMessage,
  res: ServerResponse,
  options: AuthenticateRequestOptions = {},
): Promise<AuthResult> {
  // A second pass would fail on its own replay check; say what is wrong instead.
  if (authenticated.has(req)) throw new Error('oidc2 ran twice for one request: mount one oidc2 middleware per route (use .with(policy) for route policies)');
  authenticated.add(req);
  const request: HttpRequest = { method: req.method ?? 'GET', url: options.url ?? req.url ?? '/', headers: normalizeFields(req.headersDistinct) };
  // On success the binding comes from authentication; only failures read it from the raw fields.
  const state: BindingState = { binding: undefined };
  if (service.signsResponses) signResponses(service, request, state, req, res);
  request.body = await readBody(req, options.rawBody, service.maxBodyBytes);
  const result = await service.authenticate(request, options.policy);
  state.binding = result.binding;
  return result;
}

/** The problem+json rendering of an error: status, challenge headers and body. */
export function problemResponse(error: Oidc2Error): ProblemResponse {
  const problem = renderProblem(error);
  const headers: Record<string, string> = {};
  for (const [name, values] of Object.entries(problem.headers)) headers[name] = values.join(', ');
  return { status: problem.status, headers, body: Buffer.from(problem.body!) };
}

const tooLarge = (limit: number) => new Oidc2Error('body_too_large', `the request body exceeds ${limit} bytes`);
const incomplete = () => new Oidc2Error('request_malformed', 'the request body was not received completely');

async function readBody(req: IncomingMessage, rawBody: Uint8Array | string | undefined, limit: number): Promise<Uint8Array | undefined> {
  if (rawBody !== undefined) {
    const bytes = typeof rawBody === 'string' ? Buffer.from(rawBody, 'utf8') : rawBody;
    if (bytes.length > limit) throw tooLarge(limit);
    return bytes;
  }
  const length = req.headers['content-length'];
  if (req.headers['transfer-encoding'] === undefined && (length === undefined || length === '0')) return undefined;
  if (req.readableEnded) {
    throw new Error('the request body was consumed before oidc2 could hash it: register oidc2 before body parsers, or keep the raw body (see the adapter guide)');
  }
  if (Number(length) > limit) {
    req.resume();
    throw tooLarge(limit);
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const settle = (error?: Oidc2Error) => {
      req.off('readable', onReadable).off('end', onEnd).off('error', onAbort).off('close', onAbort);
      if (error) return reject(error);
      const body = Buffer.concat(chunks, size);
      // Pushed back before 'end' is emitted, so parsers that run later read the body as usual.
      if (size > 0 && !req.readableEnded) req.unshift(body);
      resolve(body);
    };
    const onReadable = () => {
      for (let chunk: Buffer | null; (chunk = req.read() as Buffer | null) !== null; ) {
        size += chunk.length;
        if (size > limit) {
          settle(tooLarge(limit));
          setImmediate(() => req.resume()); // discard the rest once the 'readable' listener is gone
          return;
        }
        chunks.push(chunk);
      }
      if (req.complete) settle();
    };
    const onEnd = () => settle();
    const onAbort = () => settle(incomplete());
    req.on('readable', onReadable).on('end', onEnd).on('error', onAbort).on('close', onAbort);
  });
}

type Mode = 'buffer' | 'pass' | 'done';

// Holds back the head and body written to `res` and sends them signed once the body is complete.
interface BindingState {
  binding: RequestBinding | undefined;
}

function signResponses(service: Oidc2Service, request: HttpRequest, state: BindingState, req: IncomingMessage, res: ServerResponse): void {
  const binding = () => (state.binding ??= service.bindingOf(request));
  const original = { writeHead: res.writeHead, write: res.write, end: res.end, flushHeaders: res.flushHeaders };
  const chunks: Buffer[] = [];
  let size = 0;
  let mode: Mode = 'buffer';
  const abort = () => res.destroy();

  function collect(chunk: unknown, encoding: unknown): void {
    if (chunk == null || mode !== 'buffer') return;
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, encoding as BufferEncoding | undefined) : Buffer.from((chunk as Uint8Array).buffer, (chunk as Uint8Array).byteOffset, (chunk as Uint8Array).byteLength);
    size += bytes.length;
    if (size <= service.maxResponseBytes) {
      chunks.push(bytes);
    } else if (binding()?.signResponse) {
      // Never an unsigned success for a caller who asked for a signature (PROFILE section 3).
      mode = 'done';
      chunks.length = 0;
      sendError(new Oidc2Error('response_signing_unavailable', `the response exceeds ${service.maxResponseBytes} bytes and cannot be signed`)).catch(abort);
    } else {
      // Nobody asked for a signature: stream the rest unsigned instead of buffering without bound.
      mode = 'pass';
      Object.assign(res, original);
      for (const c of chunks) res.write(c);
      res.write(bytes);
      chunks.length = 0;
    }
  }

  res.writeHead = function writeHead(status: number, ...rest: unknown[]) {
    // The head goes out with the signature; until then status and fields are only recorded.
    if (typeof rest[0] === 'string') res.statusMessage = rest.shift() as string;
    res.statusCode = status;
    const fields = rest[0];
    const list = Array.isArray(fields)
      ? Array.isArray(fields[0])
        ? (fields as Array<[string, string]>)
        : fields.flatMap((v, i) => (i % 2 === 0 ? [[v, fields[i + 1]] as [string, string]] : []))
      : Object.entries((fields ?? {}) as Record<string, string>);
    for (const [name, value] of list) if (value !== undefined) res.setHeader(name, value);
    return res;
  } as ServerResponse['writeHead'];
  res.flushHeaders = () => undefined;
  res.write = function write(chunk: unknown, encoding?: unknown, callback?: unknown) {
    if (typeof encoding === 'function') [callback, encoding] = [encoding, undefined];
    collect(chunk, encoding);
    if (typeof callback === 'function') process.nextTick(callback as () => void);
    return true;
  } as ServerResponse['write'];
  res.end = function end(chunk?: unknown, encoding?: unknown, callback?: unknown) {
    if (typeof chunk === 'function') [callback, chunk] = [chunk, undefined];
    else if (typeof encoding === 'function') [callback, encoding] = [encoding, undefined];
    if (typeof callback === 'function') res.once('finish', callback as () => void);
    collect(chunk, encoding);
    if (mode === 'buffer') {
      mode = 'done';
      finish().catch(abort);
    } else if (mode === 'pass') {
      res.end();
    }
    return res;
  } as ServerResponse['end'];

  async function finish(): Promise<void> {
    const body = Buffer.concat(chunks, size);
    chunks.length = 0;
    const status = res.statusCode;
    const bodyless = req.method === 'HEAD' || status < 200 || status === 204 || status === 304;
    try {
      const fields = await service.signResponse({ status, headers: normalizeFields(res.getHeaders()), body: bodyless ? undefined : body }, request, binding());
      for (const [name, values] of Object.entries(fields ?? {})) res.setHeader(name, values);
    } catch (error) {
      if (binding()?.signResponse) {
        return sendError(isOidc2Error(error) ? error : new Oidc2Error('response_signing_unavailable', 'the response could not be signed', { cause: error }));
      }
    }
    send(body);
  }

  async function sendError(error: Oidc2Error): Promise<void> {
    const response = await service.errorResponse(error, request, binding());
    for (const name of res.getHeaderNames()) res.removeHeader(name);
    res.statusCode = response.status;
    res.statusMessage = '';
    for (const [name, values] of Object.entries(response.headers)) res.setHeader(name, values);
    send(response.body);
  }

  // Node writes the implicit head through `this.writeHead`: give it back first. Writes after this
  // end are still swallowed by the patched `write` and `end`.
  function send(body: Uint8Array | undefined): void {
    res.writeHead = original.writeHead;
    (original.end as (chunk?: Uint8Array) => ServerResponse).call(res, body);
  }
}
