// Holds the client's ICT and renews it before it expires. Renewal is single-flight: however many
// requests find the token stale at once, one issuance runs and all of them wait for it.
import { calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, type JWK } from 'jose';
import { Oidc2Error, isOidc2Error } from '@oidc2/core';

export interface HeldIct {
  token: string;
  expiresAt: number;
  /** When to start renewing: `margin` before expiry, or half-way for tokens shorter than twice the margin. */
  renewAt: number;
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
  const iat = typeof claims.iat === 'number' ? claims.iat : now;
  return { token, expiresAt: exp, renewAt: exp - Math.min(margin, (exp - Math.min(iat, now)) / 2) };
}

export class IctHolder {
  #current: HeldIct | undefined;
  #pending: Promise<HeldIct> | undefined;

  constructor(
    private readonly obtain: () => Promise<HeldIct>,
    private readonly now: () => number,
  ) {}

  /** A valid ICT: the held one, or a fresh one when it is due for renewal. */
  async get(): Promise<string> {
    const t = this.now();
    const held = this.#current;
    if (held && held.renewAt > t) return held.token;
    this.#pending ??= this.obtain().finally(() => {
      this.#pending = undefined;
    });
    try {
      this.#current = await this.#pending;
    } catch (error) {
      // A failed renewal keeps the old token in use for as long as it is still valid.
      if (held && held.expiresAt > this.now()) return held.token;
      if (isOidc2Error(error)) throw error;
      throw new Oidc2Error('issuer_unavailable', 'no ICT could be obtained', { cause: error });
    }
    return this.#current.token;
  }

  /** Forgets the held ICT, so the next request obtains a new one. */
  clear(): void {
    this.#current = undefined;
  }
}
