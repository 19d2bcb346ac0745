/**
 * OIDC² for Express 5: `app.use(oidc2(options))` authenticates callers (docs/protocol.md section 2), puts
 * them on `req.identity` and signs every response with the service's credential (section 3).
 */
import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { IncomingMessage } from 'node:http';
import { assertRoutePolicy, createOidc2Service, isOidc2Error, type Identity, type Oidc2Error, type Oidc2Options, type RoutePolicy } from '@oidc2/core';
import { admitRequest, problemResponse } from '@oidc2/node';

export type { Identity, Oidc2Error, Oidc2Options, RoutePolicy } from '@oidc2/core';

declare global {
  namespace Express {
    interface Request {
      /**
       * The authenticated caller, set by {@link oidc2}. `null` on an optional route when
       * authentication failed (see `identityError`); absent on routes without oidc2.
       */
      identity?: Identity | null;
      /** Why authentication failed on an optional route (`policy.optional`). */
      identityError?: Oidc2Error;
    }
  }
}

// Raw bodies kept by the `verify` hook of a parser that ran before oidc2.
const rawBodies = new WeakMap<IncomingMessage, Buffer>();

/** The middleware returned by {@link oidc2}. */
export interface Oidc2Middleware extends RequestHandler {
  /**
   * The same middleware (same service, replay store and credential) with another policy, for one
   * route. Mount one oidc2 middleware per request: not this one app-wide and another on the route.
   */
  with(policy: RoutePolicy): RequestHandler;
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
 * On success `req.identity` holds the caller and the response is signed. On failure the middleware
 * answers itself with the signed RFC 9457 problem (status, challenge headers, `code`) and the route
 * never runs, as in every oidc2 adapter. Errors that are not the caller's go to `next(err)`.
 *
 * Register it before body parsers (it hands the body back to them), or give `express.json()` the
 * {@link keepRawBody} hook.
 *
 * @example
 * ```ts
 * const auth = oidc2({ issuers: [{ issuer: 'https://op.example.com' }], audiences: ['https://api.example.com'], credential })
 * app.use(auth, express.json())
 * app.get('/me', (req, res) => res.json({ sub: req.identity?.subject }))
 * app.post('/transfers', auth.with({ contexts: ['mfa'] }), transfer) // or per route
 * app.use(oidc2ErrorHandler())
 * ```
 */
export function oidc2(options: Oidc2Options): Oidc2Middleware {
  const service = createOidc2Service(options);
  const middleware =
    (policy?: RoutePolicy): RequestHandler =>
    (req, res, next) => {
      admitRequest(service, req, res, { url: req.originalUrl, policy, rawBody: rawBodies.get(req) }).then((admission) => {
        if (!admission) return; // refused: the signed problem has been sent
        req.identity = admission.identity;
        if (admission.error) req.identityError = admission.error;
        next();
      }, next);
    };
  return Object.assign(middleware(), {
    ready: () => service.ready(),
    with: (policy: RoutePolicy) => {
      assertRoutePolicy(policy);
      return middleware(policy);
    },
  });
}

/**
 * A `verify` hook for Express body parsers that keeps the raw body for `Content-Digest`, needed
 * only when a parser runs before {@link oidc2}: `app.use(express.json({ verify: keepRawBody }), oidc2(options))`.
 */
export function keepRawBody(req: IncomingMessage, _res: unknown, body: Buffer): void {
  rawBodies.set(req, body);
}

/**
 * An error handler that renders an `Oidc2Error` thrown by a route as RFC 9457 problem+json with its
 * status and challenge headers (signed like every response after {@link oidc2}); other errors go on
 * to the next error handler. Register it after your routes. (Authentication failures never reach it:
 * {@link oidc2} answers them itself.)
 */
export function oidc2ErrorHandler(): ErrorRequestHandler {
  return (err, _req, res, next) => {
    if (!isOidc2Error(err) || res.headersSent) return next(err);
    const problem = problemResponse(err);
    res.status(problem.status).set(problem.headers).send(problem.body);
  };
}
