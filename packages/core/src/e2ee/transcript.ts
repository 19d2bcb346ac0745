/**
 * The byte-exact labels and compositions of end-to-end encryption that do not need HPKE itself
 * (docs/protocol.md section 7): `lp`, party identities, the handshake and rekey
 * transcript hashes and HPKE `info`, the rekey `psk_id`, the exporter labels, and the message keys
 * `K_req`, `K_rsp`, `K_c2s` and `K_s2c`, which are HKDF-Expand (RFC 5869, SHA-256) of the root.
 *
 * Every function takes and returns octets; strings are encoded as UTF-8. Nothing here keeps or logs
 * a key.
 */
import { utf8 } from '../lib/base64.js';
import { digest, hkdfExpand, hkdfExpandSync } from '../lib/crypto.js';
import { argumentError } from '../lib/validate.js';
import { concatBytes } from '../lib/body.js';

/** Protocol version label shared by every derivation. */
const V1 = 'oidc2-e2ee-v1';

/** The labels of the profile, exactly as hashed or fed to HPKE (ASCII). */
export const E2EE_LABELS = {
  handshake: `${V1} handshake`,
  rekey: `${V1} rekey`,
  psk: `${V1} psk`,
  /** HPKE exporter context of the session root `rk` (32 octets). */
  exportSession: `${V1} session`,
  /** HPKE exporter context of the session id `sid` (16 octets, handshake only). */
  exportSid: `${V1} sid`,
  /** HPKE exporter context of the handshake or rekey response key (32 octets). */
  exportResponse: `${V1} response`,
  request: `${V1} request`,
  reply: `${V1} reply`,
  macC2s: `${V1} mac c2s`,
  macS2c: `${V1} mac s2c`,
} as const;

/** Octets of `rk`, `K_hs`, `K_rk`, `K_req`, `K_rsp`, `K_c2s`, `K_s2c`. */
export const SESSION_KEY_LENGTH = 32;
/** Octets of a session id. */
export const SID_LENGTH = 16;
/** Octets of a `jkt` (a raw SHA-256 RFC 7638 thumbprint). */
export const JKT_LENGTH = 32;

const SHA256_LENGTH = 32;
const MAX_LP = 0xffff;

type Octets = Uint8Array | string;

function octets(x: Octets, name: string): Uint8Array {
  if (typeof x === 'string') return utf8(x);
  if (x instanceof Uint8Array) return x;
  throw argumentError('ERR_INVALID_ARG_TYPE', `${name} must be a string or a Uint8Array`);
}

function exactLength(x: Uint8Array, length: number, name: string): Uint8Array {
  if (!(x instanceof Uint8Array)) throw argumentError('ERR_INVALID_ARG_TYPE', `${name} must be a Uint8Array`);
  if (x.length !== length) throw argumentError('ERR_INVALID_ARG_VALUE', `${name} must be ${length} octets`);
  return x;
}

/**
 * `lp(x) = I2OSP(len(x), 2) || x`: `x` (UTF-8 for a string) behind its length as two big-endian octets.
 *
 * @throws TypeError `ERR_INVALID_ARG_VALUE` when `x` is longer than 65,535 octets.
 */
export function lp(x: Octets, name = 'value'): Uint8Array {
  const bytes = octets(x, name);
  if (bytes.length > MAX_LP) throw argumentError('ERR_INVALID_ARG_VALUE', `${name} is longer than 65535 octets`);
  const out = new Uint8Array(2 + bytes.length);
  out[0] = bytes.length >>> 8;
  out[1] = bytes.length & 0xff;
  out.set(bytes, 2);
  return out;
}

/** The identity of one party as its verified credential states it. */
export interface PartyIdentity {
  /** The credential's `iss`; the empty string when it has none (a WIT). */
  readonly iss: string;
  /** The credential's `sub`. */
  readonly sub: string;
  /** The raw 32-octet RFC 7638 SHA-256 thumbprint of the key that authenticates the party. */
  readonly jkt: Uint8Array;
}

