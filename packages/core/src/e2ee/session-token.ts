/**
 * The session token (`oidc2-session+jwt`): a compact JWE the service makes for itself, carrying the
 * session's root key and what it is bound to, so that any instance serves any session request with
 * no session state (docs/protocol.md, encryption section).
 */
import { CompactEncrypt, compactDecrypt, decodeProtectedHeader } from 'jose';
import { Oidc2Error, isOidc2Error } from '../errors.js';
import { decodeBase64Url, encodeBase64Url, utf8 } from '../lib/base64.js';
import { timingSafeEqual } from '../lib/crypto.js';
import { SUITE_NAMES, type SuiteName } from './fields.js';
import { sessionKeysUnavailable, type SessionKey, type SessionKeyStore } from './session-keys.js';

/** The token's `typ`. */
export const SESSION_TOKEN_TYPE = 'oidc2-session+jwt';
/** Largest token accepted, in characters (the `Oidc2-Session` field bound). */
const MAX_TOKEN_CHARS = 4096;

/** Session lifetimes, in seconds. */
export interface SessionTimes {
  /** Longest life of one epoch's token (`exp - iat`). */
  epochSeconds: number;
  /** Longest life of a session from its handshake (`exp - sat`). */
  maxAgeSeconds: number;
  /** Leeway for `exp`. */
  clockTolerance: number;
}

/** The claims of a session token (all times unix seconds, integers). */
export interface SessionClaims {
  v: 1;
  /** Session id, 16 octets. */
  sid: Uint8Array;
  /** The epoch's root key, 32 octets. */
  rk: Uint8Array;
  suite: SuiteName;
  /** Epoch: 0 after a handshake, +1 per rekey. */
  ep: number;
  /** Session start. */
  sat: number;
  /** Epoch start. */
  iat: number;
  exp: number;
  /** The base URL the handshake's audience matched. */
  aud: string;
  /** The caller credential's issuer (empty when it has none) and subject. */
  iss: string;
  sub: string;
  /** The raw 32-octet RFC 7638 thumbprint of the caller's key. */
  jkt: Uint8Array;
  /** Symmetric session authentication allowed, with the caller's contexts and credential type. */
  mac?: { ctx: string[]; ctyp: 'ict' | 'wit' };
}

/** What a session token is bound to: the request's verified caller. */
export interface SessionBinding {
  iss: string;
  sub: string;
  /** Raw 32-octet thumbprint of the key that authenticated the request. */
  jkt: Uint8Array;
}

const invalid = (message: string, cause?: unknown) => new Oidc2Error('session_invalid', message, cause === undefined ? undefined : { cause });
const HEADER_KEYS = ['alg', 'enc', 'kid', 'typ'];

/** `exp` of a new epoch's token: the epoch's end, never past the session's maximum age nor `capAt`. */
export function sessionExpiry(iat: number, sat: number, times: Pick<SessionTimes, 'epochSeconds' | 'maxAgeSeconds'>, capAt = Infinity): number {
  return Math.min(iat + times.epochSeconds, sat + times.maxAgeSeconds, Math.floor(capAt));
}

/**
 * Makes a session token under the store's current STEK. `iv` is for reproducible examples only.
 * @throws `session_keys_unavailable` when the store cannot be reached.
 */
export async function issueSessionToken(claims: SessionClaims, store: SessionKeyStore, now: number, iv?: Uint8Array): Promise<string> {
  let stek: SessionKey;
  try {
    stek = await store.current(now);
  } catch (error) {
    throw isOidc2Error(error) ? error : sessionKeysUnavailable(error);
  }
  const payload: Record<string, unknown> = {
    v: 1,
    sid: encodeBase64Url(claims.sid),
    rk: encodeBase64Url(claims.rk),
    suite: claims.suite,
    ep: claims.ep,
    sat: claims.sat,
    iat: claims.iat,
    exp: claims.exp,
    aud: claims.aud,
    iss: claims.iss,
    sub: claims.sub,
    cnf: { jkt: encodeBase64Url(claims.jkt) },
  };
  if (claims.mac) Object.assign(payload, { mac: true, ctx: claims.mac.ctx, ctyp: claims.mac.ctyp });
  const jwe = new CompactEncrypt(utf8(JSON.stringify(payload))).setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: stek.kid, typ: SESSION_TOKEN_TYPE });
  if (iv) jwe.setInitializationVector(iv);
  return jwe.encrypt(stek.key);
}

