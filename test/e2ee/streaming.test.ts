// Streamed end-to-end encrypted bodies over real sockets on Express, Fastify and Koa (docs/protocol.md section 7.7):
// when a response streams and what its head carries, Server-Sent Events flushed as records, streamed
// uploads read by the route or by the framework's parser, truncation detected by the route (uploads)
// and by the caller (downloads) at every record boundary and inside records, and the routes that do
// not take streamed bodies. Memory bounds: streaming-memory.test.ts.
import { Agent, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createOidc2Service, fieldLines, type IctVerifier } from '@oidc2/core';
import { admitRequest } from '@oidc2/node';
import { decryptBodyStream, E2EE_RECORD_SIZE } from '@oidc2/core/adapter';
import { FRAMEWORKS } from '../support/frameworks';
import { openE2ee, openSession, prepareE2ee, problemOf, sendE2ee, type E2eeCaller, type E2eeSession, type Prepared } from '../support/e2ee-caller';
import { bodyOf, headOf, newStreamingParties, openStreamedResponse, prepareStreamedUpload, sendRaw } from '../support/e2ee-stream';
import { EVENTS, digestOf, patternChunks, patternDigest, startStreamingFramework, type StreamingService } from '../support/streaming-frameworks';
import { codeOf } from '../support/error-code';
import { chunked, collect } from '../../packages/core/test/support/e2ee';

const KiB = 1024;
const MAX_RESPONSE = 64 * KiB;
const PER = E2EE_RECORD_SIZE - 17; // plaintext octets per full record

let alice: E2eeCaller;
let verifier: IctVerifier;
let options: (url: string) => never;

beforeAll(async () => {
  const parties = await newStreamingParties();
  ({ alice, verifier } = parties);
  options = (url) => ({ ...parties.serviceOptions, audiences: [url], maxResponseBytes: MAX_RESPONSE }) as never;
});

/** The JSON an encrypted answer carries, opened as a caller must. */
async function answerOf(prepared: Prepared, response: Awaited<ReturnType<typeof sendRaw>>): Promise<{ status: number; json: unknown }> {
  const head = headOf(response);
  const opened = await openE2ee(prepared, { ...head, body: await bodyOf(response) }, verifier, alice);
  const text = new TextDecoder().decode(opened.plaintext);
  return { status: head.status, json: /json/.test(fieldLines(head.headers, 'content-type')?.[0] ?? '') ? JSON.parse(text) : text };
}

