// The example Fetch-API adapter (examples/fetch-adapter) through the same shared suite as Express,
// Fastify and Koa: the exchange is the whole contract, whatever the framework. A few lines bridge
// node:http to Request/Response, as a Fetch-based runtime would.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { oidc2, type Handler } from '../../examples/fetch-adapter/oidc2-fetch';
import { ROUTE_POLICIES, runAdapterSuite, type AppFactory } from './suite';

function toRequest(req: IncomingMessage): Request {
  const headers = new Headers();
  for (const [name, values] of Object.entries(req.headersDistinct)) for (const value of values ?? []) headers.append(name, value);
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  return new Request(`http://127.0.0.1${req.url}`, {
    method: req.method,
    headers,
    body: hasBody ? (Readable.toWeb(req) as ReadableStream<Uint8Array>) : null,
    duplex: 'half',
  } as RequestInit);
}

async function write(response: Response, res: ServerResponse): Promise<void> {
  const fields: Record<string, string[]> = {};
  response.headers.forEach((value, name) => (fields[name] ??= []).push(value));
  res.writeHead(response.status, fields);
  if (!response.body) return void res.end();
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) res.write(chunk);
  res.end();
}

const createApp: AppFactory = async (options) => {
  const protect = oidc2(options);
  const json = (value: unknown) => Response.json(value);
  const routes: Record<string, (request: Request) => Promise<Response>> = {
    'GET /me': protect((_r, { identity }) => json({ subject: identity?.subject, issuer: identity?.issuer, proof: identity?.proof })),
    'POST /echo': protect(async (request, { identity }) => json({ subject: identity?.subject, body: await request.json() })),
    'GET /optional': protect((_r, { identity, error }) => json({ subject: identity?.subject ?? null, reason: error?.code ?? null }), ROUTE_POLICIES.optional),
    'GET /stream': protect((request) => {
      const n = Number(new URL(request.url).searchParams.get('n') ?? 8);
      const body = Readable.toWeb(Readable.from(Array.from({ length: n }, () => Buffer.alloc(1024, 'a')))) as ReadableStream;
      return new Response(body, { headers: { 'content-type': 'text/plain' } });
    }),
    'GET /boom': protect((() => {
      throw new Error('boom');
    }) as Handler),
    'GET /public': async () => json({ public: true }),
  };
  for (const route of ['mfa', 'admin', 'partner', 'workloads'] as const) {
    routes[`GET /${route}`] = protect((_r, { identity }) => json({ subject: identity?.subject }), ROUTE_POLICIES[route]);
  }
  const server: Server = createServer((req, res) => {
    const route = routes[`${req.method === 'HEAD' ? 'GET' : req.method} ${(req.url ?? '/').split('?')[0]}`];
    if (!route) return void res.writeHead(404).end();
    route(toRequest(req)).then(
      (response) => write(response, res),
      () => res.writeHead(500).end(),
    );
  });
  return new Promise<Server>((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
};

runAdapterSuite('fetch (example)', createApp, ['after']);
