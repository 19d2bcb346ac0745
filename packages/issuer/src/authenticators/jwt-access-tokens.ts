/**
 * Built-in {@link Authenticator}s: end-users by OAuth access token (JWT or RFC 7662
 * introspection), workloads by API key or RFC 7523 JWT client assertion.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { ASYMMETRIC_JWA, Oidc2Error, isOidc2Error } from '@oidc2/core';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  decodeJwt,
  errors as joseErrors,
  jwtVerify,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import type { Authentication, Authenticator } from './types.js';
import { argumentError, isArgumentError } from '@oidc2/core/adapter';

/** Prefix of the OAuth scopes that grant OIDC² end-to-end authentication contexts (draft 3.1). */
export const CONTEXT_SCOPE_PREFIX = 'e2e_auth_';

const ASYMMETRIC: readonly string[] = ASYMMETRIC_JWA;
// JWT types that are never access tokens: refusing them stops token confusion.
const NOT_ACCESS_TOKENS = ['ict+jwt', 'jwt+ict', 'application/ict+jwt', 'jwt+pop', 'dpop+jwt', 'wit+jwt', 'wpt+jwt', 'txntoken+jwt', 'jwt+e2epop'];

/** Contexts granted by OAuth scopes: each `e2e_auth_<ctx>` scope grants `<ctx>`. */
export function contextsFromScopes(scopes: readonly string[]): string[] {
  const out = new Set<string>();
  for (const s of scopes) if (s.startsWith(CONTEXT_SCOPE_PREFIX) && s.length > CONTEXT_SCOPE_PREFIX.length) out.add(s.slice(CONTEXT_SCOPE_PREFIX.length));
  return [...out];
}

function scopesOf(payload: Record<string, unknown>): string[] {
  if (typeof payload.scope === 'string') return payload.scope.split(' ').filter(Boolean);
  if (Array.isArray(payload.scp)) return payload.scp.filter((s): s is string => typeof s === 'string');
  if (typeof payload.scp === 'string') return payload.scp.split(' ').filter(Boolean);
  return [];
}

function pick(payload: Record<string, unknown>, names: readonly string[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const n of names ?? []) if (payload[n] !== undefined) out[n] = payload[n];
  return out;
}

function clientIdOf(payload: Record<string, unknown>): string | undefined {
  const id = payload.client_id ?? payload.azp;
  return typeof id === 'string' && id.length > 0 ? id : undefined;
}

function jktOf(payload: Record<string, unknown>): string | undefined {
  const cnf = payload.cnf as Record<string, unknown> | undefined;
  return typeof cnf === 'object' && cnf !== null && typeof cnf.jkt === 'string' ? cnf.jkt : undefined;
}

function keySet(where: string, jwks: JSONWebKeySet | undefined, jwksUri: string | undefined, fetchImpl: typeof fetch | undefined): JWTVerifyGetKey {
  if ((jwks === undefined) === (jwksUri === undefined)) throw argumentError('ERR_INVALID_ARG_VALUE', `${where} needs exactly one of jwks and jwksUri`);
  if (jwks !== undefined) {
    if (typeof jwks !== 'object' || !Array.isArray(jwks.keys)) throw argumentError('ERR_INVALID_ARG_TYPE', `${where}.jwks must be a JWK Set`);
    return createLocalJWKSet(jwks);
  }
  let url: URL;
  try {
    url = new URL(jwksUri!);
  } catch {
    throw argumentError('ERR_INVALID_ARG_VALUE', `${where}.jwksUri must be an absolute URL`);
  }
  return createRemoteJWKSet(url, { timeoutDuration: 5000, cooldownDuration: 30_000, ...(fetchImpl ? { [customFetch]: fetchImpl } : {}) });
}

// Anything but a verdict about the token itself (a JOSE error) means the keys could not be had:
// a failed fetch, a timeout, an unusable key set. Not instanceof Error: fetch errors may come
// from another realm.
function isKeySourceFailure(err: unknown): boolean {
  return err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid || !(err instanceof joseErrors.JOSEError);
}

function requireString(value: unknown, where: string): string {
  if (typeof value !== 'string' || value.length === 0) throw argumentError('ERR_INVALID_ARG_VALUE', `${where} must be a non-empty string`);
  return value;
}

function stringArray(value: unknown, where: string): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string' && v.length > 0)) throw argumentError('ERR_INVALID_ARG_VALUE', `${where} must be an array of strings`);
  return [...value];
}