/** `id(P) = lp(iss) || lp(sub) || lp(jkt)`. */
export function partyId(party: PartyIdentity, name = 'party'): Uint8Array {
  if (typeof party !== 'object' || party === null) throw argumentError('ERR_INVALID_ARG_TYPE', `${name} must be an object`);
  if (typeof party.iss !== 'string' || typeof party.sub !== 'string') throw argumentError('ERR_INVALID_ARG_TYPE', `${name}.iss and ${name}.sub must be strings`);
  return concatBytes([lp(party.iss, `${name}.iss`), lp(party.sub, `${name}.sub`), lp(exactLength(party.jkt, JKT_LENGTH, `${name}.jkt`), `${name}.jkt`)]);
}

/** The inputs of a handshake transcript (protocol-level names in brackets). */
export interface TranscriptInput {
  /** The chosen suite's dictionary key, e.g. `x25519`. */
  readonly suite: string;
  /** `KS`: the request's `Oidc2-Key-Share` re-serialised canonically (see `canonicalKeyShare`). */
  readonly keyShare: string;
  /** `N`: the request signature's `nonce` parameter as sent. */
  readonly nonce: string;
  /** `AUD`: the request signature's `oidc2-aud` (`wimse-aud` for WIMSE signatures). */
  readonly audience: string;
  /** `C`, the caller. */
  readonly caller: PartyIdentity;
  /** `S`, the service whose credential signs the response. */
  readonly service: PartyIdentity;
}

/** The inputs of a rekey transcript: a handshake's, plus the session id. */
export interface RekeyTranscriptInput extends TranscriptInput {
  /** The session's `sid` (16 octets). */
  readonly sid: Uint8Array;
}

function transcriptPrefix(label: string, input: TranscriptInput): Uint8Array[] {
  if (typeof input !== 'object' || input === null) throw argumentError('ERR_INVALID_ARG_TYPE', 'input must be an object');
  for (const key of ['suite', 'keyShare', 'nonce', 'audience'] as const) {
    if (typeof input[key] !== 'string') throw argumentError('ERR_INVALID_ARG_TYPE', `input.${key} must be a string`);
  }
  return [
    lp(label),
    lp(input.suite, 'input.suite'),
    lp(input.keyShare, 'input.keyShare'),
    lp(input.nonce, 'input.nonce'),
    lp(input.audience, 'input.audience'),
    partyId(input.caller, 'input.caller'),
    partyId(input.service, 'input.service'),
  ];
}

/**
 * The octets hashed into `TH`:
 * `lp("oidc2-e2ee-v1 handshake") || lp(suite) || lp(KS) || lp(N) || lp(AUD) || id(C) || id(S)`.
 */
export function handshakeTranscriptInput(input: TranscriptInput): Uint8Array {
  return concatBytes(transcriptPrefix(E2EE_LABELS.handshake, input));
}

/** `TH`, the SHA-256 of {@link handshakeTranscriptInput}. */
export async function handshakeTranscript(input: TranscriptInput): Promise<Uint8Array> {
  return digest('SHA-256', handshakeTranscriptInput(input));
}

/** The octets hashed into `TH'`: the handshake composition under the rekey label, then `lp(sid)`. */
export function rekeyTranscriptInput(input: RekeyTranscriptInput): Uint8Array {
  const parts = transcriptPrefix(E2EE_LABELS.rekey, input);
  parts.push(lp(exactLength(input.sid, SID_LENGTH, 'input.sid'), 'input.sid'));
  return concatBytes(parts);
}

/** `TH'`, the SHA-256 of {@link rekeyTranscriptInput}. */
export async function rekeyTranscript(input: RekeyTranscriptInput): Promise<Uint8Array> {
  return digest('SHA-256', rekeyTranscriptInput(input));
}

/** HPKE `info` of a handshake: `"oidc2-e2ee-v1 handshake" || 0x00 || TH` (56 octets). */
export function handshakeInfo(th: Uint8Array): Uint8Array {
  return concatBytes([utf8(E2EE_LABELS.handshake), new Uint8Array(1), exactLength(th, SHA256_LENGTH, 'th')]);
}

