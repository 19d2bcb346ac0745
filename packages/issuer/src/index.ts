/**
 * `@oidc2/issuer`: the Identity Certification Token endpoint of an OpenID Provider or workload
 * attestation server. It certifies a caller's public key in a short-lived ICT (OIDC² draft
 * section 4, PROFILE 1.1) and serves the discovery document and JWKS that verifiers need.
 *
 * Two request forms are served:
 * - the OIDC² draft form: `POST <ict_endpoint>` with `Authorization: Bearer <access token>` and a
 *   PoP token (`typ` `jwt+pop`) as the body; answered 201 with `identity_certification_token`;
 * - RFC 8693 token exchange at `token_endpoint`, the key proven by an RFC 9449 DPoP proof;
 *   answered 200 with the ICT as `access_token` of type {@link ICT_TOKEN_TYPE}.
 *
 * @packageDocumentation
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  createDpopNonces,
  fieldLines,
  isOidc2Error,
  MemoryReplayStore,
  Oidc2Error,
  verifyDpopProof,
  type DpopNonceOptions,
  type HttpRequest,
  type HttpResponse,
  type ReplayStore,
} from '@oidc2/core';
import { calculateJwkThumbprint, decodeProtectedHeader, SignJWT, type JWK } from 'jose';
import { contextsFromScopes, CONTEXT_SCOPE_PREFIX } from './authenticators.js';
import { parseBody, type BodyParams } from './lib/body.js';
import { KeyRing, SIGNING_ALGORITHMS, type SigningAlgorithm } from './lib/keys.js';
import { serveNode } from './lib/node.js';
import { verifyPopToken } from './lib/pop.js';
import { errorResponse, jsonResponse, markDpopFailure, type Endpoint } from './lib/responses.js';
import { API_KEY_TOKEN_TYPE, type Authentication, type AuthenticationContext, type Authenticator } from './types.js';
import { argumentError } from '@oidc2/core/adapter';

export * from './types.js';
export {
  apiKeys,
  clientAssertions,
  contextsFromScopes,
  CONTEXT_SCOPE_PREFIX,
  hashApiKey,
  jwtAccessTokens,
  tokenIntrospection,
  type ApiKeyEntry,
  type ApiKeyOptions,
  type AssertionClient,
  type ClientAssertionOptions,
  type IntrospectionOptions,
  type JwtAccessTokenOptions,
} from './authenticators.js';
export { SIGNING_ALGORITHMS, type SigningAlgorithm } from './lib/keys.js';

/**
 * Token type URI of an ICT in RFC 8693 token exchange (`requested_token_type`,
 * `issued_token_type`). It is the value the OIDC² reference OpenID Provider uses; it is not
 * IANA-registered.
 */
export const ICT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:ic_token';
/** RFC 8693 grant type. */
export const TOKEN_EXCHANGE_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:token-exchange';
/** RFC 8693 token type of an OAuth access token presented as `subject_token`. */
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
/** RFC 8693 token type of a JWT (here: an RFC 7523 client assertion) presented as `subject_token`. */
export const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
/** RFC 7523 client assertion type. */
export const JWT_BEARER_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** The `typ` header of every ICT this package issues. */
export const ICT_TYP = 'ict+jwt';

/** Release policy for one OAuth client acting for end-users. */
export interface ClientPolicy {
  /** Contexts this client's ICTs may carry. Default: no restriction beyond the credential's. */
  contexts?: string[];
  /** Names of identity claims this client's ICTs may carry. Default: no restriction. */
  claims?: string[];
}

/** Claims and contexts configured for one subject (end-user or workload). */
export interface SubjectPolicy {
  /** Identity claims released into the subject's ICTs, e.g. `{ name: 'Ada', email: 'ada@example.com' }`. Default none. */
  claims?: Record<string, unknown>;
  /** Contexts the subject's ICTs may carry. Default: no restriction beyond the credential's. */
  contexts?: string[];
}

/** Request paths, relative to the issuer URL's path (or to `basePath`). */
export interface IssuerPaths {
  /** Default `/.well-known/openid-configuration`. */
  discovery?: string;
  /** Default `/jwks`. */
  jwks?: string;
  /** The OIDC² ICT endpoint. Default `/ict`. */
  ict?: string;
  /** The RFC 8693 token endpoint. Default `/token`. */
  token?: string;
}

