// The client's WIT as held between renewals (the core's single-flight CredentialRefresher renews
// it, as it does the ICT): checked once when obtained, so that a WIT for another key or without the
// algorithm its proofs must use fails here, with a code, not at the service.
import { calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, type JWK } from 'jose';
import { Oidc2Error, WIT_TYPE } from '@oidc2/core';
import { renewalTime } from '@oidc2/core/adapter';
import type { HeldIct } from './ict-holder.js';
import type { ClientAlgorithm } from './keys.js';

/** A held WIT: as a held ICT, plus the algorithm its `cnf.jwk` fixes for every proof. */
export interface HeldWit extends HeldIct {
  /** `cnf.jwk.alg`. */
  alg: string;
}

// The `cnf.jwk.alg` values that fit each key the client generates.
const FITTING: Record<ClientAlgorithm, readonly string[]> = { ES256: ['ES256'], Ed25519: ['Ed25519', 'EdDSA'] };

function invalid(message: string, cause?: unknown): Oidc2Error {
  return new Oidc2Error('wit_invalid', message, cause === undefined ? undefined : { cause });
}

/**
 * Reads the claims the client relies on and checks that the WIT certifies the client's key
 * (`thumbprint`) with an algorithm that fits it (`alg`). Throws `wit_invalid` or `wit_expired`.
 */
export async function inspectWit(token: unknown, thumbprint: string, alg: ClientAlgorithm, now: number, margin: number): Promise<HeldWit> {
  if (typeof token !== 'string' || token.split('.').length !== 3) throw invalid('the WIT is not a compact JWT');
  let claims: Record<string, unknown>;
  let typ: unknown;
  try {
    typ = decodeProtectedHeader(token).typ;
    claims = decodeJwt(token);
  } catch (error) {
    throw invalid('the WIT is not a JWT', error);
  }
  if (typeof typ !== 'string' || typ.toLowerCase() !== WIT_TYPE) throw invalid('the token is not a WIT (typ wit+jwt)');
  if (typeof claims.sub !== 'string' || claims.sub.length === 0) throw invalid('the WIT has no sub');
  const exp = claims.exp;
  if (typeof exp !== 'number' || !Number.isFinite(exp)) throw invalid('the WIT has no exp');
  if (exp <= now) throw new Oidc2Error('wit_expired', 'the WIT has already expired');
  const jwk = (claims.cnf as { jwk?: JWK } | undefined)?.jwk;
  const certified = typeof jwk === 'object' && jwk !== null ? await calculateJwkThumbprint(jwk).catch(() => undefined) : undefined;
  if (certified !== thumbprint) throw invalid("the WIT does not certify this client's key");
  if (typeof jwk!.alg !== 'string' || !FITTING[alg].includes(jwk!.alg)) throw invalid(`the WIT cnf.jwk.alg does not fit the client's ${alg} key`);
  return {
    token,
    issuer: typeof claims.iss === 'string' ? claims.iss : '',
    subject: claims.sub,
    alg: jwk!.alg,
    expiresAt: exp,
    renewAt: renewalTime(exp, typeof claims.iat === 'number' ? claims.iat : undefined, now, margin),
  };
}
