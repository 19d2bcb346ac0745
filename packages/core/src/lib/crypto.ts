// The one place that touches cryptographic primitives. On Node it uses node:crypto synchronously
// (reached through process.getBuiltinModule, so bundlers and browsers never see a Node import);
// elsewhere it uses WebCrypto. Both paths are covered by the same tests.
import type * as NodeCrypto from 'node:crypto';
import type { JWK } from 'jose';
import { decodeBase64Url } from './base64.js';
import { argumentError } from './validate.js';
import { concatBytes } from './body.js';
import { nodeBuiltin } from './builtin.js';

type NodeCryptoModule = typeof NodeCrypto;

const nodeCrypto = nodeBuiltin<NodeCryptoModule>('node:crypto');

type NodeBufferModule = typeof import('node:buffer');
const nodeBuffer = nodeBuiltin<NodeBufferModule>('node:buffer');

// Text signed or verified on node:crypto is written into one scratch buffer, which the synchronous
// call reads and forgets: Buffer's UTF-8 writer is several times faster than TextEncoder on the
// long, concatenated strings signature bases are, and nothing is allocated per call.
const SCRATCH_BYTES = 16 * 1024;
let scratch: (Uint8Array & { write(text: string, offset: number, encoding: 'utf8'): number }) | undefined;

/** UTF-8 octets of `data` for one synchronous node:crypto call (a view of the scratch buffer when it fits). */
function octets(data: Uint8Array | string): Uint8Array {
  if (typeof data !== 'string') return data;
  if (!nodeBuffer) return new TextEncoder().encode(data);
  // A UTF-16 code unit takes at most 3 octets: text this short always fits.
  if (data.length * 3 > SCRATCH_BYTES) return nodeBuffer.Buffer.from(data, 'utf8');
  scratch ??= nodeBuffer.Buffer.allocUnsafeSlow(SCRATCH_BYTES) as unknown as typeof scratch;
  return scratch!.subarray(0, scratch!.write(data, 0, 'utf8'));
}

let forceWebCrypto = false;
/** Test hook: run the WebCrypto path on Node. */
export function useWebCrypto(on: boolean): void {
  forceWebCrypto = on;
}
function node(): NodeCryptoModule | undefined {
  return forceWebCrypto ? undefined : nodeCrypto;
}
function subtle(): SubtleCrypto {
  const s = globalThis.crypto?.subtle;
  if (!s) throw new Error('WebCrypto is not available in this runtime');
  return s;
}

export type HashName = 'SHA-256' | 'SHA-384' | 'SHA-512';

/** How one signature algorithm is computed. */
export interface AlgorithmSpec {
  /** Canonical name: the RFC 9421 registry name or the JWA name. */
  name: string;
  kind: 'ecdsa' | 'eddsa' | 'rsa-pss' | 'rsa-v1_5' | 'hmac';
  hash: HashName | null;
  /** EC or OKP curve the key must be on. */
  curve?: 'P-256' | 'P-384' | 'P-521' | 'Ed25519';
  saltLength?: number;
}

const SPECS: Record<string, AlgorithmSpec> = {};
function spec(names: string[], s: Omit<AlgorithmSpec, 'name'>): void {
  for (const name of names) SPECS[name] = { name, ...s };
}
// RFC 9421 section 6.2.2 registry names, then JWA (RFC 7518, RFC 8037, RFC 9864) names.
spec(['ed25519', 'EdDSA', 'Ed25519'], { kind: 'eddsa', hash: null, curve: 'Ed25519' });
spec(['ecdsa-p256-sha256', 'ES256'], { kind: 'ecdsa', hash: 'SHA-256', curve: 'P-256' });
spec(['ecdsa-p384-sha384', 'ES384'], { kind: 'ecdsa', hash: 'SHA-384', curve: 'P-384' });
spec(['ES512'], { kind: 'ecdsa', hash: 'SHA-512', curve: 'P-521' });
spec(['rsa-pss-sha512'], { kind: 'rsa-pss', hash: 'SHA-512', saltLength: 64 });
spec(['PS256'], { kind: 'rsa-pss', hash: 'SHA-256', saltLength: 32 });
spec(['PS384'], { kind: 'rsa-pss', hash: 'SHA-384', saltLength: 48 });
spec(['PS512'], { kind: 'rsa-pss', hash: 'SHA-512', saltLength: 64 });
spec(['rsa-v1_5-sha256', 'RS256'], { kind: 'rsa-v1_5', hash: 'SHA-256' });
spec(['RS384'], { kind: 'rsa-v1_5', hash: 'SHA-384' });
spec(['RS512'], { kind: 'rsa-v1_5', hash: 'SHA-512' });
spec(['hmac-sha256', 'HS256'], { kind: 'hmac', hash: 'SHA-256' });