describe.each(FRAMEWORKS)('%s: streamed encrypted bodies', (framework) => {
  let svc: StreamingService;
  let session: E2eeSession;

  beforeAll(async () => {
    svc = await startStreamingFramework(framework, options);
    session = await openSession(alice, svc.url, verifier);
  });
  afterAll(async () => {
    await svc?.close();
  });

  const download = (bytes: number) => prepareE2ee(alice, { method: 'GET', url: `${svc.url}/download?bytes=${bytes}`, session });

  it('a response larger than maxResponseBytes streams: a signed head without Content-Digest, then records', async () => {
    const prepared = await download(40 * PER + 123);
    const response = await sendRaw(svc.url, prepared.request);
    const head = headOf(response);
    expect(head.status).toBe(200);
    expect(fieldLines(head.headers, 'content-encoding')).toEqual(['aes128gcm']);
    expect(fieldLines(head.headers, 'cache-control')).toEqual(['no-store, no-transform']);
    expect(fieldLines(head.headers, 'content-digest')).toBeUndefined();
    expect(fieldLines(head.headers, 'content-length')).toBeUndefined();
    expect(fieldLines(head.headers, 'transfer-encoding')).toEqual(['chunked']);
    // A caller that does not read a streamed encrypted body refuses the head; one that does accepts it.
    expect(await codeOf(() => openE2ee(prepared, head, verifier, alice))).toBe('response_signature_invalid');
    const { plaintext, service } = await openStreamedResponse(prepared, response, verifier);
    expect(service.subject).toBe('svc');
    expect(await digestOf(plaintext)).toEqual({ bytes: 40 * PER + 123, sha256: await patternDigest(40 * PER + 123) });
  });

  it('a caller that goes away mid-download stops the route producing it', async () => {
    const size = 256 * 1024 * KiB;
    const prepared = await download(size);
    const response = await sendRaw(svc.url, prepared.request);
    const { plaintext } = await openStreamedResponse(prepared, response, verifier);
    let read = 0;
    for await (const chunk of plaintext) if ((read += chunk.length) > 2 * 1024 * KiB) break;
    response.destroy();
    const settled = async () => {
      for (let last = -1; svc.produced !== last; await new Promise((resolve) => setTimeout(resolve, 100))) last = svc.produced;
      return svc.produced;
    };
    expect(await settled()).toBeLessThan(size / 8);
  });

  it('a response within maxResponseBytes stays buffered and carries Content-Digest', async () => {
    const prepared = await download(10 * KiB);
    const response = await sendE2ee(svc.url, prepared.request);
    expect(fieldLines(response.headers, 'content-digest')).toBeDefined();
    const opened = await openE2ee(prepared, response, verifier, alice);
    expect(await digestOf([opened.plaintext])).toEqual({ bytes: 10 * KiB, sha256: await patternDigest(10 * KiB) });
  });

  it('Server-Sent Events: each event reaches the caller as a record it decrypts before the next is written', async () => {
    // The route writes an event only once the caller has decrypted the one before: an event held back
    // (for a record to fill, or for the next record) stalls the exchange, which the timeout reports.
    let decrypted = 0;
    let caughtUp: (() => void) | undefined;
    svc.nextEvents = (async function* () {
      for (const [i, event] of EVENTS.entries()) {
        if (decrypted < i) await new Promise<void>((resolve) => (caughtUp = resolve));
        yield event;
        await new Promise((resolve) => setTimeout(resolve, 30)); // a pause, as between real events
      }
    })();
    const prepared = await prepareE2ee(alice, { method: 'GET', url: `${svc.url}/events`, session });
    const response = await sendRaw(svc.url, prepared.request);
    const { head, plaintext } = await openStreamedResponse(prepared, response, verifier);
    expect(fieldLines(head.headers, 'content-type')?.[0]).toMatch(/^text\/event-stream/);
    expect(fieldLines(head.headers, 'content-digest')).toBeUndefined();
    const seen: string[] = [];
    const iterator = plaintext[Symbol.asyncIterator]();
    for (;;) {
      const next = await Promise.race([iterator.next(), new Promise<'stalled'>((resolve) => setTimeout(resolve, 3000, 'stalled').unref())]);
      if (next === 'stalled') throw new Error(`event ${seen.length + 1} was held back`);
      if (next.done) break;
      seen.push(new TextDecoder().decode(next.value));
      decrypted = seen.length;
      caughtUp?.();
    }
    expect(seen).toEqual([...EVENTS]);
  });

  it('a streamed upload reaches the route as its plaintext, read as a stream', async () => {
    const size = 3 * 1024 * KiB + 7;
    const { prepared, body } = await prepareStreamedUpload(alice, session, { url: `${svc.url}/upload`, headers: { 'content-type': 'application/octet-stream' }, plaintext: patternChunks(size) });
    const response = await sendRaw(svc.url, { ...prepared.request, body });
    expect(await answerOf(prepared, response)).toEqual({ status: 200, json: { bytes: size, sha256: await patternDigest(size) } });
  });

  it("a streamed upload is read by the framework's JSON parser like any body", async () => {
    const json = new TextEncoder().encode(JSON.stringify({ amount: '120.00', to: 'DE02 1203 0000 0000 2020 51' }));
    const { prepared, body } = await prepareStreamedUpload(alice, session, { url: `${svc.url}/upload-json`, headers: { 'content-type': 'application/json' }, plaintext: chunked(json, 5) });
    const response = await sendRaw(svc.url, { ...prepared.request, body });
    expect(await answerOf(prepared, response)).toEqual({ status: 200, json: { echo: { amount: '120.00', to: 'DE02 1203 0000 0000 2020 51' } } });
  });

  it('a streaming route still takes a body sent whole with Content-Digest', async () => {
    const prepared = await prepareE2ee(alice, { method: 'POST', url: `${svc.url}/upload`, session, headers: { 'content-type': 'application/octet-stream' }, body: 'whole' });
    const response = await sendRaw(svc.url, prepared.request);
    expect(await answerOf(prepared, response)).toEqual({ status: 200, json: await digestOf([new TextEncoder().encode('whole')]) });
  });

  it('an upload cut at a record boundary or inside a record fails in the route, never as a shorter body', async () => {
    const size = 3 * PER + 100; // four records
    const cuts = [10, 21, 21 + 1, 21 + 17, ...[1, 2, 3].flatMap((r) => [21 + r * E2EE_RECORD_SIZE, 21 + r * E2EE_RECORD_SIZE + 1, 21 + r * E2EE_RECORD_SIZE - 5000])];
    const seen: Array<[number, number, unknown]> = [];
    for (const cut of cuts) {
      const { prepared, body } = await prepareStreamedUpload(alice, session, { url: `${svc.url}/upload`, headers: { 'content-type': 'application/octet-stream' }, plaintext: patternChunks(size) });
      const whole = await collect(body);
      const response = await sendRaw(svc.url, { ...prepared.request, body: whole.subarray(0, cut) });
      const { status, json } = await answerOf(prepared, response);
      seen.push([cut, status, json]);
    }
    const expected = cuts.map((cut) => [cut, 400, { code: cut < 21 ? 'e2ee_encoding_invalid' : 'e2ee_decrypt_failed' }]);
    expect(seen).toEqual(expected);
    expect(svc.bodyErrors.slice(-cuts.length)).toEqual(expected.map(([, , json]) => (json as { code: string }).code));
    // The whole body still goes through.
    const { prepared, body } = await prepareStreamedUpload(alice, session, { url: `${svc.url}/upload`, headers: { 'content-type': 'application/octet-stream' }, plaintext: patternChunks(size) });
    expect((await answerOf(prepared, await sendRaw(svc.url, { ...prepared.request, body }))).status).toBe(200);
  });

  it("a cut upload makes the framework's body parser fail with 400", async () => {
    const json = new TextEncoder().encode(JSON.stringify({ pad: 'x'.repeat(2 * PER) }));
    const { prepared, body } = await prepareStreamedUpload(alice, session, { url: `${svc.url}/upload-json`, headers: { 'content-type': 'application/json' }, plaintext: chunked(json, 4096) });
    const whole = await collect(body);
    const response = await sendRaw(svc.url, { ...prepared.request, body: whole.subarray(0, 21 + E2EE_RECORD_SIZE + 100) });
    expect((await answerOf(prepared, response)).status).toBe(400);
  });

  it('a download cut at any record boundary or inside a record fails in the caller with e2ee_decrypt_failed', async () => {
    const prepared = await download(4 * PER + 100);
    const response = await sendRaw(svc.url, prepared.request);
    const { key } = await openStreamedResponse(prepared, response, verifier);
    const received = await bodyOf(response);
    expect(await collect(decryptBodyStream(key, chunked(received, 1000)))).toHaveLength(4 * PER + 100);
    const cuts = [21, ...[0, 1, 2, 3, 4].flatMap((r) => [21 + r * E2EE_RECORD_SIZE, 21 + r * E2EE_RECORD_SIZE + 1, 21 + r * E2EE_RECORD_SIZE + 16, 21 + r * E2EE_RECORD_SIZE + 4000])].filter((cut) => cut < received.length);
    const codes = await Promise.all(cuts.map((cut) => codeOf(() => collect(decryptBodyStream(key, chunked(received.subarray(0, cut), 700))))));
    expect(codes).toEqual(cuts.map(() => 'e2ee_decrypt_failed'));
  });

  it('one connection goes on serving after a streamed upload that was cut, changed, refused, not read, or abandoned', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set<unknown>();
    try {
      const upload = async (path: string, size: number, spoil?: (c: Uint8Array) => Uint8Array) => {
        const { prepared, body } = await prepareStreamedUpload(alice, session, { url: `${svc.url}${path}`, headers: { 'content-type': 'application/octet-stream' }, plaintext: patternChunks(size) });
        const response = await sendRaw(svc.url, { ...prepared.request, body: spoil ? spoil(await collect(body)) : body }, agent);
        sockets.add(response.socket);
        return { prepared, response };
      };
      const cut = await upload('/upload', 600 * KiB, (c) => c.subarray(0, c.length - 1000));
      expect((await answerOf(cut.prepared, cut.response)).json).toEqual({ code: 'e2ee_decrypt_failed' });
      // Changed early: the route fails while most of the body is still to come, which is read and dropped.
      const changed = await upload('/upload', 600 * KiB, (c) => {
        const bad = c.slice();
        bad[21 + E2EE_RECORD_SIZE + 3]! ^= 1;
        return bad;
      });
      expect((await answerOf(changed.prepared, changed.response)).json).toEqual({ code: 'e2ee_decrypt_failed' });
      const refused = await upload('/buffered-upload', 600 * KiB);
      expect(headOf(refused.response).status).toBe(401);
      await bodyOf(refused.response);
      const ignored = await upload('/upload?ignore', 600 * KiB);
      expect(await answerOf(ignored.prepared, ignored.response)).toEqual({ status: 200, json: { ignored: true } });
      const whole = await upload('/upload', 600 * KiB);
      expect((await answerOf(whole.prepared, whole.response)).json).toEqual({ bytes: 600 * KiB, sha256: await patternDigest(600 * KiB) });
      expect(sockets.size).toBe(1);
    } finally {
      agent.destroy();
    }
    // A caller that goes away mid-body: the route sees an error, the service carries on.
    const errors = svc.bodyErrors.length;
    const { prepared, body } = await prepareStreamedUpload(alice, session, { url: `${svc.url}/upload`, headers: { 'content-type': 'application/octet-stream' }, plaintext: patternChunks(8 * 1024 * KiB) });
    let sent = 0;
    const abandoned = (async function* () {
      for await (const chunk of body) {
        yield chunk;
        if ((sent += chunk.length) > 256 * KiB) throw new Error('the caller goes away');
      }
    })();
    await expect(sendRaw(svc.url, { ...prepared.request, body: abandoned })).rejects.toThrow();
    for (let i = 0; i < 50 && svc.bodyErrors.length === errors; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(svc.bodyErrors.length).toBe(errors + 1);
    const after = await download(10 * KiB);
    expect((await sendE2ee(svc.url, after.request)).status).toBe(200);
  });

  it('a route that takes no streamed bodies refuses one: digest_missing, or body_too_large past maxBodyBytes', async () => {
    for (const [size, status, code] of [[200 * KiB, 401, 'digest_missing'], [4 * 1024 * KiB, 413, 'body_too_large']] as const) {
      const { prepared, body } = await prepareStreamedUpload(alice, session, { url: `${svc.url}/buffered-upload`, headers: { 'content-type': 'application/octet-stream' }, plaintext: patternChunks(size) });
      const response = await sendRaw(svc.url, { ...prepared.request, body });
      const head = headOf(response);
      expect([head.status, problemOf({ ...head, body: await bodyOf(response) })?.code]).toEqual([status, code]);
    }
  });
});

