// The scaling row and the replay store's cost: the oidc2 server of one framework measured as
//   memory  one process, the default MemoryReplayStore;
//   redis   one process, a RedisReplayStore on a redis-server on 127.0.0.1 (what several instances need);
//   redis×2 two processes behind one port (node:cluster), sharing that Redis.
// Redis runs without persistence, pinned with the load generator to core 1; one process is pinned
// to core 0 as in the HTTP section, two processes get both cores (this machine has two), so the
// load generator and Redis share a core with one of them. Runs rotate; ratios are of runs made
// back to back, then their median.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { rootRequire } from './env.mjs';
import { ROUTE } from './credentials.mjs';
import { measure } from './load.mjs';
import { writePresigned } from './presign.mjs';
import { startServer } from './proc.mjs';
import { writeServerConfig } from './http-bench.mjs';
import { median, round } from './stats.mjs';

export const SCALE_VARIANTS = [
  { name: 'memory', workers: 1, redis: false, core: 0 },
  { name: 'redis', workers: 1, redis: true, core: 0 },
  { name: 'redis-2', workers: 2, redis: true, core: '0,1' },
];

async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A redis-server on 127.0.0.1 without persistence, pinned to core 1; resolves { url, stop }. */
async function startRedis(t) {
  const port = await freePort();
  const argv = ['redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  const child = spawn(t.taskset ?? argv[0], t.taskset ? ['-c', '1', ...argv] : argv.slice(1), { stdio: 'ignore' });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.on('error', () => undefined);
  const url = `redis://127.0.0.1:${port}`;
  const { createClient } = rootRequire('redis');
  const deadline = Date.now() + 10_000;
  for (;;) {
    const probe = createClient({ url, socket: { reconnectStrategy: false } });
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      if ((await probe.ping()) === 'PONG') {
        probe.destroy();
        break;
      }
    } catch {
      // not listening yet
    }
    if (probe.isOpen) probe.destroy();
    if (Date.now() > deadline || child.exitCode !== null) throw new Error('redis-server did not start (is it installed?)');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    url,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Accepts a signed request once and refuses its replays, whichever process each one reaches. */
async function sanityCheck(port, caller) {
  const signed = await caller.sign();
  const headers = Object.entries(signed.headers).map(([k, v]) => [k, v.join(', ')]);
  const url = `http://127.0.0.1:${port}${ROUTE}`;
  const first = await fetch(url, { headers });
  await first.arrayBuffer();
  if (first.status !== 200) throw new Error(`a signed request was refused (${first.status})`);
  for (let i = 0; i < 4; i++) {
    // New connections, so that a cluster's primary hands them to its workers in turn.
    const replay = await fetch(url, { headers: [...headers, ['connection', 'close']] });
    await replay.arrayBuffer();
    if (replay.status !== 401) throw new Error(`a replayed request was accepted (${replay.status})`);
  }
}

/**
 * @param o { t, issuer, issuers, caller (presign.signer), tmp, framework, reps, duration, warmup,
 *            connections, log }
 */
export async function benchScale(o) {
  const { t, log } = o;
  const row = { framework: o.framework, variants: {}, invalidRuns: [] };
  const redis = await startRedis(t);
  const servers = {};
  const samples = Object.fromEntries(SCALE_VARIANTS.map((v) => [v.name, []]));
  const presigned = join(o.tmp, 'scale-presigned.txt');
  let expected = 2000;
  const one = async (variant, duration) => {
    for (let attempt = 0; ; attempt++) {
      await writePresigned(o.caller, Math.ceil(expected * duration * 1.5) + 500, presigned);
      const r = await measure(t, { port: servers[variant.name].port, connections: o.connections, duration, presigned });
      expected = Math.max(expected, r.rps);
      if (r.exhausted > 0 && attempt < 2) {
        expected *= 2;
        continue;
      }
      return r;
    }
  };
  try {
    for (const variant of SCALE_VARIANTS) {
      const path = join(o.tmp, `scale-${variant.name}.json`);
      await writeServerConfig(path, o.issuer, o.issuers, variant.redis ? { replayRedis: redis.url } : {});
      servers[variant.name] = await startServer(t, o.framework, 'oidc2', path, variant.core, variant.workers);
      await sanityCheck(servers[variant.name].port, o.caller);
      if (o.warmup > 0) await one(variant, o.warmup);
    }
    for (let rep = 0; rep < o.reps; rep++) {
      const order = SCALE_VARIANTS.map((_, i) => SCALE_VARIANTS[(i + rep) % SCALE_VARIANTS.length]);
      for (const variant of order) {
        const r = await one(variant, o.duration);
        if (r.non2xx > 0 || r.errors > 0 || r.exhausted > 0 || r.requests === 0) {
          row.invalidRuns.push({ variant: variant.name, rep, non2xx: r.non2xx, errors: r.errors, exhausted: r.exhausted });
          continue;
        }
        samples[variant.name][rep] = Math.round(r.rps);
      }
    }
  } finally {
    await Promise.all(Object.values(servers).map((s) => s.stop()));
    await redis.stop();
  }
  const ratio = (a, b) => {
    const r = samples[a].map((x, i) => (x && samples[b][i] ? x / samples[b][i] : NaN));
    return r.some(Number.isFinite) ? round(median(r.filter(Number.isFinite)), 3) : undefined;
  };
  for (const v of SCALE_VARIANTS) {
    const s = samples[v.name].filter(Boolean);
    row.variants[v.name] = { workers: v.workers, replayStore: v.redis ? 'redis' : 'memory', rps: s.length ? Math.round(median(s)) : null, samples: samples[v.name] };
  }
  row.redisVsMemory = ratio('redis', 'memory');
  row.twoVsOneWorker = ratio('redis-2', 'redis');
  // What the Redis store adds per request, from the medians: 1/redis - 1/memory.
  const m = row.variants.memory.rps;
  const r1 = row.variants.redis.rps;
  row.redisAddsUs = m && r1 ? round(1e6 / r1 - 1e6 / m, 1) : undefined;
  log(`  scale (${o.framework}): memory ${m} req/s, redis ${r1} req/s, redis ×2 ${row.variants['redis-2'].rps} req/s`);
  return row;
}