/** The spec for an RFC 9421 or JWA algorithm name, or undefined when unsupported. */
export function algorithmSpec(name: string): AlgorithmSpec | undefined {
  return Object.prototype.hasOwnProperty.call(SPECS, name) ? SPECS[name] : undefined;
}

/** Asymmetric JWA algorithms accepted for tokens and proofs (never `none` or HS*). */
export const ASYMMETRIC_JWA = ['ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519', 'PS256', 'PS384', 'PS512', 'RS256', 'RS384', 'RS512'] as const;

/**
 * A key ready for one algorithm. Created once (e.g. per cached ICT) and reused, so the hot path
 * never re-imports a key.
 */
export interface KeyHandle {
  readonly spec: AlgorithmSpec;
  readonly usage: 'sign' | 'verify';
  /** @internal */ readonly nodeKey?: NodeCrypto.KeyObject;
  /** @internal */ readonly webKey?: CryptoKey;
  /** @internal */ readonly secret?: Uint8Array;
}

function webImportParams(s: AlgorithmSpec): RsaHashedImportParams | EcKeyImportParams | HmacImportParams | Algorithm {
  switch (s.kind) {
    case 'ecdsa':
      return { name: 'ECDSA', namedCurve: s.curve! };
    case 'eddsa':
      return { name: 'Ed25519' };
    case 'rsa-pss':
      return { name: 'RSA-PSS', hash: s.hash! };
    case 'rsa-v1_5':
      return { name: 'RSASSA-PKCS1-v1_5', hash: s.hash! };
    case 'hmac':
      return { name: 'HMAC', hash: s.hash! };
  }
}

function webSignParams(s: AlgorithmSpec): AlgorithmIdentifier | EcdsaParams | RsaPssParams {
  switch (s.kind) {
    case 'ecdsa':
      return { name: 'ECDSA', hash: s.hash! };
    case 'rsa-pss':
      return { name: 'RSA-PSS', saltLength: s.saltLength! };
    default:
      return { name: (webImportParams(s) as Algorithm).name };
  }
}

/** Checks that a JWK's type and curve fit the algorithm; throws TypeError otherwise. */
export function assertKeyFitsAlgorithm(jwk: JWK, s: AlgorithmSpec): void {
  const ok =
    (s.kind === 'ecdsa' && jwk.kty === 'EC' && jwk.crv === s.curve) ||
    (s.kind === 'eddsa' && jwk.kty === 'OKP' && jwk.crv === 'Ed25519') ||
    ((s.kind === 'rsa-pss' || s.kind === 'rsa-v1_5') && jwk.kty === 'RSA') ||
    (s.kind === 'hmac' && jwk.kty === 'oct');
  if (!ok) throw argumentError('ERR_INVALID_ARG_VALUE', `key type ${String(jwk.kty)}/${String(jwk.crv ?? '')} does not fit algorithm ${s.name}`);
  if (s.kind !== 'hmac' && (s.kind === 'rsa-pss' || s.kind === 'rsa-v1_5') && typeof jwk.n === 'string' && jwk.n.length < 342) {
    throw argumentError('ERR_INVALID_ARG_VALUE', 'RSA keys must be at least 2048 bits');
  }
}

const PUBLIC_MEMBERS: Record<string, string[]> = { EC: ['kty', 'crv', 'x', 'y'], OKP: ['kty', 'crv', 'x'], RSA: ['kty', 'n', 'e'] };

/** A copy of a public JWK holding only the members that define the key. */
export function publicJwk(jwk: JWK): JWK {
  const members = PUBLIC_MEMBERS[String(jwk.kty)];
  if (!members) throw argumentError('ERR_INVALID_ARG_VALUE', `unsupported key type ${String(jwk.kty)}`);
  const out: Record<string, unknown> = {};
  for (const m of members) out[m] = (jwk as Record<string, unknown>)[m];
  return out as JWK;
}

