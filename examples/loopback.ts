// What the examples need and a deployment already has, all on 127.0.0.1: an OpenID Provider that
// signs users' access tokens, and an oidc2 issuer that certifies users (by those access tokens)
// and services (by their API keys).
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { SignJWT, exportJWK, generateKeyPair } from 'jose'
import { apiKeys, createIssuer, hashApiKey, jwtAccessTokens, type Issuer } from '@oidc2/issuer'

export interface Listening {
  server: Server
  /** The base URL callers use: the service's audience, or the issuer identifier. */
  url: string
  close(): Promise<void>
}

/** A server on a free port of 127.0.0.1, listening before the app is attached: a service needs its URL first. */
export async function listen(): Promise<Listening> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    server,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  }
}

export interface LocalIssuer {
  issuer: Issuer
  url: string
  /** The API key of one of the `services`. */
  apiKey(subject: string): string
  /** An access token for the user `subject`, as the OpenID Provider hands one to an app at login. */
  accessToken(subject: string): Promise<string>
}

const LOGIN = 'https://login.example.local'

/**
 * An issuer at `url` (not listening: mount `issuer.nodeHandler`) for users of the login OP and for
 * `services`; with `trustDomain` it also issues WITs to those services.
 */
export async function createLocalIssuer(url: string, services: string[], trustDomain?: string): Promise<LocalIssuer> {
  const login = await generateKeyPair('ES256')
  const keys = new Map(services.map((subject) => [subject, randomBytes(32).toString('base64url')]))
  const issuer = await createIssuer({
    issuer: url,
    authenticators: [
      jwtAccessTokens({ issuer: LOGIN, audience: url, jwks: { keys: [{ ...(await exportJWK(login.publicKey)), kid: 'login', alg: 'ES256' }] } }),
      apiKeys({ keys: [...keys].map(([subject, key]) => ({ hash: hashApiKey(key), subject })) }),
    ],
    ...(trustDomain ? { workloads: { trustDomain } } : {}),
  })
  return {
    issuer,
    url,
    apiKey: (subject) => keys.get(subject)!,
    accessToken: (subject) =>
      new SignJWT({ scope: 'openid e2e_auth_orders' })
        .setProtectedHeader({ alg: 'ES256', kid: 'login', typ: 'at+jwt' })
        .setIssuer(LOGIN)
        .setAudience(url)
        .setSubject(subject)
        .setIssuedAt()
        .setExpirationTime('10m')
        .sign(login.privateKey),
  }
}

/** {@link createLocalIssuer} on a server of its own. */
export async function startIssuer(services: string[], trustDomain?: string): Promise<LocalIssuer & Listening> {
  const http = await listen()
  const local = await createLocalIssuer(http.url, services, trustDomain)
  http.server.on('request', local.issuer.nodeHandler)
  return { ...http, ...local }
}

/** Closes `servers` in order; with `--serve`, only after Ctrl-C. */
export async function finish(...servers: Array<{ close(): Promise<void> }>): Promise<void> {
  if (process.argv.includes('--serve')) {
    console.log('serving until Ctrl-C')
    await once(process, 'SIGINT')
  }
  for (const server of servers) await server.close()
}