/** Options of {@link jwtAccessTokens}. */
export interface JwtAccessTokenOptions {
  /** The authorization server that issues the access tokens: their `iss` must equal it. Required. */
  issuer: string;
  /** Accepted `aud` values (one must appear in the token). Required. */
  audience: string | string[];
  /** The authorization server's public keys. Exactly one of `jwks` and `jwksUri` is required. */
  jwks?: JSONWebKeySet;
  /** Where to fetch the authorization server's keys (cached, with a 30 s refetch cool-down). */
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
  /** `fetch` for `jwksUri`. Default `globalThis.fetch`. */
  fetch?: typeof fetch;
}

/**
 * End-users presenting an OAuth access token in JWT form, verified against the authorization
 * server's keys with issuer, audience, `exp` and `nbf` checks. `e2e_auth_<ctx>` scopes (in `scope`
 * or `scp`) grant contexts; `client_id` (or `azp`) names the client; `cnf.jkt` binds the token to a
 * key.
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
export function jwtAccessTokens(options: JwtAccessTokenOptions): Authenticator {
  if (typeof options !== 'object' || options === null) throw argumentError('ERR_INVALID_ARG_TYPE', 'jwtAccessTokens options must be an object');
  const issuer = requireString(options.issuer, 'jwtAccessTokens options.issuer');
  const audience = typeof options.audience === 'string' ? [options.audience] : stringArray(options.audience, 'jwtAccessTokens options.audience');
  if (!audience || audience.length === 0) throw argumentError('ERR_INVALID_ARG_VALUE', 'jwtAccessTokens options.audience is required');
  const algorithms = stringArray(options.algorithms, 'jwtAccessTokens options.algorithms') ?? [...ASYMMETRIC];
  if (algorithms.some((a) => !ASYMMETRIC.includes(a))) throw argumentError('ERR_INVALID_ARG_VALUE', 'jwtAccessTokens options.algorithms may hold asymmetric algorithms only');
  const claims = stringArray(options.claims, 'jwtAccessTokens options.claims');
  const typ = options.typ === undefined ? undefined : requireString(options.typ, 'jwtAccessTokens options.typ').toLowerCase();
  const keys = keySet('jwtAccessTokens options', options.jwks, options.jwksUri, options.fetch);

  return async (_request, context) => {
    const token = context.accessToken;
    if (token === undefined) return undefined;
    let payload: JWTPayload;
    let header: { typ?: string };
    try {
      ({ payload, protectedHeader: header } = await jwtVerify(token, keys, {
        issuer,
        audience,
        algorithms,
        currentDate: new Date(context.now * 1000),
        clockTolerance: context.clockTolerance,
        requiredClaims: ['exp', 'sub'],
      }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw new Oidc2Error('access_token_expired', 'access token has expired');
      if (isKeySourceFailure(err)) throw new Oidc2Error('issuer_unavailable', 'access token keys are unavailable', { cause: err });
      throw new Oidc2Error('access_token_invalid', 'access token is not valid');
    }
    const tokenTyp = typeof header.typ === 'string' ? header.typ.toLowerCase() : undefined;
    if (typ !== undefined && tokenTyp !== typ && tokenTyp !== `application/${typ}`) throw new Oidc2Error('access_token_invalid', 'access token has the wrong typ');
    if (tokenTyp !== undefined && NOT_ACCESS_TOKENS.includes(tokenTyp)) throw new Oidc2Error('access_token_invalid', 'token is not an access token');
    const p = payload as Record<string, unknown>;
    const result: Authentication = {
      subject: payload.sub!,
      kind: 'user',
      claims: pick(p, claims),
      contexts: contextsFromScopes(scopesOf(p)),
      expiresAt: payload.exp!,
    };
    const clientId = clientIdOf(p);
    if (clientId !== undefined) result.clientId = clientId;
    const jkt = jktOf(p);
    if (jkt !== undefined) result.keyThumbprint = jkt;
    return result;
  };
}

/** Options of {@link tokenIntrospection}. */
export interface IntrospectionOptions {
  /** The RFC 7662 introspection endpoint. Required. */
  endpoint: string;
  /** The issuer's client id at the authorization server. Required. */
  clientId: string;
  /** The issuer's client secret, sent with HTTP Basic authentication (RFC 6749 2.3.1). Required. */
  clientSecret: string;
  /** When set, an `iss` in the introspection response must equal it. Default: not checked. */
  issuer?: string;
  /** When set, the response's `aud` must contain one of these. Default: not checked. */
  audience?: string | string[];
  /** Response members to offer for release into the ICT, e.g. `['name', 'email']`. Default none. */
  claims?: string[];
  /** Milliseconds before the introspection request is abandoned (answered 503). Default 5000. */
  timeout?: number;
  /** `fetch` used for the request. Default `globalThis.fetch`. */
  fetch?: typeof fetch;
}