/** Imports a JWK (or raw secret for HMAC) for one algorithm. */
export async function importKey(
  key: JWK | Uint8Array,
  algorithm: string | AlgorithmSpec,
  usage: 'sign' | 'verify',
): Promise<KeyHandle> {
  const s = typeof algorithm === 'string' ? algorithmSpec(algorithm) : algorithm;
  if (!s) throw argumentError('ERR_INVALID_ARG_VALUE', `unsupported algorithm ${String(algorithm)}`);
  if (key instanceof Uint8Array) {
    if (s.kind !== 'hmac') throw argumentError('ERR_INVALID_ARG_VALUE', 'a raw secret fits only HMAC');
    return { spec: s, usage, secret: key };
  }
  assertKeyFitsAlgorithm(key, s);
  if (s.kind === 'hmac') {
    const secret = decodeBase64Url(String(key.k));
    if (!secret) throw argumentError('ERR_INVALID_ARG_VALUE', 'invalid oct JWK');
    return { spec: s, usage, secret };
  }
  if (usage === 'verify' && key.d !== undefined) key = publicJwk(key);
  if (usage === 'sign' && key.d === undefined) throw argumentError('ERR_INVALID_ARG_VALUE', 'signing needs a private key');
  const n = node();
  if (n) return nodeKeyHandle(n, key, s, usage);
  const { alg: _alg, key_ops: _ops, use: _use, ...bare } = key as JWK & { key_ops?: unknown };
  const webKey = await subtle().importKey('jwk', bare as JsonWebKey, webImportParams(s), false, [usage]);
  return { spec: s, usage, webKey };
}

function nodeKeyHandle(n: NodeCryptoModule, jwk: JWK, s: AlgorithmSpec, usage: 'sign' | 'verify'): KeyHandle {
  const key = jwk as NodeCrypto.JsonWebKey;
  return { spec: s, usage, nodeKey: usage === 'sign' ? n.createPrivateKey({ key, format: 'jwk' }) : n.createPublicKey({ key, format: 'jwk' }) };
}

/**
 * {@link importKey} of a JWK for verifying with an asymmetric algorithm, without a promise: on Node
 * the same checks and node:crypto import; undefined where the runtime has no node:crypto (or the
 * WebCrypto path is forced) or `algorithm` is not asymmetric, for the caller to take importKey.
 * Throws where importKey rejects.
 */
export function importVerifyKeySync(jwk: JWK, algorithm: string): KeyHandle | undefined {
  const n = node();
  const s = algorithmSpec(algorithm);
  if (!n || !s || s.kind === 'hmac') return undefined;
  assertKeyFitsAlgorithm(jwk, s);
  return nodeKeyHandle(n, jwk.d !== undefined ? publicJwk(jwk) : jwk, s, 'verify');
}

/** Wraps an existing WebCrypto or node KeyObject key (e.g. a non-extractable client key). */
export function keyHandleFrom(key: CryptoKey | NodeCrypto.KeyObject, algorithm: string, usage: 'sign' | 'verify'): KeyHandle {
  const s = algorithmSpec(algorithm);
  if (!s) throw argumentError('ERR_INVALID_ARG_VALUE', `unsupported algorithm ${algorithm}`);
  if (typeof (key as CryptoKey).algorithm === 'object' && typeof (key as CryptoKey).usages !== 'undefined') {
    return { spec: s, usage, webKey: key as CryptoKey };
  }
  return { spec: s, usage, nodeKey: key as NodeCrypto.KeyObject };
}

function nodeHash(s: AlgorithmSpec): string | null {
  return s.hash === null ? null : s.hash.replace('SHA-', 'sha');
}

function nodeKeyOptions(n: NodeCryptoModule, h: KeyHandle): NodeCrypto.SignKeyObjectInput & NodeCrypto.VerifyKeyObjectInput {
  const s = h.spec;
  const key = h.nodeKey!;
  if (s.kind === 'ecdsa') return { key, dsaEncoding: 'ieee-p1363' };
  if (s.kind === 'rsa-pss') return { key, padding: n.constants.RSA_PKCS1_PSS_PADDING, saltLength: s.saltLength! };
  return { key };
}

