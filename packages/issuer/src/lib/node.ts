// node:http plumbing shared by the Node, Express, Fastify and Koa entry points: read the body with
// a hard size bound, call the framework-free handler, write its response.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isOidc2Error, Oidc2Error, normalizeFields, type HttpRequest, type HttpResponse } from '@oidc2/core';
import { readBoundedOrThrow } from '@oidc2/core/adapter';
import { errorResponse } from './responses.js';

type Handle = (request: HttpRequest) => Promise<HttpResponse>;

/** Writes an HttpResponse to a Node response. */
export function writeResponse(res: ServerResponse, response: HttpResponse, close = false): void {
  if (res.headersSent) return;
  res.statusCode = response.status;
  for (const [name, values] of Object.entries(response.headers)) res.setHeader(name, values.length === 1 ? values[0]! : values);
  if (close) res.setHeader('connection', 'close');
  res.end(response.body === undefined ? undefined : Buffer.from(response.body.buffer, response.body.byteOffset, response.body.byteLength));
}

// A body some middleware already consumed (express.json(), @koa/bodyparser): reuse its raw form
// when there is one, else re-encode the parsed value in the declared media type.
function preParsedBody(req: IncomingMessage, fallback: unknown): Uint8Array | undefined {
  const raw = (req as { rawBody?: unknown }).rawBody ?? fallback ?? (req as { body?: unknown }).body;
  if (raw === undefined || raw === null) return undefined;
  if (raw instanceof Uint8Array) return raw;
  if (typeof raw === 'string') return new TextEncoder().encode(raw);
  if (typeof raw === 'object') {
    const type = String(req.headers['content-type'] ?? '').toLowerCase();
    if (type.startsWith('application/x-www-form-urlencoded')) return new TextEncoder().encode(new URLSearchParams(raw as Record<string, string>).toString());
    return new TextEncoder().encode(JSON.stringify(raw));
  }
  return undefined;
}

/**
 * The body of a Node request: the one a framework already read (`preRead`, or `req.rawBody` /
 * `req.body` once the stream has ended), else the stream read with the core's bounded reader.
 * Rejects with `body_too_large` by `Content-Length` before reading, or as soon as the bytes
 * received exceed `maxBytes`; the rest is then drained, not read, so the 413 can still be sent.
 * Rejects with any other error when the client goes away mid-body.
 */
export async function readRequestBody(req: IncomingMessage, maxBytes: number, preRead?: unknown): Promise<Uint8Array | undefined> {
  if (preRead !== undefined || req.readableEnded) return preParsedBody(req, preRead);
  const tooLarge = () => new Oidc2Error('body_too_large', `request body exceeds ${maxBytes} bytes`);
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    req.resume();
    throw tooLarge();
  }
  // destroyOnReturn: false: stopping early must not destroy the socket the 413 goes out on.
  const chunks: AsyncIterable<Uint8Array> = { [Symbol.asyncIterator]: () => req.iterator({ destroyOnReturn: false }) };
  try {
    return await readBoundedOrThrow(chunks, maxBytes, tooLarge);
  } catch (err) {
    if (isOidc2Error(err) && err.code === 'body_too_large') req.resume();
    throw err;
  }
}

/**
 * Serves one Node request. `url` is the full request target (before any mount point was
 * stripped); `preRead` is a body a framework already read.
 */
export async function serveNode(handle: Handle, realm: string, maxBytes: number, req: IncomingMessage, res: ServerResponse, url: string, preRead?: unknown): Promise<void> {
  let body: Uint8Array | undefined;
  try {
    body = await readRequestBody(req, maxBytes, preRead);
  } catch (err) {
    if (isOidc2Error(err)) writeResponse(res, errorResponse(err, 'metadata', realm), true);
    // Otherwise the client went away mid-body: nobody is left to answer.
    else res.destroy();
    return;
  }
  const socket = req.socket as { encrypted?: boolean } | undefined;
  const request: HttpRequest = {
    method: req.method ?? 'GET',
    url,
    headers: normalizeFields(req.headersDistinct ?? req.headers),
    body,
    scheme: socket?.encrypted ? 'https' : 'http',
  };
  writeResponse(res, await handle(request));
}
