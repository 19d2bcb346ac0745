// What a reader of the documentation brings to its snippets: their own session, keys, tokens and
// route handlers. Declared once, with the types the snippets need, for test/docs/snippets.test.ts;
// everything else a snippet uses it imports or declares itself.
export const SNIPPET_PRELUDE = `
type JWK = import('jose').JWK

// The signed-in user of a browser app: the OpenID Provider's access token and the user's id.
declare const session: { accessToken: string; userId: string }

// The options of the set-up snippet of the same page.
declare const options: import('@oidc2/core').Oidc2Options
declare const clientOptions: import('@oidc2/client').ClientOptions
// The client created by the first snippet of docs/client.md.
declare const api: import('@oidc2/client').Oidc2Fetch

// Keys and tokens from the reader's configuration or secret store.
declare const issuerJwk: JWK               // a trusted issuer's public key
declare const batchIssuerPublicJwk: JWK
declare const witIssuerPublicJwk: JWK
declare const serviceIct: string           // the service's ICT ...
declare const serviceJwk: JWK              // ... and the private key it certifies
declare const token: string                // an ICT received
declare function currentWit(): Promise<string>
declare const wit: string                  // a workload's WIT ...
declare const witKey: JWK                  // ... and the private key it binds
declare const privateJwk: JWK              // a key pair
declare const publicJwk: JWK
declare const txnToken: string             // the Txn-Token a request of this service carried
// The SPIFFE Workload API client a workload runs.
declare const agent: { fetchWit(publicJwk: JWK): Promise<string> }
// A body to upload.
declare const stream: ReadableStream<Uint8Array>
// An ioredis client (ioredis is not a dependency of this repository).
declare const ioredis: { set(key: string, value: string, px: 'PX', ms: number, nx: 'NX'): Promise<'OK' | null> }

// The reader's route handlers, in whichever framework the page is about, and what they call.
type RouteHandler = import('express').RequestHandler &
  import('koa').Middleware<import('@oidc2/koa').Oidc2State> &
  import('fastify').RouteHandlerMethod
declare const listAccounts: RouteHandler
declare const transfer: RouteHandler
declare const deleteUser: RouteHandler
declare const upload: RouteHandler
interface News { headlines: string[] }
declare function personalNews(identity: import('@oidc2/core').Identity): News
declare function publicNews(reason: string | undefined): News

// An adapter's helpers (docs/adapters.md), as in examples/fetch-adapter/oidc2-fetch.ts.
declare function chunks(stream: ReadableStream<Uint8Array>): AsyncIterable<Uint8Array>
declare function toResponse(response: import('@oidc2/core').ExchangeResponse): Response
declare function routedRequest(request: Request, admission: import('@oidc2/core').Admitted): Request

// The reader's logger.
declare const log: import('pino').Logger
`;