/** Options of {@link createIssuer}. */
export interface IssuerOptions {
  /**
   * The issuer identifier: the `iss` of every ICT and the required `aud` of PoP tokens. An `https`
   * URL without query or fragment (`http` only on loopback hosts, for development). Required.
   */
  issuer: string;
  /** Who may get an ICT, tried in order (see {@link Authenticator}). Required, at least one. */
  authenticators: Authenticator[];
  /**
   * Private signing JWKs, each with `kid` and `alg`. The first signs; the others are published
   * until ICTs signed with them have expired. Default: one key generated with `signingAlgorithm`.
   */
  signingKeys?: JWK[];
  /** Algorithm of generated signing keys. Default `ES256`. */
  signingAlgorithm?: SigningAlgorithm;
  /** ICT lifetime in seconds; never more than the authenticating credential's. Default 300. */
  ictLifetime?: number;
  /** Upper bound for `ictLifetime` and the retention of retired keys, seconds. Default 3600. */
  maxIctLifetime?: number;
  /** Seconds after which the signing key is replaced by a fresh one (lazily, on the next request). Default: never. */
  keyRotationInterval?: number;
  /** Allowed clock skew for PoP tokens, DPoP proofs and credentials, seconds. Default 60. */
  clockTolerance?: number;
  /**
   * Per-client policy for end-users' OAuth clients, by client id. When set, a user's credential
   * must name a listed client. Default: every client, no restriction.
   */
  clients?: Record<string, ClientPolicy>;
  /** Per-subject claims and contexts, by `sub`. Default none. */
  subjects?: Record<string, SubjectPolicy>;
  /** Contexts advertised as `e2e_auth_contexts_supported`. Default: every context named in `clients` and `subjects`. */
  contextsSupported?: string[];
  /** Store for PoP, DPoP and assertion `jti`s. Default: a `MemoryReplayStore` of 100 000 entries. */
  replayStore?: ReplayStore;
  /**
   * Require RFC 9449 server nonces in DPoP proofs at the token endpoint (`true`: a random secret
   * per process; share `secret` between instances). Default off.
   */
  dpopNonces?: boolean | DpopNonceOptions;
  /** Clock in unix seconds. Default `Date.now() / 1000`. */
  now?: () => number;
  /** Largest accepted request body, bytes; larger ones get 413. Default 16384. */
  maxBodyBytes?: number;
  /** `max-age` of the discovery document and JWKS, seconds. Default 300. */
  jwksMaxAge?: number;
  /**
   * Path prefix under which requests arrive (the full request path, before a framework strips a
   * mount point). Default: the issuer URL's path, e.g. `/op` for `https://example.com/op`.
   */
  basePath?: string;
  /** Endpoint paths. Defaults as in {@link IssuerPaths}. */
  paths?: IssuerPaths;
  /** Extra discovery members (e.g. the OP's `authorization_endpoint`); the issuer's own members win. Default none. */
  metadata?: Record<string, unknown>;
}

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
  removeAllContentTypeParsers(): unknown;
  addContentTypeParser(...args: any[]): unknown;
  route(options: any): unknown;
}

/** Minimal shape of a Koa context. */
export interface KoaContextLike {
  req: IncomingMessage;
  res: ServerResponse;
  url: string;
  respond?: boolean;
  request: { rawBody?: unknown };
}

/** An ICT issuer. */
export interface Issuer {
  /** The issuer identifier. */
  readonly issuer: string;
  /** Absolute endpoint URLs. */
  readonly endpoints: { discovery: string; jwks: string; ict: string; token: string };
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

const RESERVED_CLAIMS = new Set(['iss', 'sub', 'aud', 'iat', 'nbf', 'exp', 'jti', 'cnf', 'ctx']);
const CONTEXT_NAME = /^[A-Za-z0-9_.:-]{1,64}$/;
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;
const MAX_CREDENTIAL_CHARS = 8192;

function positive(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw argumentError('ERR_INVALID_ARG_VALUE', `options.${name} must be a positive number`);
  return value;
}

function contextList(value: unknown, where: string): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || !value.every((c) => typeof c === 'string' && CONTEXT_NAME.test(c))) {
    throw argumentError('ERR_INVALID_ARG_VALUE', `${where} must be an array of context names`);
  }
  return value as string[];
}

