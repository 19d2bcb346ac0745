// The client's own key pair, held as WebCrypto keys so that the private key can stay
// non-extractable (in a browser it never leaves the crypto engine).
import { calculateJwkThumbprint, type JWK } from 'jose';
import { keyHandleFrom, type KeyHandle } from '@oidc2/core';
import { argumentError } from '@oidc2/core/adapter';

/** JWA algorithms the client generates keys for. */
export type ClientAlgorithm = 'ES256' | 'Ed25519';

export interface ClientKey {
  alg: ClientAlgorithm;
  /** Signing handle for the core's signers. */
  signer: KeyHandle;
  /** The private key itself, for JWS signing with jose. */
  privateKey: CryptoKey;
  /** Public members only. */
  publicJwk: JWK;
  /** RFC 7638 SHA-256 thumbprint of `publicJwk`. */
  thumbprint: string;
}

const GENERATE: Record<ClientAlgorithm, EcKeyGenParams | Algorithm> = {
  ES256: { name: 'ECDSA', namedCurve: 'P-256' },
  Ed25519: { name: 'Ed25519' },
};

function subtle(): SubtleCrypto {
  const s = globalThis.crypto?.subtle;
  if (!s) throw new Error('WebCrypto (crypto.subtle) is not available in this runtime');
  return s;
}

/** Generates a key pair, or adopts `pair` when given, and derives the public JWK and thumbprint. */
export async function clientKey(alg: ClientAlgorithm, extractable: boolean, pair?: CryptoKeyPair): Promise<ClientKey> {
  const keys = pair ?? ((await subtle().generateKey(GENERATE[alg], extractable, ['sign', 'verify'])) as CryptoKeyPair);
  // WebCrypto public keys are always extractable, whatever the private key's setting.
  const exported = (await subtle().exportKey('jwk', keys.publicKey)) as JWK;
  // Only the members that define the key: no key_ops, ext or alg in what the issuer certifies.
  const jwk: JWK = exported.kty === 'EC' ? { kty: 'EC', crv: exported.crv, x: exported.x, y: exported.y } : { kty: 'OKP', crv: exported.crv, x: exported.x };
  return { alg, signer: keyHandleFrom(keys.privateKey, alg, 'sign'), privateKey: keys.privateKey, publicJwk: jwk, thumbprint: await calculateJwkThumbprint(jwk) };
}

/** Checks that a user-supplied pair fits `alg`; throws TypeError naming the option otherwise. */
export function assertKeyPair(pair: unknown, alg: ClientAlgorithm): asserts pair is CryptoKeyPair {
  const p = pair as Partial<CryptoKeyPair> | null;
  const ok = (k: unknown, type: string) =>
    typeof k === 'object' && k !== null && (k as CryptoKey).type === type && typeof (k as CryptoKey).algorithm === 'object';
  if (typeof p !== 'object' || p === null || !ok(p.privateKey, 'private') || !ok(p.publicKey, 'public')) {
    throw argumentError('ERR_INVALID_ARG_TYPE', 'options.keyPair must be a WebCrypto CryptoKeyPair');
  }
  const algorithm = p.privateKey!.algorithm as EcKeyAlgorithm;
  const fits = alg === 'ES256' ? algorithm.name === 'ECDSA' && algorithm.namedCurve === 'P-256' : algorithm.name === 'Ed25519';
  if (!fits) throw argumentError('ERR_INVALID_ARG_VALUE', `options.keyPair does not fit options.algorithm ${alg}`);
  if (!p.privateKey!.usages.includes('sign')) throw argumentError('ERR_INVALID_ARG_VALUE', "options.keyPair.privateKey must allow 'sign'");
}