describe('@oidc2/node: a streamed body that is already complete when oidc2 runs', () => {
  // Middleware that awaits before oidc2 lets a small body arrive whole: its 'end' is then on its way,
  // so it is decrypted whole before the route runs (a failure is the middleware's signed refusal).
  it('reaches the route whole, and a changed one is refused before the route', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const service = createOidc2Service(options(url));
    let routeRan = 0;
    server.on('request', (req, res) => {
      void (async () => {
        await new Promise((resolve) => setTimeout(resolve, 50));
        expect(req.complete).toBe(true);
        const admission = await admitRequest(service, req, res, { policy: { encryptedStreams: { requests: true } } });
        if (!admission) return;
        routeRan++;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(await digestOf(req)));
      })();
    });
    try {
      const session = await openSession(alice, url, verifier);
      const send = async (spoil: (c: Uint8Array) => Uint8Array) => {
        const { prepared, body } = await prepareStreamedUpload(alice, session, { url: `${url}/upload`, headers: { 'content-type': 'application/octet-stream' }, plaintext: patternChunks(3000) });
        return { prepared, response: await sendRaw(url, { ...prepared.request, body: spoil(await collect(body)) }) };
      };
      const whole = await send((c) => c);
      expect(await answerOf(whole.prepared, whole.response)).toEqual({ status: 200, json: { bytes: 3000, sha256: await patternDigest(3000) } });
      const changed = await send((c) => {
        const bad = c.slice();
        bad[40]! ^= 1;
        return bad;
      });
      const head = headOf(changed.response);
      expect([head.status, problemOf({ ...head, body: await bodyOf(changed.response) })?.code]).toEqual([400, 'e2ee_decrypt_failed']);
      expect(routeRan).toBe(1);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('@oidc2/node: an event stream that flushes its head', () => {
  it('sends the signed head before the first event is written', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const service = createOidc2Service(options(url));
    let headSeen: () => void = () => undefined;
    const seen = new Promise<void>((resolve) => (headSeen = resolve));
    server.on('request', (req, res) => {
      void (async () => {
        if (!(await admitRequest(service, req, res))) return;
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.flushHeaders();
        await seen; // the first event waits for the caller to have the head
        res.end(EVENTS[0]);
      })();
    });
    try {
      const session = await openSession(alice, url, verifier);
      const prepared = await prepareE2ee(alice, { method: 'GET', url: `${url}/events`, session });
      const response = await Promise.race([sendRaw(url, prepared.request), new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the head was held back')), 3000).unref())]);
      const { plaintext } = await openStreamedResponse(prepared, response, verifier);
      headSeen();
      expect(new TextDecoder().decode(await collect(plaintext))).toBe(EVENTS[0]);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
