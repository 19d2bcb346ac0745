/**
 * OIDC² for Node.js `http` servers: moves the bytes of an `IncomingMessage` / `ServerResponse` pair
 * through the core's exchange (docs/protocol.md sections 2 and 4), which decides everything. The Express and
 * Koa adapters are built on it; a plain `node:http` server can use it directly.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { Oidc2Error, isAbsoluteForm, normalizeFields, problemResponse as renderProblem, type Admitted, type Oidc2Service, type RoutePolicy } from '@oidc2/core';
import type { Body, Exchange, ExchangeResponse } from '@oidc2/core';

/** Options of {@link admitRequest}. */
export interface AdmitRequestOptions {
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

const admitted = new WeakSet<IncomingMessage>();

/**
 * Runs the exchange of one request: reads the body (handing it back to `req` for the parsers that
 * run later), authenticates, and from then on passes everything written to `res` through the
 * exchange, which signs it. Resolves to the admission when the route may run, or to `undefined`
 * when the exchange refused the request and the signed problem has been sent.
 *
 * @example
 * ```ts
 * const service = createOidc2Service(options)
 * http.createServer(async (req, res) => {
 *   const admission = await admitRequest(service, req, res)
 *   if (!admission) return // refused with a signed problem
 *   res.setHeader('content-type', 'application/json')
 *   res.end(JSON.stringify({ sub: admission.identity?.subject }))
 * })
 * ```
 */
export async function admitRequest(service: Oidc2Service, req: IncomingMessage, res: ServerResponse, options: AdmitRequestOptions = {}): Promise<Admitted | undefined> {
  // A second pass would fail on its own replay check; say what is wrong instead.
  if (admitted.has(req)) throw new Error('oidc2 ran twice for one request: mount one oidc2 middleware per route (use .with(policy) for route policies)');
  admitted.add(req);
  const url = options.url ?? req.url ?? '/';
  const exchange = service.exchange({ method: req.method ?? 'GET', url, absoluteForm: isAbsoluteForm(url), headers: normalizeFields(req.headersDistinct) }, options.policy);
  // A streamed body is diverted while it is still arriving; one already complete is in `req` whole
  // (its 'end' is on its way, so nothing can be streamed into it again) and is offered whole.
  const diverted = exchange.streamsBody && options.rawBody === undefined && !req.complete ? divertBody(req, res) : undefined;
  let body = diverted?.ciphertext ?? requestBody(req, exchange, options.rawBody);
  if (exchange.streamsBody && body !== undefined && !(body instanceof Uint8Array) && !diverted) body = await readWhole(body);
  const admission = await exchange.admit(body);
  if (admission.answered) {
    // The route never ran: what earlier middleware set (CORS, security headers) stays.
    await send(res, admission.response, { keepEarlierFields: true });
    return undefined;
  }
  if (diverted) {
    diverted.deliver(admission.body);
  } else if (admission.bodyReplaced) {
    // The parser already read the ciphertext: it cannot be given the plaintext.
    if (options.rawBody !== undefined) throw new Error('an encrypted request body reached a body parser that ran before oidc2: register oidc2 before body parsers on routes that take encrypted bodies (see the adapter guide)');
    handBack(req, admission);
  }
  applyHeaderChanges(req, admission);
  if (service.signsResponses) interceptResponse(exchange, res);
  return admission;
}

/** The problem+json rendering of an error: status, challenge headers and body (signed on its way out). */
export function problemResponse(error: Oidc2Error): ProblemResponse {
  const problem = renderProblem(error);
  const headers: Record<string, string> = {};
  for (const [name, values] of Object.entries(problem.headers)) headers[name] = values.join(', ');
  return { status: problem.status, headers, body: Buffer.from(problem.body!) };
}

function requestBody(req: IncomingMessage, exchange: Exchange, rawBody: Uint8Array | string | undefined): Body | undefined {
  if (rawBody !== undefined) return typeof rawBody === 'string' ? Buffer.from(rawBody, 'utf8') : rawBody;
  if (!exchange.expectsBody) return undefined;
  if (req.readableEnded) {
    throw new Error('the request body was consumed before oidc2 could hash it: register oidc2 before body parsers, or keep the raw body (see the adapter guide)');
  }
  return heldBackChunks(req);
}

/**
 * The chunks of `req` as they arrive. When the last one is read, everything read is pushed back in the
 * same tick, before 'end' can be emitted, so the parsers that run later read the body as usual.
 * Stopped early (a refusal), it resumes `req` to discard the rest, so the refusal can be answered.
 */
async function* heldBackChunks(req: IncomingMessage): AsyncGenerator<Uint8Array> {
  const read: Buffer[] = [];
  let complete = false;
  try {
    for (;;) {
      const batch: Buffer[] = [];
      for (let chunk: Buffer | null; (chunk = req.read() as Buffer | null) !== null; ) batch.push(chunk);
      read.push(...batch);
      if (req.complete) {
        complete = true;
        const size = read.reduce((n, c) => n + c.length, 0);
        if (size > 0 && !req.readableEnded) req.unshift(Buffer.concat(read, size));
      }
      yield* batch;
      if (complete) return;
      await new Promise<void>((resolve, reject) => {
        const done = (error?: unknown) => {
          req.off('readable', onReadable).off('error', onAbort).off('close', onAbort);
          if (error) reject(error as Error);
          else resolve();
        };
        const onReadable = () => done();
        const onAbort = () => done(new Oidc2Error('request_malformed', 'the request body was not received completely'));
        req.on('readable', onReadable).on('error', onAbort).on('close', onAbort);
        // What arrived while the consumer held the last batch raised no event for these listeners.
        if (req.destroyed) onAbort();
        else if (req.readableLength > 0 || req.complete) done();
      });
    }
  } finally {
    if (!complete) setImmediate(() => req.resume()); // discard the rest once no listener reads it
  }
}

async function readWhole(body: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) chunks.push(chunk);
  return Buffer.concat(chunks);
}

