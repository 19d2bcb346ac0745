// One OIDC² service per framework with routes that stream end-to-end encrypted bodies (docs/protocol.md section 7.7),
// on 127.0.0.1. Bodies are generated and digested on the fly, never held whole, so the same apps run
// in a child process whose RSS is measured (streaming-child.ts).
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import express from 'express';
import Fastify from 'fastify';
import Koa from 'koa';
import { bodyParser } from '@koa/bodyparser';
import { oidc2 as expressOidc2, oidc2ErrorHandler } from '@oidc2/express';
import { oidc2 as fastifyOidc2 } from '@oidc2/fastify';
import { oidc2 as koaOidc2 } from '@oidc2/koa';
import type { Oidc2Options, RoutePolicy } from '@oidc2/core';
import type { Framework } from './frameworks';
import { listen } from './node-service';

/** The policy of the routes that take streamed request bodies. */
export const STREAMED_UPLOADS: RoutePolicy = Object.freeze({ encryptedStreams: Object.freeze({ requests: true }) });

/** The events `GET /events` sends, at the pace the test sets (`nextEvents`), else all at once. */
export const EVENTS = Object.freeze(['data: one\n\n', 'data: two\n\n', 'data: three\n\n']);

const CHUNK = 64 * 1024;
// Sixteen fixed pseudo-random blocks, each with its number in its first octet; made once, so that
// generating a body allocates nothing and the memory measured is the service's own.
const BLOCKS = Array.from({ length: 16 }, (_, n) => {
  const block = Buffer.alloc(CHUNK);
  for (let i = 0; i < CHUNK; i++) block[i] = ((i + n * 7919) * 2654435761) >>> 24;
  block[0] = n;
  return block;
});

/**
 * `size` octets in chunks of 64 KiB, cycling through sixteen distinct blocks (never changed after
 * they are made), so a reordered, repeated or lost chunk changes the digest.
 */
export async function* patternChunks(size: number): AsyncGenerator<Buffer> {
  for (let offset = 0, index = 0; offset < size; offset += CHUNK, index++) {
    const block = BLOCKS[index % BLOCKS.length]!;
    yield size - offset >= CHUNK ? block : block.subarray(0, size - offset);
  }
}

/** Length and SHA-256 (hex) of a stream, read chunk by chunk. */
export async function digestOf(body: AsyncIterable<Uint8Array | string> | Iterable<Uint8Array>): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of body) {
    hash.update(chunk);
    bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
  }
  return { bytes, sha256: hash.digest('hex') };
}

const digests = new Map<number, string>();
/** The SHA-256 of {@link patternChunks}(size), computed once per size. */
export async function patternDigest(size: number): Promise<string> {
  let digest = digests.get(size);
  if (digest === undefined) digests.set(size, (digest = (await digestOf(patternChunks(size))).sha256));
  return digest;
}

export interface StreamingService {
  framework: Framework;
  url: string;
  /** The code of every error a route met reading a request body, in order. */
  readonly bodyErrors: string[];
  /** What the next `GET /events` sends, when set (the test paces it); taken by that request. */
  nextEvents: AsyncIterable<string> | undefined;
  /** Octets the last `GET /download` route has produced so far (it stops producing when its stream is stopped). */
  readonly produced: number;
  close(): Promise<void>;
}

const codeOf = (error: unknown): string => String((error as { code?: unknown }).code ?? (error as Error).message);
const numberParam = (url: string, name: string, fallback: number): number => Number(new URL(url, 'http://x').searchParams.get(name) ?? fallback);

/**
 * Starts `framework` with `options(url)` and these routes:
 * - `GET /download?bytes=N`: N octets of {@link patternChunks}, piped as the route writes them;
 * - `GET /events`: `text/event-stream`, the three {@link EVENTS} (or `nextEvents`) as they come;
 * - `POST /upload` ({@link STREAMED_UPLOADS}): reads the body as a stream and answers its length and
 *   SHA-256 as JSON, or 400 `{ code }` when reading fails (the code also goes to `bodyErrors`); with
 *   `?ignore`, answers `{ ignored: true }` without reading it;
 * - `POST /upload-json` ({@link STREAMED_UPLOADS}): the framework's JSON parser reads the body; answers `{ echo }`;
 * - `POST /buffered-upload` (the default policy): as `/upload`, for bodies that come with `Content-Digest`.
 */