const MAX_INTROSPECTION_BYTES = 65536;

/**
 * End-users presenting an opaque (or any) access token, checked by RFC 7662 token introspection.
 * `active` must be `true`; `sub` is required; `exp`/`nbf` are enforced when present; `scope` grants
 * contexts as for {@link jwtAccessTokens}. An unreachable or failing endpoint answers 503
 * (`issuer_unavailable`), never a false success.
 *
 * @example
 * ```ts
 * const users = tokenIntrospection({
 *   endpoint: 'https://login.example.com/introspect',
 *   clientId: 'ict-endpoint',
 *   clientSecret: process.env.INTROSPECTION_SECRET!,
 * });
 * ```
 */
export function tokenIntrospection(options: IntrospectionOptions): Authenticator {
  if (typeof options !== 'object' || options === null) throw argumentError('ERR_INVALID_ARG_TYPE', 'tokenIntrospection options must be an object');
  let endpoint: URL;
  try {
    endpoint = new URL(requireString(options.endpoint, 'tokenIntrospection options.endpoint'));
  } catch (err) {
    if (isArgumentError(err)) throw err;
    throw argumentError('ERR_INVALID_ARG_VALUE', 'tokenIntrospection options.endpoint must be an absolute URL');
  }
  const clientId = requireString(options.clientId, 'tokenIntrospection options.clientId');
  const clientSecret = requireString(options.clientSecret, 'tokenIntrospection options.clientSecret');
  const audience = typeof options.audience === 'string' ? [options.audience] : stringArray(options.audience, 'tokenIntrospection options.audience');
  const claims = stringArray(options.claims, 'tokenIntrospection options.claims');
  const timeout = options.timeout ?? 5000;
  if (!Number.isFinite(timeout) || timeout <= 0) throw argumentError('ERR_INVALID_ARG_VALUE', 'tokenIntrospection options.timeout must be a positive number');
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const basic = Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64');

  return async (_request, context) => {
    const token = context.accessToken;
    if (token === undefined) return undefined;
    let body: Record<string, unknown>;
    try {
      const response = await fetchImpl(endpoint, {
        method: 'POST',
        headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
        signal: AbortSignal.timeout(timeout),
        redirect: 'error',
      });
      const text = await response.text();
      if (!response.ok || text.length > MAX_INTROSPECTION_BYTES) throw new Error(`introspection answered ${response.status}`);
      body = JSON.parse(text) as Record<string, unknown>;
      if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new Error('introspection answer is not an object');
    } catch (cause) {
      throw new Oidc2Error('issuer_unavailable', 'token introspection failed', { cause });
    }
    if (body.active !== true) throw new Oidc2Error('access_token_invalid', 'access token is not active');
    const { sub, exp, nbf, iss, aud } = body;
    if (typeof sub !== 'string' || sub.length === 0) throw new Oidc2Error('access_token_invalid', 'introspection names no subject');
    if (typeof exp === 'number' && context.now > exp + context.clockTolerance) throw new Oidc2Error('access_token_expired', 'access token has expired');
    if (typeof nbf === 'number' && nbf > context.now + context.clockTolerance) throw new Oidc2Error('access_token_invalid', 'access token is not yet valid');
    if (options.issuer !== undefined && iss !== undefined && iss !== options.issuer) throw new Oidc2Error('access_token_invalid', 'access token has the wrong issuer');
    if (audience !== undefined) {
      const auds = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
      if (!auds.some((a) => audience.includes(a as string))) throw new Oidc2Error('access_token_invalid', 'access token has the wrong audience');
    }
    const result: Authentication = { subject: sub, kind: 'user', claims: pick(body, claims), contexts: contextsFromScopes(scopesOf(body)) };
    if (typeof exp === 'number') result.expiresAt = exp;
    const id = clientIdOf(body);
    if (id !== undefined) result.clientId = id;
    const jkt = jktOf(body);
    if (jkt !== undefined) result.keyThumbprint = jkt;
    return result;
  };
}

