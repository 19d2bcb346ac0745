// What every endpoint of one issuer shares: the resolved options, the signing keys, the replay check.
import { isOidc2Error, Oidc2Error } from '@oidc2/core';
import type { KeyRing } from './lib/keys.js';
import type { ResolvedIssuerOptions } from './options.js';

/** One issuer's configuration and live state. */
export interface IssuerState extends ResolvedIssuerOptions {
  /** The signing keys. */
  keys: KeyRing;
  /**
   * Records a one-time identifier until `expiresAt` (unix seconds); rejects with `replay_detected`
   * when it was seen before and `replay_store_unavailable` when the store fails.
   */
  checkReplay(key: string, expiresAt: number): Promise<void>;
}

/** The replay check over `options.replayStore`. */
export function replayCheck(options: Pick<ResolvedIssuerOptions, 'replayStore' | 'now'>): IssuerState['checkReplay'] {
  const { replayStore, now } = options;
  return async (key, expiresAt) => {
    let fresh: boolean;
    try {
      fresh = await replayStore.checkAndRecord(key, expiresAt, now());
    } catch (err) {
      if (isOidc2Error(err)) throw err;
      throw new Oidc2Error('replay_store_unavailable', 'replay store failed', { cause: err });
    }
    if (!fresh) throw new Oidc2Error('replay_detected', 'this token was already used');
  };
}
