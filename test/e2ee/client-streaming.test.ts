// @oidc2/client and streamed end-to-end encrypted bodies (docs/protocol.md section 7.7) against real Express,
// Fastify and Koa services on 127.0.0.1: downloads it decrypts record by record as they arrive (0 B,
// 1 B, one full record, 5 MiB), Server-Sent Events read one by one as the service flushes them,
// streamed uploads, and, through a proxy that rewrites the records of a streamed answer, every
// truncation, change, loss, repeat, reordering and extra record making the body error with a code,
// never end short. Memory: client-streaming-memory.test.ts.
import { request as httpRequest } from 'node:http';
import { createClient, type VerifiedResponse } from '@oidc2/client';
import { E2EE_RECORD_SIZE } from '@oidc2/core/adapter';
import { newIssuer, newKey, type TestIssuer } from '../support/credentials';
import { FRAMEWORKS } from '../support/frameworks';
import { listen, type RunningServer } from '../support/node-service';
import { EVENTS, digestOf, patternChunks, patternDigest, startStreamingFramework, type StreamingService } from '../support/streaming-frameworks';
import { rejection } from '../support/error-code';

const KiB = 1024;
const MiB = 1024 * KiB;
const HEADER = 21; // the aes128gcm header without keyid
const RS = E2EE_RECORD_SIZE;
const PER = RS - 17; // plaintext octets per full record

let callers: TestIssuer;
let services: TestIssuer;
let serviceOptions: { issuers: unknown[]; credential: { ict: string; privateKey: unknown } };

beforeAll(async () => {
  callers = await newIssuer('https://op.example.test', 'Ed25519');
  services = await newIssuer('https://attest.example.test', 'Ed25519');
  const serviceKey = await newKey('Ed25519');
  serviceOptions = {
    issuers: [{ issuer: callers.issuer, jwks: callers.jwks }],
    credential: { ict: await services.mint(serviceKey, { subject: 'svc', lifetime: 3600 }), privateKey: serviceKey.privateJwk },
  };
});

/** What the client's fetch saw of each answer before the client handled it: whether it carried Content-Digest. */
interface Observed {
  digests: Array<string | null>;
}

/** A client that requires end-to-end encryption, trusting the services' issuer. */
function newClient(observed: Observed = { digests: [] }) {
  return createClient({
    serviceIssuers: [{ issuer: services.issuer, jwks: services.jwks }],
    getIct: (jwk) => callers.mint(jwk, { lifetime: 3600 }),
    encryption: 'required',
    fetch: async (input, init) => {
      const response = await fetch(input, init);
      observed.digests.push(response.headers.get('content-digest'));
      return response;
    },
  });
}

/** Octets of pattern as a `ReadableStream`, in chunks of 64 KiB, for streamed uploads. */
function patternStream(size: number): ReadableStream<Uint8Array> {
  const chunks = patternChunks(size);
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await chunks.next();
      if (next.done) controller.close();
      else controller.enqueue(new Uint8Array(next.value));
    },
  });
}

/** Length and SHA-256 of a verified response's body, read chunk by chunk as it arrives. */
async function bodyDigest(response: VerifiedResponse): Promise<{ bytes: number; sha256: string }> {
  const reader = response.body!.getReader();
  return digestOf(
    (async function* () {
      for (let next = await reader.read(); !next.done; next = await reader.read()) yield next.value;
    })(),
  );
}

/** How a reading of the body ended: `'complete'` or the code it errored with. */
async function readingOutcome(response: VerifiedResponse): Promise<string> {
  const reader = response.body!.getReader();
  try {
    while (!(await reader.read()).done);
    return 'complete';
  } catch (error) {
    return String((error as { code?: unknown }).code ?? error);
  }
}

/**
 * A reverse proxy on loopback that passes requests (streamed bodies too) on to `target` and, while
 * `rewrite` is set, rewrites the body of every streamed encrypted answer (one without
 * Content-Digest) as a whole before sending it on, headers untouched: what an active attacker on the
 * path can do to its records.
 */
interface RewritingProxy extends RunningServer {
  target: string;
  /** The head fields of every request passed on, in order. */
  readonly requests: Array<Record<string, string | string[] | undefined>>;
  rewrite: ((body: Buffer) => Buffer) | undefined;
}

