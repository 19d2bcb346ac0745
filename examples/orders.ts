// The orders service of the examples, both sides: its oidc2 options, the same in every framework,
// and its caller, the user alice with @oidc2/client. Each framework example serves `GET /me` and,
// end-to-end encrypted only, `POST /orders`.
import { createClient, serviceCredential, type ClientOptions } from '@oidc2/client'
import type { LocalIssuer } from './loopback.js'

/** The service, as its ICT names it. */
export const ORDERS = 'spiffe://example.local/orders'

/** The options of `oidc2(...)` for the orders service at `audience`, the URL its callers use. */
export function ordersOptions(issuer: LocalIssuer, audience: string) {
  return {
    issuers: [{ issuer: issuer.url }],
    audiences: [audience],
    // The service's own ICT, for its API key: every answer is signed with it.
    credential: serviceCredential({ issuer: { url: issuer.url, credential: { apiKey: issuer.apiKey(ORDERS) }, subject: ORDERS } }),
  }
}

/** A `fetch` for alice that signs her requests and accepts only answers signed by `service`. */
export async function aliceClient(issuer: LocalIssuer, service: string, options: Partial<ClientOptions> = {}) {
  // After login the app holds alice's access token; the issuer certifies her key for it.
  const accessToken = await issuer.accessToken('alice')
  return createClient({
    serviceIssuers: [{ issuer: issuer.url }],
    expectedService: service,
    issuer: { url: issuer.url, credential: { accessToken }, subject: 'alice' },
    ...options,
  })
}

/** alice calls the orders service at `url` and prints what each answer proved. */
export async function callAsAlice(issuer: LocalIssuer, url: string): Promise<void> {
  const alice = await aliceClient(issuer, ORDERS)
  const me = await alice(`${url}/me`)
  console.log(`GET /me: ${me.status}, signed by ${me.service.subject}; the service saw ${JSON.stringify(await me.json())}`)

  const order = { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ item: 'book', quantity: 2 }) }
  const refused = await alice(`${url}/orders`, order)
  console.log(`POST /orders in clear: ${refused.status} ${(await refused.json()).code}, signed by ${refused.service.subject}`)

  const sealed = await aliceClient(issuer, ORDERS, { encryption: 'required' })
  const placed = await sealed(`${url}/orders`, order)
  console.log(`POST /orders encrypted end to end: ${placed.status} ${JSON.stringify(await placed.json())}, ${JSON.stringify(placed.encryption)}`)
}