/** Signs `data`. ECDSA signatures are raw r||s (IEEE P1363), as JWS and RFC 9421 require. */
export async function sign(h: KeyHandle, data: Uint8Array): Promise<Uint8Array> {
  if (h.usage !== 'sign') throw argumentError('ERR_INVALID_ARG_VALUE', 'key is not a signing key');
  const signed = signSync(h, data);
  if (signed) return signed;
  const s = h.spec;
  if (s.kind === 'hmac') {
    const k = await subtle().importKey('raw', h.secret! as BufferSource, { name: 'HMAC', hash: s.hash! }, false, ['sign']);
    return new Uint8Array(await subtle().sign('HMAC', k, data as BufferSource));
  }
  if (h.nodeKey) throw argumentError('ERR_INVALID_ARG_VALUE', 'a node KeyObject cannot be used in this runtime');
  return new Uint8Array(await subtle().sign(webSignParams(s), h.webKey!, data as BufferSource));
}

/**
 * {@link sign} without a promise where the runtime signs synchronously (Node: a node KeyObject, or
 * an HMAC secret), else undefined: for hot paths that then fall back to {@link sign}. A string is
 * signed as its UTF-8 octets.
 */
export function signSync(h: KeyHandle, data: Uint8Array | string): Uint8Array | undefined {
  const n = node();
  if (!n || h.usage !== 'sign') return undefined;
  if (h.spec.kind === 'hmac') return new Uint8Array(n.createHmac(nodeHash(h.spec)!, h.secret!).update(octets(data)).digest());
  if (!h.nodeKey) return undefined;
  return new Uint8Array(n.sign(nodeHash(h.spec), octets(data), nodeKeyOptions(n, h)));
}

/**
 * {@link verify} without a promise where the runtime verifies synchronously (Node: a node KeyObject,
 * or an HMAC secret, compared in constant time), else undefined: for hot paths that then fall back
 * to {@link verify}. A string is verified as its UTF-8 octets.
 */
export function verifySync(h: KeyHandle, data: Uint8Array | string, signature: Uint8Array): boolean | undefined {
  const n = node();
  if (!n) return undefined;
  if (h.spec.kind === 'hmac') return timingSafeEqual(n.createHmac(nodeHash(h.spec)!, h.secret!).update(octets(data)).digest(), signature);
  if (!h.nodeKey) return undefined;
  try {
    return n.verify(nodeHash(h.spec), octets(data), nodeKeyOptions(n, h), signature);
  } catch {
    return false;
  }
}

/** Verifies `signature` over `data`; false for any mismatch, never throws for bad signatures. */
export async function verify(h: KeyHandle, data: Uint8Array, signature: Uint8Array): Promise<boolean> {
  const verified = verifySync(h, data, signature);
  if (verified !== undefined) return verified;
  const s = h.spec;
  if (s.kind === 'hmac') {
    const expected = await sign({ ...h, usage: 'sign' }, data);
    return timingSafeEqual(expected, signature);
  }
  try {
    if (h.nodeKey) return false;
    return await subtle().verify(webSignParams(s), h.webKey!, signature as BufferSource, data as BufferSource);
  } catch {
    return false;
  }
}

/** A message digest. */
export async function digest(hash: HashName, data: Uint8Array): Promise<Uint8Array> {
  const n = node();
  if (n) return new Uint8Array(n.createHash(hash.replace('SHA-', 'sha')).update(data).digest());
  return new Uint8Array(await subtle().digest(hash, data as BufferSource));
}

/**
 * A synchronous digest where the runtime has one (Node), else undefined: for hot paths that would
 * otherwise pay for a promise and a copy.
 */
export function digestSync(hash: HashName, data: Uint8Array | string): Uint8Array | undefined {
  const n = node() as (NodeCryptoModule & { hash?: (alg: string, data: Uint8Array | string, encoding: 'buffer') => Uint8Array }) | undefined;
  if (!n) return undefined;
  const name = hash.replace('SHA-', 'sha');
  // crypto.hash (Node >= 20.12) is the one-shot form, cheaper than a Hash object for short inputs.
  return n.hash ? n.hash(name, data, 'buffer') : n.createHash(name).update(data).digest();
}

/**
 * Random octets on Node are drawn from one fill of node:crypto's CSPRNG at a time, as node:crypto's
 * own randomUUID does: each call costs microseconds, whatever its size, and a request takes
 * several nonces and salts. Every octet is handed out once and zeroed in the pool as it is.
 */
