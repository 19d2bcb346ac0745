/**
 * The service's own credential (PROFILE section 3): an ICT and the private key it certifies, fixed
 * or from a provider that is called again before the ICT expires.
 */
import { decodeJwt, type JWK } from 'jose';
import { Oidc2Error } from './errors.js';
import type { ServiceCredential } from './response-signature.js';
import { importKey, keyHandleFrom, type KeyHandle } from './lib/crypto.js';
import { CredentialRefresher, renewalTime, type Renewable } from './lib/credential-refresh.js';
import { argumentError, assertOptions } from './lib/validate.js';

/** The service's credential as configured: its ICT and the private key it certifies. */
export interface CredentialInput {
  /** The service's ICT (compact JWT) whose `cnf.jwk` is the public half of `privateKey`. */
  ict: string;
  /** The private key: a private JWK, a CryptoKey / KeyObject, or a handle from `importKey`. */
  privateKey: JWK | CryptoKey | KeyHandle | object;
  /** JWA algorithm of the key. Default: `cnf.jwk.alg` of the ICT, else the curve's default. */
  alg?: string;
}

/** A fixed credential, or a provider called again before the current ICT expires. */
export type CredentialSource = CredentialInput | (() => CredentialInput | Promise<CredentialInput>);

const CREDENTIAL_KEYS = ['ict', 'privateKey', 'alg'] as const;
const CURVE_ALG: Record<string, string> = { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512', Ed25519: 'Ed25519' };

/** Checks a configured credential source once, at construction. */
export function assertCredentialSource(source: unknown, name: string): asserts source is CredentialSource | undefined {
  if (source === undefined || typeof source === 'function') return;
  if (typeof source !== 'object' || source === null || typeof (source as CredentialInput).ict !== 'string') {
    throw argumentError('ERR_INVALID_ARG_VALUE', `${name} must be { ict, privateKey } or a function returning it`);
  }
  assertOptions(source, CREDENTIAL_KEYS, name);
}

async function toServiceCredential(input: CredentialInput, now: number, margin: number, renews: boolean): Promise<ServiceCredential & Renewable> {
  assertCredentialSource(input, 'credential');
  let claims;
  try {
    claims = decodeJwt(input.ict);
  } catch {
    throw argumentError('ERR_INVALID_ARG_VALUE', 'credential.ict is not a JWT');
  }
  const cnf = (claims.cnf as { jwk?: JWK } | undefined)?.jwk;
  const alg = input.alg ?? cnf?.alg ?? (cnf?.crv ? CURVE_ALG[cnf.crv] : undefined);
  if (!alg) throw argumentError('ERR_INVALID_ARG_VALUE', 'credential.alg is required when the ICT key names no algorithm');
  const pk = input.privateKey as Partial<KeyHandle> & JWK;
  let key: KeyHandle;
  if (pk === null || typeof pk !== 'object') throw argumentError('ERR_INVALID_ARG_TYPE', 'credential.privateKey must be a JWK, a CryptoKey, a KeyObject or a key handle');
  if (pk.spec !== undefined && pk.usage !== undefined) key = pk as KeyHandle;
  else if (typeof pk.kty === 'string') key = await importKey(pk, alg, 'sign');
  else key = keyHandleFrom(pk as unknown as CryptoKey, alg, 'sign');
  const expiresAt = typeof claims.exp === 'number' ? claims.exp : Infinity;
  // A fixed credential is never renewed; a provider's is renewed `margin` before expiry, or half-way
  // for credentials shorter-lived than twice the margin, so a provider handing out short ICTs is
  // not called on every response.
  const renewAt = renews && Number.isFinite(expiresAt) ? renewalTime(expiresAt, typeof claims.iat === 'number' ? claims.iat : undefined, now, margin) : Infinity;
  return { ict: input.ict, key, expiresAt, renewAt };
}

/**
 * The service credential as a function returning the current one, renewed single-flight; a failed
 * renewal keeps the old credential until it expires, then fails with `response_signing_unavailable`.
 */
export function serviceCredentialProvider(source: CredentialSource, margin: number, now: () => number): () => Promise<ServiceCredential> {
  const renews = typeof source === 'function';
  const refresher = new CredentialRefresher(
    async () => toServiceCredential(typeof source === 'function' ? await source() : source, now(), margin, renews),
    now,
    (cause) => new Oidc2Error('response_signing_unavailable', 'the service credential is unavailable', { cause }),
  );
  return () => refresher.get();
}
