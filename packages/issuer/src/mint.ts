// ICT and WIT minting (docs/protocol.md sections 1, 3a): the certified key in `cnf.jwk`, for an ICT the granted
// contexts in `ctx`; signed by the active key; never outliving the credential that authorised it.
import { randomBytes } from 'node:crypto';
import { Oidc2Error } from '@oidc2/core';
import { calculateJwkThumbprint, SignJWT, type JWK } from 'jose';
import { ICT_TYP, WIT_TYP } from './constants.js';
import type { Grant } from './policy.js';
import type { IssuerState } from './state.js';
import type { Authentication } from './types.js';

/** A signed ICT and its remaining lifetime in seconds. */
export interface MintedIct {
  token: string;
  expiresIn: number;
}

/** Signs an ICT for `auth` certifying `jwk`, with audience `aud` when given. */
export async function mintIct(state: Pick<IssuerState, 'issuer' | 'now' | 'ictLifetime' | 'keys'>, auth: Authentication, grant: Grant, jwk: JWK, aud: string | undefined): Promise<MintedIct> {
  const t = Math.floor(state.now());
  let exp = t + state.ictLifetime;
  if (auth.expiresAt !== undefined) exp = Math.min(exp, Math.floor(auth.expiresAt));
  if (exp <= t) throw new Oidc2Error('access_token_expired', 'the credential expires now');
  const key = await state.keys.active(state.now());
  const payload: Record<string, unknown> = {
    ...grant.claims,
    iss: state.issuer,
    sub: auth.subject,
    ...(aud !== undefined ? { aud } : {}),
    iat: t,
    nbf: t,
    exp,
    jti: randomBytes(16).toString('base64url'),
    cnf: { jwk },
    ctx: grant.contexts,
  };
  const token = await new SignJWT(payload).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: ICT_TYP }).sign(key.key);
  return { token, expiresIn: exp - t };
}

/** A signed WIT and its remaining lifetime in seconds. */
export type MintedWit = MintedIct;

/**
 * Signs a WIT (draft-ietf-wimse-workload-creds 3.1) for the Workload Identifier `subject` binding
 * `jwk` (public members plus `alg`, the algorithm proofs must use). No audience, contexts or
 * identity claims: a WIT says who the workload is and which key it holds, nothing else.
 */
export async function mintWit(
  state: Pick<IssuerState, 'issuer' | 'now' | 'keys'> & { workloads: { lifetime: number } },
  auth: Authentication,
  subject: string,
  jwk: JWK,
): Promise<MintedWit> {
  const t = Math.floor(state.now());
  let exp = t + state.workloads.lifetime;
  if (auth.expiresAt !== undefined) exp = Math.min(exp, Math.floor(auth.expiresAt));
  if (exp <= t) throw new Oidc2Error('access_token_expired', 'the credential expires now');
  const key = await state.keys.active(state.now());
  const payload = { iss: state.issuer, sub: subject, iat: t, exp, jti: randomBytes(16).toString('base64url'), cnf: { jwk } };
  const token = await new SignJWT(payload).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: WIT_TYP }).sign(key.key);
  return { token, expiresIn: exp - t };
}

/** Whether `jwk` has the RFC 7638 SHA-256 thumbprint a sender-constrained credential names. */
export async function hasThumbprint(jwk: JWK, thumbprint: string): Promise<boolean> {
  return (await calculateJwkThumbprint(jwk, 'sha256')) === thumbprint;
}
