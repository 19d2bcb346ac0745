/**
 * The fields of end-to-end encryption (docs/protocol.md section 7): `Oidc2-Key-Share`,
 * an RFC 9651 Dictionary of suite name to Byte Sequence, and `Oidc2-Session`, an RFC 9651 Item
 * whose Token is the session token (a compact JWE). Both are bounded in size before they are
 * parsed, parsed strictly, and rejected whole when any rule fails.
 */
import { parseDictionary, parseItem, serializeDictionary, serializeItem, Token, type Dictionary, type Item } from 'structured-headers';
import { Oidc2Error } from '../errors.js';
import { argumentError } from '../lib/validate.js';

/** The key-encapsulation suites, by their dictionary key. */
export type SuiteName = 'x25519' | 'p256' | 'xwing';

/** Every suite name the profile defines. */
export const SUITE_NAMES: readonly SuiteName[] = Object.freeze(['x25519', 'p256', 'xwing'] as const);

/** Octets of a request share (`SerializePublicKey`) and of a response `enc`, per suite. */
export const SUITE_LENGTHS: Readonly<Record<SuiteName, { readonly share: number; readonly enc: number }>> = Object.freeze({
  x25519: Object.freeze({ share: 32, enc: 32 }),
  p256: Object.freeze({ share: 65, enc: 65 }),
  xwing: Object.freeze({ share: 1216, enc: 1120 }),
});

/** Field name of the key share (lower case, as HTTP/2 and the signature base spell it). */
export const KEY_SHARE_FIELD = 'oidc2-key-share';
/** Field name of the session. */
export const SESSION_FIELD = 'oidc2-session';

/**
 * Largest accepted `Oidc2-Key-Share`, all field lines together. Three shares, one of each suite,
 * serialise to 1,784 octets; the rest is room for optional whitespace.
 */
export const MAX_KEY_SHARE_FIELD_BYTES = 4096;
/** Largest accepted `Oidc2-Session`, all field lines together. */
export const MAX_SESSION_FIELD_BYTES = 4096;
/** Most members of a request's key share. */
export const MAX_KEY_SHARES = 3;

/** One share: a suite and its public key (request) or HPKE `enc` (response). */
export interface KeyShare {
  readonly suite: SuiteName;
  readonly key: Uint8Array;
}

/** A request's `Oidc2-Key-Share` as parsed. */
export interface RequestKeyShare {
  /** The shares, in the caller's preference order (the order sent). */
  readonly shares: readonly KeyShare[];
  /**
   * `KS`: the field as parsed, re-serialised canonically (RFC 9651 section 4.1), all members in the
   * order sent. The transcript hashes this, not the bytes received.
   */
  readonly canonical: string;
}

/** An `Oidc2-Session` field. */
export interface SessionField {
  /** The session token (a compact JWE). */
  readonly token: string;
  /** Response only: the token's expiry, unix seconds. */
  readonly exp?: number;
  /** Response only: the time after which the client should rekey, unix seconds. */
  readonly rekey?: number;
}

// The first character must also start an sf-token (RFC 9651 section 3.3.4); a JOSE header always
// encodes to `ey...`, so nothing valid is lost and the Token serializer never throws on what passed.
const JWE = /^[A-Za-z][A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
// RFC 9651 sf-integer bound.
const MAX_INTEGER = 999_999_999_999_999;

function isSuite(name: string): name is SuiteName {
  return name === 'x25519' || name === 'p256' || name === 'xwing';
}

/** Joins field lines (RFC 9110 section 5.3) after checking the size bound; fails with `fail`. */
function joinLines(lines: readonly string[], maxBytes: number, fail: (message: string) => never, field: string): string {
  if (!Array.isArray(lines)) throw argumentError('ERR_INVALID_ARG_TYPE', `the ${field} field lines must be an array of strings`);
  let size = 2 * (lines.length - 1);
  for (const line of lines) {
    if (typeof line !== 'string') throw argumentError('ERR_INVALID_ARG_TYPE', `the ${field} field lines must be an array of strings`);
    size += line.length;
  }
  if (size > maxBytes) fail(`${field} exceeds ${maxBytes} bytes`);
  return lines.length === 1 ? lines[0]! : lines.join(', ');
}

function shareError(message: string, cause?: unknown): never {
  throw new Oidc2Error('e2ee_key_share_invalid', message, cause === undefined ? undefined : { cause });
}

function sessionError(message: string, cause?: unknown): never {
  throw new Oidc2Error('session_invalid', message, cause === undefined ? undefined : { cause });
}

/**
 * Counts the top-level members of a Dictionary that parsed. RFC 9651 lets a later member of the
 * same key overwrite an earlier one, so the parsed Map alone cannot show a repeated suite. Every
 * member this profile accepts is a key and a Byte Sequence (whose base64 has no comma), so the
 * text has exactly one comma fewer than it has members; any other text is refused anyway.
 */
function memberCount(text: string): number {
  let count = 1;
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 44 /* , */) count++;
  return count;
}

