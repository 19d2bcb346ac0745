// The bounded GET the core uses on Node for discovery documents, key sets and trust bundles when no
// fetch is injected (lib/http-get.ts), against real servers on 127.0.0.1: the rules of the fetch
// path it replaces (200 only, no redirect followed, the body bounded whether declared or streamed,
// one deadline to the last byte, an abort honoured, a cut body refused) and TLS verified.
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { boundedGet, hasNodeHttp } from '../src/lib/http-get';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
const servers: Server[] = [];
const seen: IncomingMessage[] = [];

async function serve(handler: Handler, tls = false): Promise<string> {
  const fixture = (name: string) => readFileSync(join(__dirname, 'fixtures', name));
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    seen.push(req);
    handler(req, res);
  };
  const server = tls ? createTlsServer({ key: fixture('tls-self-signed.key.pem'), cert: fixture('tls-self-signed.cert.pem') }, listener) : createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

afterEach(async () => {
  seen.length = 0;
  await Promise.all(
    servers.splice(0).map((s) => {
      s.closeAllConnections();
      return new Promise((resolve) => s.close(resolve));
    }),
  );
});

const get = (url: string, o: Partial<Parameters<typeof boundedGet>[1]> = {}) => boundedGet(url, { headers: { accept: 'application/json' }, timeoutMs: 2000, maxBytes: 1024, ...o });
const reason = (promise: Promise<unknown>) =>
  promise.then(
    () => 'resolved',
    (error: Error & { code?: string }) => error.code ?? error.message,
  );

describe('the bounded GET over node:http(s)', () => {
  it('is available on Node', () => {
    expect(hasNodeHttp()).toBe(true);
  });

  it('returns the body of a 200 answer, sending the given fields and keeping no connection', async () => {
    const origin = await serve((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys":[]}'));
    const body = await get(`${origin}/jwks`);
    expect(Buffer.from(body).toString()).toBe('{"keys":[]}');
    expect(seen[0]!.method).toBe('GET');
    expect(seen[0]!.headers.accept).toBe('application/json');
    expect(seen[0]!.headers.connection).toBe('close');
  });

  it('returns an empty body and a body in many chunks whole', async () => {
    const empty = await serve((_req, res) => res.writeHead(200).end());
    expect((await get(`${empty}/`)).length).toBe(0);
    const chunked = await serve((_req, res) => {
      res.writeHead(200);
      for (let i = 0; i < 10; i++) res.write('x'.repeat(100));
      res.end();
    });
    expect((await get(`${chunked}/`)).length).toBe(1000);
  });

  it('refuses anything but 200 and follows no redirect', async () => {
    const target = await serve((_req, res) => res.writeHead(200).end('{}'));
    const redirect = await serve((_req, res) => res.writeHead(302, { location: `${target}/elsewhere` }).end());
    expect(await reason(get(`${redirect}/jwks`))).toBe('expected 200 OK, got 302');
    expect(seen.map((r) => r.url)).toEqual(['/jwks']);
    const missing = await serve((_req, res) => res.writeHead(404).end('no'));
    expect(await reason(get(`${missing}/`))).toBe('expected 200 OK, got 404');
  });

  it('refuses a body over the bound, declared or found while streaming', async () => {
    const declared = await serve((_req, res) => res.writeHead(200, { 'content-length': '2048' }).end('x'.repeat(2048)));
    expect(await reason(get(`${declared}/`))).toBe('response larger than 1024 bytes');
    const streamed = await serve((_req, res) => {
      res.writeHead(200);
      res.write('x'.repeat(1000));
      setTimeout(() => res.end('x'.repeat(100)), 20);
    });
    expect(await reason(get(`${streamed}/`))).toBe('response larger than 1024 bytes');
    const exact = await serve((_req, res) => res.writeHead(200).end('x'.repeat(1024)));
    expect((await get(`${exact}/`)).length).toBe(1024);
  });

  it('gives up at the deadline: no answer, or a body that stalls after the head', async () => {
    const silent = await serve(() => undefined);
    const start = Date.now();
    expect(await reason(get(`${silent}/`, { timeoutMs: 150 }))).toBe('no complete answer within 150 ms');
    expect(Date.now() - start).toBeLessThan(2000);
    const stalled = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('x'.repeat(10));
    });
    expect(await reason(get(`${stalled}/`, { timeoutMs: 150 }))).toBe('no complete answer within 150 ms');
  });

  it('honours an abort, before or during the request', async () => {
    const silent = await serve(() => undefined);
    expect(await reason(get(`${silent}/`, { signal: AbortSignal.abort() }))).toBe('the request was aborted');
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    expect(await reason(get(`${silent}/`, { signal: controller.signal }))).toBe('the request was aborted');
  });

  it('refuses a body cut short', async () => {
    const cut = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('x'.repeat(10), () => res.destroy());
    });
    expect(await reason(get(`${cut}/`))).toMatch(/ended early|aborted|ECONNRESET/);
  });

  it('verifies TLS: a server whose certificate nobody trusts is refused', async () => {
    const origin = await serve((_req, res) => res.writeHead(200).end('{}'), true);
    expect(await reason(get(`${origin}/jwks`))).toBe('DEPTH_ZERO_SELF_SIGNED_CERT');
    expect(seen).toHaveLength(0);
  });

  it('refuses a scheme other than http and https, and a connection refused', async () => {
    expect(await reason(get('ftp://127.0.0.1/jwks'))).toBe('cannot GET ftp: URLs here');
    const origin = await serve(() => undefined);
    await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
    expect(await reason(get(`${origin}/`))).toBe('ECONNREFUSED');
  });
});
