/**
 * Types shared by the issuer and its authenticators.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { HttpRequest, HttpResponse } from '@oidc2/core';
import type { JWK } from 'jose';

/** Who an ICT is issued to: an end-user acting through an OAuth client, or a workload. */
export type CallerKind = 'user' | 'workload';

/**
 * The endpoint that received a request: the ICT endpoint, the RFC 8693 token endpoint, or the WIT
 * endpoint (only served when the issuer has `workloads` configured).
 */
export type IssuanceEndpoint = 'ict' | 'token' | 'wit';

/**
 * What a {@link ClientAuthenticator} established about the caller. The issuer never copies anything
 * else from the request into an ICT.
 */
export interface Authentication {
  /** The ICT `sub`. Required. */
  subject: string;
  /** End-user or workload. Required. */
  kind: CallerKind;
  /**
   * Identity claims that may be released into the ICT (e.g. `name`, `email`). Registered JWT and
   * ICT claim names (`iss`, `sub`, `cnf`, `ctx`, ...) are ignored. Default none.
   */
  claims?: Record<string, unknown>;
  /**
   * OIDC² end-to-end authentication contexts the credential grants, without the `e2e_auth_`
   * scope prefix. Default none.
   */
  contexts?: string[];
  /**
   * The OAuth client the credential was issued to (a user's access token) or the workload's
   * client id. When known, the PoP token's `iss` must equal it and it becomes the ICT `aud`.
   * Default unknown.
   */
  clientId?: string;
  /**
   * RFC 7638 SHA-256 thumbprint the credential is sender-constrained to (`cnf.jkt` of a DPoP-bound
   * access token). When set, the certified key must have this thumbprint. Default none.
   */
  keyThumbprint?: string;
  /**
   * The JWS algorithm the proof of possession must use, e.g. the `cnf.jwk.alg` of a WIT presented as
   * credential (draft-ietf-wimse-workload-creds: the `alg` fixes the proof algorithm). Default: any
   * algorithm that fits the key.
   */
  keyAlgorithm?: string;
  /** Unix seconds when the credential expires; the ICT or WIT never outlives it. Default: no bound. */
  expiresAt?: number;
}

/** What the issuer hands to each {@link ClientAuthenticator}. */
export interface AuthenticationContext {
  /** Which endpoint received the request. */
  endpoint: IssuanceEndpoint;
  /** The issuer identifier. */
  issuer: string;
  /** Absolute URL of the endpoint that received the request (an accepted assertion `aud`). */
  endpointUrl: string;
  /** The issuer's clock, unix seconds. */
  now: number;
  /** Allowed clock skew, seconds. */
  clockTolerance: number;
  /** The parsed body parameters. */
  params: Readonly<Record<string, string>>;
  /**
   * An OAuth access token: the `Authorization: Bearer` credential at the ICT endpoint, or the
   * `subject_token` of type `urn:ietf:params:oauth:token-type:access_token` at the token endpoint.
   */
  accessToken?: string;
  /**
   * An API key: `Authorization: ApiKey <key>` at the ICT endpoint, or the `subject_token` of type
   * `urn:oidc2:params:oauth:token-type:api-key` (`API_KEY_TOKEN_TYPE`) at the token endpoint.
   */
  apiKey?: string;
  /**
   * An RFC 7523 JWT client assertion: `client_assertion` (with `client_assertion_type`
   * `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`) at the ICT endpoint, or the
   * `subject_token` of type `urn:ietf:params:oauth:token-type:jwt` at the token endpoint.
   */
  clientAssertion?: string;
  /**
   * A Workload Identity Token: the `Workload-Identity-Token` field at the ICT endpoint, or the
   * `subject_token` of type `urn:ietf:params:oauth:token-type:wit` (`WIT_TOKEN_TYPE`) at the token
   * endpoint. Never at the WIT endpoint: a WIT is not exchanged for a WIT.
   */
  workloadIdentityToken?: string;
  /**
   * Records a one-time identifier (e.g. an assertion `jti`) until `expiresAt` (unix seconds) in the
   * issuer's replay store; rejects with `replay_detected` when it was seen before.
   */
  checkReplay(key: string, expiresAt: number): Promise<void>;
}

