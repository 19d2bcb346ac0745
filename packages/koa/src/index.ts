/**
 * OIDC² for Koa: `app.use(oidc2(options))` authenticates callers (docs/protocol.md section 2), puts them on
 * `ctx.state.identity` and signs every response with the service's credential (section 3).
 */
import type { Middleware } from 'koa';
import { assertRoutePolicy, createOidc2Service, type Identity, type Oidc2Error, type Oidc2Options, type RoutePolicy } from '@oidc2/core';
import { admitRequest } from '@oidc2/node';

export type { Identity, Oidc2Error, Oidc2Options, RoutePolicy } from '@oidc2/core';

/** What {@link oidc2} puts on `ctx.state`. */
export interface Oidc2State {
  /**
   * The authenticated caller. `null` on an optional route when authentication failed (see
   * `identityError`); absent on routes without oidc2.
   */
  identity?: Identity | null;
  /** Why authentication failed on an optional route (`policy.optional`). */
  identityError?: Oidc2Error;
}

declare module 'koa' {
  // Typed `ctx.state.identity` for every `Koa` app and middleware using the default state.
  interface DefaultState extends Oidc2State {}
}

/** The middleware returned by {@link oidc2}. */
export interface Oidc2Middleware extends Middleware<Oidc2State> {
  /**
   * The same middleware (same service, replay store and credential) with another policy, for one
   * route. Mount one oidc2 middleware per request: not this one app-wide and another on the route.
   */
  with(policy: RoutePolicy): Middleware<Oidc2State>;
  /**
   * Resolves once every configured credential is obtained and can sign; rejects with a
   * `response_signing_unavailable` error saying why. `await auth.ready()` before listening fails
   * start-up on a broken credential instead of the first signed response.
   */
  ready(): Promise<void>;
}

/**
 * Creates the authentication middleware. Options are validated here, once; a bad option throws a
 * `TypeError` naming it.
 *
 * On success `ctx.state.identity` holds the caller and the response is signed. On failure the
 * middleware answers itself with the signed RFC 9457 problem (status, challenge headers, `code`)
 * and nothing after it runs, as in every oidc2 adapter. Errors thrown further down propagate as usual; whatever renders them (Koa's
 * default handler or your error middleware) is signed too, since signing happens at the Node
 * response, which Koa writes last.
 *
 * Register it before `@koa/bodyparser` (it hands the body back to the parser); after the parser,
 * only UTF-8 bodies verify, since the parser keeps the raw body as a decoded string.
 *
 * @example
 * ```ts
 * const auth = oidc2({ issuers: [{ issuer: 'https://op.example.com' }], audiences: ['https://api.example.com'], credential })
 * app.use(auth).use(bodyParser())
 * app.use((ctx) => { ctx.body = { sub: ctx.state.identity?.subject } })
 * router.post('/transfers', auth.with({ contexts: ['mfa'] }), transfer) // or per route
 * ```
 */
export function oidc2(options: Oidc2Options): Oidc2Middleware {
  const service = createOidc2Service(options);
  const middleware =
    (policy?: RoutePolicy): Middleware<Oidc2State> =>
    async (ctx, next) => {
      const rawBody = (ctx.request as { rawBody?: unknown }).rawBody;
      const admission = await admitRequest(service, ctx.req, ctx.res, { url: ctx.originalUrl, policy, rawBody: typeof rawBody === 'string' ? rawBody : undefined });
      if (!admission) {
        ctx.respond = false; // refused: the signed problem has been sent
        return;
      }
      ctx.state.identity = admission.identity;
      if (admission.error) ctx.state.identityError = admission.error;
      await next();
    };
  return Object.assign(middleware(), {
    ready: () => service.ready(),
    with: (policy: RoutePolicy) => {
      assertRoutePolicy(policy);
      return middleware(policy);
    },
  });
}
