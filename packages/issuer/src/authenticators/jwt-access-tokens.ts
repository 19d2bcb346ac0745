// Callers presenting an OAuth access token in JWT form (RFC 9068 or any JWT access token): end-users,
// and the workloads of configured clients' client-credentials tokens.
import { ASYMMETRIC_JWA, Oidc2Error } from '@oidc2/core';
import { argumentError, assertOptions } from '@oidc2/core/adapter';
import { errors as joseErrors, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose';
import type { ClientAuthenticator } from '../types.js';
import { fetchOption, requireString, stringArray } from './args.js';
import { accessTokenAuthentication, clientCredentialsOption, NOT_ACCESS_TOKENS, type ClientCredentialsOptions } from './claims.js';
import { isKeySourceFailure, keyResolver, remoteKeyOptions, type RemoteKeyOptions } from './keys.js';

const ASYMMETRIC: readonly string[] = ASYMMETRIC_JWA;
const WHERE = 'jwtAccessTokens options';
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** Options of {@link jwtAccessTokens}. Unknown keys are refused (`ERR_UNKNOWN_OPTION`). */
export interface JwtAccessTokenOptions {
  /**
   * The authorization server that issues the access tokens: their `iss` must equal it. Required.
   * Without `jwks` and `jwksUri` its keys are discovered through
   * `<issuer>/.well-known/openid-configuration` (then it must be an `https` URL, `http` only on
   * loopback).
   */
  issuer: string;
  /** Accepted `aud` values (one must appear in the token). Required. */
  audience: string | string[];
  /** The authorization server's public keys. At most one of `jwks` and `jwksUri`. */
  jwks?: JSONWebKeySet;
  /** Where to fetch the authorization server's keys: `https` (`http` only on loopback). */
  jwksUri?: string;
  /** Accepted JWS algorithms. Default: every asymmetric JWA algorithm; never `none` or HS*. */
  algorithms?: string[];
  /**
   * Required `typ` header, e.g. `at+jwt` (RFC 9068). Default: not required, but the types of
   * other tokens (`ict+jwt`, `dpop+jwt`, `jwt+pop`, ...) are always refused.
   */
  typ?: string;
  /** Access-token claims to offer for release into the ICT, e.g. `['name', 'email']`. Default none. */
  claims?: string[];
  /**
   * Take the client-credentials tokens of these clients, each as a workload whose subject is its
   * client id. A token is a client-credentials token when its `gty` says so; without `gty`, a token
   * whose `sub` equals its `client_id` is refused as ambiguous. Default: off, and a
   * client-credentials token is refused (403 `access_denied`).
   */
  clientCredentials?: ClientCredentialsOptions;
  /** `fetch` for discovery and `jwksUri`. Default: a GET over node:http(s) on Node, else `globalThis.fetch` (see `IssuerKeyOptions.fetch` in @oidc2/core). */
  fetch?: typeof fetch;
  /** Caching and bounds of fetched keys; see {@link RemoteKeyOptions} for the defaults. */
  remoteKeys?: RemoteKeyOptions;
}

const OPTIONS: readonly (keyof JwtAccessTokenOptions)[] = ['issuer', 'audience', 'jwks', 'jwksUri', 'algorithms', 'typ', 'claims', 'clientCredentials', 'fetch', 'remoteKeys'];

/**
 * Callers presenting an OAuth access token in JWT form, verified against the authorization
 * server's keys with issuer, audience, `exp` and `nbf` checks. `e2e_auth_<ctx>` scopes (in `scope`
 * or `scp`) grant contexts; `client_id` (or `azp`) names the client; `cnf.jkt` binds the token to a
 * key (any other `cnf` is refused). The grant decides the caller's kind: an end-user's token
 * (authorization code, refresh) authenticates its `sub` as a user; a client-credentials token
 * (`gty`) is refused unless `clientCredentials` lists its client, which then is a workload. A
 * token that is not a compact JWS (an opaque token) is left to the next authenticator.
 * Remote keys are fetched size-bounded, cached, single-flight, with a refetch cool-down and
 * stale-if-error; keys that cannot be had answer 503 (`issuer_unavailable`).
 *
 * @example
 * ```ts
 * const users = jwtAccessTokens({
 *   issuer: 'https://login.example.com',
 *   audience: 'https://op.example.com',
 *   jwksUri: 'https://login.example.com/jwks',
 *   claims: ['name', 'email'],
 * });
 * ```
 */
export function jwtAccessTokens(options: JwtAccessTokenOptions): ClientAuthenticator {
  assertOptions(options, OPTIONS, WHERE);
  const issuer = requireString(options.issuer, `${WHERE}.issuer`);
  const audience = typeof options.audience === 'string' ? [options.audience] : stringArray(options.audience, `${WHERE}.audience`);
  if (!audience || audience.length === 0) throw argumentError('ERR_INVALID_ARG_VALUE', `${WHERE}.audience is required`);
  const algorithms = stringArray(options.algorithms, `${WHERE}.algorithms`) ?? [...ASYMMETRIC];
  if (algorithms.some((a) => !ASYMMETRIC.includes(a))) throw argumentError('ERR_INVALID_ARG_VALUE', `${WHERE}.algorithms may hold asymmetric algorithms only`);
  const claims = stringArray(options.claims, `${WHERE}.claims`);
  const workloadClients = clientCredentialsOption(options.clientCredentials, `${WHERE}.clientCredentials`);
  const typ = options.typ === undefined ? undefined : requireString(options.typ, `${WHERE}.typ`).toLowerCase();
  const keyOptions = remoteKeyOptions(options.remoteKeys, fetchOption(options.fetch, `${WHERE}.fetch`), `${WHERE}.remoteKeys`);
  const keys = keyResolver({ issuer, ...(options.jwks !== undefined ? { jwks: options.jwks } : {}), ...(options.jwksUri !== undefined ? { jwksUri: options.jwksUri } : {}) }, keyOptions, WHERE);

  return async (_request, context) => {
    const token = context.accessToken;
    // An opaque token is no JWT: left to the next authenticator (e.g. tokenIntrospection).
    if (token === undefined || !COMPACT_JWS.test(token)) return undefined;
    let payload: JWTPayload;
    let header: { typ?: string };
    try {
      ({ payload, protectedHeader: header } = await jwtVerify(token, keys, {
        issuer,
        audience,
        algorithms,
        currentDate: new Date(context.now * 1000),
        clockTolerance: context.clockTolerance,
        requiredClaims: ['exp'],
      }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw new Oidc2Error('access_token_expired', 'access token has expired');
      if (isKeySourceFailure(err)) throw new Oidc2Error('issuer_unavailable', 'access token keys are unavailable', { cause: err });
      throw new Oidc2Error('access_token_invalid', 'access token is not valid');
    }
    const tokenTyp = typeof header.typ === 'string' ? header.typ.toLowerCase() : undefined;
    if (typ !== undefined && tokenTyp !== typ && tokenTyp !== `application/${typ}`) throw new Oidc2Error('access_token_invalid', 'access token has the wrong typ');
    if (tokenTyp !== undefined && NOT_ACCESS_TOKENS.includes(tokenTyp)) throw new Oidc2Error('access_token_invalid', 'token is not an access token');
    return accessTokenAuthentication(payload as Record<string, unknown>, claims, workloadClients);
  };
}