/** HPKE `info` of a rekey: `"oidc2-e2ee-v1 rekey" || 0x00 || TH'` (52 octets). */
export function rekeyInfo(th: Uint8Array): Uint8Array {
  return concatBytes([utf8(E2EE_LABELS.rekey), new Uint8Array(1), exactLength(th, SHA256_LENGTH, 'th')]);
}

/** HPKE `psk_id` of a rekey: `"oidc2-e2ee-v1 psk" || sid`. */
export function rekeyPskId(sid: Uint8Array): Uint8Array {
  return concatBytes([utf8(E2EE_LABELS.psk), exactLength(sid, SID_LENGTH, 'sid')]);
}

// ---------------------------------------------------------------------------------------------
// HKDF-Expand (RFC 5869 section 2.3) on the core's crypto layer (node:crypto or WebCrypto).

const MAX_EXPAND = 255 * SHA256_LENGTH;

/**
 * @internal `HKDF-Expand(PRK, info, L)` with SHA-256, with the bounds the profile's keys need checked
 * first. Expand only: no extract step runs.
 */
export async function hkdfExpandSha256(prk: Uint8Array, info: Uint8Array, length: number): Promise<Uint8Array> {
  if (!(prk instanceof Uint8Array) || !(info instanceof Uint8Array)) throw argumentError('ERR_INVALID_ARG_TYPE', 'prk and info must be Uint8Arrays');
  if (prk.length < SHA256_LENGTH) throw argumentError('ERR_INVALID_ARG_VALUE', `prk must be at least ${SHA256_LENGTH} octets`);
  if (!Number.isInteger(length) || length < 1 || length > MAX_EXPAND) throw argumentError('ERR_INVALID_ARG_VALUE', `length must be an integer from 1 to ${MAX_EXPAND}`);
  return hkdfExpand(prk, info, length);
}

/** The one HKDF-Expand every key below goes through. */
const expand = hkdfExpandSha256;

function label0(label: string, parts: readonly Uint8Array[]): Uint8Array {
  return concatBytes([utf8(label), new Uint8Array(1), ...parts]);
}

const infoEncoder = new TextEncoder();
/** Each message-key label with its 0x00, encoded once. */
const LABEL0 = {
  request: utf8(`${E2EE_LABELS.request}\0`),
  reply: utf8(`${E2EE_LABELS.reply}\0`),
} as const;

/**
 * `label || 0x00 || lp(sid) || lp(a) || lp(b) ...` in one array: the strings are encoded straight
 * into it (at most three octets per UTF-16 unit), then the array is cut to what was written. Same
 * octets as {@link label0} over {@link lp} of each part.
 */
function messageKeyInfo(prefix: Uint8Array, sid: Uint8Array, strings: readonly [string, string][]): Uint8Array {
  exactLength(sid, SID_LENGTH, 'sid');
  let room = prefix.length + 2 + SID_LENGTH;
  for (const [value, name] of strings) {
    // Octets given as a Uint8Array take the general composition.
    if (typeof value !== 'string') return concatBytes([prefix, sidOf(sid), ...strings.map(([v, n]) => lp(v, n))]);
    room += 2 + 3 * value.length;
  }
  const out = new Uint8Array(room);
  out.set(prefix, 0);
  let at = prefix.length;
  out[at + 1] = SID_LENGTH;
  out.set(sid, at + 2);
  at += 2 + SID_LENGTH;
  for (const [value, name] of strings) {
    const { written } = infoEncoder.encodeInto(value, out.subarray(at + 2));
    if (written > MAX_LP) throw argumentError('ERR_INVALID_ARG_VALUE', `${name} is longer than 65535 octets`);
    out[at] = written >>> 8;
    out[at + 1] = written & 0xff;
    at += 2 + written;
  }
  return out.subarray(0, at);
}

function root(rk: Uint8Array): Uint8Array {
  return exactLength(rk, SESSION_KEY_LENGTH, 'rk');
}

function sidOf(sid: Uint8Array): Uint8Array {
  return lp(exactLength(sid, SID_LENGTH, 'sid'), 'sid');
}

