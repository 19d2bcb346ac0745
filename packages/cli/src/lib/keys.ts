// Key material on disk: JWK (JSON) or PEM (PKCS#8 private, SPKI public) files in, JWK or PEM out.
// What the core accepts as a confirmation or issuer key decides what is accepted here.
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { jwkAlgorithm, jwkThumbprint, parsePublicJwk, publicJwk } from '@oidc2/core';
import { exportJWK, exportPKCS8, generateKeyPair, type JWK } from 'jose';
import { UsageError } from './command.js';
import { parseJson, readInputFile } from './files.js';

/** Algorithms `oidc2 keys generate` makes keys for. */
export const KEY_ALGORITHMS = ['ES256', 'Ed25519', 'ES384', 'PS256'] as const;
export type KeyAlgorithm = (typeof KEY_ALGORITHMS)[number];

/** JWK members that hold private key material. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;
/** Members kept beside the key itself in a JWK Set: what lets a verifier pick the key. */
const KEY_SET_MEMBERS = ['kid', 'alg', 'use'] as const;

/** A private key read from a file, with the algorithm it signs with. */
export interface PrivateKey {
  jwk: JWK;
  alg: string;
}

/** A generated key pair in the requested output form. */
export interface GeneratedKey {
  alg: KeyAlgorithm;
  kid: string;
  thumbprint: string;
  /** A private JWK (with `kid`, `alg`, `use`) or a PKCS#8 PEM. */
  privateKey: JWK | string;
  /** The public JWK (with `kid`, `alg`, `use`). */
  publicJwk: JWK;
}

function keyFromFile(path: string, what: string): JWK {
  const text = readInputFile(path, what).toString('utf8').trim();
  if (text.startsWith('-----BEGIN ')) {
    try {
      const key = / PRIVATE KEY-----/.test(text) ? createPrivateKey(text) : createPublicKey(text);
      return key.export({ format: 'jwk' }) as JWK;
    } catch {
      throw new UsageError(`${what} ${path} is not a PEM key this tool reads (PKCS#8 private or SPKI public, EC, Ed25519 or RSA)`);
    }
  }
  const value = parseJson(text, `${what} ${path}`) as JWK | null;
  if (typeof value !== 'object' || value === null || Array.isArray(value) || typeof value.kty !== 'string') throw new UsageError(`${what} ${path} is not a JWK`);
  return value;
}

function withoutPrivateMembers(jwk: JWK): JWK {
  const out: Record<string, unknown> = { ...jwk };
  for (const member of PRIVATE_MEMBERS) delete out[member];
  return out as JWK;
}

/** The algorithm a key signs with: its `alg` member, or its curve's; an RSA key must name it. */
function algorithmOf(jwk: JWK, path: string, what: string): string {
  const alg = jwkAlgorithm(withoutPrivateMembers(jwk));
  if (alg === undefined) throw new UsageError(`${what} ${path}: no usable algorithm (an RSA key must carry "alg"; EC keys are P-256, P-384 or P-521; OKP keys Ed25519)`);
  return alg;
}

/** The private key in `path` (a private JWK or a PKCS#8 PEM) and its algorithm. */
export function readPrivateKey(path: string, what: string): PrivateKey {
  const jwk = keyFromFile(path, what);
  if (typeof jwk.d !== 'string') throw new UsageError(`${what} ${path} holds no private key`);
  return { jwk, alg: algorithmOf(jwk, path, what) };
}

/**
 * The public key in `path` (a JWK or PEM, private or public: only the public part is used), with
 * `alg` when the key names or implies one.
 */
export function readPublicKey(path: string, what: string): JWK {
  const jwk = keyFromFile(path, what);
  const key = parsePublicJwk(withoutPrivateMembers(jwk));
  if (!key) throw new UsageError(`${what} ${path} is not an EC (P-256, P-384, P-521), Ed25519 or RSA (2048 bits or more) key`);
  const alg = jwkAlgorithm(jwk.alg === undefined ? key : { ...key, alg: jwk.alg });
  return alg === undefined ? key : { ...key, alg };
}

/**
 * The public JWK Set in `path`: `{ "keys": [...] }` or one JWK. Private members are dropped, and
 * only the key itself with `kid`, `alg` and `use` is kept.
 */
export function readKeySet(path: string, what: string): { keys: JWK[] } {
  const value = parseJson(readInputFile(path, what).toString('utf8'), `${what} ${path}`) as { keys?: unknown } | null;
  if (typeof value !== 'object' || value === null) throw new UsageError(`${what} ${path} is not a JWK or JWK Set`);
  const entries = Array.isArray(value.keys) ? (value.keys as unknown[]) : [value];
  const keys = entries.map((entry) => {
    const key = parsePublicJwk(withoutPrivateMembers(entry as JWK));
    if (!key) throw new UsageError(`${what} ${path} holds a key that is not an EC, Ed25519 or RSA (2048 bits or more) key`);
    for (const member of KEY_SET_MEMBERS) {
      const v = (entry as Record<string, unknown>)[member];
      if (typeof v === 'string') (key as Record<string, unknown>)[member] = v;
    }
    return key;
  });
  if (keys.length === 0) throw new UsageError(`${what} ${path} holds no key`);
  return { keys };
}

/** A fresh key pair for `alg`; `kid` defaults to the RFC 7638 thumbprint of the public key. */
export async function generateKey(alg: KeyAlgorithm, format: 'jwk' | 'pem', kid?: string): Promise<GeneratedKey> {
  const pair = await generateKeyPair(alg, { extractable: true });
  const publicKey = publicJwk(await exportJWK(pair.publicKey));
  const thumbprint = await jwkThumbprint(publicKey);
  const labels = { kid: kid ?? thumbprint, alg, use: 'sig' };
  return {
    alg,
    kid: labels.kid,
    thumbprint,
    privateKey: format === 'pem' ? await exportPKCS8(pair.privateKey) : { ...(await exportJWK(pair.privateKey)), ...labels },
    publicJwk: { ...publicKey, ...labels },
  };
}

