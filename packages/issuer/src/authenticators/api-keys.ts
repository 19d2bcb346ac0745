// Workloads presenting an API key, stored only as a hash and compared in constant time.
import { createHash, timingSafeEqual } from 'node:crypto';
import { Oidc2Error } from '@oidc2/core';
import { argumentError, assertOptions } from '@oidc2/core/adapter';
import type { ClientAuthenticator } from '../types.js';
import { requireString, stringArray } from './args.js';

/** One workload's API key, stored only as a hash. Unknown keys are refused (`ERR_UNKNOWN_OPTION`). */
export interface ApiKeyEntry {
  /** {@link hashApiKey} of the key: base64url SHA-256. Required. */
  hash: string;
  /** The ICT `sub`, e.g. `spiffe://example.com/payments`. Required. */
  subject: string;
  /** The workload's client id (the PoP token `iss` and the ICT `aud`). Default: `subject`. */
  clientId?: string;
  /** Contexts the workload's ICTs carry. Default none. */
  contexts?: string[];
  /** Claims released into the workload's ICTs. Default none. */
  claims?: Record<string, unknown>;
}

/** Options of {@link apiKeys}. Unknown keys are refused (`ERR_UNKNOWN_OPTION`). */
export interface ApiKeyOptions {
  /** The accepted keys. Required, at least one. */
  keys: ApiKeyEntry[];
}

const OPTIONS: readonly (keyof ApiKeyOptions)[] = ['keys'];
const ENTRY_OPTIONS: readonly (keyof ApiKeyEntry)[] = ['hash', 'subject', 'clientId', 'contexts', 'claims'];
const MAX_API_KEY_CHARS = 1024;

/**
 * The stored form of an API key: base64url(SHA-256(key)). Keys should carry at least 128 bits of
 * randomness, which makes a fast hash sufficient.
 *
 * @example
 * ```ts
 * const key = randomBytes(32).toString('base64url'); // give to the workload
 * const entry = { hash: hashApiKey(key), subject: 'spiffe://example.com/billing' }; // store
 * ```
 */
export function hashApiKey(key: string): string {
  if (typeof key !== 'string' || key.length === 0) throw argumentError('ERR_INVALID_ARG_TYPE', 'key must be a non-empty string');
  return createHash('sha256').update(key, 'utf8').digest('base64url');
}

/**
 * Workloads presenting an API key (`Authorization: ApiKey <key>` at the ICT endpoint, or a
 * `subject_token` of type `API_KEY_TOKEN_TYPE` at the token endpoint). The presented key is
 * hashed and compared against every stored hash in constant time.
 *
 * @example
 * ```ts
 * const workloads = apiKeys({ keys: [{ hash: hashApiKey(process.env.BILLING_API_KEY!), subject: 'spiffe://example.com/billing', contexts: ['payments'] }] });
 * ```
 */
export function apiKeys(options: ApiKeyOptions): ClientAuthenticator {
  assertOptions(options, OPTIONS, 'apiKeys options');
  if (!Array.isArray(options.keys) || options.keys.length === 0) throw argumentError('ERR_INVALID_ARG_VALUE', 'apiKeys options.keys must be a non-empty array');
  const entries = options.keys.map((e, i) => {
    const where = `apiKeys options.keys[${i}]`;
    assertOptions(e, ENTRY_OPTIONS, where);
    const hash = Buffer.from(requireString(e.hash, `${where}.hash`), 'base64url');
    if (hash.length !== 32 || hash.toString('base64url') !== e.hash) throw argumentError('ERR_INVALID_ARG_VALUE', `${where}.hash must be a base64url SHA-256 digest (see hashApiKey)`);
    requireString(e.subject, `${where}.subject`);
    stringArray(e.contexts, `${where}.contexts`);
    return { hash, entry: e };
  });

  return async (_request, context) => {
    const key = context.apiKey;
    if (key === undefined) return undefined;
    if (key.length > MAX_API_KEY_CHARS) throw new Oidc2Error('client_invalid', 'unknown API key');
    const presented = createHash('sha256').update(key, 'utf8').digest();
    // No early exit: the time taken does not depend on which entry matches.
    let match: ApiKeyEntry | undefined;
    for (const { hash, entry } of entries) if (timingSafeEqual(presented, hash) && match === undefined) match = entry;
    if (match === undefined) throw new Oidc2Error('client_invalid', 'unknown API key');
    return {
      subject: match.subject,
      kind: 'workload',
      clientId: match.clientId ?? match.subject,
      contexts: [...(match.contexts ?? [])],
      claims: { ...match.claims },
    };
  };
}
