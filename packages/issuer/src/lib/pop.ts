// The OIDC² PoP token (draft section 4.2.2): a JWT of typ `jwt+pop`, signed by the key in its own
// `jwk` header, addressed to the issuer and valid for at most five minutes.
import { Oidc2Error, parsePublicJwk } from '@oidc2/core';
import { compactVerify, decodeProtectedHeader, importJWK, type JWK, type ProtectedHeaderParameters } from 'jose';
import { keyFitsAlgorithm, SIGNING_ALGORITHMS } from './keys.js';

/** Longest PoP token lifetime the draft allows (`exp - iat`), in seconds. */
export const MAX_POP_LIFETIME = 300;
const MAX_TOKEN_CHARS = 8192;
const MAX_LIST = 64;

/** A verified PoP token. */
export interface VerifiedPop {
  /** The key to certify: public members plus `alg`. */
  jwk: JWK;
  iss: string;
  sub: string;
  jti: string;
  exp: number;
  requiredClaims?: string[];
  optionalClaims?: string[];
  withAudience?: boolean;
}

function fail(code: 'pop_invalid' | 'pop_typ_invalid' | 'pop_key_invalid' | 'pop_expired' | 'pop_not_yet_valid' | 'pop_lifetime_exceeded' | 'audience_mismatch', message: string): never {
  throw new Oidc2Error(code, message);
}

function stringList(value: unknown, name: string): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.length > MAX_LIST || !value.every((v) => typeof v === 'string' && v.length > 0 && v.length <= 128)) {
    fail('pop_invalid', `${name} must be an array of claim names`);
  }
  return value as string[];
}

/** Verifies a PoP token for an issuer; every check that can fail has its own code. */
export async function verifyPopToken(token: string, options: { issuer: string; now: number; clockTolerance: number }): Promise<VerifiedPop> {
  if (token.length > MAX_TOKEN_CHARS) fail('pop_invalid', 'PoP token is too large');
  let header: ProtectedHeaderParameters;
  try {
    header = decodeProtectedHeader(token);
  } catch {
    fail('pop_invalid', 'PoP token is not a JWS');
  }
  const typ = typeof header.typ === 'string' ? header.typ.toLowerCase() : '';
  if (typ !== 'jwt+pop' && typ !== 'application/jwt+pop') fail('pop_typ_invalid', 'PoP token typ must be jwt+pop');
  const alg = header.alg;
  if (typeof alg !== 'string' || !(SIGNING_ALGORITHMS as readonly string[]).includes(alg)) fail('pop_invalid', 'PoP token alg is not an accepted asymmetric algorithm');
  if (header.crit !== undefined) fail('pop_invalid', 'PoP token has unsupported critical header parameters');
  const jwk = header.jwk as Record<string, unknown> | undefined;
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) fail('pop_key_invalid', 'PoP token has no jwk header');
  // Public members only, well-formed coordinates; private material (`d`, ...) is refused.
  const key = parsePublicJwk(jwk);
  if (key === undefined) fail('pop_key_invalid', 'PoP token jwk must be a supported public key without private members');
  if (!keyFitsAlgorithm(key, alg)) fail('pop_key_invalid', 'PoP token jwk does not fit its alg');
  if (jwk.alg !== undefined && jwk.alg !== alg) fail('pop_key_invalid', 'PoP token jwk alg differs from the header alg');

  let payloadBytes: Uint8Array;
  try {
    const verifyKey = await importJWK(key, alg);
    ({ payload: payloadBytes } = await compactVerify(token, verifyKey, { algorithms: [alg] }));
  } catch {
    fail('pop_invalid', 'PoP token signature does not verify with its jwk');
  }
  let payload: Record<string, unknown>;
  try {
    payload = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payloadBytes)) as Record<string, unknown>;
  } catch {
    fail('pop_invalid', 'PoP token payload is not JSON');
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) fail('pop_invalid', 'PoP token payload is not a JSON object');

  const { iss, sub, aud, iat, nbf, exp, jti } = payload;
  if (typeof iss !== 'string' || iss.length === 0) fail('pop_invalid', 'PoP token iss is missing');
  if (typeof sub !== 'string' || sub.length === 0) fail('pop_invalid', 'PoP token sub is missing');
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > 256) fail('pop_invalid', 'PoP token jti is missing or too long');
  if (typeof iat !== 'number' || !Number.isFinite(iat)) fail('pop_invalid', 'PoP token iat is missing');
  if (typeof exp !== 'number' || !Number.isFinite(exp)) fail('pop_invalid', 'PoP token exp is missing');
  if (nbf !== undefined && (typeof nbf !== 'number' || !Number.isFinite(nbf))) fail('pop_invalid', 'PoP token nbf is not a number');
  if (exp < iat) fail('pop_invalid', 'PoP token expires before it was issued');
  if (exp - iat > MAX_POP_LIFETIME) fail('pop_lifetime_exceeded', `PoP token lifetime exceeds ${MAX_POP_LIFETIME} seconds`);
  const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) && aud.every((a) => typeof a === 'string') ? (aud as string[]) : undefined;
  if (audiences === undefined || !audiences.includes(options.issuer)) fail('audience_mismatch', 'PoP token aud is not this issuer');
  const { now, clockTolerance } = options;
  if (now > exp + clockTolerance) fail('pop_expired', 'PoP token has expired');
  if (iat > now + clockTolerance || (typeof nbf === 'number' && nbf > now + clockTolerance)) fail('pop_not_yet_valid', 'PoP token is not yet valid');

  const withAudience = payload.with_audience;
  if (withAudience !== undefined && typeof withAudience !== 'boolean') fail('pop_invalid', 'with_audience must be a boolean');
  const requiredClaims = stringList(payload.required_claims, 'required_claims');
  const optionalClaims = stringList(payload.optional_claims, 'optional_claims');
  return {
    jwk: { ...key, alg },
    iss,
    sub,
    jti,
    exp,
    ...(requiredClaims ? { requiredClaims } : {}),
    ...(optionalClaims ? { optionalClaims } : {}),
    ...(withAudience !== undefined ? { withAudience } : {}),
  };
}