export async function startStreamingFramework(framework: Framework, options: (url: string) => Oidc2Options): Promise<StreamingService> {
  // The server listens before the app exists, so the app can name its own URL as audience.
  let handle = (_req: IncomingMessage, res: ServerResponse): void => void res.writeHead(503).end();
  const running = await listen((req, res) => handle(req, res));
  const { url, server } = running;
  const config = options(url);
  const bodyErrors: string[] = [];
  const state = { nextEvents: undefined as AsyncIterable<string> | undefined, produced: 0 };
  const download = (url: string): Readable => {
    state.produced = 0;
    return Readable.from(
      (async function* () {
        for await (const chunk of patternChunks(numberParam(url, 'bytes', 0))) {
          state.produced += chunk.length;
          yield chunk;
        }
      })(),
    );
  };
  const events = (): AsyncIterable<string> => {
    const paced = state.nextEvents;
    state.nextEvents = undefined;
    return paced ?? Readable.from(EVENTS);
  };
  // The service handed back: `nextEvents` is the state the routes read.
  const service = (close: () => Promise<void>): StreamingService =>
    Object.defineProperties({ framework, url, bodyErrors, close } as StreamingService, {
      nextEvents: { get: () => state.nextEvents, set: (value: AsyncIterable<string> | undefined) => (state.nextEvents = value) },
      produced: { get: () => state.produced },
    });
  const upload = async (body: AsyncIterable<Uint8Array | string>, url: string): Promise<{ status: number; json: unknown }> => {
    if (new URL(url, 'http://x').searchParams.has('ignore')) return { status: 200, json: { ignored: true } };
    try {
      return { status: 200, json: await digestOf(body) };
    } catch (error) {
      bodyErrors.push(codeOf(error));
      return { status: 400, json: { code: codeOf(error) } };
    }
  };
  if (framework === 'express') {
    const app = express();
    const auth = expressOidc2(config);
    const streams = auth.with(STREAMED_UPLOADS);
    app.post('/upload', streams, async (req, res) => {
      const { status, json } = await upload(req, req.url);
      res.status(status).json(json);
    });
    app.post('/upload-json', streams, express.json(), (req, res) => {
      res.json({ echo: req.body });
    });
    app.use(auth);
    app.post('/buffered-upload', async (req, res) => {
      const { status, json } = await upload(req, req.url);
      res.status(status).json(json);
    });
    app.get('/download', (req, res) => {
      res.type('application/octet-stream');
      download(req.url).pipe(res);
    });
    app.get('/events', async (req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      for await (const event of events()) res.write(event);
      res.end();
    });
    app.use(oidc2ErrorHandler());
    handle = app;
    return service(running.close);
  }

  if (framework === 'koa') {
    const app = new Koa();
    app.silent = true;
    const auth = koaOidc2(config);
    const streams = auth.with(STREAMED_UPLOADS);
    app.use((ctx, next) => (ctx.path.startsWith('/upload') ? streams : auth)(ctx, next));
    app.use(async (ctx, next) => (ctx.path === '/upload-json' ? bodyParser()(ctx, next) : next()));
    app.use(async (ctx) => {
      if (ctx.path === '/download') {
        ctx.type = 'application/octet-stream';
        ctx.body = download(ctx.url);
      } else if (ctx.path === '/events') {
        ctx.type = 'text/event-stream';
        ctx.body = Readable.from(events());
      } else if (ctx.path === '/upload' || ctx.path === '/buffered-upload') {
        const { status, json } = await upload(ctx.req, ctx.url);
        ctx.status = status;
        ctx.body = json;
      } else if (ctx.path === '/upload-json') {
        ctx.body = { echo: ctx.request.body };
      }
    });
    handle = app.callback();
    return service(running.close);
  }

  const app = Fastify({
    serverFactory: (handler) => {
      handle = handler;
      return server;
    },
  });
  await app.register(fastifyOidc2, config);
  app.get('/download', async (request, reply) => {
    reply.type('application/octet-stream');
    return download(request.url);
  });
  app.get('/events', async (request, reply) => {
    reply.type('text/event-stream');
    return Readable.from(events());
  });
  app.post('/upload-json', { config: { oidc2: STREAMED_UPLOADS } }, async (request) => ({ echo: request.body }));
  await app.register(async (scope) => {
    // The body reaches the route as the stream it is, in a scope of its own.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
    scope.post('/upload', { config: { oidc2: STREAMED_UPLOADS } }, async (request, reply) => {
      const { status, json } = await upload(request.body as Readable, request.url);
      return reply.code(status).send(json);
    });
    scope.post('/buffered-upload', async (request, reply) => {
      const { status, json } = await upload(request.body as Readable, request.url);
      return reply.code(status).send(json);
    });
  });
  await app.ready();
  return service(async () => {
    await app.close();
    await running.close();
  });
}
