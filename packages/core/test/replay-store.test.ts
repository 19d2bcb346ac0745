import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MemoryReplayStore } from '../src/replay-store';
import { isOidc2Error } from '../src/errors';

// The built package (`pnpm test` builds before it runs jest).
const BUILT_CORE = resolve(__dirname, '..', 'dist', 'esm', 'index.js');

async function codeOf(p: unknown): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (isOidc2Error(err)) return `${err.code}/${err.status}`;
    throw err;
  }
  return 'resolved';
}

describe('MemoryReplayStore', () => {
  it('reports a key as new once, then as seen until it expires', async () => {
    const store = new MemoryReplayStore({ maxEntries: 100 });
    expect(await store.checkAndRecord('a', 100, 50)).toBe(true);
    expect(await store.checkAndRecord('a', 100, 60)).toBe(false);
    expect(await store.checkAndRecord('b', 100, 60)).toBe(true);
    // Live up to and including expiresAt.
    expect(await store.checkAndRecord('a', 200, 100)).toBe(false);
    // Expired: new again, and recorded again.
    expect(await store.checkAndRecord('a', 200, 100.5)).toBe(true);
    expect(await store.checkAndRecord('a', 200, 150)).toBe(false);
  });

  it('keeps fractional expiries until the next whole second', async () => {
    const store = new MemoryReplayStore({ maxEntries: 10 });
    expect(await store.checkAndRecord('k', 100.2, 99)).toBe(true);
    expect(await store.checkAndRecord('k', 100.2, 100.9)).toBe(false);
    expect(await store.checkAndRecord('k', 100.2, 101.1)).toBe(true);
  });

  it('does not hold a key whose window has already closed', async () => {
    const store = new MemoryReplayStore({ maxEntries: 10 });
    expect(await store.checkAndRecord('late', 10, 50)).toBe(true);
    expect(store.size).toBe(0);
  });

  it('distinguishes keys that differ in one character, including non-ASCII ones', async () => {
    const store = new MemoryReplayStore({ maxEntries: 10 });
    expect(await store.checkAndRecord('dpop:abc:é', 100, 0)).toBe(true);
    expect(await store.checkAndRecord('dpop:abc:e', 100, 0)).toBe(true);
    expect(await store.checkAndRecord('dpop:abc:é', 100, 0)).toBe(false);
  });

  it('states a fixed memory bound: twice maxEntries slots, rounded up to a power of two, 12 bytes each', () => {
    const store = new MemoryReplayStore({ maxEntries: 1000 });
    expect(store.capacity).toBe(2048);
    expect(store.maxBytes).toBe(2048 * 12);
    const defaults = new MemoryReplayStore();
    expect(defaults.maxEntries).toBe(2 ** 20);
    expect(defaults.capacity).toBe(2 ** 21);
    expect(defaults.maxBytes).toBe(2 ** 21 * 12);
  });

  it('fails closed when full of live keys and never evicts one', async () => {
    const store = new MemoryReplayStore({ maxEntries: 50 });
    for (let i = 0; i < 50; i++) expect(await store.checkAndRecord(`k${i}`, 1000, 0)).toBe(true);
    expect(await codeOf(store.checkAndRecord('one-more', 1000, 1))).toBe('replay_store_unavailable/503');
    // Every held key is still detected.
    for (let i = 0; i < 50; i++) expect(await store.checkAndRecord(`k${i}`, 1000, 2)).toBe(false);
    expect(store.size).toBe(50);
    // Once they expire, the space is reused.
    for (let i = 0; i < 50; i++) expect(await store.checkAndRecord(`next${i}`, 2000, 1001)).toBe(true);
    expect(store.size).toBe(50);
  });

  it('frees expired slots when full even if no probe touched them', async () => {
    const store = new MemoryReplayStore({ maxEntries: 20 });
    for (let i = 0; i < 10; i++) await store.checkAndRecord(`short${i}`, 10, 0);
    for (let i = 0; i < 10; i++) await store.checkAndRecord(`long${i}`, 1000, 0);
    expect(await codeOf(store.checkAndRecord('x', 1000, 5))).toBe('replay_store_unavailable/503');
    expect(await store.checkAndRecord('x', 1000, 11)).toBe(true);
    for (let i = 0; i < 10; i++) expect(await store.checkAndRecord(`long${i}`, 1000, 12)).toBe(false);
  });

  it('rejects bad arguments with TypeError', async () => {
    expect(() => new MemoryReplayStore({ maxEntries: 0 })).toThrow(TypeError);
    expect(() => new MemoryReplayStore({ maxEntries: 1.5 })).toThrow(TypeError);
    const store = new MemoryReplayStore({ maxEntries: 1 });
    await expect(store.checkAndRecord(1 as unknown as string, 1, 0)).rejects.toThrow(TypeError);
    await expect(store.checkAndRecord('k', Number.NaN, 0)).rejects.toThrow(TypeError);
    expect(() => new MemoryReplayStore({ prefault: 'yes' as unknown as boolean })).toThrow(TypeError);
    expect(() => new MemoryReplayStore({ maxEntry: 10 } as unknown as { maxEntries: number })).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_OPTION' }));
  });

  it('with prefault, maps its whole table at construction, and answers as without', async () => {
    // The resident size grows by the table at once with prefault, and not without it (Linux maps the
    // pages of a zeroed allocation on first write). Measured in a new process of the built package:
    // in a test worker, an allocator that has freed large blocks before may hand back pages that are
    // resident already, and then neither growth says anything.
    const script = `
      const { MemoryReplayStore } = await import(${JSON.stringify(pathToFileURL(BUILT_CORE).href)});
      const rss = () => process.memoryUsage.rss();
      let before = rss();
      const plain = new MemoryReplayStore({ maxEntries: 1 << 20 });
      const plainGrowth = rss() - before;
      before = rss();
      const store = new MemoryReplayStore({ maxEntries: 1 << 20, prefault: true });
      process.stdout.write(JSON.stringify({ plainGrowth, prefaultGrowth: rss() - before, maxBytes: store.maxBytes, plainBytes: plain.maxBytes }));`;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(child.stderr).toBe('');
    const m = JSON.parse(child.stdout) as { plainGrowth: number; prefaultGrowth: number; maxBytes: number; plainBytes: number };
    expect(m.prefaultGrowth).toBeGreaterThan(0.9 * m.maxBytes);
    expect(m.plainGrowth).toBeLessThan(0.5 * m.plainBytes);

    const store = new MemoryReplayStore({ maxEntries: 1 << 12, prefault: true });
    const plain = new MemoryReplayStore({ maxEntries: 1 << 12 });
    for (let i = 0; i < 2000; i++) {
      const key = `k${i % 1500}`;
      expect(await store.checkAndRecord(key, 200, 100)).toBe(await plain.checkAndRecord(key, 200, 100));
    }
    expect(store.size).toBe(plain.size);
  });

  it('is atomic for concurrent calls with the same key', async () => {
    const store = new MemoryReplayStore({ maxEntries: 10 });
    const results = await Promise.all(Array.from({ length: 20 }, () => store.checkAndRecord('same', 100, 0)));
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it('agrees with a reference model under random traffic in a small, crowded table', async () => {
    // A tiny table makes long probe runs, wrap-around, deletions that shift entries back, sweeps and
    // the full condition all happen thousands of times.
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const maxEntries = 40;
    const store = new MemoryReplayStore({ maxEntries });
    const model = new Map<string, number>();
    let now = 1000;
    let full = 0;
    for (let step = 0; step < 20_000; step++) {
      now += rand(4) / 2;
      const key = `key-${rand(150)}`;
      const expiresAt = now + rand(30) - 2;
      const held = model.get(key);
      const live = [...model.values()].filter((e) => e >= now).length;
      let expected: boolean | 'full';
      if (held !== undefined && held >= now) expected = false;
      else if (Math.ceil(expiresAt) < now) expected = true;
      else expected = live >= maxEntries ? 'full' : true;
      let actual: boolean | 'full';
      try {
        actual = await store.checkAndRecord(key, expiresAt, now);
      } catch (err) {
        if (!isOidc2Error(err) || err.code !== 'replay_store_unavailable') throw err;
        actual = 'full';
      }
      expect(actual).toBe(expected);
      if (actual === 'full') full++;
      if (actual === true && Math.ceil(expiresAt) >= now) model.set(key, Math.ceil(expiresAt));
      expect(store.size).toBeLessThanOrEqual(maxEntries);
    }
    expect(full).toBeGreaterThan(0);
  });

  it('takes 300,000 distinct keys through a 100,000-entry table as they expire', async () => {
    const store = new MemoryReplayStore({ maxEntries: 100_000 });
    for (let i = 0; i < 300_000; i++) {
      const now = 1_700_000_000 + Math.floor(i / 1000);
      if (!(await store.checkAndRecord(`nonce-${i}`, now + 60, now))) throw new Error(`key ${i} reported as seen`);
    }
    expect(store.size).toBeLessThanOrEqual(100_000);
    const now = 1_700_000_000 + 299;
    expect(await store.checkAndRecord('nonce-299999', now + 60, now)).toBe(false);
    expect(await store.checkAndRecord('nonce-299000', now + 60, now)).toBe(false);
  });
});
