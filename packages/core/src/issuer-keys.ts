/**
 * Where an issuer's signing keys come from: inline keys, a configured JWKS URL, or OIDC discovery.
 * Keys are fetched only for issuers in the verifier's configuration and only from configured or
 * discovered URLs, never from a URL found in a token.
 */
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  jwksCache,
  type FlattenedJWSInput,
  type JWK,
  type JWSHeaderParameters,
  type RemoteJWKSet,
} from 'jose';
import { Oidc2Error } from './errors.js';
import { CHANNEL_SINK, failureOf, type EventSink } from './events.js';
import { readBoundedBody } from './lib/body.js';
import { fromUtf8 } from './lib/base64.js';
import { ASYMMETRIC_JWA } from './lib/crypto.js';
import { boundedGet, hasNodeHttp } from './lib/http-get.js';
import { argumentError, assertOptions } from './lib/validate.js';

/** An issuer whose ICTs a verifier accepts, and where its keys come from. */
export interface TrustedIssuer {
  /** Exact `iss` value (compared with `===`, no normalisation). */
  issuer: string;
  /** Inline public keys. Mutually exclusive with `jwksUri`. */
  jwks?: { keys: JWK[] };
  /**
   * JWKS URL (configured, never taken from a token). `https:`, or `http:` on a loopback host.
   * When neither `jwks` nor `jwksUri` is given, keys come from OIDC discovery:
   * `<issuer>/.well-known/openid-configuration` -> `jwks_uri` (the default).
   */
  jwksUri?: string;
  /**
   * Accepted `aud` values for ICTs of this issuer. Default: the verifier's `tokenAudiences`.
   * (Formerly `audiences`, which names the service's public base URLs everywhere else.)
   */
  tokenAudiences?: string[];
  /** Largest accepted `exp - iat` in seconds for this issuer. Default: the verifier's `maxTokenAge` (3600). */
  maxTokenAge?: number;
}

/** How remote key sets and discovery documents are fetched and cached. All durations in seconds. */
export interface IssuerKeyOptions {
  /**
   * The fetch implementation. Default: on Node, a GET over `node:http` / `node:https` with the same
   * rules (no redirect followed, TLS verified, bounded body, one deadline; no connection kept);
   * elsewhere `globalThis.fetch`, looked up at each request.
   */
  fetch?: typeof fetch;
  /** How long fetched keys are used before they are fetched again; also the discovery document's lifetime. Default `600`. */
  cacheMaxAge?: number;
  /**
   * After a successful fetch, an unknown `kid` triggers no new fetch for this long; after a failed
   * fetch, no new attempt is made for this long. Default `30`.
   */
  cooldown?: number;
  /** Limit for one fetch, from request to the last body byte. Default `5`. */
  timeout?: number;
  /**
   * When a fetch fails, keys fetched earlier are still used for this long past `cacheMaxAge`
   * (RFC 5861 stale-if-error). `0` disables it. Default `3600`.
   */
  staleIfError?: number;
  /** Largest accepted JWKS or discovery response body, in bytes. Default `131072` (128 KiB). */
  maxResponseBytes?: number;
}

/** Every key of {@link TrustedIssuer}: any other key is refused with `ERR_UNKNOWN_OPTION`. */
export const TRUSTED_ISSUER_KEYS = Object.freeze(['issuer', 'jwks', 'jwksUri', 'tokenAudiences', 'maxTokenAge'] as const satisfies ReadonlyArray<keyof TrustedIssuer>);
/** Former names of {@link TrustedIssuer} keys, refused with the current name. */
const TRUSTED_ISSUER_RENAMED = Object.freeze({ audiences: 'tokenAudiences' });

/** Every key of {@link IssuerKeyOptions}: any other key is refused with `ERR_UNKNOWN_OPTION`. */
export const ISSUER_KEY_OPTION_KEYS = Object.freeze([
  'fetch',
  'cacheMaxAge',
  'cooldown',
  'timeout',
  'staleIfError',
  'maxResponseBytes',
] as const satisfies ReadonlyArray<keyof IssuerKeyOptions>);