// Swaps a replaced body in for the bytes held back: taken out and put back in the same tick, so
// 'end' is still not emitted. (Only a whole body is replaced this way: a streamed one was diverted.)
function handBack(req: IncomingMessage, admission: Admitted): void {
  const body = admission.body as Uint8Array | undefined;
  while (req.read() !== null);
  if (body && body.length > 0) req.unshift(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
}

/** A streamed request body taken over from the HTTP parser, see {@link divertBody}. */
interface DivertedBody {
  /** The bytes as received, for the exchange. */
  readonly ciphertext: AsyncIterable<Uint8Array>;
  /** Feeds `req` with what the route must read (the exchange's replacement) as the route reads it. */
  deliver(body: Body | undefined): void;
}

type IncomingInternals = IncomingMessage & {
  _read(size: number): void;
  _destroy(error: Error | null, callback: (error?: Error | null) => void): void;
};

/**
 * Takes a streamed body (docs/protocol.md section 7.7) over from the HTTP parser: what the parser pushes into `req`
 * goes to the exchange instead, and what the exchange makes of it is pushed into `req` as the route
 * reads, so the route and its parsers read the plaintext from `req` as usual, with backpressure both
 * ways (the socket pauses while the exchange has a full buffer, the exchange while `req` has one).
 * When the exchange stops early, the route's reading fails, or the response is over before the body,
 * the rest is read and dropped, so the connection can still answer and serve its next request.
 */
function divertBody(req: IncomingMessage, res: ServerResponse): DivertedBody {
  const incoming = req as IncomingInternals;
  const push = req.push;
  // IncomingMessage's own `_read` resumes the socket; the parser pauses it when a push returns false.
  const read = incoming._read;
  const resumeSocket = () => {
    if (req.socket) read.call(req, 0);
  };
  let discarding = false;
  let wake: (() => void) | undefined;
  const ciphertext = new Readable({ highWaterMark: HIGH_WATER_MARK, read: resumeSocket });
  // Drops the rest of the body, and stops feeding `req` (a pending push fails on the destroyed source).
  const discard = () => {
    const resume = wake;
    wake = undefined;
    resume?.();
    if (discarding) return;
    discarding = true;
    ciphertext.destroy();
    resumeSocket();
  };
  req.push = (chunk: unknown, encoding?: BufferEncoding) => discarding || ciphertext.push(chunk, encoding);
  for (let chunk: Buffer | null; (chunk = req.read() as Buffer | null) !== null; ) ciphertext.push(chunk);
  // Destroyed (the client went away, or the route's body failed), `req` keeps the socket for the answer.
  incoming._destroy = (error, callback) => {
    discard();
    callback(req.listenerCount('error') > 0 ? error : null); // as IncomingMessage: an error only for listeners
  };
  res.once('finish', discard).once('close', discard);

  async function* received(): AsyncGenerator<Uint8Array> {
    let ended = false;
    try {
      for await (const chunk of ciphertext.iterator({ destroyOnReturn: false })) yield chunk as Uint8Array;
      ended = true;
    } finally {
      if (!ended) discard();
    }
  }

  return {
    ciphertext: received(),
    deliver(body) {
      incoming._read = () => {
        const resume = wake;
        wake = undefined;
        resume?.();
      };
      void (async () => {
        try {
          if (body !== undefined) {
            for await (const chunk of body instanceof Uint8Array ? [body] : body) {
              if (req.destroyed) return;
              if (!push.call(req, chunk)) await new Promise<void>((resolve) => (wake = resolve));
            }
          }
          push.call(req, null);
        } catch (error) {
          req.destroy(error as Error);
        }
      })();
    },
  };
}

// The fields the route must see changed: a replaced body's length and coding, an e2ee request's range.
function applyHeaderChanges(req: IncomingMessage, admission: Admitted): void {
  for (const [name, value] of Object.entries(admission.headerChanges)) {
    if (value === undefined) delete req.headers[name];
    else req.headers[name] = value;
  }
}

// What the socket's 'drain' of an intercepted response is emitted as (interceptResponse).
const SOCKET_DRAIN = Symbol('oidc2 socket drain');

/** Resolves on the next `event` of `res` (the socket drained), or when `res` closes. */
function drained(res: ServerResponse, event: string | symbol): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      res.off(event, done).off('close', done);
      resolve();
    };
    res.on(event, done).on('close', done);
  });
}