async function startRewritingProxy(): Promise<RewritingProxy> {
  const state: { target: string; rewrite: ((body: Buffer) => Buffer) | undefined } = { target: '', rewrite: undefined };
  const requests: RewritingProxy['requests'] = [];
  const running = await listen((req, res) => {
    requests.push(req.headers);
    const to = new URL(state.target);
    const headers = { ...req.headers };
    delete headers.connection;
    const out = httpRequest({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers }, (answer) => {
      const back = { ...answer.headers };
      for (const name of ['connection', 'keep-alive', 'transfer-encoding', 'content-length']) delete back[name];
      const rewrite = state.rewrite;
      if (!rewrite || answer.headers['content-digest'] !== undefined) {
        res.writeHead(answer.statusCode ?? 502, { ...back, ...(answer.headers['content-length'] ? { 'content-length': answer.headers['content-length'] } : {}) });
        answer.pipe(res);
        return;
      }
      const chunks: Buffer[] = [];
      answer.on('data', (chunk: Buffer) => chunks.push(chunk));
      answer.on('end', () => {
        res.writeHead(answer.statusCode ?? 502, back);
        res.end(rewrite(Buffer.concat(chunks)));
      });
    });
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  for (const key of ['target', 'rewrite'] as const) {
    Object.defineProperty(running, key, { get: () => state[key], set: (value: never) => void (state[key] = value), enumerable: true });
  }
  return Object.assign(running, { requests }) as RewritingProxy;
}

/** Record `n` (from 0) of an encoded body. */
const recordAt = (body: Buffer, n: number): Buffer => body.subarray(HEADER + n * RS, Math.min(body.length, HEADER + (n + 1) * RS));

describe.each(FRAMEWORKS)('%s: the client reads and sends streamed encrypted bodies', (framework) => {
  let svc: StreamingService;
  let proxy: RewritingProxy;

  beforeAll(async () => {
    proxy = await startRewritingProxy();
    // Every response of the default policy streams from its first byte; /upload keeps buffered answers.
    svc = await startStreamingFramework(framework, (url) => ({ ...serviceOptions, audiences: [url, proxy.url], maxResponseBytes: 64 * KiB, policy: { encryptedStreams: { responses: true } } }) as never);
    proxy.target = svc.url;
  });
  afterEach(() => {
    proxy.rewrite = undefined;
  });
  afterAll(async () => {
    await svc?.close();
    await proxy?.close();
  });

  it.each([0, 1, 16 * KiB, 5 * MiB])('a streamed download of %i octets round-trips, read as it arrives', async (size) => {
    const observed: Observed = { digests: [] };
    const client = newClient(observed);
    const response = await client(`${svc.url}/download?bytes=${size}`);
    expect(response.status).toBe(200);
    // An empty answer may go out as a stream of one empty final record (Fastify) or as no body at all,
    // with the digest of nothing (Express and Koa): the client reads either.
    const streamed = size > 0 || observed.digests[0] === null;
    expect(response.encryption).toEqual({ suite: 'x25519', mode: 'handshake', epoch: 0, bodyEncrypted: streamed });
    if (streamed) {
      // Streamed: the answer's head came without Content-Digest, and the plaintext's length is not announced.
      expect(observed.digests).toEqual([null]);
      expect(response.headers.get('content-length')).toBeNull();
    }
    expect(response.headers.get('content-encoding')).toBeNull();
    expect(await bodyDigest(response)).toEqual({ bytes: size, sha256: await patternDigest(size) });
  });

  it('text(), json() and arrayBuffer() read a streamed body; a buffered answer keeps its Content-Digest', async () => {
    const observed: Observed = { digests: [] };
    const client = newClient(observed);
    const bytes = new Uint8Array(await (await client(`${svc.url}/download?bytes=${3 * PER + 5}`)).arrayBuffer());
    expect(await digestOf([bytes])).toEqual({ bytes: 3 * PER + 5, sha256: await patternDigest(3 * PER + 5) });
    expect(await (await client(`${svc.url}/events`)).text()).toBe(EVENTS.join(''));
    // POST /upload answers on its own policy (buffered): the client verifies the digest as before.
    const answer = await client(`${svc.url}/upload`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: 'whole' });
    expect(await answer.json()).toEqual(await digestOf([new TextEncoder().encode('whole')]));
    expect(observed.digests.map((d) => d !== null)).toEqual([false, false, true]);
  });

  it('Server-Sent Events: the client reads each event before the service writes the next', async () => {
    // The route writes an event only once the client has read the one before: an event held back by
    // the service or the client stalls the exchange, which the timeout reports.
    let read = 0;
    let caughtUp: (() => void) | undefined;
    svc.nextEvents = (async function* () {
      for (const [i, event] of EVENTS.entries()) {
        if (read < i) await new Promise<void>((resolve) => (caughtUp = resolve));
        yield event;
      }
    })();
    const response = await newClient()(`${svc.url}/events`);
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    const seen: string[] = [];
    for (;;) {
      const next = await Promise.race([reader.read(), new Promise<'stalled'>((resolve) => setTimeout(resolve, 3000, 'stalled').unref())]);
      if (next === 'stalled') throw new Error(`event ${seen.length + 1} was held back`);
      if (next.done) break;
      seen.push(next.value);
      read = seen.length;
      caughtUp?.();
    }
    expect(seen).toEqual([...EVENTS]);
  });

  it('a body cut at any record boundary or inside a record errors with e2ee_response_decrypt_failed', async () => {
    const client = newClient();
    const size = 4 * PER + 100; // five records, the last one short
    const whole = 21 + 4 * RS + 100 + 17;
    const cuts = [0, 10, HEADER, ...[0, 1, 2, 3, 4].flatMap((r) => [HEADER + r * RS, HEADER + r * RS + 1, HEADER + r * RS + 16, HEADER + r * RS + 4000])].filter((cut) => cut < whole);
    const outcomes: string[] = [];
    for (const cut of cuts) {
      proxy.rewrite = (body) => body.subarray(0, cut);
      const response = await client(`${proxy.url}/download?bytes=${size}`);
      outcomes.push(`${cut}: ${await readingOutcome(response)}`);
    }
    expect(outcomes).toEqual(cuts.map((cut) => `${cut}: e2ee_response_decrypt_failed`));
    // The control: the same download through the same proxy, unchanged, completes.
    proxy.rewrite = (body) => body;
    expect(await bodyDigest(await client(`${proxy.url}/download?bytes=${size}`))).toEqual({ bytes: size, sha256: await patternDigest(size) });
  });

  it('a changed, dropped, repeated, reordered or extra record errors with e2ee_response_decrypt_failed', async () => {
    const client = newClient();
    const size = 4 * PER + 100;
    const spoilers: Record<string, (body: Buffer) => Buffer> = {
      'a changed ciphertext octet': (body) => {
        const bad = Buffer.from(body);
        bad[HEADER + 2 * RS + 77]! ^= 0x01;
        return bad;
      },
      'a changed tag octet': (body) => {
        const bad = Buffer.from(body);
        bad[HEADER + RS - 1]! ^= 0x80;
        return bad;
      },
      'a changed salt': (body) => {
        const bad = Buffer.from(body);
        bad[3]! ^= 0x01;
        return bad;
      },
      'a dropped record': (body) => Buffer.concat([body.subarray(0, HEADER), recordAt(body, 0), recordAt(body, 2), recordAt(body, 3), recordAt(body, 4)]),
      'a repeated record': (body) => Buffer.concat([body.subarray(0, HEADER + 2 * RS), recordAt(body, 1), body.subarray(HEADER + 2 * RS)]),
      'two records swapped': (body) => Buffer.concat([body.subarray(0, HEADER), recordAt(body, 0), recordAt(body, 2), recordAt(body, 1), recordAt(body, 3), recordAt(body, 4)]),
      'the final record repeated after it': (body) => Buffer.concat([body, recordAt(body, 4)]),
      'one octet after the final record': (body) => Buffer.concat([body, Buffer.from([0])]),
      'the final record dropped': (body) => body.subarray(0, HEADER + 4 * RS),
    };
    const outcomes: Record<string, string> = {};
    for (const [name, spoil] of Object.entries(spoilers)) {
      proxy.rewrite = spoil;
      outcomes[name] = await readingOutcome(await client(`${proxy.url}/download?bytes=${size}`));
    }
    expect(outcomes).toEqual(Object.fromEntries(Object.keys(spoilers).map((name) => [name, 'e2ee_response_decrypt_failed'])));
  });

  it('text() and arrayBuffer() reject with the code on a cut body, never resolve with a shorter one', async () => {
    const client = newClient();
    proxy.rewrite = (body) => body.subarray(0, HEADER + 2 * RS);
    expect((await rejection((await client(`${proxy.url}/download?bytes=${4 * PER}`)).text())).code).toBe('e2ee_response_decrypt_failed');
    expect((await rejection((await client(`${proxy.url}/download?bytes=${4 * PER}`)).arrayBuffer())).code).toBe('e2ee_response_decrypt_failed');
  });

  it('a ReadableStream body is encrypted and sent as it is read, without Content-Digest', async () => {
    const client = newClient();
    const size = 3 * MiB + 7;
    const response = await client(`${proxy.url}/upload`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: patternStream(size), duplex: 'half' } as RequestInit);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ bytes: size, sha256: await patternDigest(size) });
    const sent = proxy.requests.at(-1)!;
    expect([sent['content-encoding'], sent['transfer-encoding'], sent['content-digest'], sent['content-length']]).toEqual(['aes128gcm', 'chunked', undefined, undefined]);
  });

  it('a route that takes no streamed bodies refuses one with its signed code, which the client hands back', async () => {
    const client = newClient();
    const response = await client(`${svc.url}/buffered-upload`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: patternStream(200 * KiB), duplex: 'half' } as RequestInit);
    expect(response.status).toBe(401);
    expect(response.encryption).toBeNull();
    expect(((await response.json()) as { code: string }).code).toBe('digest_missing');
  });
});

