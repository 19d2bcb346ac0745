// `node bench/run.mjs --quick` end to end with tiny counts: every section runs against the built
// packages and the JSON has the documented shape. Numbers are only checked for being measurements
// (finite, positive), never against times: this is a correctness test, not a benchmark.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');

interface QuickResult {
  meta: { quick: boolean; loadGenerator: string };
  core: Array<{ alg: string; authenticateUs: number; rawVerifyUs: number; signResponseUs: number; rawSignUs: number }>;
  http: Array<{ framework: string; helloRps: number; bearerRps: number; oidc2Rps: number; invalidRuns: unknown[]; error?: string }>;
  cold: { callers: number; jwksFetches: number; p99Ms: number; ok: number };
  replay: { entries: number; boundBytes: number; rssGrowthBytes: number; heldAtEnd: number; arrayBuffersGrowthBytes: number };
  httpCrypto: { rawVerifyUs: number; rawSignUs: number };
  scale: { framework: string; invalidRuns: unknown[]; variants: Record<'memory' | 'redis' | 'redis-2', { workers: number; replayStore: string; rps: number }>; redisVsMemory: number; twoVsOneWorker: number };
  e2ee: {
    body: { bytes: number; records: number; streams: boolean } & Record<'encryptUs' | 'decryptUs' | 'rawEncryptUs' | 'rawDecryptUs' | 'encryptRatio' | 'decryptRatio', number> & Partial<Record<'encryptStreamUs' | 'decryptStreamUs', number>>;
    exchange: Array<{ suite: string; available: boolean; reason?: string } & Partial<Record<'serviceHandshakeUs' | 'serviceRekeyUs' | 'callerHandshakeUs' | 'callerRekeyUs' | 'verifyES256Us' | 'verifyEd25519Us' | 'serviceHandshakeVsES256' | 'callerRekeyVsEd25519', number>>>;
    session: Array<{ bytes: number; plainRps: number; sessionRps: number; sessionVsPlain: number }>;
    http: Array<{
      framework: string;
      error?: string;
      invalidRuns: unknown[];
      clientChecked: boolean;
      sizes: Array<{ bytes: number; plainRps: number; sessionRps: number; sessionVsPlain: number; symmetricRps: number; bearerRps: number; symmetricVsBearer: number }>;
    }>;
    symmetric: { implemented: boolean };
  };
  targets: Record<string, unknown>;
}

const measurement = (x: unknown) => typeof x === 'number' && Number.isFinite(x) && x > 0;

