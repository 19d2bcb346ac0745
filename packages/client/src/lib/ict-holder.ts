// The client's ICT as held between renewals (the core's single-flight CredentialRefresher renews it).
import { calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, type JWK } from 'jose';
import { Oidc2Error } from '@oidc2/core';
import { renewalTime, type Renewable } from '@oidc2/core/adapter';

export interface HeldIct extends Renewable {
  token: string;
  /** `iss` and `sub` of the ICT: the caller's identity in e2ee transcripts (`''` for an absent `iss`). */
  issuer: string;
  subject: string;
}

/** Reads the claims the client relies on and checks that the ICT certifies `thumbprint`. */
export async function inspectIct(token: unknown, thumbprint: string, now: number, margin: number): Promise<HeldIct> {
  if (typeof token !== 'string' || token.split('.').length !== 3) throw new Oidc2Error('ict_malformed', 'the issuer returned no compact JWT');
  let claims: Record<string, unknown>;
  try {
    decodeProtectedHeader(token);
    claims = decodeJwt(token);
  } catch (error) {
    throw new Oidc2Error('ict_malformed', 'the issuer returned a token that is not a JWT', { cause: error });
  }
  const exp = claims.exp;
  if (typeof exp !== 'number' || !Number.isFinite(exp)) throw new Oidc2Error('ict_claim_missing', 'the issued ICT has no exp');
  if (exp <= now) throw new Oidc2Error('ict_expired', 'the issued ICT has already expired');
  const cnf = claims.cnf as { jwk?: JWK; jkt?: unknown } | undefined;
  let certified = cnf?.jkt;
  if (typeof cnf?.jwk === 'object' && cnf.jwk !== null) certified = await calculateJwkThumbprint(cnf.jwk).catch(() => undefined);
  if (certified !== thumbprint) throw new Oidc2Error('ict_cnf_invalid', "the issued ICT does not certify this client's key");
  const issuer = typeof claims.iss === 'string' ? claims.iss : '';
  const subject = typeof claims.sub === 'string' ? claims.sub : '';
  return { token, issuer, subject, expiresAt: exp, renewAt: renewalTime(exp, typeof claims.iat === 'number' ? claims.iat : undefined, now, margin) };
}
