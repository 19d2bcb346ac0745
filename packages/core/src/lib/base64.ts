// Base64 and base64url. Decoding is strict (canonical input only) and runs the same everywhere;
// encoding uses Node's Buffer where there is one (reached through process.getBuiltinModule, so
// bundlers and browsers never see a Node import), and the code below elsewhere, which is the
// reference a differential test holds Buffer's output to.

import { nodeBuiltin } from './builtin.js';

interface NodeBufferClass {
  from(buffer: ArrayBufferLike, byteOffset: number, length: number): { toString(encoding: 'base64' | 'base64url'): string };
}
const NodeBuffer = nodeBuiltin<{ Buffer?: NodeBufferClass }>('node:buffer')?.Buffer;

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
// One table per alphabet: a character outside it maps to -1.
const STANDARD = new Int16Array(256).fill(-1);
const URL_SAFE = new Int16Array(256).fill(-1);
for (let i = 0; i < 64; i++) {
  STANDARD[ALPHABET.charCodeAt(i)] = i;
  URL_SAFE[ALPHABET.charCodeAt(i)] = i;
}
URL_SAFE[43] = URL_SAFE[47] = -1; // + /
URL_SAFE[45] = 62; // -
URL_SAFE[95] = 63; // _

/** @internal The portable encoder, the reference of Buffer's. */
export function encodeBase64Portable(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + ALPHABET[(n >> 6) & 63]! + ALPHABET[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + '==';
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + ALPHABET[(n >> 6) & 63]! + '=';
  }
  return out;
}

/** @internal The portable encoder, the reference of Buffer's. */
export function encodeBase64UrlPortable(bytes: Uint8Array): string {
  return encodeBase64Portable(bytes).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function encodeBase64(bytes: Uint8Array): string {
  return NodeBuffer ? NodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64') : encodeBase64Portable(bytes);
}

export function encodeBase64Url(bytes: Uint8Array): string {
  return NodeBuffer ? NodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url') : encodeBase64UrlPortable(bytes);
}

/** Strict decoder for both alphabets; returns undefined for anything that is not canonical base64. */
export function decodeBase64(input: string, url = false): Uint8Array | undefined {
  const table = url ? URL_SAFE : STANDARD;
  let n = input.length;
  if (!url) {
    if (n % 4 !== 0) return undefined;
    if (input.charCodeAt(n - 1) === 61 /* = */) n -= input.charCodeAt(n - 2) === 61 ? 2 : 1;
  } else if (n % 4 === 1) {
    return undefined;
  }
  const out = new Uint8Array((n * 3) >> 2);
  const full = n - (n % 4);
  let o = 0;
  for (let i = 0; i < full; i += 4) {
    const c0 = input.charCodeAt(i);
    const c1 = input.charCodeAt(i + 1);
    const c2 = input.charCodeAt(i + 2);
    const c3 = input.charCodeAt(i + 3);
    if ((c0 | c1 | c2 | c3) > 255) return undefined;
    const a = table[c0]!;
    const b = table[c1]!;
    const c = table[c2]!;
    const d = table[c3]!;
    if ((a | b | c | d) < 0) return undefined;
    const w = (a << 18) | (b << 12) | (c << 6) | d;
    out[o++] = w >> 16;
    out[o++] = (w >> 8) & 255;
    out[o++] = w & 255;
  }
  const rest = n - full;
  if (rest > 0) {
    const c0 = input.charCodeAt(full);
    const c1 = input.charCodeAt(full + 1);
    const c2 = rest === 3 ? input.charCodeAt(full + 2) : 65; /* A: no bits */
    if ((c0 | c1 | c2) > 255) return undefined;
    const a = table[c0]!;
    const b = table[c1]!;
    const c = table[c2]!;
    if ((a | b | c) < 0) return undefined;
    out[o++] = (a << 2) | (b >> 4);
    if (rest === 3) out[o++] = ((b & 15) << 4) | (c >> 2);
    // Non-zero leftover bits mean a non-canonical encoding.
    if ((rest === 2 ? b & 15 : c & 3) !== 0) return undefined;
  }
  return out;
}

export function decodeBase64Url(input: string): Uint8Array | undefined {
  return decodeBase64(input, true);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function utf8(s: string): Uint8Array {
  // Most strings here (signature bases, labels, JWS segments) are ASCII: one pass into an array of
  // their length, several times faster than encode(); any other string takes encode().
  const out = new Uint8Array(s.length);
  const { read, written } = encoder.encodeInto(s, out);
  return read === s.length && written === s.length ? out : encoder.encode(s);
}

export function fromUtf8(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** The JSON object in a base64url JWS segment, or undefined for anything else. */
export function decodeJsonSegment(segment: string): Record<string, unknown> | undefined {
  const bytes = decodeBase64Url(segment);
  if (!bytes) return undefined;
  try {
    const value: unknown = JSON.parse(fromUtf8(bytes));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
