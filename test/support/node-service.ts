// A minimal OIDC² service on node:http driven by the core's framework-free service, for tests of
// callers (the client) that need a real peer without any framework. Listens on 127.0.0.1:0.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createOidc2Service, isOidc2Error, normalizeFields, type HttpRequest, type HttpResponse, type Identity, type Oidc2Options } from '../../packages/core/src/index';

export interface RunningServer {
  url: string;
  server: Server;
  /** Requests received so far. */
  readonly hits: number;
  close(): Promise<void>;
}

/**
 * A loopback URL whose port was free a moment ago: for a server that must know its own URL before
 * it listens (an issuer's identifier names its port).
 */
export async function freeLoopbackUrl(): Promise<{ url: string; port: number }> {
  const probe = await listen(() => undefined);
  await probe.close();
  return { url: probe.url, port: Number(new URL(probe.url).port) };
}

/** Answers for an authenticated request; the default echoes the caller and the request body. */
export type ServiceHandler = (identity: Identity, request: HttpRequest) => { status?: number; headers?: Record<string, string>; body?: string | Uint8Array } | undefined;

export function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<RunningServer> {
  let hits = 0;
  const server = createServer((req, res) => {
    hits++;
    handler(req, res);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        server,
        get hits() {
          return hits;
        },
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}

export function readBody(req: IncomingMessage): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(new Uint8Array(Buffer.concat(chunks))));
    req.on('error', reject);
  });
}

function write(res: ServerResponse, response: HttpResponse): void {
  res.statusCode = response.status;
  for (const [name, lines] of Object.entries(response.headers)) res.setHeader(name, lines.length === 1 ? lines[0]! : lines);
  res.end(response.body ? Buffer.from(response.body) : undefined);
}

/**
 * Starts a service. `options.audiences` may be omitted: it defaults to the server's own URL, which
 * is only known once it listens.
 */
export async function startNodeService(
  options: Omit<Oidc2Options, 'audiences'> & { audiences?: string[] },
  handler: ServiceHandler = (identity, request) => ({
    body: JSON.stringify({ caller: identity.subject, proof: identity.proof, echo: request.body ? new TextDecoder().decode(request.body) : null }),
  }),
): Promise<RunningServer> {
  let service: ReturnType<typeof createOidc2Service> | undefined;
  const running = await listen((req, res) => {
    void (async () => {
      const body = await readBody(req);
      const request: HttpRequest = { method: req.method!, url: req.url!, headers: normalizeFields(req.headersDistinct as Record<string, string[]>), body, scheme: 'http' };
      try {
        const { identity } = await service!.authenticate(request);
        const answer = handler(identity!, request) ?? {};
        const bytes = typeof answer.body === 'string' ? new TextEncoder().encode(answer.body) : (answer.body ?? new Uint8Array(0));
        const response: HttpResponse = {
          status: answer.status ?? 200,
          headers: normalizeFields({ 'content-type': 'application/json', ...answer.headers }),
          body: bytes,
        };
        const added = await service!.signResponse(response, request, identity!.binding);
        if (added) Object.assign(response.headers, added);
        write(res, response);
      } catch (error) {
        if (!isOidc2Error(error)) {
          res.statusCode = 500;
          res.end();
          return;
        }
        write(res, await service!.errorResponse(error, request));
      }
    })();
  });
  service = createOidc2Service({ ...options, audiences: options.audiences ?? [running.url] } as Oidc2Options);
  return running;
}

export interface TamperProxy extends RunningServer {
  /** Where requests go; settable so the proxy can start before its target. */
  target: string;
  /** Flips a bit of every response body while true. Default true. */
  tamper: boolean;
}

/**
 * A reverse proxy that forwards requests unchanged and, while `tamper` is set, flips one bit of
 * every response body (the last byte), leaving headers as they were.
 */
export async function startTamperProxy(target = '', extraHeaders: Record<string, string> = {}): Promise<TamperProxy> {
  const state = { tamper: true, target };
  const running = await listen((req, res) => {
    void (async () => {
      const body = await readBody(req);
      const headers = new Headers();
      for (const [name, value] of Object.entries(req.headersDistinct)) if (!['host', 'connection', 'content-length', 'transfer-encoding'].includes(name)) for (const v of value ?? []) headers.append(name, v);
      const upstream = await fetch(state.target + req.url, {
        method: req.method,
        headers,
        ...(body.length > 0 ? { body: body as BodyInit } : {}),
        redirect: 'manual',
      });
      const bytes = new Uint8Array(await upstream.arrayBuffer());
      if (state.tamper && bytes.length > 0) bytes[bytes.length - 1]! ^= 0x01;
      res.statusCode = upstream.status;
      upstream.headers.forEach((value, name) => {
        if (name !== 'content-length' && name !== 'transfer-encoding' && name !== 'connection' && name !== 'keep-alive') res.setHeader(name, value);
      });
      for (const [name, value] of Object.entries(extraHeaders)) res.setHeader(name, value);
      res.end(Buffer.from(bytes));
    })().catch(() => {
      res.statusCode = 502;
      res.end();
    });
  });
  for (const key of ['tamper', 'target'] as const) {
    Object.defineProperty(running, key, {
      get: () => state[key],
      set: (value: never) => {
        state[key] = value;
      },
      enumerable: true,
    });
  }
  return running as TamperProxy;
}