function parseShares(lines: readonly string[] | undefined, side: 'request' | 'response'): { shares: KeyShare[]; dictionary: Dictionary } {
  if (lines === undefined || lines.length === 0) shareError('Oidc2-Key-Share is empty');
  const text = joinLines(lines, MAX_KEY_SHARE_FIELD_BYTES, shareError, 'Oidc2-Key-Share');
  let dictionary: Dictionary;
  try {
    dictionary = parseDictionary(text);
  } catch (error) {
    shareError('Oidc2-Key-Share is not a Structured Field Dictionary', error);
  }
  const max = side === 'request' ? MAX_KEY_SHARES : 1;
  if (dictionary.size === 0) shareError('Oidc2-Key-Share has no member');
  if (dictionary.size > max) shareError(`Oidc2-Key-Share has more than ${max} member${max === 1 ? '' : 's'}`);
  if (memberCount(text) !== dictionary.size) shareError('Oidc2-Key-Share names a suite more than once');
  const shares: KeyShare[] = [];
  for (const [suite, member] of dictionary) {
    if (!isSuite(suite)) shareError('Oidc2-Key-Share names an unknown suite');
    const [value, params] = member;
    if (!(value instanceof ArrayBuffer)) shareError(`Oidc2-Key-Share member ${suite} is not a Byte Sequence`);
    if (params.size !== 0) shareError(`Oidc2-Key-Share member ${suite} has parameters`);
    const key = new Uint8Array(value);
    assertKeyShareLength(suite, key, side);
    shares.push({ suite, key });
  }
  return { shares, dictionary };
}

/**
 * Checks the length of a share for its suite: the public key of a request (x25519 32, p256 65,
 * xwing 1216 octets) or the `enc` of a response (32, 65, 1120).
 *
 * @throws Oidc2Error `e2ee_key_share_invalid`.
 */
export function assertKeyShareLength(suite: SuiteName, key: Uint8Array, side: 'request' | 'response'): void {
  const lengths = SUITE_LENGTHS[suite];
  if (lengths === undefined) shareError('Oidc2-Key-Share names an unknown suite');
  const expected = side === 'request' ? lengths.share : lengths.enc;
  if (key.length !== expected) shareError(`the ${suite} ${side === 'request' ? 'public key' : 'enc'} must be ${expected} octets`);
}

/**
 * Parses a request's `Oidc2-Key-Share`: one to three members, each a known suite (`x25519`,
 * `p256`, `xwing`) at most once, with a Byte Sequence of the suite's public-key length and no
 * parameters, kept in the order sent. Returns the shares and `KS`, their canonical serialisation.
 *
 * @param lines The field lines as received (several lines are joined as one field).
 * @throws Oidc2Error `e2ee_key_share_invalid` for anything that breaks a rule, including more than
 *   4,096 octets.
 */
export function parseRequestKeyShare(lines: readonly string[] | undefined): RequestKeyShare {
  const { shares, dictionary } = parseShares(lines, 'request');
  return { shares, canonical: serializeDictionary(dictionary) };
}

/**
 * Parses a response's `Oidc2-Key-Share`: exactly one member, a known suite with a Byte Sequence of
 * the suite's `enc` length and no parameters.
 *
 * @throws Oidc2Error `e2ee_key_share_invalid`.
 */
export function parseResponseKeyShare(lines: readonly string[] | undefined): KeyShare {
  return parseShares(lines, 'response').shares[0]!;
}

function checkedShares(shares: readonly KeyShare[], side: 'request' | 'response'): Map<string, Item> {
  if (!Array.isArray(shares)) throw argumentError('ERR_INVALID_ARG_TYPE', 'shares must be an array');
  const max = side === 'request' ? MAX_KEY_SHARES : 1;
  if (shares.length < 1 || shares.length > max) throw argumentError('ERR_INVALID_ARG_VALUE', `a ${side} key share has 1 to ${max} members`);
  const out = new Map<string, Item>();
  for (const share of shares as readonly unknown[]) {
    if (typeof share !== 'object' || share === null) throw argumentError('ERR_INVALID_ARG_TYPE', 'each share must be an object');
    const { suite, key } = share as { suite?: unknown; key?: unknown };
    if (typeof suite !== 'string' || !isSuite(suite)) throw argumentError('ERR_INVALID_ARG_VALUE', 'share.suite must be x25519, p256 or xwing');
    if (!(key instanceof Uint8Array)) throw argumentError('ERR_INVALID_ARG_TYPE', 'share.key must be a Uint8Array');
    if (out.has(suite)) throw argumentError('ERR_INVALID_ARG_VALUE', `suite ${suite} appears more than once`);
    const expected = side === 'request' ? SUITE_LENGTHS[suite].share : SUITE_LENGTHS[suite].enc;
    if (key.length !== expected) throw argumentError('ERR_INVALID_ARG_VALUE', `the ${suite} key must be ${expected} octets`);
    out.set(suite, [key as Uint8Array<ArrayBuffer>, new Map()]);
  }
  return out;
}

