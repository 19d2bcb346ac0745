// node:http plumbing shared by the Node, Express, Fastify and Koa entry points: read the body with
// a hard size bound, call the framework-free handler, write its response.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Oidc2Error, normalizeFields, type HttpRequest, type HttpResponse } from '@oidc2/core';
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

function readBody(req: IncomingMessage, maxBytes: number): Promise<Uint8Array | 'too_large'> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) return Promise.resolve('too_large');
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        cleanup();
        // Discard the rest; the response closes the connection.
        req.resume();
        resolve('too_large');
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(new Uint8Array(Buffer.concat(chunks)));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

/**
 * Serves one Node request. `url` is the full request target (before any mount point was
 * stripped); `preRead` is a body a framework already read.
 */
export async function serveNode(handle: Handle, realm: string, maxBytes: number, req: IncomingMessage, res: ServerResponse, url: string, preRead?: unknown): Promise<void> {
  let body: Uint8Array | undefined;
  if (preRead !== undefined || req.readableEnded) {
    body = preParsedBody(req, preRead);
  } else {
    let read: Uint8Array | 'too_large';
    try {
      read = await readBody(req, maxBytes);
    } catch {
      // The client went away mid-body: nobody is left to answer.
      res.destroy();
      return;
    }
    if (read === 'too_large') {
      writeResponse(res, errorResponse(new Oidc2Error('body_too_large', `request body exceeds ${maxBytes} bytes`), 'metadata', realm), true);
      return;
    }
    body = read;
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
