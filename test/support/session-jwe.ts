// Session tokens (docs/protocol.md section 7.4) made outside the service under a STEK the test knows: the honest
// shape, and every deviation an attacker with that STEK (or without it) could try. Built with jose's
// CompactEncrypt, so the service's checks, not jose's, are what the tests exercise.
import { randomBytes } from 'node:crypto';
import { CompactEncrypt, compactDecrypt, type CompactJWEHeaderParameters } from 'jose';
import type { SuiteName } from '@oidc2/core';
import type { SessionKeyJwk } from '@oidc2/core/adapter';
import type { E2eeSession } from './e2ee-caller';

/** A STEK as an operator would configure it in a StaticSessionKeyStore, and its raw octets. */
export function newStek(kid = `test-${randomBytes(6).toString('hex')}`): { jwk: SessionKeyJwk; key: Uint8Array } {
  const key = new Uint8Array(randomBytes(32));
  return { jwk: { kty: 'oct', kid, k: Buffer.from(key).toString('base64url') }, key };
}

export interface MintInput {
  /** The caller's `iss`, `sub` and base64url thumbprint. */
  caller: { iss: string; sub: string; jkt: string };
  /** The base URL the token is for. */
  aud: string;
  /** `iat`; `exp` defaults to `iat + 600`, `sat` to `iat`. */
  iat: number;
  exp?: number;
  sat?: number;
  ep?: number;
  suite?: SuiteName;
  /** Claims to add or replace (undefined removes one). */
  claims?: Record<string, unknown>;
}

/** The claims of an honest token and the session a caller would hold for it. */
export function sessionClaims(input: MintInput): { claims: Record<string, unknown>; rk: Uint8Array; sid: Uint8Array } {
  const rk = new Uint8Array(randomBytes(32));
  const sid = new Uint8Array(randomBytes(16));
  const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64url');
  const claims: Record<string, unknown> = {
    v: 1,
    sid: b64(sid),
    rk: b64(rk),
    suite: input.suite ?? 'x25519',
    ep: input.ep ?? 0,
    sat: input.sat ?? input.iat,
    iat: input.iat,
    exp: input.exp ?? input.iat + 600,
    aud: input.aud,
    iss: input.caller.iss,
    sub: input.caller.sub,
    cnf: { jkt: input.caller.jkt },
  };
  for (const [name, value] of Object.entries(input.claims ?? {})) {
    if (value === undefined) delete claims[name];
    else claims[name] = value;
  }
  return { claims, rk, sid };
}

/** A compact JWE of `claims` under `key`; the header defaults to the profile's exact header. */
export async function sealToken(claims: Record<string, unknown>, key: Uint8Array, header: CompactJWEHeaderParameters): Promise<string> {
  return new CompactEncrypt(new TextEncoder().encode(JSON.stringify(claims))).setProtectedHeader(header).encrypt(key);
}

/** The profile's header for `kid`. */
export function tokenHeader(kid: string): CompactJWEHeaderParameters {
  return { alg: 'dir', enc: 'A256GCM', kid, typ: 'oidc2-session+jwt' };
}

/** Mints a token under the STEK and returns the session a caller holding it would keep. */
export async function mintSession(stek: { jwk: SessionKeyJwk; key: Uint8Array }, input: MintInput): Promise<E2eeSession> {
  const { claims, rk, sid } = sessionClaims(input);
  const token = await sealToken(claims, stek.key, tokenHeader(stek.jwk.kid));
  return { token, rk, sid, suite: (claims.suite as SuiteName) ?? 'x25519', exp: Number(claims.exp), rekey: Number(claims.iat) + 480 };
}

/** Opens a token with a key (what anyone holding the STEK can do); undefined when it does not open. */
export async function openToken(token: string, key: Uint8Array): Promise<Record<string, unknown> | undefined> {
  try {
    const { plaintext } = await compactDecrypt(token, key, { keyManagementAlgorithms: ['dir'], contentEncryptionAlgorithms: ['A256GCM'] });
    return JSON.parse(new TextDecoder().decode(plaintext)) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** The `kid` of a token's protected header. */
export function tokenKid(token: string): string {
  return (JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as { kid: string }).kid;
}
