// The servers behind the page, on 127.0.0.1: the page's origin (the page, a login stand-in and the
// oidc2 issuer) and, on another origin, the orders service, which lets the page call it by CORS.
import type { Server } from 'node:http'
import express, { type RequestHandler } from 'express'
import { oidc2 } from '@oidc2/express'
import { ORDERS, ordersOptions } from '../orders.js'
import { createLocalIssuer, listen } from '../loopback.js'

/** CORS for `origin`: the page may send the oidc2 fields and read them in the answer. */
function cors(origin: string): RequestHandler {
  return (req, res, next) => {
    res.set({
      'access-control-allow-origin': origin,
      'access-control-expose-headers': 'identity-certification-token, signature, signature-input, content-digest, content-encoding, oidc2-key-share, oidc2-session, www-authenticate',
      vary: 'origin',
    })
    if (req.method !== 'OPTIONS') return next()
    res.set({
      'access-control-allow-methods': 'GET, POST',
      'access-control-allow-headers': 'content-type, content-digest, content-encoding, identity-certification-token, signature, signature-input, oidc2-key-share, oidc2-session',
      'access-control-max-age': '600',
    })
    res.status(204).end()
  }
}

export interface Backend {
  pageUrl: string
  /** The page origin's server (Vite's HMR connects through it). */
  server: Server
  /** Serves the app with `page`: Vite's dev server, or the files of a build. */
  servePage(page: RequestHandler): void
  close(): Promise<void>
}

/** Starts both origins. */
export async function startBackend(): Promise<Backend> {
  const site = await listen()
  const api = await listen()
  const issuer = await createLocalIssuer(`${site.url}/oidc2`, [ORDERS])

  const app = express()
  app.use('/oidc2', issuer.issuer.nodeHandler)
  // Stands for the OpenID Provider's login, after which the app holds alice's access token.
  app.post('/login', async (_req, res) => {
    res.json({ subject: 'alice', accessToken: await issuer.accessToken('alice') })
  })
  app.get('/config.json', (_req, res) => {
    res.json({ issuer: issuer.url, service: ORDERS, serviceUrl: api.url })
  })
  let page: RequestHandler = (_req, _res, next) => next()
  app.use((req, res, next) => page(req, res, next))
  site.server.on('request', app)

  const service = express()
  service.use(
    cors(site.url),
    oidc2({ ...ordersOptions(issuer, api.url), policy: { encryption: 'required' } }),
    express.json(),
  )
  service.post('/orders', (req, res) => {
    res.status(201).json({ caller: req.identity!.subject, order: req.body })
  })
  api.server.on('request', service)

  return {
    pageUrl: site.url,
    server: site.server,
    servePage: (handler) => (page = handler),
    close: async () => (await api.close(), await site.close()),
  }
}