/** A key lookup for jose's `compactVerify`/`jwtVerify`. */
export type IssuerKeyResolver = (header: JWSHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey>;

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;
const ISSUER_KEY_TYPES = new Set(['EC', 'OKP', 'RSA']);
// jose errors that mean "the token names no usable key", as opposed to "the keys could not be had".
const KEY_SELECTION_ERRORS = new Set(['ERR_JWKS_NO_MATCHING_KEY', 'ERR_JWKS_MULTIPLE_MATCHING_KEYS']);

interface ResolvedOptions {
  fetch: typeof fetch;
  /** Whether documents are fetched over node:http(s) instead of {@link ResolvedOptions.fetch} (no fetch injected, on Node). */
  nodeGet: boolean;
  cacheMaxAge: number; // ms
  cooldown: number; // ms
  timeout: number; // ms
  staleIfError: number; // ms
  maxResponseBytes: number;
}

function seconds(name: string, value: number | undefined, fallback: number, allowZero: boolean): number {
  if (value === undefined) return fallback * 1000;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw argumentError('ERR_INVALID_ARG_VALUE', `${name} must be a ${allowZero ? 'non-negative' : 'positive'} number of seconds`);
  }
  return Math.round(value * 1000);
}

/** Validates and fills in {@link IssuerKeyOptions}. */
function resolveOptions(options: IssuerKeyOptions, prefix: string): ResolvedOptions {
  assertOptions(options as unknown, ISSUER_KEY_OPTION_KEYS, prefix.replace(/\.$/, ''));
  if (options.fetch !== undefined && typeof options.fetch !== 'function') {
    throw argumentError('ERR_INVALID_ARG_TYPE', `${prefix}fetch must be a function`);
  }
  const maxResponseBytes = options.maxResponseBytes ?? 131072;
  if (!Number.isInteger(maxResponseBytes) || maxResponseBytes < 1024) {
    throw argumentError('ERR_INVALID_ARG_VALUE', `${prefix}maxResponseBytes must be an integer of at least 1024`);
  }
  const own = options.fetch;
  return {
    fetch: own ?? ((input, init) => globalThis.fetch(input, init)),
    nodeGet: own === undefined && hasNodeHttp(),
    cacheMaxAge: seconds(`${prefix}cacheMaxAge`, options.cacheMaxAge, 600, false),
    cooldown: seconds(`${prefix}cooldown`, options.cooldown, 30, true),
    timeout: Math.max(1, seconds(`${prefix}timeout`, options.timeout, 5, false)),
    staleIfError: seconds(`${prefix}staleIfError`, options.staleIfError, 3600, true),
    maxResponseBytes,
  };
}

