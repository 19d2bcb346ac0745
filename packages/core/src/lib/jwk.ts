/**
 * JSON Web Key helpers shared by every token and proof that confirms a key: which public keys are
 * acceptable, which algorithm a key signs with, its RFC 7638 thumbprint, and (on Node) both of
 * these without a promise, for the first request of a new caller.
 */
import type { JWK } from 'jose';
import { decodeBase64Url, encodeBase64Url, utf8 } from './base64.js';
import { ASYMMETRIC_JWA, algorithmSpec, assertKeyFitsAlgorithm, digest, nodeCryptoModule, publicJwk } from './crypto.js';
import { argumentError } from './validate.js';

const ALGORITHMS: readonly string[] = ASYMMETRIC_JWA;
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
// Decoded lengths of the coordinates of each supported curve.
const CURVES: Record<string, { kty: string; bytes: number }> = {
  'P-256': { kty: 'EC', bytes: 32 },
  'P-384': { kty: 'EC', bytes: 48 },
  'P-521': { kty: 'EC', bytes: 66 },
  Ed25519: { kty: 'OKP', bytes: 32 },
};
const DEFAULT_ALG: Record<string, string> = { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512', Ed25519: 'Ed25519' };

function b64Length(value: unknown): number {
  return typeof value === 'string' ? (decodeBase64Url(value)?.length ?? -1) : -1;
}

/**
 * The public members of a JWK that may confirm a caller's key (EC P-256/P-384/P-521, OKP Ed25519,
 * RSA of at least 2048 bits), or undefined when it is anything else or carries a private member
 * (`d`, `p`, `q`, `dp`, `dq`, `qi`, `oth`, `k`).
 */
export function parsePublicJwk(value: unknown): JWK | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const jwk = value as Record<string, unknown>;
  if (PRIVATE_MEMBERS.some((m) => jwk[m] !== undefined)) return undefined;
  if (jwk.kty === 'RSA') {
    const n = typeof jwk.n === 'string' ? decodeBase64Url(jwk.n) : undefined;
    const e = b64Length(jwk.e);
    if (!n || n.length < 256 || n[0] === 0 || e < 1 || e > 8) return undefined;
  } else {
    const curve = typeof jwk.crv === 'string' ? CURVES[jwk.crv] : undefined;
    if (!curve || curve.kty !== jwk.kty || b64Length(jwk.x) !== curve.bytes) return undefined;
    if (curve.kty === 'EC' ? b64Length(jwk.y) !== curve.bytes : jwk.y !== undefined) return undefined;
  }
  return publicJwk(jwk as JWK);
}

/**
 * The JWA algorithm a confirmation key signs with (docs/protocol.md section 2): its `alg` member when that is
 * an allowed asymmetric algorithm fitting the key, else P-256 -> ES256, P-384 -> ES384,
 * P-521 -> ES512, Ed25519 -> Ed25519. Undefined for an RSA key without `alg`, or an `alg` that is
 * not allowed or does not fit.
 */
export function jwkAlgorithm(jwk: JWK): string | undefined {
  if (jwk.alg === undefined) return jwk.kty === 'RSA' || typeof jwk.crv !== 'string' ? undefined : DEFAULT_ALG[jwk.crv];
  const spec = ALGORITHMS.includes(jwk.alg) ? algorithmSpec(jwk.alg) : undefined;
  if (!spec) return undefined;
  try {
    assertKeyFitsAlgorithm(jwk, spec);
  } catch {
    return undefined;
  }
  return jwk.alg;
}

// The thumbprint input (RFC 7638 section 3.2): the required members only, in lexicographic order,
// no whitespace. The values are base64url or fixed names, so JSON.stringify adds no escapes.
function thumbprintInput(jwk: JWK): string {
  const members =
    jwk.kty === 'EC' ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y } : jwk.kty === 'OKP' ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x } : { e: jwk.e, kty: jwk.kty, n: jwk.n };
  if (Object.values(members).some((v) => typeof v !== 'string')) throw argumentError('ERR_INVALID_ARG_VALUE', 'not an EC, OKP or RSA public JWK');
  return JSON.stringify(members);
}

/** RFC 7638 JWK thumbprint with SHA-256, base64url, of an EC, OKP or RSA public key. */
export async function jwkThumbprint(jwk: JWK): Promise<string> {
  return encodeBase64Url(await digest('SHA-256', utf8(thumbprintInput(jwk))));
}

type NodeHash = (algorithm: string, data: string, outputEncoding: 'base64url') => string;

/**
 * {@link jwkThumbprint} without a promise, in one call to node:crypto's one-shot hash; undefined
 * where the runtime has none (or the WebCrypto path is forced), for the caller to take
 * jwkThumbprint. Throws what jwkThumbprint rejects with.
 */
export function jwkThumbprintSync(jwk: JWK): string | undefined {
  const input = thumbprintInput(jwk);
  const hash = (nodeCryptoModule() as { hash?: NodeHash } | undefined)?.hash;
  return hash ? hash('sha256', input, 'base64url') : undefined;
}
