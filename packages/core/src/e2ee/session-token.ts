/**
 * The session token (docs/protocol.md section 7): a compact JWE that the service makes
 * for itself, `dir` + `A256GCM` under the current session-token encryption key (STEK), typed
 * `oidc2-session+jwt`. It carries the session root `rk`, so it is never logged and never put into
 * an error.
 */
import { CompactEncrypt } from 'jose';
import { Oidc2Error } from '../errors.js';
import { decodeBase64Url, decodeJsonSegment, encodeBase64Url, utf8 } from '../lib/base64.js';
import { aes256GcmOpen, aes256GcmSealSync, randomBytes, timingSafeEqual } from '../lib/crypto.js';
import { concatBytes } from '../lib/body.js';
import { LruCache } from '../lib/lru.js';
import { argumentError, assertOptions, integerOption } from '../lib/validate.js';
import { MAX_SESSION_FIELD_BYTES, SUITE_NAMES, type SuiteName } from './fields.js';
import { fromStore, isSessionKey, isValidKid, type SessionKey, type SessionKeyStore } from './session-keys.js';
import { JKT_LENGTH, SESSION_KEY_LENGTH, SID_LENGTH, type PartyIdentity } from './transcript.js';

/** The token's `typ`. */
export const SESSION_TOKEN_TYPE = 'oidc2-session+jwt';
/** Largest accepted token, in characters (the field bound). */
export const MAX_SESSION_TOKEN_BYTES = MAX_SESSION_FIELD_BYTES;

/** Default seconds an epoch lasts (token lifetime). */
export const DEFAULT_EPOCH_SECONDS = 600;
/** Default seconds from the start of a session after which only a new handshake continues. */
export const DEFAULT_MAX_AGE_SECONDS = 3600;
/** Default seconds after an epoch starts when the client should rekey. */
export const DEFAULT_REKEY_SECONDS = 480;
/** Default clock leeway, seconds. */
export const DEFAULT_SESSION_LEEWAY_SECONDS = 60;

const MAX_STRING = 2048;
const MAX_CTX = 32;
const MAX_CTX_ENTRY = 256;
const CLAIMS = new Set(['v', 'sid', 'rk', 'suite', 'ep', 'sat', 'iat', 'exp', 'aud', 'iss', 'sub', 'cnf', 'mac', 'ctx', 'ctyp']);
const IV_LENGTH = 12;
/** Default number of opened tokens kept per service (see {@link SessionTokenOptions.openedCacheSize}). */
export const DEFAULT_OPENED_CACHE_SIZE = 4096;
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/** The claims of a session token, as carried (binary values base64url without padding). */
export interface SessionTokenClaims {
  v: 1;
  sid: string;
  rk: string;
  suite: SuiteName;
  ep: number;
  sat: number;
  iat: number;
  exp: number;
  aud: string;
  iss: string;
  sub: string;
  cnf: { jkt: string };
  mac?: true;
  ctx?: string[];
  ctyp?: 'ict' | 'wit';
}

/** Symmetric session authentication data, present when the token allows it. */
export interface SessionMac {
  /** The caller credential's authentication contexts. */
  readonly ctx: readonly string[];
  /** The caller credential's type. */
  readonly ctyp: 'ict' | 'wit';
}

/** A session as a verified token states it (binary values decoded). Holds `rk`: never log it. */
export interface VerifiedSession {
  readonly sid: Uint8Array;
  readonly rk: Uint8Array;
  readonly suite: SuiteName;
  /** `ep`: 0 after a handshake, +1 per rekey. */
  readonly epoch: number;
  /** `sat`. */
  readonly sessionStart: number;
  /** `iat`: the start of this epoch. */
  readonly issuedAt: number;
  /** `exp`. */
  readonly expiresAt: number;
  /** `aud`: the base URL the handshake's audience matched. */
  readonly audience: string;
  /** `iss`, `sub`, `cnf.jkt` of the caller. */
  readonly caller: PartyIdentity;
  /** Present when the token allows symmetric session authentication (`mac: true`). */
  readonly mac?: SessionMac;
}