interface SendOptions {
  keepEarlierFields?: boolean;
  /** The original `ServerResponse` methods, when the route's are intercepted. */
  original?: { write: ServerResponse['write']; end: ServerResponse['end'] };
  /** The event the socket's 'drain' is emitted as on `res` ({@link SOCKET_DRAIN} once the route's is renamed). Default 'drain'. */
  drain?: string | symbol;
}

// Writes a response from the exchange with the original `ServerResponse` methods.
async function send(res: ServerResponse, response: ExchangeResponse, options: SendOptions = {}): Promise<void> {
  const { write, end } = options.original ?? res;
  const drain = options.drain ?? 'drain';
  if (response.added) {
    for (const [name, values] of Object.entries(response.added)) res.setHeader(name, values.length === 1 ? values[0]! : values);
  } else {
    if (!options.keepEarlierFields) for (const name of res.getHeaderNames()) if (response.headers[name] === undefined) res.removeHeader(name);
    for (const [name, values] of Object.entries(response.headers)) res.setHeader(name, values.length === 1 ? values[0]! : values);
    if (res.statusCode !== response.status) res.statusMessage = '';
    res.statusCode = response.status;
  }
  const body = response.body;
  if (body === undefined || body instanceof Uint8Array) {
    (end as (chunk?: Uint8Array) => ServerResponse).call(res, body);
    return;
  }
  for await (const chunk of body) {
    if (res.destroyed) return; // the caller is gone: stop pulling the body
    if (!(write as (chunk: Uint8Array) => boolean).call(res, chunk) && !res.destroyed) await drained(res, drain);
  }
  (end as () => ServerResponse).call(res);
}

const HIGH_WATER_MARK = 64 * 1024;

