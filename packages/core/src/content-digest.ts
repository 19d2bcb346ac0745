/**
 * RFC 9530 `Content-Digest`: a Structured Field Dictionary of hash algorithm -> Byte Sequence,
 * computed over the message content exactly as sent (after any content coding).
 */
import { parseDictionary, type Dictionary } from 'structured-headers';
import { Oidc2Error } from './errors.js';
import { encodeBase64 } from './lib/base64.js';
import { digest, digestSync, timingSafeEqual, type HashName } from './lib/crypto.js';
import { joinBounded } from './rfc9421/signature-fields.js';
import { argumentError, assertOptions } from './lib/validate.js';
import { repeatedKey } from './lib/structured-keys.js';

/** The algorithms RFC 9530 section 5 registers as Active. */
export type ContentDigestAlgorithm = 'sha-256' | 'sha-512';

const ACTIVE: Readonly<Record<ContentDigestAlgorithm, HashName>> = { 'sha-256': 'SHA-256', 'sha-512': 'SHA-512' };

/** Options of {@link verifyContentDigest}. */
export interface VerifyContentDigestOptions {
  /** Reject a message without `Content-Digest` (`digest_missing`). Default false. */
  required?: boolean;
  /** Largest accepted field size in bytes, all field lines together. Default 4096. */
  maxBytes?: number;
}

/** Every key of {@link VerifyContentDigestOptions}: any other key is refused with `ERR_UNKNOWN_OPTION`. */
export const VERIFY_CONTENT_DIGEST_OPTION_KEYS = Object.freeze(['required', 'maxBytes'] as const satisfies ReadonlyArray<keyof VerifyContentDigestOptions>);

/**
 * Computes the `Content-Digest` field value for a body.
 *
 * @param algorithm `sha-256` (default) or `sha-512`.
 * @example
 * ```ts
 * await createContentDigest(new TextEncoder().encode('{"hello": "world"}'))
 * // 'sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:'
 * ```
 */
export async function createContentDigest(body: Uint8Array, algorithm: ContentDigestAlgorithm = 'sha-256'): Promise<string> {
  if (!(body instanceof Uint8Array)) throw argumentError('ERR_INVALID_ARG_TYPE', 'body must be a Uint8Array');
  if (algorithm !== 'sha-256' && algorithm !== 'sha-512') throw argumentError('ERR_INVALID_ARG_VALUE', 'algorithm must be sha-256 or sha-512');
  return `${algorithm}=:${encodeBase64(await digest(ACTIVE[algorithm], body))}:`;
}

/**
 * {@link createContentDigest} without a promise where hashing is synchronous (Node); undefined
 * elsewhere, and for arguments it refuses (the caller then takes it, which throws).
 *
 * @internal
 */
export function createContentDigestSync(body: Uint8Array, algorithm: ContentDigestAlgorithm = 'sha-256'): string | undefined {
  if (!(body instanceof Uint8Array) || (algorithm !== 'sha-256' && algorithm !== 'sha-512')) return undefined;
  const hash = digestSync(ACTIVE[algorithm], body);
  return hash === undefined ? undefined : `${algorithm}=:${encodeBase64(hash)}:`;
}

/**
 * Checks `Content-Digest` against the body as received. Every member with an Active algorithm
 * (`sha-256`, `sha-512`) must match, compared in constant time; members with other algorithms,
 * including those RFC 9530 deprecates (`md5`, `sha`, `unixsum`, `unixcksum`, `adler`, `crc32c`),
 * are ignored, and a field carrying only those is rejected.
 *
 * @param lines The field lines, e.g. `fieldLines(request.headers, 'content-digest')`.
 * @param body The content bytes exactly as received.
 * @throws Oidc2Error `digest_missing` (required and absent), `digest_unsupported` (no Active
 *   algorithm), `digest_mismatch`, `header_too_large` (over `maxBytes`), `request_malformed`
 *   (not a Dictionary of Byte Sequences, or an algorithm named twice).
 */
export async function verifyContentDigest(lines: readonly string[] | undefined, body: Uint8Array, options?: VerifyContentDigestOptions): Promise<void> {
  if (!(body instanceof Uint8Array)) throw argumentError('ERR_INVALID_ARG_TYPE', 'body must be a Uint8Array');
  if (options !== undefined) assertOptions(options as unknown, VERIFY_CONTENT_DIGEST_OPTION_KEYS, 'options');
  const maxBytes = options?.maxBytes ?? 4096;
  if (!Number.isInteger(maxBytes) || maxBytes < 1) throw argumentError('ERR_INVALID_ARG_VALUE', 'options.maxBytes must be a positive integer');
  if (lines === undefined || lines.length === 0) {
    if (options?.required) throw new Oidc2Error('digest_missing', 'Content-Digest is required');
    return;
  }
  const text = joinBounded(lines, maxBytes, 'Content-Digest');
  let dictionary: Dictionary;
  try {
    dictionary = parseDictionary(text);
  } catch (error) {
    if (error instanceof Oidc2Error) throw error;
    throw new Oidc2Error('request_malformed', 'Content-Digest is not a Structured Field Dictionary', { cause: error });
  }
  // A repeated algorithm would be compared only in its last member (RFC 9651 keeps the last).
  if (repeatedKey(text) !== undefined) throw new Oidc2Error('request_malformed', 'Content-Digest names an algorithm more than once');
  let checked = 0;
  for (const [algorithm, member] of dictionary) {
    const value = member[0];
    if (!(value instanceof ArrayBuffer)) throw new Oidc2Error('request_malformed', 'Content-Digest members must be Byte Sequences');
    if (algorithm !== 'sha-256' && algorithm !== 'sha-512') continue;
    const expected = await digest(ACTIVE[algorithm], body);
    if (!timingSafeEqual(expected, new Uint8Array(value))) throw new Oidc2Error('digest_mismatch', `the ${algorithm} Content-Digest does not match the body`);
    checked++;
  }
  if (checked === 0) throw new Oidc2Error('digest_unsupported', 'Content-Digest carries no sha-256 or sha-512 member');
}