/** What a new token holds. */
export interface SessionTokenInput {
  /** The session id, 16 octets. */
  readonly sid: Uint8Array;
  /** The root of the new epoch, 32 octets. */
  readonly rk: Uint8Array;
  readonly suite: SuiteName;
  /** `ep`: 0 after a handshake, the previous token's + 1 after a rekey. */
  readonly epoch: number;
  /** `sat`: the session start (the handshake's time); omit after a handshake to use now. */
  readonly sessionStart?: number;
  /** The base URL the request's audience matched. */
  readonly audience: string;
  /** The caller's verified credential: `iss` (empty when it has none), `sub`, raw `jkt`. */
  readonly caller: PartyIdentity;
  /**
   * Allow symmetric session authentication: the caller credential's contexts and type, and its
   * `exp`, which then bounds the token's.
   */
  readonly mac?: SessionMac & { readonly credentialExpiresAt: number };
}

/** A new token and the times the response's `Oidc2-Session` carries. */
export interface IssuedSessionToken {
  /** The compact JWE. */
  readonly token: string;
  /** `exp`. */
  readonly exp: number;
  /** `rekey`: when the client should rekey (`iat + rekeySeconds`, at most `exp`). */
  readonly rekey: number;
  /** `iat`. */
  readonly iat: number;
}

/** Options of {@link createSessionTokens}. */
export interface SessionTokenOptions {
  /** Where STEKs come from. Required. */
  keys: SessionKeyStore;
  /** Seconds an epoch (one token) lasts. Default 600. */
  epochSeconds?: number;
  /** Seconds from `sat` after which no token is valid. Default 3600. */
  maxAgeSeconds?: number;
  /** Seconds after `iat` when the client should rekey; at most `epochSeconds`. Default 480. */
  rekeySeconds?: number;
  /** Clock leeway, seconds. Default 60. */
  leewaySeconds?: number;
  /** The clock, unix seconds. Default `Date.now() / 1000`. */
  now?: () => number;
  /**
   * How many opened tokens to keep, least recently used first out. A session sends its token with
   * every request; a kept token is not decrypted again, but every other check of
   * {@link SessionTokens.verify} still runs on each use (the STEK its `kid` names must still be the
   * store's same key, `exp`, the epoch and age bounds, `aud`). A kept token holds its session root in
   * memory until it is evicted or found expired. 0 opens every token on every request. Default 4096.
   */
  openedCacheSize?: number;
}

/** Makes and reads session tokens. */
export interface SessionTokens {
  readonly epochSeconds: number;
  readonly maxAgeSeconds: number;
  readonly rekeySeconds: number;
  readonly leewaySeconds: number;
  /**
   * Makes a token under the current STEK: `iat` now, `exp = min(iat + epochSeconds, sat +
   * maxAgeSeconds)`, and in symmetric mode also at most the caller credential's `exp`.
   *
   * @param testOnly The worked example's fixed JWE IV (12 octets). Tests only: an IV used twice
   *   under one STEK reveals both tokens' contents.
   * @throws Oidc2Error `session_expired` when the session is past `maxAgeSeconds` (or the credential
   *   has expired in symmetric mode), `session_keys_unavailable` when no STEK can be had; TypeError
   *   for bad input.
   */
  issue(input: SessionTokenInput, testOnly?: { iv: Uint8Array }): Promise<IssuedSessionToken>;
  /**
   * Verifies a token in the profile's order: decrypt under the STEK its `kid` names (failure,
   * unknown `kid`, bad header or claims: `session_invalid`), `exp` with leeway (`session_expired`),
   * consistency (`iat` not in the future, `sat <= iat`, `exp - iat <= epochSeconds`, `exp <= sat +
   * maxAgeSeconds`: else `session_invalid`), and `aud` equal to `audience` (`session_invalid`).
   * The caller binding is {@link checkSessionBinding}.
   *
   * @param audience The configured base URL the request's audience matched.
   * @throws Oidc2Error `session_invalid`, `session_expired`, `session_keys_unavailable`.
   */
  verify(token: string, audience: string): Promise<VerifiedSession>;
}

function invalid(message: string, cause?: unknown): never {
  throw new Oidc2Error('session_invalid', message, cause === undefined ? undefined : { cause });
}

const systemNow = (): number => Date.now() / 1000;