function integer(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function bytes(value: unknown, length: number): Uint8Array {
  const decoded = typeof value === 'string' ? decodeBase64Url(value) : undefined;
  if (!decoded || decoded.length !== length) throw invalid('a session token claim has the wrong form');
  return decoded;
}

function claimsOf(payload: Record<string, unknown>): SessionClaims {
  const { v, suite, ep, sat, iat, exp, aud, iss, sub, cnf, mac, ctx, ctyp } = payload;
  if (v !== 1) throw invalid('unknown session token version');
  if (typeof suite !== 'string' || !(SUITE_NAMES as readonly string[]).includes(suite)) throw invalid('unknown session suite');
  if (!integer(ep) || !integer(sat) || !integer(iat) || !integer(exp)) throw invalid('session token times must be integers');
  if (typeof aud !== 'string' || typeof iss !== 'string' || typeof sub !== 'string' || sub.length === 0) throw invalid('session token aud, iss and sub are required');
  if (typeof cnf !== 'object' || cnf === null || Object.keys(cnf).length !== 1) throw invalid('session token cnf must be { jkt }');
  const claims: SessionClaims = {
    v: 1,
    sid: bytes(payload.sid, 16),
    rk: bytes(payload.rk, 32),
    suite: suite as SuiteName,
    ep,
    sat,
    iat,
    exp,
    aud,
    iss,
    sub,
    jkt: bytes((cnf as { jkt?: unknown }).jkt, 32),
  };
  if (mac !== undefined) {
    if (mac !== true || !Array.isArray(ctx) || ctx.some((c) => typeof c !== 'string') || (ctyp !== 'ict' && ctyp !== 'wit')) throw invalid('session token mac claims are malformed');
    claims.mac = { ctx: ctx as string[], ctyp };
  } else if (ctx !== undefined || ctyp !== undefined) {
    throw invalid('ctx and ctyp belong to mac sessions');
  }
  return claims;
}

/**
 * Reads a session token in the order the profile gives: decrypt with the STEK its `kid` names
 * (failure, unknown `kid`, any other header, bad claims: `session_invalid`); `exp` with leeway
 * (`session_expired`); consistency (`iat` not in the future, `exp - iat <= epochSeconds`,
 * `exp <= sat + maxAgeSeconds`: `session_invalid`); `aud` equal to the matched base URL
 * (`session_invalid`). The caller's binding is checked separately, by {@link assertSessionBinding}.
 * @throws `session_keys_unavailable` when the store cannot be reached.
 */
export async function readSessionToken(token: string, store: SessionKeyStore, audience: string, now: number, times: SessionTimes): Promise<SessionClaims> {
  if (typeof token !== 'string' || token.length > MAX_TOKEN_CHARS || token.split('.').length !== 5) throw invalid('the session token is not a compact JWE');
  let header;
  try {
    header = decodeProtectedHeader(token);
  } catch (error) {
    throw invalid('the session token header is malformed', error);
  }
  const keys = Object.keys(header);
  if (
    keys.length !== HEADER_KEYS.length ||
    !HEADER_KEYS.every((k) => keys.includes(k)) ||
    header.alg !== 'dir' ||
    header.enc !== 'A256GCM' ||
    header.typ !== SESSION_TOKEN_TYPE ||
    typeof header.kid !== 'string'
  ) {
    throw invalid('the session token header is not the profile header');
  }
  let stek: SessionKey | undefined;
  try {
    stek = await store.find(header.kid, now);
  } catch (error) {
    throw isOidc2Error(error) ? error : sessionKeysUnavailable(error);
  }
  if (!stek) throw invalid('the session token key is unknown or deleted');
  let payload: Record<string, unknown>;
  try {
    const { plaintext } = await compactDecrypt(token, stek.key, { keyManagementAlgorithms: ['dir'], contentEncryptionAlgorithms: ['A256GCM'] });
    payload = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(plaintext)) as Record<string, unknown>;
  } catch (error) {
    throw invalid('the session token does not decrypt', error);
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw invalid('the session token claims are not an object');
  const claims = claimsOf(payload);
  if (claims.exp < now - times.clockTolerance) throw new Oidc2Error('session_expired', 'the session token has expired: handshake again');
  if (claims.iat > now + times.clockTolerance || claims.sat > claims.iat || claims.exp - claims.iat > times.epochSeconds || claims.exp > claims.sat + times.maxAgeSeconds) {
    throw invalid('the session token times are inconsistent');
  }
  if (claims.aud !== audience) throw invalid('the session token was made for another service');
  return claims;
}

/** Checks that a session token belongs to the request's verified caller: `session_binding_mismatch`. */
export function assertSessionBinding(claims: SessionClaims, caller: SessionBinding): void {
  const same = timingSafeEqual(claims.jkt, caller.jkt) && claims.iss === caller.iss && claims.sub === caller.sub;
  if (!same) throw new Oidc2Error('session_binding_mismatch', 'the session token belongs to another caller');
}
