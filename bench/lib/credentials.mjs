// Bench credentials: one issuer (ES256) whose JWKS every verifier trusts, ICTs certifying caller
// and service keys, and a plain bearer JWT for the peer middlewares. Minted fresh on every run.
import { createPublicKey } from 'node:crypto';
import { loadJose } from './env.mjs';

export const ISSUER = 'https://op.bench.test';
/** The service's public base URL as callers name it in `oidc2-aud` (requests still go to 127.0.0.1). */
export const AUDIENCE = 'https://api.bench.test';
export const ROUTE = '/hello';

const jose = await loadJose();

/** A fresh key pair with its public and private JWKs. */
export async function newKey(alg = 'ES256') {
  const { publicKey, privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  const publicJwk = await jose.exportJWK(publicKey);
  const privateJwk = await jose.exportJWK(privateKey);
  return { alg, publicJwk, privateJwk, privateKey };
}

/** The issuer: its JWKS, an ICT minter and a bearer-JWT minter. */
export async function newIssuer(issuer = ISSUER) {
  const key = await newKey('ES256');
  const kid = (await jose.calculateJwkThumbprint(key.publicJwk)).slice(0, 16);
  const jwks = { keys: [{ ...key.publicJwk, kid, alg: 'ES256', use: 'sig' }] };
  const publicPem = createPublicKey({ key: key.publicJwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
  const times = (lifetime) => {
    const now = Math.floor(Date.now() / 1000);
    return [now, now + lifetime];
  };
  return {
    issuer,
    kid,
    jwks,
    publicPem,
    /** An ICT certifying `holder`'s public key (with its `alg`), as docs/protocol.md section 1 describes. */
    async mintIct(holder, subject, lifetime = 3600) {
      const [iat, exp] = times(lifetime);
      return new jose.SignJWT({ cnf: { jwk: { ...holder.publicJwk, alg: holder.alg } } })
        .setProtectedHeader({ alg: 'ES256', kid, typ: 'ict+jwt' })
        .setIssuer(issuer)
        .setSubject(subject)
        .setIssuedAt(iat)
        .setExpirationTime(exp)
        .sign(key.privateKey);
    },
    /** An ordinary ES256 access token for express-jwt, @fastify/jwt and koa-jwt. */
    async mintBearer(subject, audience, lifetime = 3600) {
      const [iat, exp] = times(lifetime);
      return new jose.SignJWT({})
        .setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT' })
        .setIssuer(issuer)
        .setSubject(subject)
        .setAudience(audience)
        .setIssuedAt(iat)
        .setExpirationTime(exp)
        .sign(key.privateKey);
    },
  };
}