function isLoopback(url: URL): boolean {
  const host = url.hostname;
  return host === 'localhost' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function parseUrl(value: string): URL | undefined {
  try {
    return new URL(value);
  } catch {
    return undefined;
  }
}

// https everywhere; plain http only between loopback addresses (local development and tests).
function fetchableUrl(value: unknown, httpAllowed: boolean): URL | undefined {
  const url = typeof value === 'string' ? parseUrl(value) : undefined;
  if (!url || url.username || url.password || url.hash) return undefined;
  if (url.protocol === 'https:') return url;
  return url.protocol === 'http:' && httpAllowed && isLoopback(url) ? url : undefined;
}

/** Throws TypeError unless `key` is a public asymmetric JWK that may verify tokens. */
function assertIssuerKey(key: unknown, where: string): void {
  if (typeof key !== 'object' || key === null || Array.isArray(key)) throw argumentError('ERR_INVALID_ARG_TYPE', `${where} must be a JWK object`);
  const jwk = key as Record<string, unknown>;
  if (!ISSUER_KEY_TYPES.has(String(jwk.kty))) throw argumentError('ERR_INVALID_ARG_VALUE', `${where}.kty must be EC, OKP or RSA`);
  for (const m of PRIVATE_MEMBERS) {
    if (jwk[m] !== undefined) throw argumentError('ERR_INVALID_ARG_VALUE', `${where} must be a public key (it has "${m}")`);
  }
  if (jwk.alg !== undefined && !(ASYMMETRIC_JWA as readonly unknown[]).includes(jwk.alg)) {
    throw argumentError('ERR_INVALID_ARG_VALUE', `${where}.alg must be one of ${ASYMMETRIC_JWA.join(', ')}`);
  }
}

/** Throws TypeError unless `config` is a well-formed {@link TrustedIssuer}. */
export function assertTrustedIssuer(config: TrustedIssuer, where = 'issuer'): void {
  assertOptions(config as unknown, TRUSTED_ISSUER_KEYS, where, TRUSTED_ISSUER_RENAMED);
  if (typeof config.issuer !== 'string' || config.issuer.length === 0) {
    throw argumentError('ERR_INVALID_ARG_VALUE', `${where}.issuer must be a non-empty string`);
  }
  if (config.jwks !== undefined && config.jwksUri !== undefined) {
    throw argumentError('ERR_INVALID_ARG_VALUE', `${where} takes either jwks or jwksUri, not both`);
  }
  if (config.jwks !== undefined) {
    if (typeof config.jwks !== 'object' || config.jwks === null || !Array.isArray(config.jwks.keys) || config.jwks.keys.length === 0) {
      throw argumentError('ERR_INVALID_ARG_VALUE', `${where}.jwks must be a JWK set with at least one key`);
    }
    config.jwks.keys.forEach((k, i) => assertIssuerKey(k, `${where}.jwks.keys[${i}]`));
  } else if (config.jwksUri !== undefined) {
    if (!fetchableUrl(config.jwksUri, true)) {
      throw argumentError('ERR_INVALID_ARG_VALUE', `${where}.jwksUri must be an https URL (http only on a loopback host)`);
    }
  } else {
    const url = fetchableUrl(config.issuer, true);
    if (!url || url.search) {
      throw argumentError(
        'ERR_INVALID_ARG_VALUE',
        `${where}.issuer must be an https URL without query for OIDC discovery; otherwise configure jwks or jwksUri`,
      );
    }
  }
  if (config.tokenAudiences !== undefined && (!Array.isArray(config.tokenAudiences) || config.tokenAudiences.some((a) => typeof a !== 'string' || a.length === 0))) {
    throw argumentError('ERR_INVALID_ARG_VALUE', `${where}.tokenAudiences must be a list of non-empty strings`);
  }
  if (config.maxTokenAge !== undefined && (typeof config.maxTokenAge !== 'number' || !(config.maxTokenAge > 0) || !Number.isFinite(config.maxTokenAge))) {
    throw argumentError('ERR_INVALID_ARG_VALUE', `${where}.maxTokenAge must be a positive number of seconds`);
  }
}

/** GETs `url` and returns the body of a 200 response, refusing bodies over `maxBytes`. */
async function fetchBounded(o: ResolvedOptions, url: string, init: RequestInit, maxBytes: number): Promise<Uint8Array> {
  if (o.nodeGet) return boundedGet(url, { headers: headerRecord(init.headers), timeoutMs: o.timeout, maxBytes, signal: init.signal });
  const response = await o.fetch(url, init);
  if (response.status !== 200) {
    await response.body?.cancel().catch(() => undefined);
    throw new Error(`expected 200 OK, got ${response.status}`);
  }
  return readBoundedBody(response, maxBytes, () => new Error(`response larger than ${maxBytes} bytes`));
}

/** GETs a JSON document (discovery, SPIFFE bundle) within the options' time and size bounds, never following redirects. */
function fetchDocument(o: ResolvedOptions, url: string): Promise<Uint8Array> {
  return fetchBounded(o, url, { method: 'GET', redirect: 'manual', headers: { accept: 'application/json' }, signal: AbortSignal.timeout(o.timeout) }, o.maxResponseBytes);
}

/** Request fields as a plain record (jose hands a `Headers`). */
function headerRecord(headers: HeadersInit | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (headers === undefined) return out;
  if (typeof (headers as Headers).forEach === 'function' && !Array.isArray(headers)) (headers as Headers).forEach((value, name) => (out[name.toLowerCase()] = value));
  else for (const [name, value] of Array.isArray(headers) ? headers : Object.entries(headers)) out[name.toLowerCase()] = value;
  return out;
}

/** Publishes the outcome of one fetch of `issuer`'s keys or discovery document at `url`. */
async function observed(events: EventSink, issuer: string, url: string, fetching: Promise<Uint8Array>): Promise<Uint8Array> {
  let body: Uint8Array;
  try {
    body = await fetching;
  } catch (error) {
    if (events.wants('key_fetch')) events.publish({ type: 'key_fetch', issuer, url, outcome: 'failure', code: 'issuer_unavailable', reason: failureOf(error).reason });
    throw error;
  }
  if (events.wants('key_fetch')) {
    let keys: number | undefined;
    try {
      const doc = JSON.parse(fromUtf8(body)) as { keys?: unknown };
      if (Array.isArray(doc.keys)) keys = doc.keys.length;
    } catch {
      // Not JSON: the parser that reads it next reports that.
    }
    events.publish({ type: 'key_fetch', issuer, url, outcome: 'success', ...(keys !== undefined ? { keys } : {}) });
  }
  return body;
}

/** Publishes that keys of an earlier fetch stand in for a failed one (stale-if-error). */
function staleUsed(events: EventSink, issuer: string, url: string): void {
  if (events.wants('key_fetch')) events.publish({ type: 'key_fetch', issuer, url, outcome: 'failure', code: 'issuer_unavailable', stale: true, reason: 'the keys of an earlier fetch are used' });
}

function unavailable(issuer: string, cause?: unknown): Oidc2Error {
  return new Oidc2Error('issuer_unavailable', `the keys of issuer ${issuer} cannot be fetched`, cause === undefined ? undefined : { cause });
}

function errorCode(err: unknown): unknown {
  return typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
}

// One remote key set plus what jose does not do: remember failures (so an outage costs one fetch
// per cool-down, not one per request) and fall back to the last keys fetched (stale-if-error).
interface RemoteKeys {
  uri: string;
  set: RemoteJWKSet;
  // jose writes { uat, jwks } here after every successful fetch.
  cache: { uat?: number; jwks?: { keys: JWK[] } };
  failedAt: number;
  stale?: { uat: number; set: ReturnType<typeof createLocalJWKSet> };
}

/**
 * Creates the key lookup for one trusted issuer. Nothing is fetched until the first lookup.
 * Fetch failures become `Oidc2Error` `issuer_unavailable` (503); a token naming no key of the set
 * surfaces as jose's `ERR_JWKS_NO_MATCHING_KEY` (or `ERR_JWKS_MULTIPLE_MATCHING_KEYS` when it
 * carries no `kid` and several keys fit), for the caller to map.
 *
 * Caching and single-flight are jose's `createRemoteJWKSet`: concurrent lookups share one fetch,
 * keys are refreshed after `cacheMaxAge`, and an unknown `kid` refetches at most once per
 * `cooldown`. Its clock, and so this cache's, is `Date.now()`.
 *
 * @example
 * ```ts
 * const getKey = createIssuerKeyResolver({ issuer: 'https://op.example' }, { timeout: 2 });
 * const { payload } = await jwtVerify(token, getKey, { algorithms: ['ES256'] });
 * ```
 */
export function createIssuerKeyResolver(config: TrustedIssuer, options: IssuerKeyOptions = {}, events: EventSink = CHANNEL_SINK): IssuerKeyResolver {
  assertTrustedIssuer(config);
  const o = resolveOptions(options, 'options.');
  const issuer = config.issuer;
  if (config.jwks) {
    const local = createLocalJWKSet(config.jwks);
    return (header, token) => local(header, token);
  }

  const jwksFetch = async (url: string, init: RequestInit): Promise<Response> => {
    const body = await observed(events, issuer, url, fetchBounded(o, url, init, o.maxResponseBytes));
    return new Response(body as BodyInit, { status: 200, headers: { 'content-type': 'application/json' } });
  };

  const remoteFor = (uri: string): RemoteKeys => {
    const cache: RemoteKeys['cache'] = {};
    const set = createRemoteJWKSet(new URL(uri), {
      timeoutDuration: o.timeout,
      cooldownDuration: o.cooldown,
      cacheMaxAge: o.cacheMaxAge,
      [customFetch]: jwksFetch,
      [jwksCache]: cache as Record<string, never>,
    });
    return { uri, set, cache, failedAt: -Infinity };
  };

  const fromStale = async (r: RemoteKeys, header: JWSHeaderParameters, token: FlattenedJWSInput, cause: unknown): Promise<CryptoKey> => {
    const { uat, jwks } = r.cache;
    if (uat === undefined || jwks === undefined || Date.now() > uat + o.cacheMaxAge + o.staleIfError) throw unavailable(issuer, cause);
    if (r.stale?.uat !== uat) r.stale = { uat, set: createLocalJWKSet(jwks) };
    try {
      const key = await r.stale.set(header, token);
      if (cause !== undefined) staleUsed(events, issuer, r.uri);
      return key;
    } catch (err) {
      // A kid we do not know may be a new key we could not fetch: "try again later", not "invalid".
      if (errorCode(err) === 'ERR_JWKS_MULTIPLE_MATCHING_KEYS') throw err;
      throw unavailable(issuer, cause);
    }
  };

  const keyFrom = async (r: RemoteKeys, header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey> => {
    if (Date.now() - r.failedAt < o.cooldown) return fromStale(r, header, token, undefined);
    try {
      return await r.set(header, token);
    } catch (err) {
      if (KEY_SELECTION_ERRORS.has(String(errorCode(err)))) throw err;
      r.failedAt = Date.now();
      return fromStale(r, header, token, err);
    }
  };

  if (config.jwksUri) {
    const remote = remoteFor(config.jwksUri);
    return (header, token) => keyFrom(remote, header, token);
  }

  // OIDC discovery (OpenID Connect Discovery 1.0, section 4): fetched once, shared by concurrent
  // lookups, refreshed after cacheMaxAge; a failed refresh keeps the jwks_uri already known.
  const discoveryUrl = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
  const httpAllowed = new URL(issuer).protocol === 'http:';
  let remote: RemoteKeys | undefined;
  let checkedAt = -Infinity;
  let failedAt = -Infinity;
  let pending: Promise<void> | undefined;

  const discover = async (): Promise<void> => {
    const body = await observed(events, issuer, discoveryUrl, fetchDocument(o, discoveryUrl));
    const doc: unknown = JSON.parse(fromUtf8(body));
    if (typeof doc !== 'object' || doc === null || (doc as { issuer?: unknown }).issuer !== issuer) {
      throw new Error('the discovery document names a different issuer');
    }
    const uri = fetchableUrl((doc as { jwks_uri?: unknown }).jwks_uri, httpAllowed);
    if (!uri) throw new Error('the discovery document has no acceptable jwks_uri');
    if (remote?.uri !== uri.href) remote = remoteFor(uri.href);
    checkedAt = Date.now();
  };

  const current = async (): Promise<RemoteKeys> => {
    const now = Date.now();
    if (remote && now - checkedAt < o.cacheMaxAge) return remote;
    if (now - failedAt < o.cooldown) {
      if (remote) return remote;
      throw unavailable(issuer);
    }
    pending ??= discover()
      .catch((err: unknown) => {
        failedAt = Date.now();
        throw err;
      })
      .finally(() => {
        pending = undefined;
      });
    try {
      await pending;
    } catch (err) {
      if (!remote) throw unavailable(issuer, err);
    }
    return remote!;
  };

  return async (header, token) => keyFrom(await current(), header, token);
}

/** A SPIFFE bundle's keys as held: the `jwt-svid` keys, when to fetch again, and the sequence. */
interface HeldBundle {
  set: ReturnType<typeof createLocalJWKSet>;
  fetchedAt: number;
  refreshAt: number;
  sequence: number | undefined;
}

const MAX_REFRESH_HINT = 86_400_000;

/**
 * Reads a SPIFFE trust bundle (SPIFFE Trust Domain and Bundle, section 4): a JWK Set whose keys
 * each carry `use` (`x509-svid` or `jwt-svid`), with optional `spiffe_sequence` and
 * `spiffe_refresh_hint` members. Returns the `jwt-svid` keys (without `use`, which jose would read
 * as a use other than `sig`), the hint in seconds and the sequence. Throws for anything else.
 */
function readSpiffeBundle(body: Uint8Array): { keys: JWK[]; hint: number | undefined; sequence: number | undefined } {
  const doc: unknown = JSON.parse(fromUtf8(body));
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new Error('the bundle is not a JSON object');
  const { keys, spiffe_refresh_hint: hint, spiffe_sequence: sequence } = doc as Record<string, unknown>;
  // SPIRE serves an empty bundle as "keys": null.
  if (keys !== null && !Array.isArray(keys)) throw new Error('the bundle has no keys array');
  if (hint !== undefined && (typeof hint !== 'number' || !Number.isInteger(hint) || hint < 0)) throw new Error('spiffe_refresh_hint is not a number of seconds');
  if (sequence !== undefined && (typeof sequence !== 'number' || !Number.isSafeInteger(sequence) || sequence < 0)) throw new Error('spiffe_sequence is not a non-negative integer');
  const jwtKeys: JWK[] = [];
  for (const [i, key] of (keys ?? []).entries()) {
    if (typeof key !== 'object' || key === null || (key as JWK).use !== 'jwt-svid') continue;
    assertIssuerKey(key, `bundle keys[${i}]`);
    const { use: _use, ...rest } = key as JWK;
    jwtKeys.push(rest);
  }
  return { keys: jwtKeys, hint, sequence };
}

/**
 * Creates the key lookup for a trust domain whose keys come from its SPIFFE bundle endpoint (an
 * https URL configured for the trust domain, or http on a loopback host). Only keys with `use`
 * `jwt-svid` verify tokens; `x509-svid` keys (X.509 CA certificates) are ignored. The bundle is
 * fetched again after its `spiffe_refresh_hint` (bounded below by `cooldown` and above by one
 * day; `cacheMaxAge` without a hint), single-flight, bounded in size and time like any key set;
 * an unknown `kid` fetches again at most once per `cooldown`. A failed fetch, or a bundle whose
 * `spiffe_sequence` is lower than the one held (a rollback), keeps the held keys for
 * `staleIfError` past their refresh time. Errors as {@link createIssuerKeyResolver}'s, naming `trustDomain`.
 *
 * @example
 * ```ts
 * const getKey = createSpiffeBundleResolver('example.org', 'https://spire.example.org/bundle')
 * await compactVerify(wit, getKey)
 * ```
 */
export function createSpiffeBundleResolver(trustDomain: string, url: string, options: IssuerKeyOptions = {}, where = 'spiffeBundleUrl', events: EventSink = CHANNEL_SINK): IssuerKeyResolver {
  if (!fetchableUrl(url, true)) throw argumentError('ERR_INVALID_ARG_VALUE', `${where} must be an https URL (http only on a loopback host)`);
  const o = resolveOptions(options, 'options.');
  const name = `spiffe://${trustDomain}`;
  let held: HeldBundle | undefined;
  let pending: Promise<HeldBundle> | undefined;
  let failedAt = -Infinity;

  const fetchBundle = async (): Promise<HeldBundle> => {
    const bundle = readSpiffeBundle(await observed(events, name, url, fetchDocument(o, url)));
    if (held?.sequence !== undefined && bundle.sequence !== undefined && bundle.sequence < held.sequence) {
      throw new Error('the bundle is older than the one held (spiffe_sequence went back)');
    }
    const fetchedAt = Date.now();
    const refreshIn = bundle.hint === undefined ? o.cacheMaxAge : Math.min(Math.max(bundle.hint * 1000, o.cooldown, 1000), MAX_REFRESH_HINT);
    return { set: createLocalJWKSet({ keys: bundle.keys }), fetchedAt, refreshAt: fetchedAt + refreshIn, sequence: bundle.sequence };
  };

  const refresh = (): Promise<HeldBundle> =>
    (pending ??= fetchBundle()
      .then((bundle) => (held = bundle))
      .catch((err: unknown) => {
        failedAt = Date.now();
        throw err;
      })
      .finally(() => {
        pending = undefined;
      }));

  // The held bundle while fresh; otherwise a new one, or the held one within staleIfError.
  const current = async (): Promise<HeldBundle> => {
    const t = Date.now();
    if (held && t < held.refreshAt) return held;
    const stale = held && t <= held.refreshAt + o.staleIfError ? held : undefined;
    if (t - failedAt < o.cooldown) {
      if (stale) return stale;
      throw unavailable(name);
    }
    try {
      return await refresh();
    } catch (err) {
      if (!stale) throw unavailable(name, err);
      staleUsed(events, name, url);
      return stale;
    }
  };

  return async (header, token) => {
    const bundle = await current();
    try {
      return await bundle.set(header, token);
    } catch (err) {
      // A kid we do not know may be a key added since: fetch once more, at most once per cool-down.
      const t = Date.now();
      if (errorCode(err) !== 'ERR_JWKS_NO_MATCHING_KEY' || t - bundle.fetchedAt < o.cooldown || t - failedAt < o.cooldown) throw err;
      let fresh: HeldBundle;
      try {
        fresh = await refresh();
      } catch {
        throw err;
      }
      return fresh.set(header, token);
    }
  };
}

/** The option names of {@link IssuerKeyOptions}. */
export const ISSUER_KEY_OPTIONS: readonly (keyof IssuerKeyOptions)[] = ['fetch', 'cacheMaxAge', 'cooldown', 'timeout', 'staleIfError', 'maxResponseBytes'];

/**
 * Throws `TypeError` unless `options` are valid {@link IssuerKeyOptions} without unknown keys; the
 * messages name each member under `where` (as the caller spells it).
 */
export function assertIssuerKeyOptions(options: IssuerKeyOptions, where = 'options'): void {
  assertOptions(options, ISSUER_KEY_OPTIONS, where);
  resolveOptions(options, `${where}.`);
}