/**
 * Authenticates the caller of the ICT or token endpoint: decides who may get an ICT. Resolves to the caller's {@link Authentication}, to `undefined` when
 * the request carries no credential of the kind it handles (the next authenticator is tried), and
 * rejects with an `Oidc2Error` (`access_token_invalid`, `access_token_expired`, `client_invalid`,
 * `issuer_unavailable`, ...) when it carries one that fails.
 *
 * @example
 * ```ts
 * const mtlsWorkloads: ClientAuthenticator = async (request, context) => {
 *   const spiffeId = request.headers['x-client-spiffe-id']?.[0]; // set by a trusted proxy
 *   return spiffeId ? { subject: spiffeId, kind: 'workload', contexts: ['payments'] } : undefined;
 * };
 * ```
 */
export type ClientAuthenticator = (request: HttpRequest, context: AuthenticationContext) => Promise<Authentication | undefined>;

/**
 * Former name of {@link ClientAuthenticator}.
 *
 * @deprecated Use `ClientAuthenticator`; `Authenticator` is the core's request authenticator.
 */
export type Authenticator = ClientAuthenticator;

/** The server started by {@link Issuer.listen}. */
export interface ListeningIssuer {
  /** The node:http server. */
  server: Server;
  /** `http://host:port` the server listens on. */
  url: string;
  /** Stops accepting connections and resolves when the server has closed. */
  close(): Promise<void>;
}

/** Minimal shape of a Fastify instance, so this package does not depend on Fastify. */
export interface FastifyInstanceLike {
  /** Removes the inherited content-type parsers (in the plugin's encapsulated context). */
  removeAllContentTypeParsers(): unknown;
  /** Adds a content-type parser. */
  addContentTypeParser(...args: any[]): unknown;
  /** Declares a route. */
  route(options: any): unknown;
}

/** Minimal shape of a Koa context. */
export interface KoaContextLike {
  /** The node:http request. */
  req: IncomingMessage;
  /** The node:http response. */
  res: ServerResponse;
  /** The request target. */
  url: string;
  /** Set to `false` when the middleware answers on `res` itself. */
  respond?: boolean;
  /** The Koa request; `rawBody` is set by `@koa/bodyparser`. */
  request: { rawBody?: unknown };
}

/** An ICT issuer. */
export interface Issuer {
  /** The issuer identifier. */
  readonly issuer: string;
  /** Absolute endpoint URLs; `wit` only when the issuer has `workloads` configured. */
  readonly endpoints: { discovery: string; jwks: string; ict: string; token: string; wit?: string };
  /**
   * Serves one request (framework-free). Never throws: failures are OAuth error responses. A path
   * the issuer does not serve gets 404 `{ "error": "not_found" }`.
   */
  handle(request: HttpRequest): Promise<HttpResponse>;
  /** Whether the issuer serves the path of `url` (full request target). */
  serves(url: string): boolean;
  /**
   * `(req, res, next?)` for node:http and Express. Paths it does not serve go to `next()` (or get
   * 404 without `next`). Mount it before any body parser, or it re-encodes the parsed body.
   */
  readonly nodeHandler: (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) => void;
  /**
   * A Fastify plugin, registered with the issuer URL's path as prefix:
   * `app.register(issuer.fastifyPlugin, { prefix: '/op' })`. It reads raw bodies in its own
   * encapsulated context and leaves other routes alone.
   */
  readonly fastifyPlugin: (instance: FastifyInstanceLike, options: unknown, done: (err?: Error) => void) => void;
  /** A Koa middleware: `app.use(issuer.koaMiddleware)`; other paths go to `next()`. */
  readonly koaMiddleware: (ctx: KoaContextLike, next: () => Promise<unknown>) => Promise<void>;
  /** Starts a standalone node:http server. Defaults: `port` 0 (any free port), `host` `127.0.0.1`. */
  listen(options?: { port?: number; host?: string }): Promise<ListeningIssuer>;
  /**
   * Makes `jwk` (a private JWK with `kid` and `alg`) or a freshly generated key the signing key.
   * The previous keys stay in the JWKS until ICTs they signed have expired, then drop out.
   */
  rotateKeys(jwk?: JWK): Promise<{ kid: string }>;
  /** The published JWK Set (public members, `kid`, `alg`, `use`). */
  jwks(): Promise<{ keys: JWK[] }>;
  /** The discovery document. */
  metadata(): Promise<Record<string, unknown>>;
}