const RANDOM_POOL_BYTES = 4096;
const RANDOM_POOLED_MAX = 64;
let randomPool: Uint8Array | undefined;
let randomPoolAt = RANDOM_POOL_BYTES;

/** Cryptographically secure random bytes. */
export function randomBytes(length: number): Uint8Array {
  const out = new Uint8Array(length);
  // node:crypto's own fill skips the WebIDL checks of WebCrypto's getRandomValues (half the cost of a salt).
  const n = node();
  if (!n) {
    globalThis.crypto.getRandomValues(out);
    return out;
  }
  if (length > RANDOM_POOLED_MAX) {
    n.randomFillSync(out);
    return out;
  }
  if (randomPool === undefined || randomPoolAt + length > RANDOM_POOL_BYTES) {
    randomPool ??= new Uint8Array(RANDOM_POOL_BYTES);
    n.randomFillSync(randomPool);
    randomPoolAt = 0;
  }
  const taken = randomPool.subarray(randomPoolAt, randomPoolAt + length);
  out.set(taken);
  taken.fill(0);
  randomPoolAt += length;
  return out;
}

/** Constant-time comparison: time depends only on the lengths. */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  const n = node();
  if (n) return n.timingSafeEqual(a, b);
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

// ---------------------------------------------------------------------------------------------
// Symmetric building blocks of end-to-end encryption (docs/e2ee-engineering.md): HKDF-SHA256
// (RFC 5869) and AES-128-GCM with an explicit nonce. On Node they run synchronously on node:crypto;
// elsewhere on WebCrypto. Both are the platform's own HMAC and AES-GCM: nothing here is home-made.
// ---------------------------------------------------------------------------------------------

const SHA256_LENGTH = 32;
/** RFC 5869 section 2.3: L <= 255 * HashLen. */
const HKDF_MAX_LENGTH = 255 * SHA256_LENGTH;
/** Bounds on HKDF inputs: nothing in the profile comes near them. */
const HKDF_MAX_INPUT = 1 << 16;
const GCM_TAG_LENGTH = 16;
/** Bound on one AES-GCM call: a record is at most 65,536 octets; a whole buffered body can be more. */
const GCM_MAX_INPUT = 2 ** 31 - 1;

function assertBytes(value: unknown, name: string, min: number, max: number): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw argumentError('ERR_INVALID_ARG_TYPE', `${name} must be a Uint8Array`);
  if (value.length < min || value.length > max) {
    throw argumentError('ERR_INVALID_ARG_VALUE', min === max ? `${name} must be ${min} octets` : `${name} must be ${min} to ${max} octets`);
  }
}

/**
 * A Node Buffer as a plain Uint8Array of its own. A copy, not a view: small Buffers are slices of a
 * shared pool, and a view's `.buffer` would expose the rest of that pool (other secrets included).
 */
function own(b: Uint8Array): Uint8Array {
  return new Uint8Array(b);
}

/**
 * The first `length` octets of a node:crypto output as a plain Uint8Array of its own: the output
 * itself when it is all of its buffer (what node:crypto returns) and wanted whole, else a copy (a
 * pool slice, or a prefix whose rest must not stay reachable through `.buffer`).
 */
function ownView(b: Uint8Array, length: number): Uint8Array {
  return length === b.length && b.buffer.byteLength === length ? new Uint8Array(b.buffer, b.byteOffset, length) : new Uint8Array(b.subarray(0, length));
}

const COUNTER_ONE = Uint8Array.of(1);

