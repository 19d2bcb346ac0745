// @oidc2/client reads and sends streamed end-to-end encrypted bodies in bounded memory (docs/protocol.md
// section 7.7): a 200 MiB encrypted download and a 50 MiB streamed encrypted upload, each through a
// client in a child process whose resident set size is sampled every 2 ms; its peak may grow at most
// STREAMING_RSS_BOUND above the baseline taken after garbage collection (holding either body whole
// would take 50 to 200 MiB). The service (Express) runs in the test's process.
//
// As in streaming-memory.test.ts, the child runs with a 1 MiB young generation, so that RSS tracks
// what the client holds rather than when V8 gets round to collecting the buffers of records it has
// already handed on.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleForNode, ROOT_NODE_MODULES } from '../support/bundle';
import { newIssuer, newKey } from '../support/credentials';
import { patternDigest, startStreamingFramework, type StreamingService } from '../support/streaming-frameworks';

const MiB = 1024 * 1024;
const DOWNLOAD = 200 * MiB;
const UPLOAD = 50 * MiB;
/** The most the client's RSS may grow above its baseline while it streams either body. */
const STREAMING_RSS_BOUND = 32 * MiB;

jest.setTimeout(180_000);

let dir: string;
let proc: ChildProcess;
let svc: StreamingService;

function ask<T>(type: string, extra: Record<string, unknown> = {}): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: { type: string; message?: string }) => {
      proc.off('exit', onExit);
      if (message.type === 'error') reject(new Error(message.message));
      else resolve(message as T);
    };
    const onExit = (code: number | null) => reject(new Error(`the client process exited (${code})`));
    proc.once('message', onMessage).once('exit', onExit);
    proc.send({ type, ...extra });
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'oidc2-client-streaming-'));
  const child = join(dir, 'client-streaming-child.cjs');
  await bundleForNode('test/e2ee/client-streaming-child.ts', child, ['express', 'fastify', 'koa', '@koa/bodyparser']);
  const callers = await newIssuer('https://op.example.test', 'Ed25519');
  const services = await newIssuer('https://attest.example.test', 'Ed25519');
  const serviceKey = await newKey('Ed25519');
  const credential = { ict: await services.mint(serviceKey, { subject: 'svc', lifetime: 3600 }), privateKey: serviceKey.privateJwk };
  svc = await startStreamingFramework('express', (url) => ({ issuers: [{ issuer: callers.issuer, jwks: callers.jwks }], audiences: [url], credential }) as never);
  const key = await newKey('Ed25519');
  proc = fork(child, [], { execArgv: ['--expose-gc', '--max-semi-space-size=1'], env: { ...process.env, NODE_PATH: ROOT_NODE_MODULES }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await ask('start', {
    url: svc.url,
    serviceIssuers: [{ issuer: services.issuer, jwks: services.jwks }],
    ict: await callers.mint(key, { lifetime: 3600 }),
    privateJwk: key.privateJwk,
    publicJwk: key.publicJwk,
  });
});

afterAll(async () => {
  if (proc?.connected) await new Promise<void>((resolve) => proc.once('exit', () => resolve()).send({ type: 'close' }));
  await svc?.close();
  rmSync(dir, { recursive: true, force: true });
});

it(`a 200 MiB download and a 50 MiB upload each grow the client's RSS by less than ${STREAMING_RSS_BOUND / MiB} MiB`, async () => {
  const download = await ask<{ status: number; bytes: number; sha256: string; baseline: number; peak: number }>('download', { url: `${svc.url}/download?bytes=${DOWNLOAD}` });
  expect([download.status, download.bytes, download.sha256]).toEqual([200, DOWNLOAD, await patternDigest(DOWNLOAD)]);
  const upload = await ask<{ status: number; json: unknown; baseline: number; peak: number }>('upload', { url: `${svc.url}/upload`, size: UPLOAD });
  expect([upload.status, upload.json]).toEqual([200, { bytes: UPLOAD, sha256: await patternDigest(UPLOAD) }]);
  const grew = { download: download.peak - download.baseline, upload: upload.peak - upload.baseline };
  // Printed for the record (the numbers docs/e2ee.md quotes), then bounded.
  process.stdout.write(`client RSS growth: ${(grew.download / MiB).toFixed(1)} MiB for the 200 MiB download, ${(grew.upload / MiB).toFixed(1)} MiB for the 50 MiB upload\n`);
  expect(grew.download).toBeLessThan(STREAMING_RSS_BOUND);
  expect(grew.upload).toBeLessThan(STREAMING_RSS_BOUND);
});
