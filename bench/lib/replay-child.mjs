// Memory: resident memory growth after N distinct nonces through the in-memory replay store, with
// the store's default (configured) bound, or, with `control`, through a store that holds nothing.
// Run with --expose-gc; prints one JSON line. bench/lib/replay.mjs pairs the two.
//
// Traffic is simulated at `rate` requests per second of a clock the store is handed, each nonce
// held for a 60 s signature window plus 60 s leeway, as the authenticator records them.
//
// Usage: node --expose-gc bench/lib/replay-child.mjs '{"entries":1000000,"rate":5000,"control":false}'
import { randomBytes } from 'node:crypto';
import { loadPackage } from './env.mjs';
import { round } from './stats.mjs';

const { entries = 1_000_000, rate = 5000, control = false } = JSON.parse(process.argv[2] ?? '{}');
if (typeof gc !== 'function') throw new Error('run with --expose-gc');

const { MemoryReplayStore } = await loadPackage('core');

async function settled() {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return process.memoryUsage();
}

// The nonces the loop uses, made in batches so their own garbage is not counted as the store's.
const BATCH = 10_000;
function nonces() {
  const raw = randomBytes(16 * BATCH);
  const out = new Array(BATCH);
  for (let i = 0; i < BATCH; i++) out[i] = `sig:${raw.subarray(i * 16, i * 16 + 16).toString('base64url')}`;
  return out;
}

const t0 = 1_800_000_000;
async function drive(store, count, hold) {
  for (let done = 0; done < count; ) {
    const batch = nonces();
    for (let i = 0; i < batch.length && done < count; i++, done++) {
      const now = t0 + Math.floor(done / rate);
      if (!(await store.checkAndRecord(batch[i], now + hold, now))) throw new Error('a distinct nonce was reported as a replay');
    }
  }
}

// Warm the code path first (JIT, the allocator's arenas, V8's young generation) on a tiny store
// that keeps nothing (every nonce is already expired), so the growth measured below is what the
// store itself holds rather than the process's one-off start-up costs, which are reported apart.
const cold = await settled();
await drive(new MemoryReplayStore({ maxEntries: 16 }), Math.min(entries, 200_000), -1);
const before = await settled();
// The control run drives the same code path through a store that holds nothing.
const store = control ? new MemoryReplayStore({ maxEntries: 16 }) : new MemoryReplayStore();
const started = process.hrtime.bigint();
await drive(store, entries, control ? -1 : 120);
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
const after = await settled();

process.stdout.write(
  `${JSON.stringify({
    entries,
    boundBytes: store.maxBytes,
    maxEntries: store.maxEntries,
    rssGrowthBytes: after.rss - before.rss,
    warmupRssGrowthBytes: before.rss - cold.rss,
    arrayBuffersGrowthBytes: after.arrayBuffers - before.arrayBuffers,
    heapUsedGrowthBytes: after.heapUsed - before.heapUsed,
    heldAtEnd: store.size,
    simulatedRate: rate,
    checkAndRecordUs: round((seconds * 1e6) / entries),
  })}\n`,
);