async function hmacSha256(key: Uint8Array, ...parts: Uint8Array[]): Promise<Uint8Array> {
  const sync = hmacSha256Sync(key, ...parts);
  if (sync) return sync;
  const k = await subtle().importKey('raw', key as BufferSource, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const data = parts.length === 1 ? parts[0]! : concatBytes(parts);
  return new Uint8Array(await subtle().sign('HMAC', k, data as BufferSource));
}

/**
 * HKDF-Extract with SHA-256 (RFC 5869 section 2.2): `PRK = HMAC-SHA256(salt, IKM)`. An empty salt
 * stands for HashLen zero octets, as the RFC says (WebCrypto refuses empty HMAC keys; the two are
 * the same HMAC key).
 */
export async function hkdfExtract(salt: Uint8Array, ikm: Uint8Array): Promise<Uint8Array> {
  const sync = hkdfExtractSync(salt, ikm);
  if (sync) return sync;
  return hmacSha256(salt.length === 0 ? new Uint8Array(SHA256_LENGTH) : salt, ikm);
}

/**
 * HKDF-Expand with SHA-256 (RFC 5869 section 2.3) of a given PRK: `T(i) = HMAC(PRK, T(i-1) || info ||
 * i)`, the first `length` octets of `T(1) || T(2) || ...`. The PRK must be at least HashLen octets.
 */
export async function hkdfExpand(prk: Uint8Array, info: Uint8Array, length: number): Promise<Uint8Array> {
  // Checks the arguments on every path; on Node it is the whole computation.
  const sync = hkdfExpandSync(prk, info, length);
  if (sync) return sync;
  const out = new Uint8Array(length);
  let t: Uint8Array = new Uint8Array(0);
  for (let i = 1, offset = 0; offset < length; i++) {
    t = await hmacSha256(prk, t, info, Uint8Array.of(i));
    out.set(t.subarray(0, Math.min(t.length, length - offset)), offset);
    offset += t.length;
  }
  return out;
}

function assertGcmInputs(key: Uint8Array, keyLength: 16 | 32, nonce: Uint8Array, data: Uint8Array, aad: Uint8Array): void {
  assertBytes(key, 'key', keyLength, keyLength);
  assertBytes(nonce, 'nonce', 12, 12);
  assertBytes(data, 'data', 0, GCM_MAX_INPUT);
  assertBytes(aad, 'aad', 0, HKDF_MAX_INPUT);
}

/** AES-128-GCM encryption under a 16-octet key and an explicit 12-octet nonce: `ciphertext || tag`. */
export async function aes128GcmSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array = new Uint8Array(0)): Promise<Uint8Array> {
  assertGcmInputs(key, 16, nonce, plaintext, aad);
  const n = node();
  if (n) {
    return gcmSealNode(n, 'aes-128-gcm', key, nonce, plaintext, aad);
  }
  const k = await subtle().importKey('raw', key as BufferSource, 'AES-GCM', false, ['encrypt']);
  return new Uint8Array(await subtle().encrypt({ name: 'AES-GCM', iv: nonce as BufferSource, additionalData: aad as BufferSource, tagLength: 128 }, k, plaintext as BufferSource));
}

async function gcmOpen(keyLength: 16 | 32, key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Promise<Uint8Array | undefined> {
  assertGcmInputs(key, keyLength, nonce, sealed, aad);
  if (sealed.length < GCM_TAG_LENGTH) return undefined;
  const n = node();
  if (n) {
    try {
      const decipher = n.createDecipheriv(keyLength === 16 ? 'aes-128-gcm' : 'aes-256-gcm', key, nonce, { authTagLength: GCM_TAG_LENGTH });
      decipher.setAuthTag(sealed.subarray(sealed.length - GCM_TAG_LENGTH));
      if (aad.length) decipher.setAAD(aad);
      const body = decipher.update(sealed.subarray(0, sealed.length - GCM_TAG_LENGTH));
      const rest = decipher.final();
      return rest.length === 0 ? own(body) : concatBytes([body, rest]);
    } catch {
      return undefined;
    }
  }
  try {
    const k = await subtle().importKey('raw', key as BufferSource, 'AES-GCM', false, ['decrypt']);
    return new Uint8Array(await subtle().decrypt({ name: 'AES-GCM', iv: nonce as BufferSource, additionalData: aad as BufferSource, tagLength: 128 }, k, sealed as BufferSource));
  } catch {
    return undefined;
  }
}

/**
 * AES-128-GCM decryption of `ciphertext || tag`. Undefined when authentication fails (never throws
 * for a bad ciphertext, so callers map every failure to one error).
 */
export function aes128GcmOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array = new Uint8Array(0)): Promise<Uint8Array | undefined> {
  return gcmOpen(16, key, nonce, sealed, aad);
}

/** AES-256-GCM decryption of `ciphertext || tag` under a 32-octet key; undefined when authentication fails. */
export function aes256GcmOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array = new Uint8Array(0)): Promise<Uint8Array | undefined> {
  return gcmOpen(32, key, nonce, sealed, aad);
}

// ---------------------------------------------------------------------------------------------
// Synchronous forms for the hot paths of end-to-end encryption (RFC 8188 records, HPKE on Node).
// Each returns undefined where the runtime has no node:crypto (or the WebCrypto path is forced), and
// the caller then takes the asynchronous WebCrypto form above. Same primitives, no promise per call.
// ---------------------------------------------------------------------------------------------

