// Validation and normalisation of IssuerOptions, once, at construction. Every option object is
// checked for unknown keys, so a misspelt security option fails closed instead of being ignored.
import { createDpopNonces, MemoryReplayStore, type DpopNonceOptions, type DpopNonces, type Oidc2EventListener, type ReplayStore } from '@oidc2/core';
import { argumentError, assertEventListener, assertOptions, createEventSink, type EventSink } from '@oidc2/core/adapter';
import type { JWK } from 'jose';
import { SIGNING_ALGORITHMS, type SigningAlgorithm } from './lib/keys.js';
import type { ClientAuthenticator } from './types.js';
import type { SigningKeyStore } from './signing-key-store.js';
import { resolveWorkloads, type ResolvedWorkloads, type WorkloadIdentityOptions } from './workloads.js';

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
  /** The WIT endpoint; only with `workloads` (else `ERR_INVALID_ARG_VALUE`). Default `/wit`. */
  wit?: string;
}

/** Options of {@link createIssuer}. Unknown keys, at any depth, are refused (`ERR_UNKNOWN_OPTION`). */
export interface IssuerOptions {
  /**
   * The issuer identifier: the `iss` of every ICT and the required `aud` of PoP tokens. An `https`
   * URL without query or fragment (`http` only on loopback hosts, for development). Required.
   */
  issuer: string;
  /** Who may get an ICT, tried in order (see {@link ClientAuthenticator}). Required, at least one. */
  authenticators: ClientAuthenticator[];
  /**
   * Private signing JWKs, each with `kid` and `alg`. The first signs; the others are published
   * until ICTs signed with them have expired. Default: one key generated with `signingAlgorithm`.
   */
  signingKeys?: JWK[];
  /**
   * Where the signing keys persist across restarts (e.g. {@link fileSigningKeyStore}). When it
   * holds keys, they are used and `signingKeys` is ignored; when it is empty, the configured or a
   * generated key is stored; every rotation is stored before the new key signs. Without a store,
   * generated and rotated keys are lost on restart and ICTs they signed fail with
   * `ict_unknown_key` until they expire. Default none.
   */
  signingKeyStore?: SigningKeyStore;
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
  /**
   * Issue Workload Identity Tokens (docs/protocol.md section 3a, draft-ietf-wimse-workload-creds) to authenticated
   * workloads: at the WIT endpoint (`paths.wit`, published as `wit_endpoint`) and by RFC 8693 token
   * exchange with `requested_token_type` `WIT_TOKEN_TYPE`. WITs are signed with the same keys as
   * ICTs. Default: no WITs.
   */
  workloads?: WorkloadIdentityOptions;
  /**
   * Receives one `issuer_grant` event per request at the ICT, WIT and token endpoints
   * (docs/events.md): grant, outcome, code, subject, client, the certified key's thumbprint and
   * expiry, never a token or key. The events are also published on `node:diagnostics_channel`
   * (`oidc2:issuer-grant`). Default none.
   */
  onEvent?: Oidc2EventListener;
}

const ISSUER_OPTIONS: readonly (keyof IssuerOptions)[] = [
  'issuer',
  'authenticators',
  'signingKeys',
  'signingKeyStore',
  'signingAlgorithm',
  'ictLifetime',
  'maxIctLifetime',
  'keyRotationInterval',
  'clockTolerance',
  'clients',
  'subjects',
  'contextsSupported',
  'replayStore',
  'dpopNonces',
  'now',
  'maxBodyBytes',
  'jwksMaxAge',
  'basePath',
  'paths',
  'metadata',
  'workloads',
  'onEvent',
];
const PATH_OPTIONS: readonly (keyof IssuerPaths)[] = ['discovery', 'jwks', 'ict', 'token', 'wit'];
const CLIENT_POLICY_OPTIONS: readonly (keyof ClientPolicy)[] = ['contexts', 'claims'];
const SUBJECT_POLICY_OPTIONS: readonly (keyof SubjectPolicy)[] = ['claims', 'contexts'];
const DPOP_NONCE_OPTIONS: readonly (keyof DpopNonceOptions)[] = ['secret', 'lifetime'];
// RFC 7517/7518 members of a private signing JWK (and WebCrypto's `ext`, `key_ops`).
const SIGNING_KEY_MEMBERS = ['kty', 'crv', 'x', 'y', 'd', 'n', 'e', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'kid', 'alg', 'use', 'key_ops', 'ext', 'x5u', 'x5c', 'x5t', 'x5t#S256'];