/**
 * Serialises a request's `Oidc2-Key-Share` (its canonical form, so also `KS`), shares in the order
 * given.
 *
 * @throws TypeError for no share, more than three, a repeated or unknown suite, or a wrong length.
 * @example
 * ```ts
 * serializeRequestKeyShare([{ suite: 'x25519', key: pkX }, { suite: 'p256', key: pkP }])
 * // 'x25519=:...:, p256=:...:'
 * ```
 */
export function serializeRequestKeyShare(shares: readonly KeyShare[]): string {
  return serializeDictionary(checkedShares(shares, 'request'));
}

/** Serialises a response's `Oidc2-Key-Share`: `<suite>=:enc:`. */
export function serializeResponseKeyShare(share: KeyShare): string {
  return serializeDictionary(checkedShares([share], 'response'));
}

/** True for a string of compact-JWE shape (five base64url segments, the second possibly empty, the first starting with a letter). */
function isCompactJwe(token: string): boolean {
  return JWE.test(token);
}

/**
 * A field that is nothing but a compact JWE as a bare Token (what every request sends): RFC 9651
 * would parse it to that Token with no parameters, so it is read without the general parser, which
 * walks the token character by character. Anything else takes the parser.
 */
const BARE_JWE_TOKEN = /^ *([A-Za-z][A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+) *$/;

function parseSession(lines: readonly string[] | undefined, side: 'request' | 'response'): SessionField {
  if (lines === undefined || lines.length === 0) sessionError('Oidc2-Session is empty');
  const text = joinLines(lines, MAX_SESSION_FIELD_BYTES, sessionError, 'Oidc2-Session');
  const bare = BARE_JWE_TOKEN.exec(text);
  if (bare) {
    if (side === 'request') return { token: bare[1]! };
    sessionError('Oidc2-Session in a response carries exp and rekey');
  }
  let item: Item;
  try {
    item = parseItem(text);
  } catch (error) {
    sessionError('Oidc2-Session is not a Structured Field Item', error);
  }
  const [value, params] = item;
  if (!(value instanceof Token) || !isCompactJwe(value.toString())) sessionError('Oidc2-Session is not a Token holding a compact JWE');
  const token = value.toString();
  if (side === 'request') {
    if (params.size !== 0) sessionError('Oidc2-Session in a request carries no parameters');
    return { token };
  }
  let exp: number | undefined;
  let rekey: number | undefined;
  for (const [key, param] of params) {
    if (key !== 'exp' && key !== 'rekey') sessionError(`Oidc2-Session has an unknown parameter`);
    if (typeof param !== 'number' || !Number.isInteger(param) || param < 0) sessionError(`Oidc2-Session parameter ${key} must be a non-negative Integer`);
    if (key === 'exp') exp = param;
    else rekey = param;
  }
  if (exp === undefined || rekey === undefined) sessionError('Oidc2-Session in a response carries exp and rekey');
  return { token, exp, rekey };
}

/**
 * Parses a request's `Oidc2-Session`: a Token holding a compact JWE, no parameters, at most 4,096
 * octets. The token itself is checked by the session-token verifier.
 *
 * @throws Oidc2Error `session_invalid`.
 */
export function parseRequestSession(lines: readonly string[] | undefined): { readonly token: string } {
  return { token: parseSession(lines, 'request').token };
}

/**
 * Parses a response's `Oidc2-Session`: a Token holding a compact JWE with the Integer parameters
 * `exp` and `rekey` (no others), at most 4,096 octets.
 *
 * @throws Oidc2Error `session_invalid`.
 */
export function parseResponseSession(lines: readonly string[] | undefined): Required<SessionField> {
  return parseSession(lines, 'response') as Required<SessionField>;
}

function timeParam(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > MAX_INTEGER) throw argumentError('ERR_INVALID_ARG_VALUE', `${name} must be a non-negative integer`);
  return value;
}

/**
 * Serialises `Oidc2-Session`: the token as a Token, with `exp` and `rekey` in a response (pass
 * `times`) and no parameters in a request.
 *
 * @throws TypeError when the token is not a compact JWE, the times are not integers, or the field
 *   would exceed 4,096 octets.
 */
export function serializeSession(token: string, times?: { exp: number; rekey: number }): string {
  if (typeof token !== 'string' || !isCompactJwe(token)) throw argumentError('ERR_INVALID_ARG_VALUE', 'token must be a compact JWE');
  const params = new Map<string, number>();
  if (times !== undefined) {
    if (typeof times !== 'object' || times === null) throw argumentError('ERR_INVALID_ARG_TYPE', 'times must be an object');
    params.set('exp', timeParam('times.exp', times.exp));
    params.set('rekey', timeParam('times.rekey', times.rekey));
  }
  const out = serializeItem([new Token(token), params]);
  if (out.length > MAX_SESSION_FIELD_BYTES) throw argumentError('ERR_INVALID_ARG_VALUE', `Oidc2-Session would exceed ${MAX_SESSION_FIELD_BYTES} bytes`);
  return out;
}
