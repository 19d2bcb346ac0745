// An Express service protected by oidc2, called by alice: `pnpm example express`.
import express from 'express'
import { oidc2, oidc2ErrorHandler } from '@oidc2/express'
import { ORDERS, callAsAlice, ordersOptions } from '../orders.js'
import { finish, listen, startIssuer } from '../loopback.js'

const issuer = await startIssuer([ORDERS])
const http = await listen()

const auth = oidc2(ordersOptions(issuer, http.url))

const app = express()
app.post('/orders', auth.with({ encryption: 'required' }), express.json(), (req, res) => {
  res.status(201).json({ caller: req.identity!.subject, order: req.body })
})
// Every other route, and the endpoint where callers open encrypted sessions.
app.use(auth, express.json())
app.get('/me', (req, res) => {
  res.json({ caller: req.identity!.subject, kind: req.identity!.kind, proof: req.identity!.proof })
})
app.use(oidc2ErrorHandler())
http.server.on('request', app)

console.log(`issuer ${issuer.url}; Express service ${http.url}, answering as ${ORDERS}`)
await callAsAlice(issuer, http.url)
await finish(http, issuer)