/** One workload's API key, stored only as a hash. */
export interface ApiKeyEntry {
  /** {@link hashApiKey} of the key: base64url SHA-256. Required. */
  hash: string;
  /** The ICT `sub`, e.g. `spiffe://example.com/payments`. Required. */
  subject: string;
  /** The workload's client id (the PoP token `iss` and the ICT `aud`). Default: `subject`. */
  clientId?: string;
  /** Contexts the workload's ICTs carry. Default none. */
  contexts?: string[];
  /** Claims released into the workload's ICTs. Default none. */
  claims?: Record<string, unknown>;
}

/** Options of {@link apiKeys}. */
export interface ApiKeyOptions {
  /** The accepted keys. Required, at least one. */
  keys: ApiKeyEntry[];
}

/**
 * The stored form of an API key: base64url(SHA-256(key)). Keys should carry at least 128 bits of
 * randomness, which makes a fast hash sufficient.
 *
 * @example
 * ```ts
 * const key = randomBytes(32).toString('base64url'); // give to the workload
 * const entry = { hash: hashApiKey(key), subject: 'spiffe://example.com/billing' }; // store
 * ```
 */
export function hashApiKey(key: string): string {
  if (typeof key !== 'string' || key.length === 0) throw argumentError('ERR_INVALID_ARG_TYPE', 'key must be a non-empty string');
  return createHash('sha256').update(key, 'utf8').digest('base64url');
}

const MAX_API_KEY_CHARS = 1024;

/**
 * Workloads presenting an API key (`Authorization: ApiKey <key>` at the ICT endpoint, or a
 * `subject_token` of type {@link API_KEY_TOKEN_TYPE} at the token endpoint). The presented key is
 * hashed and compared against every stored hash in constant time.
 *
 * @example
 * ```ts
 * const workloads = apiKeys({ keys: [{ hash: 'Q2hh...', subject: 'spiffe://example.com/billing', contexts: ['payments'] }] });
 * ```
 */
export function apiKeys(options: ApiKeyOptions): Authenticator {
  if (typeof options !== 'object' || options === null || !Array.isArray(options.keys) || options.keys.length === 0) {
    throw argumentError('ERR_INVALID_ARG_VALUE', 'apiKeys options.keys must be a non-empty array');
  }
  const entries = options.keys.map((e, i) => {
    const where = `apiKeys options.keys[${i}]`;
    const hash = Buffer.from(requireString(e.hash, `${where}.hash`), 'base64url');
    if (hash.length !== 32 || hash.toString('base64url') !== e.hash) throw argumentError('ERR_INVALID_ARG_VALUE', `${where}.hash must be a base64url SHA-256 digest (see hashApiKey)`);
    requireString(e.subject, `${where}.subject`);
    stringArray(e.contexts, `${where}.contexts`);
    return { hash, entry: e };
  });

  return async (_request, context) => {
    const key = context.apiKey;
    if (key === undefined) return undefined;
    if (key.length > MAX_API_KEY_CHARS) throw new Oidc2Error('client_invalid', 'unknown API key');
    const presented = createHash('sha256').update(key, 'utf8').digest();
    // No early exit: the time taken does not depend on which entry matches.
    let match: ApiKeyEntry | undefined;
    for (const { hash, entry } of entries) if (timingSafeEqual(presented, hash) && match === undefined) match = entry;
    if (match === undefined) throw new Oidc2Error('client_invalid', 'unknown API key');
    return {
      subject: match.subject,
      kind: 'workload',
      clientId: match.clientId ?? match.subject,
      contexts: [...(match.contexts ?? [])],
      claims: { ...match.claims },
    };
  };
}

/** One workload client that authenticates with RFC 7523 JWT assertions. */
export interface AssertionClient {
  /** The client's public keys. Exactly one of `jwks` and `jwksUri` is required. */
  jwks?: JSONWebKeySet;
  /** Where to fetch the client's public keys. */
  jwksUri?: string;
  /** The ICT `sub`. Default: the client id. */
  subject?: string;
  /** Contexts the client's ICTs carry. Default none. */
  contexts?: string[];
  /** Claims released into the client's ICTs. Default none. */
  claims?: Record<string, unknown>;
}