function checkPath(value: unknown, name: string, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !value.startsWith('/') || /[?#\s]/.test(value)) throw argumentError('ERR_INVALID_ARG_VALUE', `options.paths.${name} must be a path starting with /`);
  return value;
}

function pathnameOf(url: string): string {
  const q = url.search(/[?#]/);
  const target = q < 0 ? url : url.slice(0, q);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) {
    try {
      return new URL(target).pathname;
    } catch {
      return '';
    }
  }
  return target;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * Creates an ICT issuer. Validates every option once (bad options throw `TypeError`) and loads or
 * generates the signing keys.
 *
 * @example
 * ```ts
 * import express from 'express';
 * import { createIssuer, jwtAccessTokens } from '@oidc2/issuer';
 *
 * const issuer = await createIssuer({
 *   issuer: 'https://op.example.com/oidc2',
 *   authenticators: [
 *     jwtAccessTokens({ issuer: 'https://login.example.com', audience: 'https://op.example.com/oidc2', jwksUri: 'https://login.example.com/jwks' }),
 *   ],
 *   subjects: { 'user-123': { claims: { name: 'Ada Lovelace', email: 'ada@example.com' } } },
 * });
 * const app = express();
 * app.use('/oidc2', issuer.nodeHandler);
 * ```
 */
export async function createIssuer(options: IssuerOptions): Promise<Issuer> {
  if (typeof options !== 'object' || options === null) throw argumentError('ERR_INVALID_ARG_TYPE', 'options must be an object');
  let issuerUrl: URL;
  try {
    issuerUrl = new URL(options.issuer);
  } catch {
    throw argumentError('ERR_INVALID_ARG_VALUE', 'options.issuer must be an absolute URL');
  }
  if (issuerUrl.search || issuerUrl.hash || options.issuer.includes('#') || options.issuer.includes('?')) throw argumentError('ERR_INVALID_ARG_VALUE', 'options.issuer must not have a query or fragment');
  if (issuerUrl.protocol !== 'https:' && !(issuerUrl.protocol === 'http:' && LOOPBACK.has(issuerUrl.hostname))) {
    throw argumentError('ERR_INVALID_ARG_VALUE', 'options.issuer must be https (http only on loopback)');
  }
  const issuer = options.issuer;
  const base = issuer.replace(/\/$/, '');
  if (!Array.isArray(options.authenticators) || options.authenticators.length === 0 || !options.authenticators.every((a) => typeof a === 'function')) {
    throw argumentError('ERR_INVALID_ARG_VALUE', 'options.authenticators must be a non-empty array of functions');
  }
  const authenticators = [...options.authenticators];
  const now = options.now ?? (() => Date.now() / 1000);
  if (typeof now !== 'function') throw argumentError('ERR_INVALID_ARG_TYPE', 'options.now must be a function');
  const maxIctLifetime = positive(options.maxIctLifetime, 'maxIctLifetime', 3600);
  const ictLifetime = positive(options.ictLifetime, 'ictLifetime', Math.min(300, maxIctLifetime));
  if (ictLifetime > maxIctLifetime) throw argumentError('ERR_INVALID_ARG_VALUE', 'options.ictLifetime exceeds options.maxIctLifetime');
  const clockTolerance = options.clockTolerance === undefined ? 60 : options.clockTolerance;
  if (typeof clockTolerance !== 'number' || !Number.isFinite(clockTolerance) || clockTolerance < 0 || clockTolerance > 300) {
    throw argumentError('ERR_INVALID_ARG_VALUE', 'options.clockTolerance must be between 0 and 300 seconds');
  }
  const maxBodyBytes = positive(options.maxBodyBytes, 'maxBodyBytes', 16384);
  const jwksMaxAge = Math.floor(positive(options.jwksMaxAge, 'jwksMaxAge', 300));
  const keyRotationInterval = options.keyRotationInterval === undefined ? undefined : positive(options.keyRotationInterval, 'keyRotationInterval', 0);
  const algorithm = options.signingAlgorithm ?? 'ES256';
  if (!SIGNING_ALGORITHMS.includes(algorithm)) throw argumentError('ERR_INVALID_ARG_VALUE', `options.signingAlgorithm must be one of ${SIGNING_ALGORITHMS.join(', ')}`);
  if (options.signingKeys !== undefined && !Array.isArray(options.signingKeys)) throw argumentError('ERR_INVALID_ARG_TYPE', 'options.signingKeys must be an array');

  const clients = options.clients === undefined ? undefined : new Map(Object.entries(options.clients));
  for (const [id, policy] of clients ?? []) {
    contextList(policy.contexts, `options.clients.${id}.contexts`);
    if (policy.claims !== undefined && (!Array.isArray(policy.claims) || !policy.claims.every((c) => typeof c === 'string'))) {
      throw argumentError('ERR_INVALID_ARG_VALUE', `options.clients.${id}.claims must be an array of claim names`);
    }
  }
  const subjects = new Map(Object.entries(options.subjects ?? {}));
  for (const [sub, policy] of subjects) {
    contextList(policy.contexts, `options.subjects.${sub}.contexts`);
    for (const name of Object.keys(policy.claims ?? {})) {
      if (RESERVED_CLAIMS.has(name)) throw argumentError('ERR_INVALID_ARG_VALUE', `options.subjects.${sub}.claims must not set ${name}`);
    }
  }
  const contextsSupported =
    contextList(options.contextsSupported, 'options.contextsSupported') ??
    [...new Set([...[...(clients?.values() ?? [])].flatMap((p) => p.contexts ?? []), ...[...subjects.values()].flatMap((p) => p.contexts ?? [])])];

  const paths = {
    discovery: checkPath(options.paths?.discovery, 'discovery', '/.well-known/openid-configuration'),
    jwks: checkPath(options.paths?.jwks, 'jwks', '/jwks'),
    ict: checkPath(options.paths?.ict, 'ict', '/ict'),
    token: checkPath(options.paths?.token, 'token', '/token'),
  };
  if (new Set(Object.values(paths)).size !== 4) throw argumentError('ERR_INVALID_ARG_VALUE', 'options.paths must be distinct');
  const basePath = (options.basePath ?? issuerUrl.pathname).replace(/\/$/, '');
  if (basePath !== '' && !basePath.startsWith('/')) throw argumentError('ERR_INVALID_ARG_VALUE', 'options.basePath must start with /');
  const endpoints = {
    discovery: base + paths.discovery,
    jwks: base + paths.jwks,
    ict: base + paths.ict,
    token: base + paths.token,
  };
  const routes = new Map<string, keyof typeof paths>(Object.entries(paths).map(([k, p]) => [basePath + p, k as keyof typeof paths]));

  const replayStore: ReplayStore = options.replayStore ?? new MemoryReplayStore({ maxEntries: 100_000 });
  if (typeof replayStore.checkAndRecord !== 'function') throw argumentError('ERR_INVALID_ARG_TYPE', 'options.replayStore must implement checkAndRecord');
  const dpopNonces = options.dpopNonces ? createDpopNonces(options.dpopNonces === true ? {} : options.dpopNonces) : undefined;
  const keys = await KeyRing.create(options.signingKeys, { algorithm, retention: maxIctLifetime + clockTolerance, ...(keyRotationInterval ? { rotationInterval: keyRotationInterval } : {}) }, now());

  async function checkReplay(key: string, expiresAt: number): Promise<void> {
    let fresh: boolean;
    try {
      fresh = await replayStore.checkAndRecord(key, expiresAt, now());
    } catch (err) {
      if (isOidc2Error(err)) throw err;
      throw new Oidc2Error('replay_store_unavailable', 'replay store failed', { cause: err });
    }
    if (!fresh) throw new Oidc2Error('replay_detected', 'this token was already used');
  }

  async function authenticate(request: HttpRequest, context: AuthenticationContext): Promise<Authentication> {
    for (const authenticator of authenticators) {
      const result = await authenticator(request, context);
      if (result === undefined) continue;
      if (typeof result !== 'object' || result === null || typeof result.subject !== 'string' || result.subject.length === 0 || (result.kind !== 'user' && result.kind !== 'workload')) {
        throw argumentError('ERR_INVALID_RETURN_VALUE', 'an authenticator returned no subject or kind');
      }
      return result;
    }
    if (context.accessToken !== undefined) throw new Oidc2Error('access_token_invalid', 'access token is not accepted');
    if (context.apiKey !== undefined || context.clientAssertion !== undefined) throw new Oidc2Error('client_invalid', 'client credential is not accepted');
    throw new Oidc2Error('access_token_missing', 'no credential');
  }

  interface Grant {
    contexts: string[];
    claims: Record<string, unknown>;
  }

  // What the ICT may say: the credential's contexts narrowed by client and subject policy; claims
  // from configuration and the credential, never from the request.
  function grant(auth: Authentication, request: { contexts?: string[]; requiredClaims?: string[]; optionalClaims?: string[] }): Grant {
    let policy: ClientPolicy | undefined;
    if (auth.kind === 'user' && clients !== undefined) {
      policy = auth.clientId === undefined ? undefined : clients.get(auth.clientId);
      if (policy === undefined) throw new Oidc2Error('client_invalid', 'the client is not registered');
    }
    const subject = subjects.get(auth.subject);
    let contexts = [...new Set((auth.contexts ?? []).filter((c) => typeof c === 'string' && CONTEXT_NAME.test(c)))];
    if (policy?.contexts) contexts = contexts.filter((c) => policy.contexts!.includes(c));
    if (subject?.contexts) contexts = contexts.filter((c) => subject.contexts!.includes(c));
    if (request.contexts !== undefined) {
      if (request.contexts.some((c) => !contexts.includes(c))) throw new Oidc2Error('context_not_allowed', 'a requested context is not granted');
      contexts = [...new Set(request.contexts)];
    }
    if (auth.kind === 'user' && contexts.length === 0) throw new Oidc2Error('context_required', 'the credential grants no end-to-end authentication context');
    // Prototype-free, so names like `toString` or `__proto__` are never found by accident.
    const available = Object.create(null) as Record<string, unknown>;
    for (const [k, v] of Object.entries({ ...subject?.claims, ...auth.claims })) {
      if (!RESERVED_CLAIMS.has(k) && v !== undefined && (policy?.claims === undefined || policy.claims.includes(k))) available[k] = v;
    }
    let claims = available;
    if (request.requiredClaims !== undefined || request.optionalClaims !== undefined) {
      claims = Object.create(null) as Record<string, unknown>;
      for (const name of request.requiredClaims ?? []) {
        if (!Object.hasOwn(available, name)) throw new Oidc2Error('claim_unavailable', 'a required claim is not available');
        claims[name] = available[name];
      }
      for (const name of request.optionalClaims ?? []) if (Object.hasOwn(available, name)) claims[name] = available[name];
    }
    return { contexts, claims };
  }

  async function mint(auth: Authentication, g: Grant, jwk: JWK, aud: string | undefined): Promise<{ token: string; expiresIn: number }> {
    const t = Math.floor(now());
    let exp = t + ictLifetime;
    if (auth.expiresAt !== undefined) exp = Math.min(exp, Math.floor(auth.expiresAt));
    if (exp <= t) throw new Oidc2Error('access_token_expired', 'the credential expires now');
    const key = await keys.active(now());
    const payload: Record<string, unknown> = {
      ...g.claims,
      iss: issuer,
      sub: auth.subject,
      ...(aud !== undefined ? { aud } : {}),
      iat: t,
      nbf: t,
      exp,
      jti: randomBytes(16).toString('base64url'),
      cnf: { jwk },
      ctx: g.contexts,
    };
    const token = await new SignJWT(payload).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: ICT_TYP }).sign(key.key);
    return { token, expiresIn: exp - t };
  }

  // The one credential a request carries, by where it travels.
  function credentialsFrom(request: HttpRequest, params: BodyParams, endpoint: 'ict' | 'token'): Pick<AuthenticationContext, 'accessToken' | 'apiKey' | 'clientAssertion'> {
    const out: Pick<AuthenticationContext, 'accessToken' | 'apiKey' | 'clientAssertion'> = {};
    const authorization = fieldLines(request.headers, 'authorization');
    if (endpoint === 'token') {
      if (authorization !== undefined || params.client_assertion !== undefined) {
        throw new Oidc2Error('request_malformed', 'client authentication is not used here: present the credential as subject_token');
      }
      const token = params.subject_token;
      const type = params.subject_token_type;
      if (token === undefined) throw new Oidc2Error('request_malformed', 'subject_token is required');
      if (type === undefined) throw new Oidc2Error('request_malformed', 'subject_token_type is required');
      if (token.length > MAX_CREDENTIAL_CHARS) throw new Oidc2Error('request_malformed', 'subject_token is too large');
      if (type === ACCESS_TOKEN_TYPE) out.accessToken = token;
      else if (type === JWT_TOKEN_TYPE) out.clientAssertion = token;
      else if (type === API_KEY_TOKEN_TYPE) out.apiKey = token;
      else throw new Oidc2Error('token_type_unsupported', 'unsupported subject_token_type');
      return out;
    }
    if (authorization !== undefined) {
      if (authorization.length !== 1) throw new Oidc2Error('request_malformed', 'more than one Authorization field');
      const m = /^([A-Za-z]+) +(\S+)$/.exec(authorization[0]!.trim());
      if (!m || !TOKEN68.test(m[2]!) || m[2]!.length > MAX_CREDENTIAL_CHARS) throw new Oidc2Error('access_token_invalid', 'malformed Authorization field');
      const scheme = m[1]!.toLowerCase();
      if (scheme === 'bearer') out.accessToken = m[2]!;
      else if (scheme === 'apikey') out.apiKey = m[2]!;
      else throw new Oidc2Error('access_token_invalid', 'unsupported authorization scheme');
    }
    if (params.client_assertion !== undefined || params.client_assertion_type !== undefined) {
      if (params.client_assertion_type !== JWT_BEARER_ASSERTION_TYPE) throw new Oidc2Error('request_malformed', 'unsupported client_assertion_type');
      if (params.client_assertion === undefined) throw new Oidc2Error('request_malformed', 'client_assertion is missing');
      if (params.client_assertion.length > MAX_CREDENTIAL_CHARS) throw new Oidc2Error('request_malformed', 'client_assertion is too large');
      out.clientAssertion = params.client_assertion;
    }
    if (Object.keys(out).length > 1) throw new Oidc2Error('request_malformed', 'more than one credential');
    return out;
  }

  function context(endpoint: 'ict' | 'token', params: BodyParams, credentials: ReturnType<typeof credentialsFrom>): AuthenticationContext {
    return { endpoint, issuer, endpointUrl: endpoints[endpoint], now: now(), clockTolerance, params, ...credentials, checkReplay };
  }

  async function thumbprint(jwk: JWK): Promise<string> {
    return calculateJwkThumbprint(jwk, 'sha256');
  }

  // OIDC² draft section 4: bearer access token (or workload credential) plus PoP token.
  async function ictEndpoint(request: HttpRequest): Promise<HttpResponse> {
    const params = parseBody(request, ['jwt', 'json', 'form'], maxBodyBytes);
    const credentials = credentialsFrom(request, params, 'ict');
    const popToken = params.pop_token;
    if (popToken === undefined) throw new Oidc2Error('request_malformed', 'the PoP token is missing');
    const pop = await verifyPopToken(popToken, { issuer, now: now(), clockTolerance });
    const auth = await authenticate(request, context('ict', params, credentials));
    if (pop.sub !== auth.subject) throw new Oidc2Error('pop_invalid', 'PoP token sub is not the authenticated subject');
    if (auth.clientId !== undefined && pop.iss !== auth.clientId) throw new Oidc2Error('pop_invalid', 'PoP token iss is not the authenticated client');
    if (auth.keyThumbprint !== undefined && (await thumbprint(pop.jwk)) !== auth.keyThumbprint) throw new Oidc2Error('pop_key_invalid', 'the credential is bound to another key');
    const g = grant(auth, { ...(pop.requiredClaims ? { requiredClaims: pop.requiredClaims } : {}), ...(pop.optionalClaims ? { optionalClaims: pop.optionalClaims } : {}) });
    let aud: string | undefined;
    if (pop.withAudience !== false) aud = auth.clientId;
    if (pop.withAudience === true && aud === undefined) throw new Oidc2Error('pop_invalid', 'with_audience needs a known client');
    await checkReplay(`pop:${pop.jti}`, pop.exp + clockTolerance);
    const { token, expiresIn } = await mint(auth, g, pop.jwk, aud);
    return jsonResponse(201, { identity_certification_token: token, expires_in: expiresIn, e2e_auth_contexts: g.contexts });
  }

  // RFC 8693 token exchange; the key to certify is the DPoP proof's (RFC 9449).
  async function tokenEndpoint(request: HttpRequest): Promise<HttpResponse> {
    const params = parseBody(request, ['form', 'json'], maxBodyBytes);
    if (params.grant_type === undefined) throw new Oidc2Error('request_malformed', 'grant_type is required');
    if (params.grant_type !== TOKEN_EXCHANGE_GRANT_TYPE) throw new Oidc2Error('grant_type_unsupported', 'only token exchange is supported');
    if (params.requested_token_type !== undefined && params.requested_token_type !== ICT_TOKEN_TYPE) throw new Oidc2Error('token_type_unsupported', 'only ICTs are issued here');
    if (params.actor_token !== undefined || params.actor_token_type !== undefined) throw new Oidc2Error('request_malformed', 'delegation (actor_token) is not supported');
    if (params.resource !== undefined) throw new Oidc2Error('audience_mismatch', 'resource is not supported');
    const credentials = credentialsFrom(request, params, 'token');
    let requested: string[] | undefined;
    if (params.scope !== undefined) {
      const scopes = params.scope.split(' ').filter(Boolean);
      requested = contextsFromScopes(scopes);
      if (requested.length !== scopes.length) throw new Oidc2Error('context_not_allowed', `only ${CONTEXT_SCOPE_PREFIX}* scopes can be requested`);
    }
    const proofs = fieldLines(request.headers, 'dpop');
    if (proofs === undefined) throw markDpopFailure(new Oidc2Error('dpop_invalid', 'a DPoP proof is required'));
    if (proofs.length !== 1) throw markDpopFailure(new Oidc2Error('dpop_invalid', 'more than one DPoP proof'));
    let proof: Awaited<ReturnType<typeof verifyDpopProof>>;
    try {
      proof = await verifyDpopProof(proofs[0]!, {
        method: request.method,
        htu: endpoints.token,
        // A token endpoint: no access token yet (so no `ath`), and the proof introduces the key.
        accessToken: null,
        expectedThumbprint: null,
        now: now(),
        clockTolerance,
        replayStore,
        ...(dpopNonces ? { nonces: dpopNonces } : {}),
      });
    } catch (err) {
      throw isOidc2Error(err) ? markDpopFailure(err) : err;
    }
    const auth = await authenticate(request, context('token', params, credentials));
    const jwk: JWK = { ...proof.jwk, alg: decodeProtectedHeader(proofs[0]!).alg! };
    if (auth.keyThumbprint !== undefined && (await thumbprint(jwk)) !== auth.keyThumbprint) {
      throw markDpopFailure(new Oidc2Error('dpop_invalid', 'the subject token is bound to another key'));
    }
    const g = grant(auth, requested ? { contexts: requested } : {});
    const aud = auth.clientId;
    if (params.audience !== undefined && params.audience !== aud) throw new Oidc2Error('audience_mismatch', 'the ICT audience can only be the client');
    const { token, expiresIn } = await mint(auth, g, jwk, aud);
    return jsonResponse(200, {
      access_token: token,
      issued_token_type: ICT_TOKEN_TYPE,
      token_type: 'N_A',
      expires_in: expiresIn,
      scope: g.contexts.map((c) => CONTEXT_SCOPE_PREFIX + c).join(' '),
    });
  }

  async function metadata(): Promise<Record<string, unknown>> {
    const algs = keys.algorithms();
    return {
      ...options.metadata,
      issuer,
      jwks_uri: endpoints.jwks,
      ict_endpoint: endpoints.ict,
      token_endpoint: endpoints.token,
      grant_types_supported: [TOKEN_EXCHANGE_GRANT_TYPE],
      id_token_signing_alg_values_supported: algs,
      ict_signing_alg_values_supported: algs,
      dpop_signing_alg_values_supported: [...SIGNING_ALGORITHMS],
      ...(contextsSupported.length > 0 ? { e2e_auth_contexts_supported: contextsSupported } : {}),
    };
  }

  function cacheable(body: unknown): HttpResponse {
    return jsonResponse(200, body, { 'cache-control': [`public, max-age=${jwksMaxAge}`] });
  }

  async function handle(request: HttpRequest): Promise<HttpResponse> {
    const route = routes.get(pathnameOf(request.url));
    if (route === undefined) return jsonResponse(404, { error: 'not_found' });
    const endpoint: Endpoint = route === 'ict' || route === 'token' ? route : 'metadata';
    try {
      const method = request.method.toUpperCase();
      if (endpoint === 'metadata') {
        if (method !== 'GET' && method !== 'HEAD') throw new Oidc2Error('method_not_allowed', 'use GET', { headers: { allow: 'GET, HEAD' } });
        const response = cacheable(route === 'jwks' ? await keys.jwks(now()) : await metadata());
        return method === 'HEAD' ? { ...response, body: undefined } : response;
      }
      if (method !== 'POST') throw new Oidc2Error('method_not_allowed', 'use POST', { headers: { allow: 'POST' } });
      return await (route === 'ict' ? ictEndpoint(request) : tokenEndpoint(request));
    } catch (err) {
      return errorResponse(err, endpoint, issuer);
    }
  }

  function serves(url: string): boolean {
    return routes.has(pathnameOf(url));
  }

  const nodeHandler = (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): void => {
    const url = (req as { originalUrl?: string }).originalUrl ?? req.url ?? '/';
    if (!serves(url)) {
      if (next) next();
      else {
        res.statusCode = 404;
        res.setHeader('content-type', 'application/json');
        res.end('{"error":"not_found"}');
      }
      return;
    }
    serveNode(handle, issuer, maxBodyBytes, req, res, url).catch(() => res.destroy());
  };

  const fastifyPlugin = (instance: FastifyInstanceLike, _options: unknown, done: (err?: Error) => void): void => {
    // Encapsulated: only this plugin's routes see the raw-body parser.
    instance.removeAllContentTypeParsers();
    instance.addContentTypeParser('*', (_request: unknown, _payload: unknown, parsed: (err: Error | null, body?: unknown) => void) => parsed(null));
    instance.route({
      method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
      url: '/*',
      handler: async (request: { url: string; raw: IncomingMessage }, reply: { hijack(): void; raw: ServerResponse; callNotFound(): void }) => {
        if (!serves(request.url)) return reply.callNotFound();
        reply.hijack();
        await serveNode(handle, issuer, maxBodyBytes, request.raw, reply.raw, request.url);
      },
    });
    done();
  };

  const koaMiddleware = async (ctx: KoaContextLike, next: () => Promise<unknown>): Promise<void> => {
    if (!serves(ctx.url)) {
      await next();
      return;
    }
    ctx.respond = false;
    await serveNode(handle, issuer, maxBodyBytes, ctx.req, ctx.res, ctx.url, ctx.request.rawBody);
  };

  return {
    issuer,
    endpoints,
    handle,
    serves,
    nodeHandler,
    fastifyPlugin,
    koaMiddleware,
    async listen({ port = 0, host = '127.0.0.1' } = {}) {
      const server = createServer(nodeHandler);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      const address = server.address() as AddressInfo;
      const h = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      return {
        server,
        url: `http://${h}:${address.port}`,
        close: () => new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve()))),
      };
    },
    async rotateKeys(jwk?: JWK) {
      const key = await keys.rotate(now(), jwk);
      return { kid: key.kid };
    },
    jwks: () => keys.jwks(now()),
    metadata,
  };
}
