// The service's side of streamed bodies, what it lets go of: a body read past maxResponseBytes and
// then passed on as a stream does not keep the octets read ahead referenced while it runs
// (readBounded), and a route's answer that the exchange stops reading (refused for its size) stops
// being produced, on every framework (Fastify destroys the route's stream rather than draining it).
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createClient } from '@oidc2/client';
import { readBounded } from '@oidc2/core/adapter';
import { newIssuer, newKey, type TestIssuer } from '../support/credentials';
import { FRAMEWORKS } from '../support/frameworks';
import { startStreamingFramework, type StreamingService } from '../support/streaming-frameworks';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const KiB = 1024;
const MiB = 1024 * KiB;

/** Lets pending jobs run (a WeakRef's target stays alive until the job that dereferenced it ends), then collects. */
async function collected(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  await new Promise((resolve) => setImmediate(resolve));
}

describe('readBounded', () => {
  it('past the bound, each chunk read ahead is let go once the stream has handed it on', async () => {
    const refs: WeakRef<Uint8Array>[] = [];
    const source = async function* () {
      for (let i = 0; i < 10; i++) {
        const chunk = new Uint8Array(MiB).fill(i);
        refs.push(new WeakRef(chunk));
        yield chunk;
      }
    };
    const read = await readBounded(source(), 4 * MiB);
    if (read instanceof Uint8Array) throw new Error('expected an overflow');
    expect(refs).toHaveLength(5); // read ahead: five chunks of 1 MiB went past the 4 MiB bound
    const iterator = read.rest[Symbol.asyncIterator]();
    const seen: number[] = [];
    for (let i = 0; i < 7; i++) seen.push((await iterator.next()).value![0]!);
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6]);
    await collected();
    // The stream is still running (three chunks to come), and none of the five read ahead is held.
    expect(refs.slice(0, 5).map((ref) => ref.deref() === undefined)).toEqual([true, true, true, true, true]);
    let rest = 0;
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) rest++;
    expect(rest).toBe(3);
  });

  it('a body within the bound is read whole; cancel() stops a stream past it', async () => {
    let returned = false;
    const source = async function* () {
      try {
        for (let i = 0; i < 10; i++) yield new Uint8Array(KiB);
      } finally {
        returned = true;
      }
    };
    expect(await readBounded(source(), 10 * KiB)).toHaveLength(10 * KiB);
    const over = await readBounded(source(), 2 * KiB);
    if (over instanceof Uint8Array) throw new Error('expected an overflow');
    returned = false;
    await over.cancel();
    expect(returned).toBe(true);
  });
});

describe.each(FRAMEWORKS)('%s: an answer refused for its size', (framework) => {
  let callers: TestIssuer;
  let svc: StreamingService;
  let client: ReturnType<typeof createClient>;

  beforeAll(async () => {
    callers = await newIssuer('https://op.example.test', 'Ed25519');
    const services = await newIssuer('https://attest.example.test', 'Ed25519');
    const serviceKey = await newKey('Ed25519');
    const credential = { ict: await services.mint(serviceKey, { subject: 'svc', lifetime: 3600 }), privateKey: serviceKey.privateJwk };
    svc = await startStreamingFramework(framework, (url) => ({ issuers: [{ issuer: callers.issuer, jwks: callers.jwks }], audiences: [url], credential, maxResponseBytes: 64 * KiB }) as never);
    client = createClient({ serviceIssuers: [{ issuer: services.issuer, jwks: services.jwks }], getIct: (jwk) => callers.mint(jwk, { lifetime: 3600 }) });
  });
  afterAll(async () => {
    await svc?.close();
  });

  it('is a signed response_signing_unavailable, and the route stops producing it', async () => {
    const size = 256 * MiB;
    const response = await client(`${svc.url}/download?bytes=${size}`);
    expect(response.status).toBe(501);
    expect(((await response.json()) as { code: string }).code).toBe('response_signing_unavailable');
    const settled = async () => {
      for (let last = -1; svc.produced !== last; await new Promise((resolve) => setTimeout(resolve, 100))) last = svc.produced;
      return svc.produced;
    };
    expect(await settled()).toBeLessThan(size / 8);
  });
});