describe('a streamed upload is sent once, and only encrypted', () => {
  let clock = 0;
  let svc: StreamingService;
  beforeAll(async () => {
    clock = Math.floor(Date.now() / 1000);
    // The service's clock runs 30 s ahead with 5 s of tolerance: a token the client still holds for
    // valid has expired there. Routes of the default policy answer only in clear.
    svc = await startStreamingFramework('express', (url) => ({ ...serviceOptions, audiences: [url], now: () => clock + 30, clockTolerance: 5, policy: { encryption: 'off' } }) as never);
  });
  afterAll(async () => {
    await svc?.close();
  });
  const client = (encryption: 'required' | 'preferred') =>
    createClient({ serviceIssuers: [{ issuer: services.issuer, jwks: services.jwks }], getIct: (jwk) => callers.mint(jwk, { now: clock, lifetime: 3600 }), encryption, now: () => clock });
  const upload = (size: number) => ({ method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: patternStream(size), duplex: 'half' }) as RequestInit;

  it('a session refused as expired rejects with session_expired instead of a new handshake and a resend', async () => {
    const api = client('required');
    expect((await api(`${svc.url}/upload`, { method: 'POST', body: 'opens the session' })).status).toBe(200);
    clock += 610;
    expect((await rejection(api(`${svc.url}/upload`, upload(100 * KiB)))).code).toBe('session_expired');
    // The next request opens a new session.
    const response = await api(`${svc.url}/upload`, upload(100 * KiB));
    expect(await response.json()).toEqual({ bytes: 100 * KiB, sha256: await patternDigest(100 * KiB) });
  });

  it("'preferred': a route known to answer only in clear makes it reject with e2ee_unavailable, never send it in clear", async () => {
    const api = client('preferred');
    // A body sent whole falls back to clear after the route's signed e2ee_unavailable, and the route is remembered.
    const whole = await api(`${svc.url}/buffered-upload`, { method: 'POST', body: 'in clear' });
    expect([whole.status, whole.encryption]).toEqual([200, null]);
    expect(await whole.json()).toEqual(await digestOf([new TextEncoder().encode('in clear')]));
    const before = svc.bodyErrors.length;
    expect((await rejection(api(`${svc.url}/buffered-upload`, upload(100 * KiB)))).code).toBe('e2ee_unavailable');
    expect(svc.bodyErrors.length).toBe(before);
  });
});