/** The inputs of a request body key. */
export interface RequestKeyInput {
  /** The session root (32 octets). */
  readonly rk: Uint8Array;
  /** The session id (16 octets). */
  readonly sid: Uint8Array;
  /** `N`: the request signature's nonce as sent. */
  readonly nonce: string;
  /** `METHOD`: the request method. */
  readonly method: string;
  /** `AUD`: the request signature's audience parameter. */
  readonly audience: string;
}

/** `info` of `K_req`: `"oidc2-e2ee-v1 request" || 0x00 || lp(sid) || lp(N) || lp(METHOD) || lp(AUD)`. */
export function requestKeyInfo(input: Omit<RequestKeyInput, 'rk'>): Uint8Array {
  return messageKeyInfo(LABEL0.request, input.sid, [[input.nonce, 'nonce'], [input.method, 'method'], [input.audience, 'audience']]);
}

/** `K_req`, the request body IKM: `HKDF-Expand(rk, requestKeyInfo, 32)`. */
export async function requestKey(input: RequestKeyInput): Promise<Uint8Array> {
  return expand(root(input.rk), requestKeyInfo(input), SESSION_KEY_LENGTH);
}

/** {@link requestKey} without a promise, on node:crypto; undefined elsewhere. @internal */
export function requestKeySync(input: RequestKeyInput): Uint8Array | undefined {
  return hkdfExpandSync(root(input.rk), requestKeyInfo(input), SESSION_KEY_LENGTH);
}

/** The inputs of a response body key. */
export interface ResponseKeyInput {
  /** The session root (32 octets). */
  readonly rk: Uint8Array;
  /** The session id (16 octets). */
  readonly sid: Uint8Array;
  /** `N`: the request signature's nonce as sent. */
  readonly nonce: string;
  /** `STATUS`: the response status, 100 to 999 (written as three ASCII digits). */
  readonly status: number;
}

function statusDigits(status: number): string {
  if (!Number.isInteger(status) || status < 100 || status > 999) throw argumentError('ERR_INVALID_ARG_VALUE', 'status must be an integer from 100 to 999');
  return String(status);
}

/** `info` of `K_rsp`: `"oidc2-e2ee-v1 reply" || 0x00 || lp(sid) || lp(N) || lp(STATUS)`. */
export function responseKeyInfo(input: Omit<ResponseKeyInput, 'rk'>): Uint8Array {
  return messageKeyInfo(LABEL0.reply, input.sid, [[input.nonce, 'nonce'], [statusDigits(input.status), 'status']]);
}

/** `K_rsp`, the response body IKM: `HKDF-Expand(rk, responseKeyInfo, 32)`. */
export async function responseKey(input: ResponseKeyInput): Promise<Uint8Array> {
  return expand(root(input.rk), responseKeyInfo(input), SESSION_KEY_LENGTH);
}

/** {@link responseKey} without a promise, on node:crypto; undefined elsewhere. @internal */
export function responseKeySync(input: ResponseKeyInput): Uint8Array | undefined {
  return hkdfExpandSync(root(input.rk), responseKeyInfo(input), SESSION_KEY_LENGTH);
}

/** The symmetric session authentication keys. */
export interface MacKeys {
  /** `K_c2s`: signs requests (caller to service). */
  readonly c2s: Uint8Array;
  /** `K_s2c`: signs responses (service to caller). */
  readonly s2c: Uint8Array;
}

/**
 * `K_c2s = HKDF-Expand(rk, "oidc2-e2ee-v1 mac c2s" || 0x00 || lp(sid), 32)` and `K_s2c` likewise
 * with `"oidc2-e2ee-v1 mac s2c"`.
 */
export async function macKeys(rk: Uint8Array, sid: Uint8Array): Promise<MacKeys> {
  const prk = root(rk);
  const id = sidOf(sid);
  const [c2s, s2c] = await Promise.all([
    expand(prk, label0(E2EE_LABELS.macC2s, [id]), SESSION_KEY_LENGTH),
    expand(prk, label0(E2EE_LABELS.macS2c, [id]), SESSION_KEY_LENGTH),
  ]);
  return { c2s, s2c };
}
