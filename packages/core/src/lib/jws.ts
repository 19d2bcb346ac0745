// The signature check of a compact JWS whose issuer key comes from a jose key lookup (an ICT, a WIT).
// On Node the check runs synchronously on node:crypto with the very key jose selected and imported;
// everything else (the JWKS, the key's choice and import, claims, JWE) stays with jose. Whatever the
// fast path does not decide for certain (a `crit` or `b64` header, a key that is not a verifying
// CryptoKey fitting the alg exactly as jose demands, a signature segment that is not canonical
// base64url, a runtime without node:crypto) goes through jose's `compactVerify`, the reference,
// which a differential test runs against this path on every vector and attack.
import type * as NodeCrypto from 'node:crypto';
import { compactVerify, errors, type FlattenedJWSInput, type JWSHeaderParameters } from 'jose';
import { decodeBase64Url, utf8 } from './base64.js';
import { nodeCryptoModule } from './crypto.js';

/** A key lookup as jose's `compactVerify` takes it. */
export type JwsKeyLookup = (header: JWSHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey>;

/** What jose's `checkSigCryptoKey` demands of a verification key for each JWS alg. */
interface AlgFit {
  name: string;
  hash?: string;
  curve?: string;
  /** node:crypto digest name (`null` for EdDSA). */
  digest: string | null;
  dsa?: true;
  pssSalt?: number;
}
const FITS: Record<string, AlgFit> = {
  ES256: { name: 'ECDSA', curve: 'P-256', digest: 'sha256', dsa: true },
  ES384: { name: 'ECDSA', curve: 'P-384', digest: 'sha384', dsa: true },
  ES512: { name: 'ECDSA', curve: 'P-521', digest: 'sha512', dsa: true },
  EdDSA: { name: 'Ed25519', digest: null },
  Ed25519: { name: 'Ed25519', digest: null },
  RS256: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', digest: 'sha256' },
  RS384: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-384', digest: 'sha384' },
  RS512: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-512', digest: 'sha512' },
  PS256: { name: 'RSA-PSS', hash: 'SHA-256', digest: 'sha256', pssSalt: 32 },
  PS384: { name: 'RSA-PSS', hash: 'SHA-384', digest: 'sha384', pssSalt: 48 },
  PS512: { name: 'RSA-PSS', hash: 'SHA-512', digest: 'sha512', pssSalt: 64 },
};

// A CryptoKey as a node KeyObject, converted once per key jose hands out (its key sets keep their
// imported keys, so this is once per issuer key until the set is fetched again).
const converted = new WeakMap<CryptoKey, NodeCrypto.KeyObject | null>();

function keyObject(n: typeof NodeCrypto, key: CryptoKey): NodeCrypto.KeyObject | undefined {
  let k = converted.get(key);
  if (k === undefined) {
    try {
      k = n.KeyObject.from(key);
    } catch {
      k = null;
    }
    converted.set(key, k);
  }
  return k ?? undefined;
}

/** Whether `key` is a public verifying CryptoKey that jose itself would accept for `alg`. */
function fits(key: unknown, alg: string, fit: AlgFit): key is CryptoKey {
  if (typeof key !== 'object' || key === null) return false;
  const k = key as Partial<CryptoKey>;
  const a = k.algorithm as (KeyAlgorithm & { namedCurve?: string; hash?: { name?: string }; modulusLength?: number }) | undefined;
  if (k.type !== 'public' || !Array.isArray(k.usages) || !k.usages.includes('verify') || typeof a !== 'object' || a === null) return false;
  if (a.name !== fit.name) return false;
  if (fit.curve !== undefined && a.namedCurve !== fit.curve) return false;
  if (fit.hash !== undefined && (a.hash?.name !== fit.hash || typeof a.modulusLength !== 'number' || a.modulusLength < 2048)) return false;
  return alg in FITS;
}

/**
 * Verifies the signature of the compact JWS `token` (already split into `parts`, its protected
 * header parsed into `header`, its `alg` allowed by the caller, its signature segment in `decoded`
 * when the caller has decoded it already) with the key `lookup` returns.
 * Resolves when it verifies; rejects with what jose's `compactVerify(token, lookup, { algorithms })`
 * rejects with otherwise: the lookup's own error, or jose's `JWSSignatureVerificationFailed`, or
 * (on the reference path) any other jose error.
 */
export async function verifyJwsSignature(token: string, parts: readonly string[], header: Record<string, unknown>, lookup: JwsKeyLookup, algorithms: string[], decoded?: Uint8Array): Promise<void> {
  const n = nodeCryptoModule();
  const alg = header.alg;
  const fit = typeof alg === 'string' && algorithms.includes(alg) && Object.hasOwn(FITS, alg) ? FITS[alg] : undefined;
  if (n && fit && !Object.hasOwn(header, 'crit') && !Object.hasOwn(header, 'b64')) {
    const signature = decoded ?? decodeBase64Url(parts[2]!);
    if (signature) {
      const key = await lookup(header as JWSHeaderParameters, { protected: parts[0]!, payload: parts[1]!, signature: parts[2]! });
      const nodeKey = fits(key, alg as string, fit) ? keyObject(n, key) : undefined;
      if (nodeKey) {
        const data = utf8(token.slice(0, parts[0]!.length + 1 + parts[1]!.length));
        let ok = false;
        try {
          const options = fit.dsa ? { key: nodeKey, dsaEncoding: 'ieee-p1363' as const } : fit.pssSalt ? { key: nodeKey, padding: n.constants.RSA_PKCS1_PSS_PADDING, saltLength: fit.pssSalt } : nodeKey;
          ok = n.verify(fit.digest, data, options, signature);
        } catch {
          ok = false;
        }
        if (!ok) throw new errors.JWSSignatureVerificationFailed();
        return;
      }
    }
  }
  await compactVerify(token, lookup, { algorithms });
}