describe('bench/run.mjs --quick', () => {
  let dir: string;
  let result: QuickResult;
  let stdout: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'oidc2-bench-test-'));
    const out = join(dir, 'quick.json');
    // The e2ee section measures four variants per framework (plaintext, session, symmetric session, bearer).
    const run = spawnSync(process.execPath, [join(ROOT, 'bench', 'run.mjs'), '--quick', '--out', out], { cwd: ROOT, encoding: 'utf8', timeout: 480_000 });
    if (run.status !== 0) throw new Error(`bench --quick exited with ${run.status}:\n${run.stderr}`);
    stdout = run.stdout;
    result = JSON.parse(readFileSync(out, 'utf8')) as QuickResult;
  }, 540_000);

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('marks the run as quick and names its load generator', () => {
    expect(result.meta.quick).toBe(true);
    expect(result.meta.loadGenerator).toMatch(/^(wrk|autocannon)/);
  });

  test('core: one row per algorithm with four measurements', () => {
    expect(result.core.map((r) => r.alg)).toEqual(['ES256', 'Ed25519']);
    for (const row of result.core) {
      for (const k of ['authenticateUs', 'rawVerifyUs', 'signResponseUs', 'rawSignUs'] as const) expect(measurement(row[k])).toBe(true);
    }
  });

  test('http: one valid row per framework with all three variants measured', () => {
    expect(result.http.map((r) => r.framework)).toEqual(['express', 'fastify', 'koa']);
    for (const row of result.http) {
      expect(row.error).toBeUndefined();
      expect(row.invalidRuns).toEqual([]);
      for (const k of ['helloRps', 'bearerRps', 'oidc2Rps'] as const) expect(measurement(row[k])).toBe(true);
    }
  });

  test('http: per request, the own work of each middleware over hello world and the raw crypto', () => {
    expect(measurement(result.httpCrypto.rawVerifyUs)).toBe(true);
    expect(measurement(result.httpCrypto.rawSignUs)).toBe(true);
    for (const row of result.http as Array<{ perRequest?: Record<string, unknown> }>) {
      for (const k of ['helloUs', 'bearerAddsUs', 'oidc2AddsUs', 'bearerOwnUs', 'oidc2OwnUs', 'ownWorkRatio']) expect(typeof row.perRequest?.[k]).toBe('number');
    }
  });

  test('scale: one and two workers over a shared Redis replay store, and one over memory', () => {
    const { variants } = result.scale;
    expect(result.scale.invalidRuns).toEqual([]);
    expect([variants.memory.workers, variants.redis.workers, variants['redis-2'].workers]).toEqual([1, 1, 2]);
    expect([variants.memory.replayStore, variants.redis.replayStore, variants['redis-2'].replayStore]).toEqual(['memory', 'redis', 'redis']);
    for (const v of Object.values(variants)) expect(measurement(v.rps)).toBe(true);
    expect(measurement(result.scale.redisVsMemory)).toBe(true);
    expect(measurement(result.scale.twoVsOneWorker)).toBe(true);
  });

  test('cold: every distinct caller succeeds with exactly one JWKS fetch', () => {
    expect(result.cold.callers).toBeGreaterThan(1);
    expect(result.cold.ok).toBe(result.cold.callers);
    expect(result.cold.jwksFetches).toBe(1);
    expect(measurement(result.cold.p99Ms)).toBe(true);
  });

  test('replay: every nonce went through a store with a reported bound', () => {
    expect(result.replay.entries).toBeGreaterThan(0);
    expect(result.replay.heldAtEnd).toBe(result.replay.entries);
    expect(measurement(result.replay.boundBytes)).toBe(true);
    // The table is allocated once at its bound, whatever the traffic.
    expect(result.replay.arrayBuffersGrowthBytes).toBeGreaterThanOrEqual(result.replay.boundBytes);
    expect(result.replay.arrayBuffersGrowthBytes).toBeLessThan(result.replay.boundBytes + 4096);
    expect(typeof result.replay.rssGrowthBytes).toBe('number');
  });

  test('e2ee: 1 MiB body coding against raw GCM, buffered and streamed', () => {
    const body = result.e2ee.body;
    expect(body.bytes).toBe(1024 * 1024);
    expect(body.records).toBe(65);
    for (const k of ['encryptUs', 'decryptUs', 'rawEncryptUs', 'rawDecryptUs', 'encryptRatio', 'decryptRatio'] as const) expect(measurement(body[k])).toBe(true);
    if (body.streams) for (const k of ['encryptStreamUs', 'decryptStreamUs'] as const) expect(measurement(body[k])).toBe(true);
  });

  test('e2ee: handshake and rekey per suite in raw verifications, xwing in its place', () => {
    expect(result.e2ee.exchange.map((r) => r.suite)).toEqual(['x25519', 'p256', 'xwing']);
    for (const row of result.e2ee.exchange.filter((r) => r.suite !== 'xwing')) {
      expect(row.available).toBe(true);
      for (const k of ['serviceHandshakeUs', 'serviceRekeyUs', 'callerHandshakeUs', 'callerRekeyUs', 'verifyES256Us', 'verifyEd25519Us', 'serviceHandshakeVsES256', 'callerRekeyVsEd25519'] as const) expect(measurement(row[k])).toBe(true);
    }
    const xwing = result.e2ee.exchange.find((r) => r.suite === 'xwing')!;
    if (!xwing.available) expect(typeof xwing.reason).toBe('string');
  });

  test('e2ee: session requests against plaintext ones, in process and over HTTP on every framework; symmetric session requests against the bearer middleware', () => {
    expect(result.e2ee.session.map((r) => r.bytes)).toEqual([1024, 65536]);
    for (const row of result.e2ee.session) for (const k of ['plainRps', 'sessionRps', 'sessionVsPlain'] as const) expect(measurement(row[k])).toBe(true);
    expect(result.e2ee.http.map((r) => r.framework)).toEqual(['express', 'fastify', 'koa']);
    for (const row of result.e2ee.http) {
      expect(row.error).toBeUndefined();
      expect(row.invalidRuns).toEqual([]);
      // @oidc2/client with encryption: 'required' got an encrypted answer from the server.
      expect(row.clientChecked).toBe(true);
      expect(row.sizes.map((s) => s.bytes)).toEqual([1024, 65536]);
      for (const size of row.sizes) for (const k of ['plainRps', 'sessionRps', 'sessionVsPlain', 'symmetricRps', 'bearerRps', 'symmetricVsBearer'] as const) expect(measurement(size[k])).toBe(true);
    }
    expect(result.e2ee.symmetric.implemented).toBe(true);
  });

  test('prints the table with ratios and records which targets were met', () => {
    for (const heading of ['Core, per operation', 'HTTP, GET /hello', 'Per request', 'Cold path', 'Replay store memory', 'Scaling and the replay store', 'End-to-end encryption', 'symmetric session / bearer JWT']) expect(stdout).toContain(heading);
    expect(Object.keys(result.targets).sort()).toEqual([
      'coldP99Within2xHello',
      'coldSingleJwksFetch',
      'coreAuthenticateWithin1_2x',
      'coreSignResponseWithin1_4x',
      'e2eeBodyWithin0_8x',
      'e2eeSymmetricAtLeast1_5xBearer',
      'fastifyOwnWorkWithin1_25x',
      'oidc2AtLeast1_1xBearer',
      'replayUnderBound',
    ]);
  });
});
