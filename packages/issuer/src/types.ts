/**
 * Types shared by the issuer and its authenticators.
 */
import type { HttpRequest } from '@oidc2/core';

/** Who an ICT is issued to: an end-user acting through an OAuth client, or a workload. */
export type CallerKind = 'user' | 'workload';

/** The endpoint that received a request. */
export type IssuanceEndpoint = 'ict' | 'token';

/**
 * What an {@link Authenticator} established about the caller. The issuer never copies anything
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
  /** Unix seconds when the credential expires; the ICT never outlives it. Default: no bound. */
  expiresAt?: number;
}

/** What the issuer hands to each {@link Authenticator}. */
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
   * {@link API_KEY_TOKEN_TYPE} at the token endpoint.
   */
  apiKey?: string;
  /**
   * An RFC 7523 JWT client assertion: `client_assertion` (with `client_assertion_type`
   * `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`) at the ICT endpoint, or the
   * `subject_token` of type `urn:ietf:params:oauth:token-type:jwt` at the token endpoint.
   */
  clientAssertion?: string;
  /**
   * Records a one-time identifier (e.g. an assertion `jti`) until `expiresAt` (unix seconds) in the
   * issuer's replay store; rejects with `replay_detected` when it was seen before.
   */
  checkReplay(key: string, expiresAt: number): Promise<void>;
}

/**
 * Decides who may get an ICT. Resolves to the caller's {@link Authentication}, to `undefined` when
 * the request carries no credential of the kind it handles (the next authenticator is tried), and
 * rejects with an `Oidc2Error` (`access_token_invalid`, `access_token_expired`, `client_invalid`,
 * `issuer_unavailable`, ...) when it carries one that fails.
 *
 * @example
 * ```ts
 * const mtlsWorkloads: Authenticator = async (request, context) => {
 *   const spiffeId = request.headers['x-client-spiffe-id']?.[0]; // set by a trusted proxy
 *   return spiffeId ? { subject: spiffeId, kind: 'workload', contexts: ['payments'] } : undefined;
 * };
 * ```
 */
export type Authenticator = (request: HttpRequest, context: AuthenticationContext) => Promise<Authentication | undefined>;

/** Token type URI of an API key presented as an RFC 8693 `subject_token`. */
export const API_KEY_TOKEN_TYPE = 'urn:oidc2:params:oauth:token-type:api-key';