/** Claim names the issuer sets itself; configuration and authenticators cannot. */
export const RESERVED_CLAIMS: ReadonlySet<string> = new Set(['iss', 'sub', 'aud', 'iat', 'nbf', 'exp', 'jti', 'cnf', 'ctx']);
/** A well-formed context name. */
export const CONTEXT_NAME = /^[A-Za-z0-9_.:-]{1,64}$/;

/** The endpoints an issuer serves. */
export type EndpointName = keyof Required<IssuerPaths>;

/** {@link IssuerOptions}, checked and with every default filled in. */
export interface ResolvedIssuerOptions {
  issuer: string;
  authenticators: readonly ClientAuthenticator[];
  signingKeys: JWK[] | undefined;
  signingKeyStore: SigningKeyStore | undefined;
  algorithm: SigningAlgorithm;
  ictLifetime: number;
  maxIctLifetime: number;
  keyRotationInterval: number | undefined;
  clockTolerance: number;
  clients: ReadonlyMap<string, ClientPolicy> | undefined;
  subjects: ReadonlyMap<string, SubjectPolicy>;
  contextsSupported: string[];
  replayStore: ReplayStore;
  dpopNonces: DpopNonces | undefined;
  now: () => number;
  maxBodyBytes: number;
  jwksMaxAge: number;
  metadata: Record<string, unknown> | undefined;
  /** WIT issuance; undefined when the issuer issues no WITs. */
  workloads: ResolvedWorkloads | undefined;
  /** Where `issuer_grant` events go. */
  events: EventSink;
  /** Absolute endpoint URLs; `wit` only with `workloads`. */
  endpoints: Record<Exclude<EndpointName, 'wit'>, string> & { wit?: string };
  /** Full request path -> endpoint. */
  routes: ReadonlyMap<string, EndpointName>;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

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

// A record keyed by ids (clients, subjects): an object, each value an options object.
function policies<T>(value: unknown, known: readonly string[], where: string): Map<string, T> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw argumentError('ERR_INVALID_ARG_TYPE', `${where} must be an object`);
  const out = new Map<string, T>();
  for (const [id, policy] of Object.entries(value)) {
    assertOptions(policy, known, `${where}.${id}`);
    out.set(id, policy as T);
  }
  return out;
}

function issuerUrlOf(value: unknown): URL {
  let url: URL;
  try {
    url = new URL(value as string);
  } catch {
    throw argumentError('ERR_INVALID_ARG_VALUE', 'options.issuer must be an absolute URL');
  }
  if (url.search || url.hash || (value as string).includes('#') || (value as string).includes('?')) throw argumentError('ERR_INVALID_ARG_VALUE', 'options.issuer must not have a query or fragment');
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK.has(url.hostname))) {
    throw argumentError('ERR_INVALID_ARG_VALUE', 'options.issuer must be https (http only on loopback)');
  }
  return url;
}

