// A bounded GET over node:http / node:https, for the documents the core fetches itself (discovery
// documents, key sets, trust bundles) when no `fetch` was injected. On Node it replaces the global
// fetch, whose first use makes a new process load and compile its HTTP client (undici, with a
// WebAssembly parser) in the middle of the first requests it serves: about 240 µs of CPU per
// caller of a burst of 1,000 new callers on the bench machine (bench/README.md, cold path).
//
// What it does is what the fetch path does with `redirect: 'manual'`: one request, no redirect
// followed (anything but 200 is a failure), TLS verified as node:https does by default, the body
// bounded while it streams (a declared length over the bound fails at once), one deadline from the
// request to the last body byte, and the caller's AbortSignal honoured. No connection is kept: the
// documents are fetched minutes apart.
import { nodeBuiltin } from './builtin.js';
import { concatBytes } from './body.js';
import type * as NodeHttp from 'node:http';

type HttpModule = typeof NodeHttp;

const http = nodeBuiltin<HttpModule>('node:http');
const https = nodeBuiltin<HttpModule>('node:https');

/** What one GET asks for. */
export interface BoundedGet {
  /** Request fields (lower-case names). */
  readonly headers: Record<string, string>;
  /** Deadline from the request to the last body byte, in milliseconds. */
  readonly timeoutMs: number;
  /** Largest accepted body, in octets. */
  readonly maxBytes: number;
  /** Aborts the request (e.g. jose's own timeout). */
  readonly signal?: AbortSignal | null | undefined;
}

/** Whether this runtime has node:http and node:https, so that {@link boundedGet} can be used. */
export function hasNodeHttp(): boolean {
  return http !== undefined && https !== undefined;
}

/**
 * GETs an `http:` or `https:` URL and resolves the body of a 200 answer. Rejects with an `Error`
 * saying why for anything else: another status, a body over the bound, the deadline, an abort, a
 * connection or TLS failure, a body cut short.
 */
export function boundedGet(url: string, o: BoundedGet): Promise<Uint8Array> {
  const target = new URL(url);
  const mod = target.protocol === 'https:' ? https : target.protocol === 'http:' ? http : undefined;
  if (mod === undefined) return Promise.reject(new Error(`cannot GET ${target.protocol} URLs here`));
  if (o.signal?.aborted) return Promise.reject(new Error('the request was aborted'));
  return new Promise<Uint8Array>((resolve, reject) => {
    let settled = false;
    const chunks: Uint8Array[] = [];
    let size = 0;
    const finish = (error: Error | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      if (error) {
        request.destroy();
        reject(error);
        return;
      }
      resolve(concatBytes(chunks, size));
    };
    const onAbort = () => finish(new Error('the request was aborted'));
    const timer = setTimeout(() => finish(new Error(`no complete answer within ${o.timeoutMs} ms`)), o.timeoutMs);
    o.signal?.addEventListener('abort', onAbort, { once: true });
    const request = mod.request(target, { method: 'GET', headers: o.headers, agent: false }, (response) => {
      if (response.statusCode !== 200) {
        finish(new Error(`expected 200 OK, got ${response.statusCode}`));
        return;
      }
      const declared = Number(response.headers['content-length']);
      if (Number.isFinite(declared) && declared > o.maxBytes) {
        finish(new Error(`response larger than ${o.maxBytes} bytes`));
        return;
      }
      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > o.maxBytes) finish(new Error(`response larger than ${o.maxBytes} bytes`));
        else chunks.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length));
      });
      response.on('end', () => finish(response.complete ? undefined : new Error('the response ended early')));
      response.on('error', (error) => finish(error));
      response.on('close', () => finish(new Error('the response ended early')));
    });
    request.on('error', (error) => finish(error));
    request.end();
  });
}
