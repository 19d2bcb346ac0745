// What the built-in authenticators read from a verified token or an introspection answer.
import { Oidc2Error } from '@oidc2/core';
import { argumentError, assertOptions } from '@oidc2/core/adapter';
import { CONTEXT_SCOPE_PREFIX } from '../constants.js';
import type { Authentication, CallerKind } from '../types.js';
import { stringArray } from './args.js';

// JWT types that are never access tokens: refusing them stops token confusion.
export const NOT_ACCESS_TOKENS = ['ict+jwt', 'jwt+ict', 'application/ict+jwt', 'jwt+pop', 'dpop+jwt', 'wit+jwt', 'wpt+jwt', 'txntoken+jwt', 'jwt+e2epop'];

/**
 * Contexts granted by OAuth scopes: each `e2e_auth_<ctx>` scope grants `<ctx>`.
 *
 * @example
 * ```ts
 * contextsFromScopes(['openid', 'e2e_auth_email']); // ['email']
 * ```
 */
export function contextsFromScopes(scopes: readonly string[]): string[] {
  const out = new Set<string>();
  for (const s of scopes) if (s.startsWith(CONTEXT_SCOPE_PREFIX) && s.length > CONTEXT_SCOPE_PREFIX.length) out.add(s.slice(CONTEXT_SCOPE_PREFIX.length));
  return [...out];
}

/** The scopes of `scope` (space-separated) or `scp` (array or string). */
export function scopesOf(payload: Record<string, unknown>): string[] {
  if (typeof payload.scope === 'string') return payload.scope.split(' ').filter(Boolean);
  if (Array.isArray(payload.scp)) return payload.scp.filter((s): s is string => typeof s === 'string');
  if (typeof payload.scp === 'string') return payload.scp.split(' ').filter(Boolean);
  return [];
}

/** The members of `payload` named in `names` that are set. */
export function pick(payload: Record<string, unknown>, names: readonly string[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const n of names ?? []) if (payload[n] !== undefined) out[n] = payload[n];
  return out;
}

/** `client_id`, else `azp`. */
export function clientIdOf(payload: Record<string, unknown>): string | undefined {
  const id = payload.client_id ?? payload.azp;
  return typeof id === 'string' && id.length > 0 ? id : undefined;
}

// An RFC 7638 SHA-256 thumbprint, base64url: 43 characters.
const THUMBPRINT = /^[A-Za-z0-9_-]{43}$/;

/**
 * `cnf.jkt` of a sender-constrained token, or undefined for a bearer token. Any other confirmation
 * (an mTLS `x5t#S256`, a `jwk`, a malformed `jkt`, a DPoP `token_type` without `jkt`) refuses the
 * token: the issuer cannot check it, and taking the token as a bearer token would drop its binding.
 */
export function jktOf(payload: Record<string, unknown>): string | undefined {
  const cnf = payload.cnf;
  if (cnf === undefined) {
    if (typeof payload.token_type === 'string' && payload.token_type.toLowerCase() === 'dpop') throw unenforceable();
    return undefined;
  }
  const members = typeof cnf === 'object' && cnf !== null && !Array.isArray(cnf) ? Object.keys(cnf) : [];
  const jkt = (cnf as { jkt?: unknown }).jkt;
  if (members.length !== 1 || typeof jkt !== 'string' || !THUMBPRINT.test(jkt)) throw unenforceable();
  return jkt;
}

const unenforceable = () => new Oidc2Error('access_token_invalid', 'the access token is bound by a confirmation method this issuer cannot check');

/**
 * Options of client-credentials tokens (tokens a client obtained for itself, with no end-user),
 * shared by `jwtAccessTokens` and `tokenIntrospection`. Unknown keys are refused
 * (`ERR_UNKNOWN_OPTION`).
 */
export interface ClientCredentialsOptions {
  /**
   * Client ids whose client-credentials tokens are taken, each as the workload whose subject is its
   * client id. A client-credentials token of another client is refused (403 `access_denied`).
   * Required, at least one.
   */
  clients: string[];
}

const CLIENT_CREDENTIALS_OPTIONS: readonly (keyof ClientCredentialsOptions)[] = ['clients'];
// `gty` values of the client-credentials grant: RFC 6749's name, and Auth0's.
const CLIENT_CREDENTIALS_GRANTS = ['client_credentials', 'client-credentials'];

/** Checks a `clientCredentials` option (named `where`); the accepted client ids, or undefined when off. */
export function clientCredentialsOption(value: ClientCredentialsOptions | undefined, where: string): ReadonlySet<string> | undefined {
  if (value === undefined) return undefined;
  assertOptions(value, CLIENT_CREDENTIALS_OPTIONS, where);
  const clients = stringArray(value.clients, `${where}.clients`);
  if (clients === undefined || clients.length === 0) throw argumentError('ERR_INVALID_ARG_VALUE', `${where}.clients must list at least one client id`);
  return new Set(clients);
}

/**
 * Who a verified access token (a JWT's payload or an introspection answer) authenticates. The
 * grant decides between an end-user and a workload:
 * - `gty` (a space-separated list, as `authorization_code refresh_token`): one of
 *   `client_credentials` or `client-credentials` makes a workload, anything else an end-user;
 * - without `gty`: a `client_id` and no `sub` (an introspected client-credentials token) is a
 *   workload; a `sub` equal to the `client_id` is refused, since it may be either (RFC 9068 puts
 *   the client id in `sub` when no user is involved); any other `sub` is an end-user.
 *
 * A workload is taken only when `workloadClients` (the `clientCredentials` option) lists its
 * client, with the client id as subject; there is no fallback to the `sub` or to an end-user.
 */
export function accessTokenAuthentication(payload: Record<string, unknown>, claims: readonly string[] | undefined, workloadClients: ReadonlySet<string> | undefined): Authentication {
  const keyThumbprint = jktOf(payload);
  const clientId = clientIdOf(payload);
  const sub = typeof payload.sub === 'string' && payload.sub.length > 0 ? payload.sub : undefined;
  let kind: CallerKind;
  if (typeof payload.gty === 'string') kind = payload.gty.split(' ').some((g) => CLIENT_CREDENTIALS_GRANTS.includes(g)) ? 'workload' : 'user';
  else if (sub === undefined && clientId !== undefined) kind = 'workload';
  else if (sub !== undefined && sub === clientId) throw new Oidc2Error('access_token_invalid', 'the access token names its client as subject and no gty: it may be a client-credentials token');
  else kind = 'user';
  let subject: string;
  if (kind === 'user') {
    if (sub === undefined) throw new Oidc2Error('access_token_invalid', 'the access token names no subject');
    subject = sub;
  } else {
    if (clientId === undefined) throw new Oidc2Error('access_token_invalid', 'the client-credentials token names no client_id');
    if (workloadClients === undefined) throw new Oidc2Error('access_denied', 'client-credentials tokens are not accepted (see the clientCredentials option)');
    if (!workloadClients.has(clientId)) throw new Oidc2Error('access_denied', 'client-credentials tokens of this client are not accepted');
    subject = clientId;
  }
  const result: Authentication = { subject, kind, claims: pick(payload, claims), contexts: contextsFromScopes(scopesOf(payload)) };
  if (typeof payload.exp === 'number') result.expiresAt = payload.exp;
  if (clientId !== undefined) result.clientId = clientId;
  if (keyThumbprint !== undefined) result.keyThumbprint = keyThumbprint;
  return result;
}
