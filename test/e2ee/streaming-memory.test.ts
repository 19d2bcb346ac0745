// Streamed end-to-end encrypted bodies in bounded memory (docs/protocol.md section 7.7): on each framework, a 200 MiB
// encrypted download and a 50 MiB encrypted upload through a service in a child process whose resident
// set size is sampled every 2 ms. Its peak may grow at most STREAMING_RSS_BOUND above the baseline
// taken after garbage collection: holding either body whole would take 50 to 200 MiB. Bodies are made
// and checked on the fly on both sides (the caller decrypts with decryptBodyStream as bytes arrive).
//
// The child runs with a 1 MiB young generation, so that the buffers of records already sent are
// collected promptly and RSS tracks what the service holds, not when V8 gets round to collecting: with
// V8's default sizing, streaming 200 MiB through Express without oidc2 at all already grows RSS by
// 35 MiB of uncollected garbage.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IctVerifier } from '@oidc2/core';
import { FRAMEWORKS, type Framework } from '../support/frameworks';
import { bundleForNode, ROOT_NODE_MODULES } from '../support/bundle';
import { openE2ee, openSession, prepareE2ee, type E2eeCaller } from '../support/e2ee-caller';
import { bodyOf, headOf, newStreamingParties, openStreamedResponse, prepareStreamedUpload, sendRaw } from '../support/e2ee-stream';
import { digestOf, patternChunks, patternDigest } from '../support/streaming-frameworks';

const MiB = 1024 * 1024;
const DOWNLOAD = 200 * MiB;
const UPLOAD = 50 * MiB;
/** The most a service's RSS may grow above its baseline while it streams either body. */
const STREAMING_RSS_BOUND = 32 * MiB;

jest.setTimeout(120_000);

let dir: string;
let child: string;
let alice: E2eeCaller;
let verifier: IctVerifier;
let serviceOptions: object;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'oidc2-streaming-'));
  child = join(dir, 'streaming-child.cjs');
  await bundleForNode('test/support/streaming-child.ts', child, ['express', 'fastify', 'koa', '@koa/bodyparser']);
  ({ alice, verifier, serviceOptions } = await newStreamingParties());
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The service in its own process, and a way to ask it things over IPC. */
interface ChildService {
  url: string;
  ask<T>(type: string): Promise<T>;
  stop(): Promise<void>;
}

async function startChild(framework: Framework): Promise<ChildService> {
  const proc: ChildProcess = fork(child, [], { execArgv: ['--expose-gc', '--max-semi-space-size=1'], env: { ...process.env, NODE_PATH: ROOT_NODE_MODULES }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ask = <T>(type: string, extra: Record<string, unknown> = {}): Promise<T> =>
    new Promise((resolve, reject) => {
      const onMessage = (message: { type: string; message?: string }) => {
        proc.off('exit', onExit);
        if (message.type === 'error') reject(new Error(message.message));
        else resolve(message as T);
      };
      const onExit = (code: number | null) => reject(new Error(`the service process exited (${code})`));
      proc.once('message', onMessage).once('exit', onExit);
      proc.send({ type, ...extra });
    });
  const { url } = await ask<{ url: string }>('start', { framework, options: serviceOptions });
  return {
    url,
    ask: (type) => ask(type),
    stop: () =>
      new Promise<void>((resolve) => {
        proc.once('exit', () => resolve());
        proc.send({ type: 'close' });
      }),
  };
}

/** Runs `transfer` and returns how far the service's RSS rose above its baseline meanwhile. */
async function growthDuring(svc: ChildService, transfer: () => Promise<void>): Promise<number> {
  await svc.ask('baseline');
  await transfer();
  const { baseline, peak } = await svc.ask<{ baseline: number; peak: number }>('peak');
  return peak - baseline;
}

describe.each(FRAMEWORKS)('%s streams encrypted bodies in bounded memory', (framework) => {
  let svc: ChildService;
  beforeAll(async () => {
    svc = await startChild(framework);
  });
  afterAll(async () => {
    await svc?.stop();
  });

  it(`a 200 MiB download and a 50 MiB upload each grow the service's RSS by less than ${STREAMING_RSS_BOUND / MiB} MiB`, async () => {
    const session = await openSession(alice, svc.url, verifier);

    const download = await growthDuring(svc, async () => {
      const prepared = await prepareE2ee(alice, { method: 'GET', url: `${svc.url}/download?bytes=${DOWNLOAD}`, session });
      const response = await sendRaw(svc.url, prepared.request);
      const { head, plaintext } = await openStreamedResponse(prepared, response, verifier);
      expect(head.status).toBe(200);
      expect(await digestOf(plaintext)).toEqual({ bytes: DOWNLOAD, sha256: await patternDigest(DOWNLOAD) });
    });

    const upload = await growthDuring(svc, async () => {
      const { prepared, body } = await prepareStreamedUpload(alice, session, { url: `${svc.url}/upload`, headers: { 'content-type': 'application/octet-stream' }, plaintext: patternChunks(UPLOAD) });
      const response = await sendRaw(svc.url, { ...prepared.request, body });
      const opened = await openE2ee(prepared, { ...headOf(response), body: await bodyOf(response) }, verifier, alice);
      expect(headOf(response).status).toBe(200);
      expect(JSON.parse(new TextDecoder().decode(opened.plaintext))).toEqual({ bytes: UPLOAD, sha256: await patternDigest(UPLOAD) });
    });

    // Printed for the record (the numbers docs/e2ee.md quotes), then bounded.
    process.stdout.write(`${framework}: RSS growth ${(download / MiB).toFixed(1)} MiB for the 200 MiB download, ${(upload / MiB).toFixed(1)} MiB for the 50 MiB upload\n`);
    expect(download).toBeLessThan(STREAMING_RSS_BOUND);
    expect(upload).toBeLessThan(STREAMING_RSS_BOUND);
  });
});
