// Where the handler runs: node:http and Express, a Fastify plugin, a Koa middleware, or its own
// standalone server. Each matches the full request path and leaves other paths to the framework.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HttpRequest, HttpResponse } from '@oidc2/core';
import { serveNode } from './lib/node.js';
import type { FastifyInstanceLike, Issuer, KoaContextLike, ListeningIssuer } from './types.js';

/** What the mounts need of an issuer. */
export interface Mountable {
  issuer: string;
  maxBodyBytes: number;
  handle(request: HttpRequest): Promise<HttpResponse>;
  serves(url: string): boolean;
}

/** The framework entry points of one issuer. */
export function mount(target: Mountable): Pick<Issuer, 'nodeHandler' | 'fastifyPlugin' | 'koaMiddleware' | 'listen'> {
  const { issuer, maxBodyBytes, handle, serves } = target;

  const nodeHandler = (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): void => {
    const url = (req as { originalUrl?: string }).originalUrl ?? req.url ?? '/';
    if (!serves(url)) {
      if (next) next();
      else {
        res.statusCode = 404;
        res.setHeader('content-type', 'application/json');
        res.end('{"error":"not_found"}');
      }
      return;
    }
    serveNode(handle, issuer, maxBodyBytes, req, res, url).catch(() => res.destroy());
  };

  const fastifyPlugin = (instance: FastifyInstanceLike, _options: unknown, done: (err?: Error) => void): void => {
    // Encapsulated: only this plugin's routes see the raw-body parser.
    instance.removeAllContentTypeParsers();
    instance.addContentTypeParser('*', (_request: unknown, _payload: unknown, parsed: (err: Error | null, body?: unknown) => void) => parsed(null));
    instance.route({
      method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
      url: '/*',
      handler: async (request: { url: string; raw: IncomingMessage }, reply: { hijack(): void; raw: ServerResponse; callNotFound(): void }) => {
        if (!serves(request.url)) return reply.callNotFound();
        reply.hijack();
        await serveNode(handle, issuer, maxBodyBytes, request.raw, reply.raw, request.url);
      },
    });
    done();
  };

  const koaMiddleware = async (ctx: KoaContextLike, next: () => Promise<unknown>): Promise<void> => {
    if (!serves(ctx.url)) {
      await next();
      return;
    }
    ctx.respond = false;
    await serveNode(handle, issuer, maxBodyBytes, ctx.req, ctx.res, ctx.url, ctx.request.rawBody);
  };

  async function listen({ port = 0, host = '127.0.0.1' }: { port?: number; host?: string } = {}): Promise<ListeningIssuer> {
    const server = createServer(nodeHandler);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address() as AddressInfo;
    const h = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return {
      server,
      url: `http://${h}:${address.port}`,
      close: () => new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve()))),
    };
  }

  return { nodeHandler, fastifyPlugin, koaMiddleware, listen };
}