function isSuite(value: unknown): value is SuiteName {
  return typeof value === 'string' && (SUITE_NAMES as readonly string[]).includes(value);
}

function isTime(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isShortString(value: unknown, allowEmpty: boolean): value is string {
  return typeof value === 'string' && value.length <= MAX_STRING && (allowEmpty || value.length > 0);
}

function isCtx(value: unknown): value is string[] {
  return Array.isArray(value) && value.length <= MAX_CTX && value.every((entry) => typeof entry === 'string' && entry.length > 0 && entry.length <= MAX_CTX_ENTRY);
}

function binary(value: unknown, length: number): Uint8Array | undefined {
  if (typeof value !== 'string') return undefined;
  const bytes = decodeBase64Url(value);
  return bytes !== undefined && bytes.length === length ? bytes : undefined;
}

/** Checks the protected header is exactly the profile's; returns its `kid`. */
function headerKid(segment: string): string {
  if (segment.length > 512) invalid('the session token header is too long');
  const header = decodeJsonSegment(segment);
  if (header === undefined) invalid('the session token header is not a JSON object');
  const keys = Object.keys(header);
  if (
    keys.length !== 4 ||
    header.alg !== 'dir' ||
    header.enc !== 'A256GCM' ||
    header.typ !== SESSION_TOKEN_TYPE ||
    !isValidKid(header.kid)
  ) {
    invalid('the session token header is not {"alg":"dir","enc":"A256GCM","kid":...,"typ":"oidc2-session+jwt"}');
  }
  return header.kid as string;
}

/** Reads and type-checks the claims; anything off is `session_invalid`. */
function readClaims(plaintext: Uint8Array): VerifiedSession {
  let claims: unknown;
  try {
    claims = JSON.parse(utf8Decoder.decode(plaintext));
  } catch (error) {
    invalid('the session token claims are not JSON', error);
  }
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) invalid('the session token claims are not an object');
  const c = claims as Record<string, unknown>;
  for (const key of Object.keys(c)) if (!CLAIMS.has(key)) invalid('the session token has an unknown claim');
  if (c.v !== 1) invalid('the session token version is not 1');
  const sid = binary(c.sid, SID_LENGTH);
  const rk = binary(c.rk, SESSION_KEY_LENGTH);
  if (sid === undefined || rk === undefined) invalid('the session token sid or rk is malformed');
  if (!isSuite(c.suite)) invalid('the session token suite is unknown');
  if (!isTime(c.ep) || !isTime(c.sat) || !isTime(c.iat) || !isTime(c.exp)) invalid('the session token ep, sat, iat or exp is not a non-negative integer');
  if (!isShortString(c.aud, false) || !isShortString(c.iss, true) || !isShortString(c.sub, false)) invalid('the session token aud, iss or sub is malformed');
  const cnf = c.cnf;
  if (typeof cnf !== 'object' || cnf === null || Array.isArray(cnf) || Object.keys(cnf).length !== 1) invalid('the session token cnf is malformed');
  const jkt = binary((cnf as Record<string, unknown>).jkt, JKT_LENGTH);
  if (jkt === undefined) invalid('the session token cnf.jkt is malformed');
  let mac: SessionMac | undefined;
  if (c.mac !== undefined || c.ctx !== undefined || c.ctyp !== undefined) {
    if (c.mac !== true || !isCtx(c.ctx) || (c.ctyp !== 'ict' && c.ctyp !== 'wit')) invalid('the session token mac, ctx or ctyp is malformed');
    mac = Object.freeze({ ctx: Object.freeze([...c.ctx]), ctyp: c.ctyp });
  }
  return Object.freeze({
    sid,
    rk,
    suite: c.suite,
    epoch: c.ep,
    sessionStart: c.sat,
    issuedAt: c.iat,
    expiresAt: c.exp,
    audience: c.aud,
    caller: Object.freeze({ iss: c.iss, sub: c.sub, jkt }),
    ...(mac === undefined ? {} : { mac }),
  });
}

/**
 * Makes the token issuer and verifier of one service.
 *
 * @throws TypeError for a missing store, bad numbers, or unknown option keys (`ERR_UNKNOWN_OPTION`).
 * @example
 * ```ts
 * const tokens = createSessionTokens({ keys: new MemorySessionKeyStore() })
 * const { token, exp, rekey } = await tokens.issue({ sid, rk, suite: 'x25519', epoch: 0, audience, caller })
 * const session = await tokens.verify(token, audience)
 * checkSessionBinding(session, callerIdentity)
 * ```
 */
