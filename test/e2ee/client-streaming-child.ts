// An @oidc2/client in a process of its own, so that its resident set size is the client's alone
// (client-streaming-memory.test.ts). Bundled with esbuild by the test and forked with --expose-gc;
// driven over IPC:
//   { type: 'start', serviceIssuers, ict, privateJwk, publicJwk } -> { type: 'started' }
//   { type: 'download', url }  -> collects garbage, takes the baseline, reads the response body chunk
//                                 by chunk -> { type: 'download', status, bytes, sha256, baseline, peak }
//   { type: 'upload', url, size } -> the same around a streamed upload of `size` pattern octets
//                                 -> { type: 'upload', status, json, baseline, peak }
//   { type: 'close' }          -> exits
import { createHash, webcrypto } from 'node:crypto';
import { createClient, type TrustedIssuer } from '@oidc2/client';
import type { JWK } from 'jose';
import { patternChunks } from '../support/streaming-frameworks';

const gc = (globalThis as { gc?: () => void }).gc;
let client: ReturnType<typeof createClient> | undefined;
let baseline = 0;
let peak = 0;

// Sampled often enough to see a buffer of a few MiB come and go.
setInterval(() => {
  const rss = process.memoryUsage.rss();
  if (rss > peak) peak = rss;
}, 2).unref();
// Garbage is collected every 10 ms besides: what is still referenced stays, so RSS then tracks what
// the client (and Node's fetch under it) holds, not how far V8's collection of the chunks already
// handed on lags behind a transfer at loopback speed.
setInterval(() => gc?.(), 10).unref();

function takeBaseline(): void {
  gc?.();
  gc?.();
  baseline = peak = process.memoryUsage.rss();
}

const peakNow = () => Math.max(peak, process.memoryUsage.rss());

interface Message {
  type: string;
  url?: string;
  size?: number;
  serviceIssuers?: TrustedIssuer[];
  ict?: string;
  privateJwk?: JWK;
  publicJwk?: JWK;
}

process.on('message', (message: Message) => {
  void (async () => {
    switch (message.type) {
      case 'start': {
        const algorithm = { name: 'Ed25519' };
        const keyPair = {
          privateKey: await webcrypto.subtle.importKey('jwk', message.privateJwk as webcrypto.JsonWebKey, algorithm, false, ['sign']),
          publicKey: await webcrypto.subtle.importKey('jwk', message.publicJwk as webcrypto.JsonWebKey, algorithm, true, ['verify']),
        } as CryptoKeyPair;
        const ict = message.ict!;
        client = createClient({ serviceIssuers: message.serviceIssuers!, algorithm: 'Ed25519', keyPair, getIct: async () => ict, encryption: 'required' });
        // One exchange before measuring: the session, the service's ICT and the code paths are warm.
        await (await client(`${message.url}/download?bytes=1`)).arrayBuffer();
        process.send!({ type: 'started' });
        break;
      }
      case 'download': {
        takeBaseline();
        const response = await client!(message.url!);
        const hash = createHash('sha256');
        let bytes = 0;
        const reader = response.body!.getReader();
        for (let next = await reader.read(); !next.done; next = await reader.read()) {
          hash.update(next.value);
          bytes += next.value.length;
        }
        process.send!({ type: 'download', status: response.status, bytes, sha256: hash.digest('hex'), baseline, peak: peakNow() });
        break;
      }
      case 'upload': {
        takeBaseline();
        const chunks = patternChunks(message.size!);
        const body = new ReadableStream<Uint8Array>({
          async pull(controller) {
            const next = await chunks.next();
            if (next.done) controller.close();
            else controller.enqueue(new Uint8Array(next.value));
          },
        });
        const response = await client!(message.url!, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body, duplex: 'half' } as RequestInit);
        process.send!({ type: 'upload', status: response.status, json: await response.json(), baseline, peak: peakNow() });
        break;
      }
      case 'close':
        process.exit(0);
    }
  })().catch((error: unknown) => {
    process.send!({ type: 'error', message: String((error as Error).stack ?? error) });
  });
});