/**
 * `length` octets for an output the caller overwrites completely before it is seen (a body being
 * encrypted or decrypted into place): on Node not zeroed first, which for a 1 MiB body costs as much
 * as a tenth of its AES-GCM; elsewhere a zeroed array. A plain Uint8Array over a buffer of its own
 * (never a pool slice). A caller that may leave octets unwritten must zero them itself.
 */
export function outputBytes(length: number): Uint8Array {
  if (!nodeBuffer || forceWebCrypto) return new Uint8Array(length);
  const b = nodeBuffer.Buffer.allocUnsafeSlow(length);
  return new Uint8Array(b.buffer, b.byteOffset, length);
}

/**
 * node:crypto when the node path is in effect (Node, and `useWebCrypto(false)`), else undefined;
 * with `evenIfWebCryptoForced`, node:crypto wherever the runtime has it (for keys made on it before
 * a test switched paths). For the synchronous paths that sit beside another library's: the HPKE
 * engine on node:crypto (`e2ee/hpke-node.ts`) and JWS verification beside jose's (`jws.ts`).
 * @internal
 */
export function nodeCryptoModule(evenIfWebCryptoForced = false): NodeCryptoModule | undefined {
  return evenIfWebCryptoForced ? nodeCrypto : node();
}

/** HMAC-SHA256 of the concatenated `parts`, synchronously on node:crypto; undefined elsewhere. */
export function hmacSha256Sync(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array | undefined {
  const n = node();
  if (!n) return undefined;
  const h = n.createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return ownView(h.digest(), SHA256_LENGTH);
}

/** {@link hkdfExtract}, synchronously on node:crypto; undefined elsewhere. */
export function hkdfExtractSync(salt: Uint8Array, ikm: Uint8Array): Uint8Array | undefined {
  assertBytes(salt, 'salt', 0, HKDF_MAX_INPUT);
  assertBytes(ikm, 'ikm', 0, HKDF_MAX_INPUT);
  return hmacSha256Sync(salt.length === 0 ? new Uint8Array(SHA256_LENGTH) : salt, ikm);
}

/** {@link hkdfExpand}, synchronously on node:crypto; undefined elsewhere. */
export function hkdfExpandSync(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array | undefined {
  assertBytes(prk, 'prk', SHA256_LENGTH, HKDF_MAX_INPUT);
  assertBytes(info, 'info', 0, HKDF_MAX_INPUT);
  if (!Number.isSafeInteger(length) || length < 1 || length > HKDF_MAX_LENGTH) {
    throw argumentError('ERR_INVALID_ARG_VALUE', `length must be an integer from 1 to ${HKDF_MAX_LENGTH}`);
  }
  const n = node();
  if (!n) return undefined;
  // The profile's keys (at most 32 octets) take exactly one HMAC: T(1) = HMAC(PRK, info || 0x01).
  if (length <= SHA256_LENGTH) return ownView(n.createHmac('sha256', prk).update(info).update(COUNTER_ONE).digest(), length);
  // One HMAC per 32 octets.
  const out = new Uint8Array(length);
  let t: Uint8Array = new Uint8Array(0);
  const counter = new Uint8Array(1);
  for (let i = 1, offset = 0; offset < length; i++) {
    counter[0] = i;
    t = n.createHmac('sha256', prk).update(t).update(info).update(counter).digest();
    out.set(t.subarray(0, Math.min(t.length, length - offset)), offset);
    offset += t.length;
  }
  return out;
}

/**
 * AES-128-GCM under one key for many records, synchronously on node:crypto: the key is imported
 * once, and every operation writes straight into the caller's output (no intermediate copy beyond
 * the one node:crypto's `update` makes).
 */
export interface Aes128GcmRecordCipher {
  /**
   * Encrypts the concatenation of `parts` under `nonce` (12 octets) into `out` at `offset`:
   * ciphertext then the 16-octet tag. Returns the offset after the tag. `out` must have room.
   */
  sealInto(nonce: Uint8Array, parts: readonly Uint8Array[], out: Uint8Array, offset: number): number;
  /**
   * Decrypts `ciphertext || tag` under `nonce` into `out` at `offset`; returns the plaintext's
   * length, or -1 when authentication fails (what was written then is garbage, never plaintext to
   * use). `out` must have room for `sealed.length - 16` octets.
   */
  openInto(nonce: Uint8Array, sealed: Uint8Array, out: Uint8Array, offset: number): number;
  /** Decrypts `ciphertext || tag` into a new array of its own; undefined when authentication fails. */
  open(nonce: Uint8Array, sealed: Uint8Array): Uint8Array | undefined;
}

/** The synchronous record cipher of a 16-octet key on node:crypto; undefined elsewhere (use {@link aes128GcmSeal}/{@link aes128GcmOpen}). */
export function aes128GcmRecordCipher(key: Uint8Array): Aes128GcmRecordCipher | undefined {
  assertBytes(key, 'key', 16, 16);
  const n = node();
  if (!n) return undefined;
  // A KeyObject saves the key setup of every record after the first; a one-record body (most
  // messages) would only pay for making it.
  let secret: Uint8Array | NodeCrypto.KeyObject = key;
  let uses = 0;
  const keyOf = (): Uint8Array | NodeCrypto.KeyObject => (++uses === 2 ? (secret = n.createSecretKey(key)) : secret);
  const options = { authTagLength: GCM_TAG_LENGTH };
  const write = (chunk: Uint8Array, out: Uint8Array, offset: number): number => {
    if (chunk.length) out.set(chunk, offset);
    return offset + chunk.length;
  };
  const decipher = (nonce: Uint8Array, sealed: Uint8Array) => {
    const d = n.createDecipheriv('aes-128-gcm', keyOf(), nonce, options);
    d.setAuthTag(sealed.subarray(sealed.length - GCM_TAG_LENGTH));
    return d;
  };
  return {
    sealInto(nonce, parts, out, offset) {
      assertBytes(nonce, 'nonce', 12, 12);
      const cipher = n.createCipheriv('aes-128-gcm', keyOf(), nonce, options);
      for (const part of parts) if (part.length) offset = write(cipher.update(part), out, offset);
      offset = write(cipher.final(), out, offset);
      return write(cipher.getAuthTag(), out, offset);
    },
    openInto(nonce, sealed, out, offset) {
      assertBytes(nonce, 'nonce', 12, 12);
      if (sealed.length < GCM_TAG_LENGTH) return -1;
      try {
        const d = decipher(nonce, sealed);
        const end = write(d.update(sealed.subarray(0, sealed.length - GCM_TAG_LENGTH)), out, offset);
        return write(d.final(), out, end) - offset;
      } catch {
        return -1;
      }
    },
    open(nonce, sealed) {
      assertBytes(nonce, 'nonce', 12, 12);
      if (sealed.length < GCM_TAG_LENGTH) return undefined;
      try {
        const d = decipher(nonce, sealed);
        const body = d.update(sealed.subarray(0, sealed.length - GCM_TAG_LENGTH));
        const rest = d.final();
        if (rest.length) return concatBytes([body, rest]);
        // node:crypto's output has a buffer of its own, so a plain view over it exposes nothing else;
        // a pooled slice (never seen) would be copied.
        return ownView(body, body.length);
      } catch {
        return undefined;
      }
    },
  };
}

/**
 * AES-256-GCM encryption (`ciphertext || tag`) under a 32-octet key and a 12-octet nonce,
 * synchronously on node:crypto; undefined elsewhere (the caller then takes its WebCrypto route).
 */
export function aes256GcmSealSync(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array | undefined {
  assertGcmInputs(key, 32, nonce, plaintext, aad);
  const n = node();
  return n && gcmSealNode(n, 'aes-256-gcm', key, nonce, plaintext, aad);
}

// `ciphertext || tag` of one AES-GCM encryption on node:crypto, in one output buffer.
function gcmSealNode(n: NodeCryptoModule, algorithm: 'aes-128-gcm' | 'aes-256-gcm', key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
  const cipher = n.createCipheriv(algorithm, key, nonce, { authTagLength: GCM_TAG_LENGTH });
  if (aad.length) cipher.setAAD(aad);
  const out = new Uint8Array(plaintext.length + GCM_TAG_LENGTH);
  const body = cipher.update(plaintext);
  out.set(body, 0);
  const rest = cipher.final();
  out.set(rest, body.length);
  out.set(cipher.getAuthTag(), body.length + rest.length);
  return out;
}
