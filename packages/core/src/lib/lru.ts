// A bounded least-recently-used map. A Map iterates in insertion order, so re-inserting an entry
// moves it to the recent end, and eviction is one `keys().next()`.
//
// Re-inserting (a delete and an insert) is most of what a hit would cost, so a hit moves its entry
// only when it was last moved at least half the capacity of updates ago: an entry moved fewer than
// max / 2 updates ago has fewer than max / 2 entries behind it, so in a full map most others are
// ahead of it and it is not the next to go. Eviction still takes the entry least recently moved,
// and an entry used at least once every max / 2 updates is never evicted.
import { argumentError } from './validate.js';

interface Slot<V> {
  value: V;
  /** The update count when the entry was last moved to the recent end. */
  moved: number;
}

export class LruCache<K, V> {
  readonly #max: number;
  readonly #map = new Map<K, Slot<V>>();
  #updates = 0;

  constructor(maxEntries: number) {
    if (!Number.isInteger(maxEntries) || maxEntries < 0) throw argumentError('ERR_INVALID_ARG_VALUE', 'maxEntries must be a non-negative integer');
    this.#max = maxEntries;
  }

  get size(): number {
    return this.#map.size;
  }

  get(key: K): V | undefined {
    const slot = this.#map.get(key);
    if (slot === undefined) return undefined;
    if (this.#updates - slot.moved >= this.#max / 2) {
      this.#map.delete(key);
      this.#map.set(key, slot);
      slot.moved = ++this.#updates;
    }
    return slot.value;
  }

  set(key: K, value: V): void {
    if (this.#max === 0) return;
    this.#map.delete(key);
    this.#map.set(key, { value, moved: ++this.#updates });
    if (this.#map.size > this.#max) this.#map.delete(this.#map.keys().next().value as K);
  }

  delete(key: K): void {
    this.#map.delete(key);
  }
}
