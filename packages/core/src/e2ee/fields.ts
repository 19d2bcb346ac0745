/**
 * The `Oidc2-Key-Share` and `Oidc2-Session` fields of end-to-end encryption (docs/protocol.md,
 * encryption section): RFC 9651 Structured Fields, parsed strictly and bounded in size.
 */
import { parseDictionary, parseItem, serializeDictionary, serializeItem, Token, type Dictionary } from 'structured-headers';
import { Oidc2Error } from '../errors.js';
import { joinBounded } from '../rfc9421/signature-fields.js';

/** The key-encapsulation suites of the profile, by their dictionary key. */
export type SuiteName = 'x25519' | 'p256' | 'xwing';

/** Every suite name the profile defines, in the default preference order. */
export const SUITE_NAMES: readonly SuiteName[] = ['x25519', 'p256', 'xwing'];

/** Octets of a request share (`SerializePublicKey`) and a response `enc`, per suite. */
export const SUITE_LENGTHS: Readonly<Record<SuiteName, { share: number; enc: number }>> = {
  x25519: { share: 32, enc: 32 },
  p256: { share: 65, enc: 65 },
  xwing: { share: 1216, enc: 1120 },
};

/** The key-share field name. */
export const KEY_SHARE_FIELD = 'oidc2-key-share';
/** The session field name. */
export const SESSION_FIELD = 'oidc2-session';

/** Largest `Oidc2-Key-Share` accepted: three X-Wing shares in base64 with their keys. */
const MAX_KEY_SHARE_BYTES = 6144;
/** Largest `Oidc2-Session` accepted (the profile's bound). */
export const MAX_SESSION_FIELD_BYTES = 4096;

/** One offered or chosen share. */
export interface KeyShare {
  readonly suite: SuiteName;
  /** The serialised public key (request) or HPKE `enc` (response). */
  readonly key: Uint8Array;
}

/** A request's `Oidc2-Key-Share` as parsed: the shares in the caller's order, and `KS`. */
export interface RequestKeyShares {
  readonly shares: readonly KeyShare[];
  /** The field re-serialised canonically (RFC 9651 section 4.1), all members in the order sent: `KS`. */
  readonly canonical: string;
}

/** An `Oidc2-Session` field: the session token, and in a response its `exp` and `rekey` times. */
export interface SessionField {
  readonly token: string;
  readonly exp?: number;
  readonly rekey?: number;
}

const invalidShare = (message: string, cause?: unknown) => new Oidc2Error('e2ee_key_share_invalid', message, cause === undefined ? undefined : { cause });
const invalidSession = (message: string, cause?: unknown) => new Oidc2Error('session_invalid', message, cause === undefined ? undefined : { cause });

function isSuite(name: string): name is SuiteName {
  return (SUITE_NAMES as readonly string[]).includes(name);
}

function parseShares(lines: readonly string[], side: 'request' | 'response'): { dictionary: Dictionary; shares: KeyShare[] } {
  let dictionary: Dictionary;
  try {
    dictionary = parseDictionary(joinBounded(lines, MAX_KEY_SHARE_BYTES, 'Oidc2-Key-Share'));
  } catch (error) {
    if (error instanceof Oidc2Error && error.code === 'header_too_large') throw invalidShare('Oidc2-Key-Share is too large', error);
    throw invalidShare('Oidc2-Key-Share is not a Structured Field Dictionary', error);
  }
  const max = side === 'request' ? 3 : 1;
  if (dictionary.size < 1 || dictionary.size > max) throw invalidShare(`Oidc2-Key-Share must carry ${side === 'request' ? 'one to three members' : 'exactly one member'}`);
  const shares: KeyShare[] = [];
  for (const [name, [value, params]] of dictionary) {
    if (!isSuite(name)) throw invalidShare('Oidc2-Key-Share names an unknown suite');
    if (!(value instanceof ArrayBuffer)) throw invalidShare('Oidc2-Key-Share members must be Byte Sequences');
    if (params.size > 0) throw invalidShare('Oidc2-Key-Share members carry no parameters');
    const key = new Uint8Array(value);
    const expected = side === 'request' ? SUITE_LENGTHS[name].share : SUITE_LENGTHS[name].enc;
    if (key.length !== expected) throw invalidShare(`an ${name} key share has ${expected} octets`);
    shares.push({ suite: name, key });
  }
  // A repeated key in a Dictionary keeps only the last value (RFC 9651 4.2.2): a suite offered
  // twice therefore shows up as fewer members than field members; refuse it explicitly.
  const names = joinBounded(lines, MAX_KEY_SHARE_BYTES, 'Oidc2-Key-Share')
    .split(',')
    .map((member) => member.trim().split('=')[0]);
  if (new Set(names).size !== names.length || names.length !== dictionary.size) throw invalidShare('each suite appears at most once in Oidc2-Key-Share');
  return { dictionary, shares };
}

/** Parses a request's `Oidc2-Key-Share`; any departure from the profile is `e2ee_key_share_invalid`. */
export function parseRequestKeyShares(lines: readonly string[]): RequestKeyShares {
  const { dictionary, shares } = parseShares(lines, 'request');
  return { shares, canonical: serializeDictionary(dictionary) };
}

/** Parses a response's `Oidc2-Key-Share`: exactly one member, the chosen suite with HPKE `enc`. */
export function parseResponseKeyShare(lines: readonly string[]): KeyShare {
  return parseShares(lines, 'response').shares[0]!;
}

/** Serialises shares (request: the caller's preference order; response: the one chosen). */
export function serializeKeyShares(shares: readonly KeyShare[]): string {
  const dictionary: Dictionary = new Map();
  for (const share of shares) {
    if (dictionary.has(share.suite)) throw invalidShare('each suite appears at most once');
    dictionary.set(share.suite, [share.key.slice().buffer, new Map()]);
  }
  return serializeDictionary(dictionary);
}

const TOKEN_CHARS = /^[A-Za-z0-9_.-]+$/;

/**
 * Parses `Oidc2-Session`: a Token holding a compact JWE; in a response with the Integer parameters
 * `exp` and `rekey`, in a request with none. Malformed: `session_invalid`.
 */
export function parseSessionField(lines: readonly string[], side: 'request' | 'response'): SessionField {
  let item;
  try {
    item = parseItem(joinBounded(lines, MAX_SESSION_FIELD_BYTES, 'Oidc2-Session'));
  } catch (error) {
    throw invalidSession('Oidc2-Session is not a Structured Field Item within 4 KiB', error);
  }
  const [value, params] = item;
  if (!(value instanceof Token) || !TOKEN_CHARS.test(value.toString()) || value.toString().split('.').length !== 5) {
    throw invalidSession('Oidc2-Session must be a Token holding a compact JWE');
  }
  const token = value.toString();
  if (side === 'request') {
    if (params.size > 0) throw invalidSession('Oidc2-Session carries no parameters in a request');
    return { token };
  }
  const exp = params.get('exp');
  const rekey = params.get('rekey');
  if (params.size !== 2 || !Number.isInteger(exp) || !Number.isInteger(rekey)) throw invalidSession('Oidc2-Session in a response carries the Integer parameters exp and rekey');
  return { token, exp: exp as number, rekey: rekey as number };
}

/** Serialises `Oidc2-Session`: the token, with `exp` and `rekey` in a response. */
export function serializeSessionField(field: SessionField): string {
  const params = new Map<string, number>();
  if (field.exp !== undefined) params.set('exp', field.exp);
  if (field.rekey !== undefined) params.set('rekey', field.rekey);
  return serializeItem([new Token(field.token), params]);
}
