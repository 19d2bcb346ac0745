// A Koa service protected by oidc2, called by alice: `pnpm example koa`.
import Koa from 'koa'
import Router from '@koa/router'
import { bodyParser } from '@koa/bodyparser'
import { oidc2 } from '@oidc2/koa'
import { ORDERS, callAsAlice, ordersOptions } from '../orders.js'
import { finish, listen, startIssuer } from '../loopback.js'

const issuer = await startIssuer([ORDERS])
const http = await listen()

const auth = oidc2(ordersOptions(issuer, http.url))

const router = new Router()
router.get('/me', auth, (ctx) => {
  ctx.body = { caller: ctx.state.identity!.subject, kind: ctx.state.identity!.kind, proof: ctx.state.identity!.proof }
})
router.post('/orders', auth.with({ encryption: 'required' }), bodyParser(), (ctx) => {
  ctx.status = 201
  ctx.body = { caller: ctx.state.identity!.subject, order: ctx.request.body }
})
// `auth` last answers the endpoint where callers open encrypted sessions, and refuses the rest.
const app = new Koa().use(router.routes()).use(auth)
http.server.on('request', app.callback())

console.log(`issuer ${issuer.url}; Koa service ${http.url}, answering as ${ORDERS}`)
await callAsAlice(issuer, http.url)
await finish(http, issuer)
