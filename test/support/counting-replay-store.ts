// A real MemoryReplayStore that counts what reaches it, so a test can assert that a rejected
// request recorded nothing (docs/protocol.md sections 2 and 7.9: the nonce is recorded last, after every check).
import { MemoryReplayStore, type ReplayStore } from '@oidc2/core';

export class CountingReplayStore implements ReplayStore {
  readonly #inner = new MemoryReplayStore({ maxEntries: 1 << 16 });
  /** Calls of checkAndRecord. */
  calls = 0;
  /** Calls that recorded a new key. */
  recorded = 0;

  async checkAndRecord(key: string, expiresAt: number, now: number): Promise<boolean> {
    this.calls++;
    const fresh = await this.#inner.checkAndRecord(key, expiresAt, now);
    if (fresh) this.recorded++;
    return fresh;
  }

  snapshot(): { calls: number; recorded: number } {
    return { calls: this.calls, recorded: this.recorded };
  }
}
