// Test fixtures: an authorization server's access tokens, callers' PoP tokens and DPoP proofs,
// and a loopback server whose issuer URL is known before the issuer is created.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';

export const T0 = 1_750_000_000;

/** A mutable clock in unix seconds. */
export function clock(start = T0): { now: () => number; set(t: number): void; advance(s: number): void } {
  let t = start;
  return { now: () => t, set: (v) => (t = v), advance: (s) => (t += s) };
}

export interface KeyPair {
  alg: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
  privateJwk: JWK;
}

export async function keyPair(alg: 'ES256' | 'Ed25519' | 'EdDSA' | 'ES384' = 'ES256'): Promise<KeyPair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { alg, privateKey, publicJwk: await exportJWK(publicKey), privateJwk: await exportJWK(privateKey) };
}

/** An authorization server minting JWT access tokens. */
export async function authorizationServer(issuer = 'https://login.example.com') {
  const kp = await keyPair('ES256');
  const jwks = { keys: [{ ...kp.publicJwk, kid: 'as-1', alg: 'ES256' }] };
  return {
    issuer,
    jwks,
    async accessToken(claims: Record<string, unknown>, options: { now: number; lifetime?: number; key?: KeyPair; typ?: string } ) {
      const key = options.key ?? kp;
      return new SignJWT({ iss: issuer, aud: 'https://op.test', iat: options.now, exp: options.now + (options.lifetime ?? 600), ...claims })
        .setProtectedHeader({ alg: key.alg, kid: 'as-1', typ: options.typ ?? 'at+jwt' })
        .sign(key.privateKey);
    },
  };
}

/** A caller's PoP token (OIDC² draft 4.2.2). */
export async function popToken(
  kp: KeyPair,
  claims: Record<string, unknown>,
  options: { now: number; header?: Record<string, unknown>; jwk?: JWK; lifetime?: number } ,
): Promise<string> {
  return new SignJWT({ iat: options.now, nbf: options.now, exp: options.now + (options.lifetime ?? 60), jti: randomUUID(), ...claims })
    .setProtectedHeader({ alg: kp.alg, typ: 'jwt+pop', jwk: options.jwk ?? kp.publicJwk, ...options.header })
    .sign(kp.privateKey);
}

/** An RFC 9449 DPoP proof without `ath`. */
export async function dpopProof(
  kp: KeyPair,
  claims: Record<string, unknown>,
  options: { now: number; header?: Record<string, unknown> },
): Promise<string> {
  return new SignJWT({ jti: randomUUID(), iat: options.now, ...claims })
    .setProtectedHeader({ alg: kp.alg, typ: 'dpop+jwt', jwk: kp.publicJwk, ...options.header })
    .sign(kp.privateKey);
}

/** A loopback server whose handler is set once its URL is known. */
export async function lateServer(): Promise<{ url: string; server: Server; use(h: (req: IncomingMessage, res: ServerResponse) => void): void; close(): Promise<void> }> {
  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.end();
  const server = createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    use: (h) => (handler = h),
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

export function form(params: Record<string, string>): string {
  return new URLSearchParams(params).toString();
}
