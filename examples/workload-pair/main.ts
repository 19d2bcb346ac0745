// Two services of one trust domain: orders (Express) calls ledger (Fastify) as a workload, with a
// WIT of its own, and ledger sees that workload as its caller: `pnpm example workload-pair`.
import express from 'express'
import Fastify from 'fastify'
import { createClient, serviceCredential } from '@oidc2/client'
import { oidc2 as expressOidc2 } from '@oidc2/express'
import { oidc2 as fastifyOidc2 } from '@oidc2/fastify'
import { ORDERS, aliceClient, ordersOptions } from '../orders.js'
import { finish, listen, startIssuer } from '../loopback.js'

const TRUST_DOMAIN = 'example.local'
const LEDGER = 'spiffe://example.local/ledger'
const issuer = await startIssuer([ORDERS, LEDGER], TRUST_DOMAIN)
const trustDomains = [{ trustDomain: TRUST_DOMAIN, issuer: issuer.url }]

// B, ledger: takes workloads of the trust domain only, and answers them with its own WIT.
const ledgerHttp = await listen()
const ledger = Fastify({ serverFactory: (handler) => ledgerHttp.server.on('request', handler) })
await ledger.register(fastifyOidc2, {
  issuers: [{ issuer: issuer.url }],
  audiences: [ledgerHttp.url],
  workloads: { trustDomains },
  policy: { workloads: { trustDomains: [TRUST_DOMAIN] } },
  credentials: { wit: serviceCredential({ token: 'wit', issuer: { url: issuer.url, grant: 'wit', credential: { apiKey: issuer.apiKey(LEDGER) }, subject: LEDGER } }) },
})
ledger.post('/entries', async (request, reply) =>
  reply.code(201).send({ caller: request.identity!.subject, kind: request.identity!.kind, proof: request.identity!.proof, entry: request.body }),
)
await ledger.ready()

// A, orders: a service for users, and a workload when it calls ledger, with a WIT for its API key.
const asWorkload = createClient({
  proof: 'wimse-signature',
  serviceTrustDomains: trustDomains,
  expectedService: LEDGER,
  issuer: { url: issuer.url, grant: 'wit', credential: { apiKey: issuer.apiKey(ORDERS) }, subject: ORDERS },
  encryption: 'required',
})
const ordersHttp = await listen()
const orders = express()
orders.use(
  expressOidc2(ordersOptions(issuer, ordersHttp.url)),
  express.json(),
)
orders.post('/orders', async (req, res) => {
  const entry = await asWorkload(`${ledgerHttp.url}/entries`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ order: req.body.id, by: req.identity!.subject }),
  })
  res.status(201).json({ ledger: { status: entry.status, signedBy: entry.service.subject, encryption: entry.encryption, saw: await entry.json() } })
})
ordersHttp.server.on('request', orders)

console.log(`issuer ${issuer.url} of trust domain ${TRUST_DOMAIN}`)
console.log(`ledger (Fastify) ${ledgerHttp.url}: workloads only, answers as ${LEDGER}`)
console.log(`orders (Express) ${ordersHttp.url}: answers as ${ORDERS}, calls ledger as that workload`)
const alice = await aliceClient(issuer, ORDERS)
const placed = await alice(`${ordersHttp.url}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'o-17' }) })
const { ledger: answer } = await placed.json()
console.log(`alice -> orders: ${placed.status}, signed by ${placed.service.subject}`)
console.log(`orders -> ledger: ${answer.status}, signed with the WIT of ${answer.signedBy}, ${JSON.stringify(answer.encryption)}`)
console.log(`ledger saw: ${JSON.stringify(answer.saw)}`)

await finish(ordersHttp, ledger, ledgerHttp, issuer)
