// Memory of the in-memory replay store: paired child processes, one driving N distinct nonces
// through the default MemoryReplayStore, one (the control) driving the same traffic through a
// store that holds nothing. RSS moves by a MiB or two from run to run for reasons of the allocator
// and V8 alone, so the store's own share is the median store run minus the median control run.
// The young generation is confined to 1 MiB semi-spaces, so short-lived garbage of the traffic loop
// (nonce strings, hashes) does not grow the heap by tens of MiB and hide the store's own memory.
import { join } from 'node:path';
import { BENCH, pinned } from './env.mjs';
import { runJson } from './proc.mjs';
import { median } from './stats.mjs';

/** Allowance for RSS measurement noise in the verdict (see bench/README.md). */
export const RSS_TOLERANCE = 0.05;

export async function benchReplay(t, { entries, rate, pairs }) {
  const script = join(BENCH, 'lib', 'replay-child.mjs');
  const once = (control) => runJson(pinned(t, 0, [process.execPath, '--expose-gc', '--max-semi-space-size=1', script, JSON.stringify({ entries, rate, control })]), { timeoutMs: 600_000 });
  const store = [];
  const control = [];
  for (let i = 0; i < pairs; i++) {
    store.push(await once(false));
    control.push(await once(true));
  }
  const rssGrowthBytes = median(store.map((r) => r.rssGrowthBytes));
  const controlRssGrowthBytes = median(control.map((r) => r.rssGrowthBytes));
  const last = store[store.length - 1];
  return {
    entries,
    boundBytes: last.boundBytes,
    maxEntries: last.maxEntries,
    rssGrowthBytes,
    controlRssGrowthBytes,
    netRssGrowthBytes: rssGrowthBytes - controlRssGrowthBytes,
    arrayBuffersGrowthBytes: median(store.map((r) => r.arrayBuffersGrowthBytes)),
    heldAtEnd: last.heldAtEnd,
    simulatedRate: rate,
    checkAndRecordUs: median(store.map((r) => r.checkAndRecordUs)),
    pairs,
    runs: { store: store.map((r) => r.rssGrowthBytes), control: control.map((r) => r.rssGrowthBytes) },
  };
}