export function createSessionTokens(options: SessionTokenOptions): SessionTokens {
  assertOptions(options, ['keys', 'epochSeconds', 'maxAgeSeconds', 'rekeySeconds', 'leewaySeconds', 'now', 'openedCacheSize'], 'options');
  const store = options.keys;
  if (typeof store !== 'object' || store === null || typeof store.current !== 'function' || typeof store.get !== 'function') {
    throw argumentError('ERR_INVALID_ARG_TYPE', 'options.keys must be a SessionKeyStore');
  }
  const epochSeconds = integerOption('options.epochSeconds', options.epochSeconds, DEFAULT_EPOCH_SECONDS, false);
  const maxAgeSeconds = integerOption('options.maxAgeSeconds', options.maxAgeSeconds, DEFAULT_MAX_AGE_SECONDS, false);
  const rekeySeconds = integerOption('options.rekeySeconds', options.rekeySeconds, Math.min(DEFAULT_REKEY_SECONDS, epochSeconds), false);
  const leewaySeconds = integerOption('options.leewaySeconds', options.leewaySeconds, DEFAULT_SESSION_LEEWAY_SECONDS);
  if (rekeySeconds > epochSeconds) throw argumentError('ERR_INVALID_ARG_VALUE', 'options.rekeySeconds must be at most options.epochSeconds');
  if (maxAgeSeconds < epochSeconds) throw argumentError('ERR_INVALID_ARG_VALUE', 'options.maxAgeSeconds must be at least options.epochSeconds');
  if (options.now !== undefined && typeof options.now !== 'function') throw argumentError('ERR_INVALID_ARG_TYPE', 'options.now must be a function');
  const openedCacheSize = integerOption('options.openedCacheSize', options.openedCacheSize, DEFAULT_OPENED_CACHE_SIZE);
  /** Tokens opened before, by their exact text, with the STEK that opened them. */
  const opened = new LruCache<string, { stek: SessionKey; session: VerifiedSession }>(openedCacheSize);
  const clock = options.now ?? systemNow;
  const now = (): number => {
    const t = clock();
    if (typeof t !== 'number' || !Number.isFinite(t)) throw argumentError('ERR_INVALID_RETURN_VALUE', 'options.now must return a finite number');
    return Math.floor(t);
  };

  async function issue(input: SessionTokenInput, testOnly?: { iv: Uint8Array }): Promise<IssuedSessionToken> {
    assertOptions(input, ['sid', 'rk', 'suite', 'epoch', 'sessionStart', 'audience', 'caller', 'mac'], 'input');
    if (!(input.sid instanceof Uint8Array) || input.sid.length !== SID_LENGTH) throw argumentError('ERR_INVALID_ARG_VALUE', `input.sid must be ${SID_LENGTH} octets`);
    if (!(input.rk instanceof Uint8Array) || input.rk.length !== SESSION_KEY_LENGTH) throw argumentError('ERR_INVALID_ARG_VALUE', `input.rk must be ${SESSION_KEY_LENGTH} octets`);
    if (!isSuite(input.suite)) throw argumentError('ERR_INVALID_ARG_VALUE', 'input.suite must be x25519, p256 or xwing');
    if (!isTime(input.epoch)) throw argumentError('ERR_INVALID_ARG_VALUE', 'input.epoch must be a non-negative integer');
    if (!isShortString(input.audience, false)) throw argumentError('ERR_INVALID_ARG_VALUE', 'input.audience must be a non-empty string');
    assertOptions(input.caller, ['iss', 'sub', 'jkt'], 'input.caller');
    const { iss, sub, jkt } = input.caller;
    if (!isShortString(iss, true) || !isShortString(sub, false)) throw argumentError('ERR_INVALID_ARG_VALUE', 'input.caller.iss and input.caller.sub must be strings');
    if (!(jkt instanceof Uint8Array) || jkt.length !== JKT_LENGTH) throw argumentError('ERR_INVALID_ARG_VALUE', `input.caller.jkt must be ${JKT_LENGTH} octets`);
    if (input.sessionStart !== undefined && !isTime(input.sessionStart)) throw argumentError('ERR_INVALID_ARG_VALUE', 'input.sessionStart must be a non-negative integer');
    let iv: Uint8Array | undefined;
    if (testOnly !== undefined) {
      assertOptions(testOnly, ['iv'], 'testOnly');
      if (!(testOnly.iv instanceof Uint8Array) || testOnly.iv.length !== IV_LENGTH) throw argumentError('ERR_INVALID_ARG_VALUE', `testOnly.iv must be ${IV_LENGTH} octets`);
      iv = testOnly.iv;
    }

    const iat = now();
    const sat = input.sessionStart ?? iat;
    if (sat > iat) throw argumentError('ERR_INVALID_ARG_VALUE', 'input.sessionStart must not be in the future');
    let exp = Math.min(iat + epochSeconds, sat + maxAgeSeconds);
    let macClaims: Pick<SessionTokenClaims, 'mac' | 'ctx' | 'ctyp'> = {};
    if (input.mac !== undefined) {
      assertOptions(input.mac, ['ctx', 'ctyp', 'credentialExpiresAt'], 'input.mac');
      const { ctx, ctyp, credentialExpiresAt } = input.mac;
      if (!isCtx(ctx)) throw argumentError('ERR_INVALID_ARG_VALUE', `input.mac.ctx must be an array of at most ${MAX_CTX} non-empty strings of at most ${MAX_CTX_ENTRY} characters`);
      if (ctyp !== 'ict' && ctyp !== 'wit') throw argumentError('ERR_INVALID_ARG_VALUE', 'input.mac.ctyp must be "ict" or "wit"');
      if (!isTime(credentialExpiresAt)) throw argumentError('ERR_INVALID_ARG_VALUE', 'input.mac.credentialExpiresAt must be a non-negative integer');
      exp = Math.min(exp, credentialExpiresAt);
      macClaims = { mac: true, ctx: [...ctx], ctyp };
    }
    if (exp <= iat) throw new Oidc2Error('session_expired', 'the session has reached its maximum age or its credential has expired');

    const claims: SessionTokenClaims = {
      v: 1,
      sid: encodeBase64Url(input.sid),
      rk: encodeBase64Url(input.rk),
      suite: input.suite,
      ep: input.epoch,
      sat,
      iat,
      exp,
      aud: input.audience,
      iss,
      sub,
      cnf: { jkt: encodeBase64Url(jkt) },
      ...macClaims,
    };
    const stek = await fromStore(() => store.current(), isSessionKey);
    const protectedHeader = { alg: 'dir', enc: 'A256GCM', kid: stek.kid, typ: SESSION_TOKEN_TYPE };
    const plaintext = utf8(JSON.stringify(claims));
    // On Node the JWE is sealed with one synchronous AES-256-GCM (the compact form jose makes, byte
    // for byte: a test compares them); elsewhere jose makes it on WebCrypto.
    const header = encodeBase64Url(utf8(JSON.stringify(protectedHeader)));
    const nonce = iv ?? randomBytes(IV_LENGTH);
    const sealed = aes256GcmSealSync(stek.key, nonce, plaintext, utf8(header));
    let token: string;
    if (sealed) {
      const tagAt = sealed.length - 16;
      token = `${header}..${encodeBase64Url(nonce)}.${encodeBase64Url(sealed.subarray(0, tagAt))}.${encodeBase64Url(sealed.subarray(tagAt))}`;
    } else {
      const jwe = new CompactEncrypt(plaintext).setProtectedHeader(protectedHeader);
      if (iv !== undefined) jwe.setInitializationVector(iv);
      token = await jwe.encrypt(stek.key);
    }
    if (token.length > MAX_SESSION_TOKEN_BYTES - 64) throw argumentError('ERR_INVALID_ARG_VALUE', 'the session token would not fit its field');
    return Object.freeze({ token, exp, rekey: Math.min(iat + rekeySeconds, exp), iat });
  }

  async function verify(token: string, audience: string): Promise<VerifiedSession> {
    if (typeof audience !== 'string' || audience.length === 0) throw argumentError('ERR_INVALID_ARG_TYPE', 'audience must be a non-empty string');
    if (typeof token !== 'string' || token.length > MAX_SESSION_TOKEN_BYTES) invalid('the session token is not a string of at most 4096 characters');
    const known = opened.get(token);
    const session = known === undefined ? await open(token) : await reopen(token, known);
    const t = now();
    if (session.expiresAt + leewaySeconds <= t) {
      opened.delete(token);
      throw new Oidc2Error('session_expired', 'the session token has expired');
    }
    if (session.issuedAt > t + leewaySeconds) invalid('the session token was issued in the future');
    if (session.sessionStart > session.issuedAt) invalid('the session token starts its epoch before its session');
    if (session.expiresAt - session.issuedAt > epochSeconds) invalid('the session token outlives its epoch');
    if (session.expiresAt > session.sessionStart + maxAgeSeconds) invalid('the session token outlives the session maximum age');
    if (session.audience !== audience) invalid('the session token was made for another audience');
    return session;
  }

  /** The STEK a token's `kid` names now, or `session_invalid`. */
  async function stekOf(kid: string): Promise<SessionKey> {
    const stek: SessionKey | undefined = await fromStore(() => store.get(kid), (value): value is SessionKey | undefined => value === undefined || isSessionKey(value));
    if (stek === undefined || stek.kid !== kid) invalid('the session token names an unknown or deleted key');
    return stek;
  }

  /**
   * A token opened before: valid only while the store still answers its `kid` with the very key
   * that opened it (a deleted or replaced STEK ends it as it ends a token never seen); else it is
   * opened again.
   */
  async function reopen(token: string, known: { stek: SessionKey; session: VerifiedSession }): Promise<VerifiedSession> {
    const stek = await stekOf(known.stek.kid);
    if (stek === known.stek || timingSafeEqual(stek.key, known.stek.key)) return known.session;
    opened.delete(token);
    return open(token);
  }

  async function open(token: string): Promise<VerifiedSession> {
    const parts = token.split('.');
    if (parts.length !== 5 || parts[1] !== '') invalid('the session token is not a compact JWE with direct encryption');
    const stek = await stekOf(headerKid(parts[0]!));
    // Tokens are made with jose; opening one is a single AES-256-GCM decryption (RFC 7516 section
    // 5.2 for `dir` + `A256GCM`: the protected header as sent is the AAD), done on the core's crypto
    // layer, synchronous on Node, because it runs on every session request. The header was checked
    // to be exactly the profile's above; test/e2ee session-token tests compare this with jose.
    const iv = decodeBase64Url(parts[2]!);
    const ciphertext = decodeBase64Url(parts[3]!);
    const tag = decodeBase64Url(parts[4]!);
    if (iv === undefined || iv.length !== IV_LENGTH || ciphertext === undefined || tag === undefined || tag.length !== 16) invalid('the session token is not a compact JWE with direct encryption');
    const plaintext = await aes256GcmOpen(stek.key, iv, concatBytes([ciphertext, tag]), utf8(parts[0]!));
    if (plaintext === undefined) invalid('the session token does not decrypt');
    const session = readClaims(plaintext);
    plaintext.fill(0);
    opened.set(token, { stek, session });
    return session;
  }

  return Object.freeze({ epochSeconds, maxAgeSeconds, rekeySeconds, leewaySeconds, issue, verify });
}

/**
 * Checks that a session belongs to the caller of this request: its `cnf.jkt` (compared in constant
 * time), `iss` and `sub` equal those of the request's verified credential. A caller that renews its
 * ICT for the same key keeps its session.
 *
 * @throws Oidc2Error `session_binding_mismatch`.
 */
export function checkSessionBinding(session: VerifiedSession, caller: PartyIdentity): void {
  if (typeof caller !== 'object' || caller === null || !(caller.jkt instanceof Uint8Array)) throw argumentError('ERR_INVALID_ARG_TYPE', 'caller must have iss, sub and jkt');
  const sameKey = timingSafeEqual(session.caller.jkt, caller.jkt);
  if (!sameKey || session.caller.iss !== caller.iss || session.caller.sub !== caller.sub) {
    throw new Oidc2Error('session_binding_mismatch', 'the session token belongs to another caller');
  }
}