/** Options of {@link clientAssertions}. */
export interface ClientAssertionOptions {
  /** Registered clients by client id. Required, at least one. */
  clients: Record<string, AssertionClient>;
  /** Accepted JWS algorithms. Default: every asymmetric JWA algorithm. */
  algorithms?: string[];
  /** Largest accepted remaining lifetime (`exp - now`) and `exp - iat`, seconds. Default 300. */
  maxLifetime?: number;
  /** `fetch` for `jwksUri`. Default `globalThis.fetch`. */
  fetch?: typeof fetch;
}

/**
 * Workloads authenticating with an RFC 7523 JWT client assertion: `iss` = `sub` = client id,
 * `aud` = the receiving endpoint's URL or the issuer, `exp` required and at most `maxLifetime`
 * ahead, `jti` required and accepted once. Signed with a key from the client's registered JWKS.
 *
 * @example
 * ```ts
 * const workloads = clientAssertions({
 *   clients: { billing: { jwksUri: 'https://billing.internal/jwks', subject: 'spiffe://example.com/billing' } },
 * });
 * ```
 */
export function clientAssertions(options: ClientAssertionOptions): Authenticator {
  if (typeof options !== 'object' || options === null || typeof options.clients !== 'object' || options.clients === null) {
    throw argumentError('ERR_INVALID_ARG_TYPE', 'clientAssertions options.clients must be an object');
  }
  const algorithms = stringArray(options.algorithms, 'clientAssertions options.algorithms') ?? [...ASYMMETRIC];
  if (algorithms.some((a) => !ASYMMETRIC.includes(a))) throw argumentError('ERR_INVALID_ARG_VALUE', 'clientAssertions options.algorithms may hold asymmetric algorithms only');
  const maxLifetime = options.maxLifetime ?? 300;
  if (!Number.isFinite(maxLifetime) || maxLifetime <= 0) throw argumentError('ERR_INVALID_ARG_VALUE', 'clientAssertions options.maxLifetime must be a positive number');
  const clients = new Map<string, { keys: JWTVerifyGetKey; client: AssertionClient }>();
  for (const [id, client] of Object.entries(options.clients)) {
    stringArray(client.contexts, `clientAssertions options.clients.${id}.contexts`);
    clients.set(id, { keys: keySet(`clientAssertions options.clients.${id}`, client.jwks, client.jwksUri, options.fetch), client });
  }
  if (clients.size === 0) throw argumentError('ERR_INVALID_ARG_VALUE', 'clientAssertions options.clients is empty');

  return async (_request, context) => {
    const assertion = context.clientAssertion;
    if (assertion === undefined) return undefined;
    let clientId: unknown;
    try {
      clientId = decodeJwt(assertion).iss;
    } catch {
      throw new Oidc2Error('client_invalid', 'client assertion is not a JWT');
    }
    const registered = typeof clientId === 'string' ? clients.get(clientId) : undefined;
    if (registered === undefined) throw new Oidc2Error('client_invalid', 'unknown client');
    const id = clientId as string;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(assertion, registered.keys, {
        issuer: id,
        subject: id,
        audience: [context.endpointUrl, context.issuer],
        algorithms,
        currentDate: new Date(context.now * 1000),
        clockTolerance: context.clockTolerance,
        requiredClaims: ['exp', 'jti'],
      }));
    } catch (err) {
      if (isKeySourceFailure(err)) throw new Oidc2Error('issuer_unavailable', 'client keys are unavailable', { cause: err });
      throw new Oidc2Error('client_invalid', 'client assertion is not valid');
    }
    const exp = payload.exp!;
    if (exp - context.now > maxLifetime + context.clockTolerance || (typeof payload.iat === 'number' && exp - payload.iat > maxLifetime)) {
      throw new Oidc2Error('client_invalid', 'client assertion lifetime is too long');
    }
    if (typeof payload.jti !== 'string' || payload.jti.length === 0 || payload.jti.length > 256) throw new Oidc2Error('client_invalid', 'client assertion jti is invalid');
    try {
      await context.checkReplay(`client-assertion:${id}:${payload.jti}`, exp + context.clockTolerance);
    } catch (err) {
      if (isOidc2Error(err)) throw err;
      throw new Oidc2Error('replay_store_unavailable', 'replay store failed', { cause: err });
    }
    const { client } = registered;
    return { subject: client.subject ?? id, kind: 'workload', clientId: id, contexts: [...(client.contexts ?? [])], claims: { ...client.claims } };
  };
}
