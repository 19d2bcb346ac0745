// The LRU cache moves an entry on a hit only when it was last moved half the capacity of updates
// ago or more: the size bound holds exactly, and an entry used at least that often is never evicted.
import { LruCache } from '../src/lib/lru';

describe('LruCache', () => {
  it('holds at most maxEntries, evicting the entry least recently moved', () => {
    const cache = new LruCache<string, number>(4);
    for (let i = 0; i < 4; i++) cache.set(`k${i}`, i);
    expect(cache.get('k0')).toBe(0); // moved: four updates since it was set
    cache.set('k4', 4);
    expect([cache.size, cache.get('k1'), cache.get('k0'), cache.get('k4')]).toEqual([4, undefined, 0, 4]);
  });

  it('never evicts an entry used at least once every maxEntries / 2 updates', () => {
    const cache = new LruCache<string, number>(100);
    cache.set('hot', 1);
    for (let i = 0; i < 10_000; i++) {
      cache.set(`cold${i}`, i);
      if (i % 50 === 49) expect(cache.get('hot')).toBe(1);
      expect(cache.size).toBeLessThanOrEqual(100);
    }
    // Used less often than that, an entry goes in time.
    cache.set('lukewarm', 2);
    for (let i = 0; i < 200; i++) cache.set(`later${i}`, i);
    expect(cache.get('lukewarm')).toBeUndefined();
  });

  it('keeps nothing at size 0 and rejects a bad size', () => {
    const cache = new LruCache<string, number>(0);
    cache.set('a', 1);
    expect([cache.size, cache.get('a')]).toEqual([0, undefined]);
    expect(() => new LruCache(-1)).toThrow(TypeError);
    expect(() => new LruCache(1.5)).toThrow(TypeError);
  });
});