// Holds back the head and body written to `res`: at the first write the head and the body so far go
// to the exchange, and what it returns is what is sent. Two paces: the route's writes fill a queue
// the exchange reads, and its 'drain' is the queue's; the exchange's writes fill the socket, and the
// socket's 'drain' is the exchange's alone (a route resumed by it would outrun the queue's reader).
function interceptResponse(exchange: Exchange, res: ServerResponse): void {
  const original = { writeHead: res.writeHead, write: res.write, end: res.end, emit: res.emit };
  let queue: ChunkQueue | undefined;
  let started = false;
  // The socket's 'drain' is renamed only once the route streams (writes before it ends): a route
  // that answers with one end() never waits on it, and its response keeps Node's own emit.
  let drainRenamed = false;

  function renameDrain(): void {
    drainRenamed = true;
    res.emit = function emit(this: ServerResponse, event: string | symbol, ...args: unknown[]) {
      return original.emit.call(this, event === 'drain' ? SOCKET_DRAIN : event, ...args);
    } as ServerResponse['emit'];
  }

  function start(body: Body | undefined): void {
    started = true;
    const response = { status: res.statusCode, headers: normalizeFields(res.getHeaders()), body };
    exchange
      .respond(response)
      .then((out) => {
        res.writeHead = original.writeHead; // Node writes the implicit head through it
        return send(res, out, { original, drain: drainRenamed ? SOCKET_DRAIN : 'drain' });
      })
      .catch(() => res.destroy());
  }
  function chunkOf(chunk: unknown, encoding: unknown): Uint8Array | undefined {
    if (chunk == null) return undefined;
    if (typeof chunk === 'string') return Buffer.from(chunk, encoding as BufferEncoding | undefined);
    const c = chunk as Uint8Array;
    return new Uint8Array(c.buffer, c.byteOffset, c.byteLength);
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
  // The body starts: its chunks go to the exchange as the route writes them.
  const streamBody = () => {
    if (!queue && !started) {
      renameDrain();
      queue = new ChunkQueue(() => original.emit.call(res, 'drain'));
      // Gone before the route finished: what it still writes is dropped, not queued.
      res.once('close', () => queue!.close());
      start(queue);
    }
  };
  // The head goes out when the exchange says so: at once for a streamed encrypted response (an event
  // stream's caller sees it before the first event), else with the signed body.
  res.flushHeaders = streamBody;
  res.write = function write(chunk: unknown, encoding?: unknown, callback?: unknown) {
    if (typeof encoding === 'function') [callback, encoding] = [encoding, undefined];
    const bytes = chunkOf(chunk, encoding);
    streamBody();
    if (bytes && queue) queue.push(bytes);
    if (typeof callback === 'function') process.nextTick(callback as () => void);
    return !queue || queue.size < HIGH_WATER_MARK;
  } as ServerResponse['write'];
  res.end = function end(chunk?: unknown, encoding?: unknown, callback?: unknown) {
    if (typeof chunk === 'function') [callback, chunk] = [chunk, undefined];
    else if (typeof encoding === 'function') [callback, encoding] = [encoding, undefined];
    if (typeof callback === 'function') res.once('finish', callback as () => void);
    const bytes = chunkOf(chunk, encoding);
    if (queue) {
      if (bytes) queue.push(bytes);
      queue.close();
    } else if (!started) {
      start(bytes);
    }
    return res;
  } as ServerResponse['end'];
}

// The chunks a route writes, as an async iterable read by the exchange. `size` is what is queued and
// not yet read, for the route's backpressure; `onDrain` runs when a full queue has been read empty.
class ChunkQueue implements AsyncIterable<Uint8Array> {
  size = 0;
  #chunks: Uint8Array[] = [];
  #closed = false;
  #wake: (() => void) | undefined;
  #full = false;

  constructor(private readonly onDrain: () => void) {}

  push(chunk: Uint8Array): void {
    if (this.#closed) return;
    this.#chunks.push(chunk);
    this.size += chunk.byteLength;
    if (this.size >= HIGH_WATER_MARK) this.#full = true;
    this.#wake?.();
  }

  close(): void {
    this.#closed = true;
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    try {
      yield* this.#drain();
    } finally {
      // Stopped early (the exchange refused the body): later writes are dropped, not queued.
      this.#closed = true;
      this.#chunks.length = 0;
    }
  }

  async *#drain(): AsyncGenerator<Uint8Array> {
    for (;;) {
      const chunk = this.#chunks.shift();
      if (chunk) {
        this.size -= chunk.byteLength;
        if (this.#full && this.size === 0) {
          this.#full = false;
          this.onDrain();
        }
        yield chunk;
        continue;
      }
      if (this.#closed) return;
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = undefined;
    }
  }
}