/** Checks `options` and fills in the defaults; throws an `ArgumentError` naming the bad option. */
export function resolveIssuerOptions(options: IssuerOptions): ResolvedIssuerOptions {
  if (typeof options !== 'object' || options === null) throw argumentError('ERR_INVALID_ARG_TYPE', 'options must be an object');
  assertOptions(options, ISSUER_OPTIONS, 'options');
  const issuerUrl = issuerUrlOf(options.issuer);
  const issuer = options.issuer;
  const base = issuer.replace(/\/$/, '');
  if (!Array.isArray(options.authenticators) || options.authenticators.length === 0 || !options.authenticators.every((a) => typeof a === 'function')) {
    throw argumentError('ERR_INVALID_ARG_VALUE', 'options.authenticators must be a non-empty array of functions');
  }
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
  const store = options.signingKeyStore as Partial<SigningKeyStore> | undefined;
  if (store !== undefined && (typeof store !== 'object' || store === null || typeof store.load !== 'function' || typeof store.save !== 'function')) {
    throw argumentError('ERR_INVALID_ARG_TYPE', 'options.signingKeyStore must have load() and save()');
  }
  options.signingKeys?.forEach((jwk, i) => assertOptions(jwk, SIGNING_KEY_MEMBERS, `options.signingKeys[${i}]`));

  const clients = options.clients === undefined ? undefined : policies<ClientPolicy>(options.clients, CLIENT_POLICY_OPTIONS, 'options.clients');
  for (const [id, policy] of clients ?? []) {
    contextList(policy.contexts, `options.clients.${id}.contexts`);
    if (policy.claims !== undefined && (!Array.isArray(policy.claims) || !policy.claims.every((c) => typeof c === 'string'))) {
      throw argumentError('ERR_INVALID_ARG_VALUE', `options.clients.${id}.claims must be an array of claim names`);
    }
  }
  const subjects = policies<SubjectPolicy>(options.subjects ?? {}, SUBJECT_POLICY_OPTIONS, 'options.subjects');
  for (const [sub, policy] of subjects) {
    contextList(policy.contexts, `options.subjects.${sub}.contexts`);
    for (const name of Object.keys(policy.claims ?? {})) {
      if (RESERVED_CLAIMS.has(name)) throw argumentError('ERR_INVALID_ARG_VALUE', `options.subjects.${sub}.claims must not set ${name}`);
    }
  }
  const contextsSupported =
    contextList(options.contextsSupported, 'options.contextsSupported') ??
    [...new Set([...[...(clients?.values() ?? [])].flatMap((p) => p.contexts ?? []), ...[...subjects.values()].flatMap((p) => p.contexts ?? [])])];

  const workloads = resolveWorkloads(options.workloads, maxIctLifetime);

  if (options.paths !== undefined) assertOptions(options.paths, PATH_OPTIONS, 'options.paths');
  if (options.paths?.wit !== undefined && workloads === undefined) throw argumentError('ERR_INVALID_ARG_VALUE', 'options.paths.wit needs options.workloads');
  const paths: Partial<Record<EndpointName, string>> = {
    discovery: checkPath(options.paths?.discovery, 'discovery', '/.well-known/openid-configuration'),
    jwks: checkPath(options.paths?.jwks, 'jwks', '/jwks'),
    ict: checkPath(options.paths?.ict, 'ict', '/ict'),
    token: checkPath(options.paths?.token, 'token', '/token'),
    ...(workloads ? { wit: checkPath(options.paths?.wit, 'wit', '/wit') } : {}),
  };
  if (new Set(Object.values(paths)).size !== Object.keys(paths).length) throw argumentError('ERR_INVALID_ARG_VALUE', 'options.paths must be distinct');
  const basePath = (options.basePath ?? issuerUrl.pathname).replace(/\/$/, '');
  if (basePath !== '' && !basePath.startsWith('/')) throw argumentError('ERR_INVALID_ARG_VALUE', 'options.basePath must start with /');
  const endpoints: ResolvedIssuerOptions['endpoints'] = {
    discovery: base + paths.discovery,
    jwks: base + paths.jwks,
    ict: base + paths.ict,
    token: base + paths.token,
    ...(paths.wit !== undefined ? { wit: base + paths.wit } : {}),
  };
  const routes = new Map<string, EndpointName>(Object.entries(paths).map(([k, p]) => [basePath + p, k as EndpointName]));

  const replayStore: ReplayStore = options.replayStore ?? new MemoryReplayStore({ maxEntries: 100_000 });
  if (typeof replayStore.checkAndRecord !== 'function') throw argumentError('ERR_INVALID_ARG_TYPE', 'options.replayStore must implement checkAndRecord');
  if (typeof options.dpopNonces === 'object' && options.dpopNonces !== null) assertOptions(options.dpopNonces, DPOP_NONCE_OPTIONS, 'options.dpopNonces');
  const dpopNonces = options.dpopNonces ? createDpopNonces(options.dpopNonces === true ? {} : options.dpopNonces) : undefined;

  assertEventListener(options.onEvent, 'options.onEvent');
  return {
    events: createEventSink(options.onEvent),
    issuer,
    authenticators: [...options.authenticators],
    signingKeys: options.signingKeys,
    signingKeyStore: options.signingKeyStore,
    algorithm,
    ictLifetime,
    maxIctLifetime,
    keyRotationInterval,
    clockTolerance,
    clients,
    subjects,
    contextsSupported,
    replayStore,
    dpopNonces,
    now,
    maxBodyBytes,
    jwksMaxAge,
    metadata: options.metadata,
    workloads,
    endpoints,
    routes,
  };
}
