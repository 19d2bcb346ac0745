// A plain HTTP proxy on loopback that records every octet it forwards, in both directions: what a
// TLS-terminating proxy (or its access and debug logs) gets to see. It works as a reverse proxy
// (origin-form targets go to `target`) and as a forward proxy (absolute-form targets go where they
// name, loopback only). It parses and re-emits HTTP like a real proxy: hop-by-hop fields are dropped
// and a `Via` field is added, which nothing in the profile signs.
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { normalizeFields, type Fields, type HttpResponse } from '@oidc2/core';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/;

export interface RecordingProxy {
  /** The proxy's origin (reverse mode: requests sent here go to `target`). */
  readonly url: string;
  /** Where origin-form requests go. */
  target: string;
  /** Every octet forwarded from callers to services: request lines, fields and bodies. */
  readonly upstream: Buffer[];
  /** Every octet forwarded from services to callers: status lines, fields and bodies. */
  readonly downstream: Buffer[];
  /** Whether the recorded octets of either direction contain `needle`. */
  saw(needle: Uint8Array | string): { upstream: boolean; downstream: boolean };
  /** Forgets what was recorded. */
  clear(): void;
  close(): Promise<void>;
}

function head(firstLine: string, rawHeaders: string[]): Buffer {
  let text = `${firstLine}\r\n`;
  for (let i = 0; i < rawHeaders.length; i += 2) text += `${rawHeaders[i]}: ${rawHeaders[i + 1]}\r\n`;
  return Buffer.from(`${text}\r\n`, 'latin1');
}

function forwardable(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) if (!HOP_BY_HOP.has(name) && value !== undefined) out[name] = value;
  return out;
}

export async function startRecordingProxy(target = ''): Promise<RecordingProxy> {
  const upstream: Buffer[] = [];
  const downstream: Buffer[] = [];
  const state = { target };

  const server: Server = createServer((req, res) => {
    // Absolute-form (forward proxy) or origin-form (reverse proxy).
    const absolute = /^https?:\/\//i.test(req.url ?? '');
    const to = new URL(absolute ? req.url! : `${state.target}${req.url ?? '/'}`);
    if (to.protocol !== 'http:' || !LOOPBACK.test(to.hostname)) {
      res.writeHead(502).end();
      return;
    }
    upstream.push(head(`${req.method} ${req.url} HTTP/${req.httpVersion}`, req.rawHeaders));
    const headers = forwardable(req.headers);
    headers.via = `${req.httpVersion} recording-proxy`;
    const out = httpRequest({ host: to.hostname, port: to.port, method: req.method, path: to.pathname + to.search, headers }, (answer: IncomingMessage) => {
      downstream.push(head(`HTTP/${answer.httpVersion} ${answer.statusCode} ${answer.statusMessage ?? ''}`, answer.rawHeaders));
      const back = forwardable(answer.headers);
      back.via = `${answer.httpVersion} recording-proxy`;
      res.writeHead(answer.statusCode ?? 502, back);
      answer.on('data', (chunk: Buffer) => {
        downstream.push(Buffer.from(chunk));
        res.write(chunk);
      });
      answer.on('end', () => res.end());
      answer.on('error', () => res.destroy());
    });
    out.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.on('data', (chunk: Buffer) => {
      upstream.push(Buffer.from(chunk));
      out.write(chunk);
    });
    req.on('end', () => out.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    get target() {
      return state.target;
    },
    set target(value: string) {
      state.target = value;
    },
    upstream,
    downstream,
    saw(needle) {
      const n = typeof needle === 'string' ? Buffer.from(needle) : Buffer.from(needle);
      return { upstream: Buffer.concat(upstream).includes(n), downstream: Buffer.concat(downstream).includes(n) };
    },
    clear() {
      upstream.length = 0;
      downstream.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Sends a request through a forward proxy: the request line carries the absolute URL of `origin`
 * plus the message's path (the message's own URL names the audience it was signed for).
 */
export function sendViaForwardProxy(proxy: string, origin: string, message: { method: string; url: string; headers: Fields; body?: Uint8Array | undefined }): Promise<HttpResponse> {
  const p = new URL(proxy);
  const u = new URL(message.url);
  const headers: OutgoingHttpHeaders = {};
  for (const [name, lines] of Object.entries(message.headers)) headers[name] = lines.length === 1 ? lines[0] : lines;
  headers.host = new URL(origin).host;
  if (message.body && message.body.length > 0) headers['content-length'] = String(message.body.length);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: p.hostname, port: p.port, method: message.method, path: `${origin}${u.pathname}${u.search}`, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: normalizeFields(res.headersDistinct), body: new Uint8Array(Buffer.concat(chunks)) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(message.body && message.body.length > 0 ? Buffer.from(message.body) : undefined);
  });
}
