// Where the issuer keeps its signing keys across restarts. Without a store, generated and rotated
// keys live in memory: a restarted issuer publishes only a new key, and every ICT signed before
// the restart fails with `ict_unknown_key` until it expires.
import { chmod, readFile, rename, writeFile } from 'node:fs/promises';
import type { JWK } from 'jose';
import { argumentError } from '@oidc2/core/adapter';

/** A stored signing key: the private JWK (with `kid` and `alg`) and when it stopped signing. */
export interface StoredSigningKey {
  jwk: JWK;
  /** Unix seconds when the key retired; absent for the signing key. */
  retiredAt?: number;
}

/** The stored key set: the signing key first, then retired keys still published. */
export interface StoredSigningKeys {
  keys: StoredSigningKey[];
  /** Unix seconds when the signing key started signing (so `keyRotationInterval` survives restarts). */
  activatedAt: number;
}

/**
 * Persists the issuer's private signing keys. `load` runs once, when the issuer is created;
 * `save` after the first key is generated and after every rotation (a failed save fails the
 * rotation, so no ICT is signed with a key the store does not hold). Whatever backs it must be as
 * protected as the keys: a secret store, a KMS-wrapped blob, or a file only the issuer can read.
 */
export interface SigningKeyStore {
  /** The stored set, or undefined when nothing is stored yet. */
  load(): Promise<StoredSigningKeys | undefined>;
  /** Replaces the stored set. */
  save(keys: StoredSigningKeys): Promise<void>;
}

/**
 * A {@link SigningKeyStore} in one JSON file, written atomically (a temporary file renamed over
 * it) with mode 0600. For one issuer process; instances behind a load balancer need one shared
 * key set (configure `signingKeys` on each, or a store every instance reads and one rotates).
 *
 * @example
 * ```ts
 * const issuer = await createIssuer({ issuer, authenticators, signingKeyStore: fileSigningKeyStore('/var/lib/oidc2/issuer-keys.json') })
 * ```
 */
export function fileSigningKeyStore(path: string): SigningKeyStore {
  if (typeof path !== 'string' || path.length === 0) throw argumentError('ERR_INVALID_ARG_TYPE', 'fileSigningKeyStore needs a file path');
  return {
    async load() {
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (error) {
        if ((error as { code?: string }).code === 'ENOENT') return undefined;
        throw error;
      }
      const stored = JSON.parse(text) as StoredSigningKeys;
      if (!Array.isArray(stored?.keys) || typeof stored.activatedAt !== 'number') throw argumentError('ERR_INVALID_ARG_VALUE', `${path} is not a signing key file`);
      return stored;
    },
    async save(keys) {
      const temporary = `${path}.${process.pid}.tmp`;
      await writeFile(temporary, JSON.stringify(keys), { mode: 0o600 });
      await chmod(temporary, 0o600);
      await rename(temporary, path);
    },
  };
}
