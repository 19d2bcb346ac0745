// Test workload credentials: a trust domain with a WIT issuer key, and WITs for freshly generated
// workload keys. Every test mints its own tokens.
import { SignJWT, importJWK, type JWK } from 'jose';
import { newKey, type KeyAlg, type TestKey } from '../../../../test/support/credentials';

export interface TestTrustDomain {
  trustDomain: string;
  /** The `iss` its WITs carry, when they carry one. */
  issuer: string | undefined;
  key: TestKey;
  kid: string;
  /** The public JWKS of the WIT issuer. */
  jwks: { keys: JWK[] };
  /** Mints a WIT certifying `holder`'s key (its `alg` goes into `cnf.jwk`). */
  mint(holder: TestKey, options?: WitMintOptions): Promise<string>;
}

export interface WitMintOptions {
  /** The Workload Identifier. Default `spiffe://<trust domain>/workload`. */
  subject?: string;
  now?: number;
  /** Seconds. Default 600. */
  lifetime?: number;
  /** Further claims, e.g. to override `iss`. */
  claims?: Record<string, unknown>;
  typ?: string;
}

/** A trust domain whose issuer signs WITs with a new `alg` key; `issuer` (default none) becomes their `iss`. */
export async function newTrustDomain(trustDomain = 'workloads.example', init: { issuer?: string; alg?: KeyAlg } = {}): Promise<TestTrustDomain> {
  const alg = init.alg ?? 'ES256';
  const key = await newKey(alg);
  const kid = `wit-${key.thumbprint.slice(0, 8)}`;
  const signing = await importJWK(key.privateJwk, alg);
  return {
    trustDomain,
    issuer: init.issuer,
    key,
    kid,
    jwks: { keys: [{ ...key.publicJwk, kid, alg }] },
    async mint(holder, options = {}) {
      const now = Math.floor(options.now ?? Date.now() / 1000);
      const claims = {
        sub: options.subject ?? `spiffe://${trustDomain}/workload`,
        ...(init.issuer !== undefined ? { iss: init.issuer } : {}),
        iat: now,
        exp: now + (options.lifetime ?? 600),
        jti: `wit-${Math.random().toString(36).slice(2)}`,
        cnf: { jwk: { ...holder.publicJwk, alg: holder.alg } },
        ...options.claims,
      };
      return new SignJWT(claims).setProtectedHeader({ alg, kid, typ: options.typ ?? 'wit+jwt' }).sign(signing);
    },
  };
}
