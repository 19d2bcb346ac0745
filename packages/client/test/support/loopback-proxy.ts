// A TLS-terminating proxy in miniature, on 127.0.0.1: it forwards every request to `target`, logs
// what travelled each way (what such a proxy, or anyone reading its logs, sees), and lets a test
// rewrite a request before it goes on or a response before it comes back.
import type { IncomingMessage } from 'node:http';
import { listen, readBody, type RunningServer } from '../../../../test/support/node-service';

/** One message as it crossed the proxy. */
export interface Travelled {
  method: string;
  path: string;
  headers: Headers;
  body: Uint8Array;
}

export interface Upstream {
  status: number;
  headers: Headers;
  body: Uint8Array;
}

export interface LoggingProxy extends RunningServer {
  /** Where requests go. */
  target: string;
  /** Requests as received from the client, in order. */
  readonly requests: Travelled[];
  /** Responses as received from the service, in order. */
  readonly responses: Upstream[];
  /** Rewrites a request before it is forwarded, or answers it instead (a Response). */
  onRequest: ((request: Travelled) => Travelled | Upstream | Promise<Travelled | Upstream>) | undefined;
  /** Rewrites a response before it goes back to the client. */
  onResponse: ((response: Upstream, request: Travelled) => Upstream | Promise<Upstream>) | undefined;
}

const HOP_BY_HOP = new Set(['host', 'connection', 'keep-alive', 'content-length', 'transfer-encoding']);

function headersOf(req: IncomingMessage): Headers {
  const headers = new Headers();
  for (const [name, values] of Object.entries(req.headersDistinct)) if (!HOP_BY_HOP.has(name)) for (const v of values ?? []) headers.append(name, v);
  return headers;
}

export async function startLoggingProxy(target = ''): Promise<LoggingProxy> {
  const state = {
    target,
    requests: [] as Travelled[],
    responses: [] as Upstream[],
    onRequest: undefined as LoggingProxy['onRequest'],
    onResponse: undefined as LoggingProxy['onResponse'],
  };
  const running = await listen((req, res) => {
    void (async () => {
      const received: Travelled = { method: req.method!, path: req.url!, headers: headersOf(req), body: await readBody(req) };
      state.requests.push(received);
      const rewritten = state.onRequest ? await state.onRequest(received) : received;
      let upstream: Upstream;
      if ('status' in rewritten) {
        upstream = rewritten;
      } else {
        const answer = await fetch(state.target + rewritten.path, {
          method: rewritten.method,
          headers: rewritten.headers,
          ...(rewritten.body.length > 0 ? { body: rewritten.body as BodyInit } : {}),
          redirect: 'manual',
        });
        const headers = new Headers();
        answer.headers.forEach((value, name) => {
          if (!HOP_BY_HOP.has(name)) headers.append(name, value);
        });
        upstream = { status: answer.status, headers, body: new Uint8Array(await answer.arrayBuffer()) };
        state.responses.push(upstream);
      }
      const out = state.onResponse ? await state.onResponse(upstream, received) : upstream;
      res.statusCode = out.status;
      out.headers.forEach((value, name) => res.setHeader(name, value));
      res.end(Buffer.from(out.body));
    })().catch(() => {
      res.statusCode = 502;
      res.end();
    });
  });
  for (const key of ['target', 'onRequest', 'onResponse'] as const) {
    Object.defineProperty(running, key, {
      get: () => state[key],
      set: (value: never) => {
        state[key] = value;
      },
      enumerable: true,
    });
  }
  Object.defineProperty(running, 'requests', { get: () => state.requests, enumerable: true });
  Object.defineProperty(running, 'responses', { get: () => state.responses, enumerable: true });
  return running as LoggingProxy;
}
