// A Fastify service protected by oidc2, called by alice: `pnpm example fastify`.
import Fastify from 'fastify'
import { oidc2 } from '@oidc2/fastify'
import { ORDERS, callAsAlice, ordersOptions } from '../orders.js'
import { finish, listen, startIssuer } from '../loopback.js'

const issuer = await startIssuer([ORDERS])
const http = await listen()

const app = Fastify({ serverFactory: (handler) => http.server.on('request', handler) })
await app.register(oidc2, ordersOptions(issuer, http.url))
app.get('/me', async (request) => ({ caller: request.identity!.subject, kind: request.identity!.kind, proof: request.identity!.proof }))
app.post('/orders', { config: { oidc2: { encryption: 'required' } } }, async (request, reply) =>
  reply.code(201).send({ caller: request.identity!.subject, order: request.body }),
)
await app.ready()

console.log(`issuer ${issuer.url}; Fastify service ${http.url}, answering as ${ORDERS}`)
await callAsAlice(issuer, http.url)
await finish(app, http, issuer)
