// Test credentials: a trusted issuer with a signing key, and ICTs for freshly generated caller keys.
// Every test mints its own tokens, so nothing here is a fixed answer.
import { SignJWT, importJWK, exportJWK, generateKeyPair, calculateJwkThumbprint, type JWK } from 'jose';
import { importKey, type KeyHandle } from '../../packages/core/src/lib/crypto';

export type KeyAlg = 'ES256' | 'Ed25519' | 'ES384' | 'PS256';

export interface TestKey {
  alg: KeyAlg;
  publicJwk: JWK;
  privateJwk: JWK;
  /** Signing handle for lib/crypto. */
  signer: KeyHandle;
  thumbprint: string;
}

export async function newKey(alg: KeyAlg = 'ES256'): Promise<TestKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const privateJwk = await exportJWK(privateKey);
  return { alg, publicJwk, privateJwk, signer: await importKey(privateJwk, alg, 'sign'), thumbprint: await calculateJwkThumbprint(publicJwk) };
}

export interface TestIssuer {
  issuer: string;
  kid: string;
  key: TestKey;
  /** The public JWKS to configure in a verifier. */
  jwks: { keys: JWK[] };
  /** Mints an ICT certifying `holder`'s public key. */
  mint(holder: TestKey | JWK, options?: MintOptions): Promise<string>;
}

export interface MintOptions {
  subject?: string;
  now?: number;
  lifetime?: number;
  contexts?: string[];
  claims?: Record<string, unknown>;
  typ?: string;
  /** Use cnf.jkt instead of cnf.jwk. */
  jkt?: boolean;
  /** Include `alg` in cnf.jwk (default true). */
  cnfAlg?: boolean;
}

export async function newIssuer(issuer = 'https://op.test.example', alg: KeyAlg = 'ES256'): Promise<TestIssuer> {
  const key = await newKey(alg);
  const kid = key.thumbprint.slice(0, 16);
  const signing = await importJWK(key.privateJwk, alg);
  return {
    issuer,
    kid,
    key,
    jwks: { keys: [{ ...key.publicJwk, kid, alg, use: 'sig' }] },
    async mint(holder, options = {}) {
      const jwk: JWK = 'publicJwk' in holder ? { ...(holder as TestKey).publicJwk } : { ...(holder as JWK) };
      if (options.cnfAlg !== false && 'alg' in holder && typeof (holder as TestKey).alg === 'string') jwk.alg = (holder as TestKey).alg;
      const now = Math.floor(options.now ?? Date.now() / 1000);
      const cnf = options.jkt ? { jkt: await calculateJwkThumbprint(jwk) } : { jwk };
      return new SignJWT({ cnf, ...(options.contexts ? { ctx: options.contexts } : {}), ...options.claims })
        .setProtectedHeader({ alg, kid, typ: options.typ ?? 'ict+jwt' })
        .setIssuer(issuer)
        .setSubject(options.subject ?? 'alice')
        .setIssuedAt(now)
        .setExpirationTime(now + (options.lifetime ?? 300))
        .sign(signing);
    },
  };
}
