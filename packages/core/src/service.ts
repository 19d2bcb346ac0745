/**
 * Everything an adapter needs, framework-free: authenticate a request, apply the route policy,
 * sign the response with the service's own credential and render errors (PROFILE sections 2-4).
 * Adapters only translate their framework's request and response to and from the core's messages.
 */
import { decodeJwt, type JWK } from 'jose';
import { Oidc2Error, PROBLEM_CONTENT_TYPE, isOidc2Error } from './errors.js';
import { fieldLines, type Fields, type HttpRequest, type HttpResponse } from './message.js';
import { createAuthenticator, type AuthenticatorOptions, type Identity, type RequestBinding } from './authenticator.js';
import { signResponse, type ServiceCredential } from './response-signature.js';
import { parseSignatureInput } from './rfc9421/index.js';
import { ICT_SIGNATURE_TAG } from './profile.js';
import { importKey, keyHandleFrom, type KeyHandle } from './lib/crypto.js';
import { utf8 } from './lib/base64.js';
import { argumentError } from './lib/validate.js';

/** The service's credential as configured: its ICT and the private key it certifies. */
export interface CredentialInput {
  /** The service's ICT (compact JWT) whose `cnf.jwk` is the public half of `privateKey`. */
  ict: string;
  /** The private key: a private JWK, a CryptoKey / KeyObject, or a handle from `importKey`. */
  privateKey: JWK | CryptoKey | KeyHandle | object;
  /** JWA algorithm of the key. Default: `cnf.jwk.alg` of the ICT, else the curve's default. */
  alg?: string;
}

/** A fixed credential, or a provider called again before the current ICT expires. */
export type CredentialSource = CredentialInput | (() => CredentialInput | Promise<CredentialInput>);

/** Per-route access policy, applied after authentication. */
export interface RoutePolicy {
  /** Contexts (`ctx`) the ICT must all carry. Default none. */
  contexts?: string[];
  /** Claims the ICT must carry with these values (an array claim must include the value). Default none. */
  claims?: Record<string, unknown>;
  /** A predicate that must return true. Default none. */
  allow?: (identity: Identity) => boolean | Promise<boolean>;
  /** Let unauthenticated requests through with `identity` null and the failure reason exposed. Default false. */
  optional?: boolean;
}

/** Options shared by every adapter. */
export interface Oidc2Options extends AuthenticatorOptions {
  /** The service's own credential used to sign responses. Default none: responses are not signed. */
  credential?: CredentialSource;
  /** The default policy of every route. Default: authentication required, nothing more. */
  policy?: RoutePolicy;
  /** Largest request body in bytes read for `Content-Digest`. Default 1 MiB. */
  maxBodyBytes?: number;
  /** Largest response body in bytes buffered for signing. Default 4 MiB. */
  maxResponseBytes?: number;
  /** Seconds before the credential's ICT expires at which the provider is called again. Default 60. */
  credentialRefreshMargin?: number;
}

/** The outcome of {@link Oidc2Service.authenticate}. */
export interface AuthResult {
  /** The caller, or null when authentication failed on an optional route. */
  identity: Identity | null;
  /** Why authentication failed on an optional route. */
  error?: Oidc2Error;
  /** What the response signature binds to (also for failures, when the request named it). */
  binding: RequestBinding | undefined;
}

/** The framework-free service an adapter drives. */
export interface Oidc2Service {
  /**
   * Authenticates and applies the policy; throws an `Oidc2Error` unless the policy is optional. A
   * caller asking for a signed response from a service without a credential gets
   * `response_signing_unavailable` (501) here, before any route could answer unsigned.
   */
  authenticate(request: HttpRequest, policy?: RoutePolicy): Promise<AuthResult>;
  /** Whether responses can be signed (a credential is configured). */
  readonly signsResponses: boolean;
  /** Fields to add to a response (token, digest, signature), or undefined without a credential. */
  signResponse(response: HttpResponse, request: HttpRequest, binding: RequestBinding | undefined): Promise<Fields | undefined>;
  /** The problem+json response for an error, signed when a credential is configured. */
  errorResponse(error: Oidc2Error, request: HttpRequest, binding?: RequestBinding): Promise<HttpResponse>;
  /** The binding a request asks for, read from its fields without trusting them (for error responses). */
  bindingOf(request: HttpRequest): RequestBinding | undefined;
  readonly maxBodyBytes: number;
  readonly maxResponseBytes: number;
}

interface CachedCredential {
  credential: ServiceCredential;
  expiresAt: number;
  lifetime: number;
}

const CURVE_ALG: Record<string, string> = { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512', Ed25519: 'Ed25519' };

/**
 * Checks a route policy once, where it is declared (adapters call it for per-route policies).
 * Throws a `TypeError` naming the bad field.
 */
export function assertRoutePolicy(policy: RoutePolicy | undefined, name = 'policy'): void {
  if (policy === undefined) return;
  if (typeof policy !== 'object' || policy === null) throw argumentError('ERR_INVALID_ARG_TYPE', `${name} must be an object`);
  if (policy.contexts !== undefined && (!Array.isArray(policy.contexts) || policy.contexts.some((c) => typeof c !== 'string'))) {
    throw argumentError('ERR_INVALID_ARG_VALUE', `${name}.contexts must be an array of strings`);
  }
  if (policy.claims !== undefined && (typeof policy.claims !== 'object' || policy.claims === null)) {
    throw argumentError('ERR_INVALID_ARG_TYPE', `${name}.claims must be an object`);
  }
  if (policy.allow !== undefined && typeof policy.allow !== 'function') throw argumentError('ERR_INVALID_ARG_TYPE', `${name}.allow must be a function`);
}

function claimMatches(actual: unknown, expected: unknown): boolean {
  if (Array.isArray(actual) && !Array.isArray(expected)) return actual.some((a) => claimMatches(a, expected));
  if (typeof expected !== 'object' || expected === null) return actual === expected;
  return JSON.stringify(actual) === JSON.stringify(expected);
}

async function applyPolicy(identity: Identity, policy: RoutePolicy | undefined): Promise<void> {
  if (!policy) return;
  for (const ctx of policy.contexts ?? []) {
    if (!identity.contexts.includes(ctx)) throw new Oidc2Error('context_required', `this route requires the authentication context ${ctx}`);
  }
  for (const [claim, value] of Object.entries(policy.claims ?? {})) {
    if (!claimMatches(identity.claims[claim], value)) throw new Oidc2Error('access_denied', `the ICT claim ${claim} does not satisfy this route's policy`);
  }
  if (policy.allow && (await policy.allow(identity)) !== true) throw new Oidc2Error('access_denied', "the caller is not allowed by this route's policy");
}

async function toServiceCredential(input: CredentialInput): Promise<CachedCredential> {
  if (typeof input?.ict !== 'string') throw argumentError('ERR_INVALID_ARG_VALUE', 'credential.ict must be a compact JWT');
  let claims;
  try {
    claims = decodeJwt(input.ict);
  } catch {
    throw argumentError('ERR_INVALID_ARG_VALUE', 'credential.ict is not a JWT');
  }
  const cnf = (claims.cnf as { jwk?: JWK } | undefined)?.jwk;
  const alg = input.alg ?? cnf?.alg ?? (cnf?.crv ? CURVE_ALG[cnf.crv] : undefined);
  if (!alg) throw argumentError('ERR_INVALID_ARG_VALUE', 'credential.alg is required when the ICT key names no algorithm');
  const pk = input.privateKey as Partial<KeyHandle> & JWK;
  let key: KeyHandle;
  if (pk === null || typeof pk !== 'object') throw argumentError('ERR_INVALID_ARG_TYPE', 'credential.privateKey must be a JWK, a CryptoKey, a KeyObject or a key handle');
  if (pk.spec !== undefined && pk.usage !== undefined) key = pk as KeyHandle;
  else if (typeof pk.kty === 'string') key = await importKey(pk, alg, 'sign');
  else key = keyHandleFrom(pk as unknown as CryptoKey, alg, 'sign');
  const expiresAt = typeof claims.exp === 'number' ? claims.exp : Infinity;
  const lifetime = typeof claims.iat === 'number' ? expiresAt - claims.iat : Infinity;
  return { credential: { ict: input.ict, key }, expiresAt, lifetime };
}

/**
 * The unsigned RFC 9457 rendering of an error: its status, its challenge headers, `no-store`, and the
 * problem+json body. {@link Oidc2Service.errorResponse} signs it.
 */
export function problemResponse(error: Oidc2Error): HttpResponse {
  const headers: Fields = {};
  for (const [name, value] of Object.entries(error.headers)) headers[name.toLowerCase()] = [value];
  headers['content-type'] = [PROBLEM_CONTENT_TYPE];
  headers['cache-control'] = ['no-store'];
  return { status: error.status, headers, body: utf8(JSON.stringify(error.toProblem())) };
}

/**
 * Creates the framework-free service: validates every option once and returns what adapters call.
 *
 * @example
 * ```ts
 * const service = createOidc2Service({ issuers: [{ issuer: 'https://op.example.com' }], audiences: ['https://api.example.com'] })
 * const { identity } = await service.authenticate(request)
 * ```
 */
export function createOidc2Service(options: Oidc2Options): Oidc2Service {
  const authenticator = createAuthenticator(options);
  assertRoutePolicy(options.policy, 'options.policy');
  const now = options.now ?? (() => Date.now() / 1000);
  const maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024;
  const maxResponseBytes = options.maxResponseBytes ?? 4 * 1024 * 1024;
  const margin = options.credentialRefreshMargin ?? 60;
  for (const [name, v] of [['maxBodyBytes', maxBodyBytes], ['maxResponseBytes', maxResponseBytes], ['credentialRefreshMargin', margin]] as const) {
    if (!Number.isInteger(v) || v < 0) throw argumentError('ERR_INVALID_ARG_VALUE', `options.${name} must be a non-negative integer`);
  }
  const source = options.credential;
  if (source !== undefined && typeof source !== 'function' && (typeof source !== 'object' || source === null || typeof source.ict !== 'string')) {
    throw argumentError('ERR_INVALID_ARG_VALUE', 'options.credential must be { ict, privateKey } or a function returning it');
  }

  let current: CachedCredential | undefined;
  let pending: Promise<CachedCredential> | undefined;
  async function credential(): Promise<ServiceCredential | undefined> {
    if (source === undefined) return undefined;
    const t = now();
    // A credential shorter-lived than twice the margin is refreshed at half its life, so a provider
    // handing out short ICTs is not called on every response.
    if (current && (typeof source !== 'function' || current.expiresAt - Math.min(margin, current.lifetime / 2) > t)) return current.credential;
    // Single-flight: concurrent responses share one provider call.
    pending ??= (async () => {
      try {
        return await toServiceCredential(typeof source === 'function' ? await source() : source);
      } finally {
        pending = undefined;
      }
    })();
    try {
      current = await pending;
    } catch (error) {
      if (current && current.expiresAt > t) return current.credential; // keep serving until it expires
      throw new Oidc2Error('response_signing_unavailable', 'the service credential is unavailable', { cause: error });
    }
    return current.credential;
  }

  function bindingOf(request: HttpRequest): RequestBinding | undefined {
    const auth = fieldLines(request.headers, 'authorization');
    if (auth?.length === 1 && /^dpop /i.test(auth[0]!.trim()) && fieldLines(request.headers, 'dpop')) return { proof: 'dpop', signResponse: false };
    if (auth?.length === 1 && /^wpt /i.test(auth[0]!.trim())) return { proof: 'wpt', signResponse: false };
    try {
      for (const entry of parseSignatureInput(fieldLines(request.headers, 'signature-input')).values()) {
        if (entry.params.tag !== ICT_SIGNATURE_TAG) continue;
        const nonce = entry.params.nonce;
        return { proof: 'http-signature', nonce: typeof nonce === 'string' ? nonce : undefined, signResponse: entry.params['oidc2-sign-response'] === true };
      }
    } catch {
      return undefined;
    }
    return undefined;
  }

  async function sign(response: HttpResponse, request: HttpRequest, binding: RequestBinding | undefined): Promise<Fields | undefined> {
    const cred = await credential();
    if (!cred) {
      if (binding?.signResponse) throw new Oidc2Error('response_signing_unavailable', 'the caller asked for a signed response and the service has no credential');
      return undefined;
    }
    return signResponse(response, request, binding ?? { proof: 'http-signature', signResponse: false }, cred, { now });
  }

  return {
    signsResponses: source !== undefined,
    maxBodyBytes,
    maxResponseBytes,
    bindingOf,
    async authenticate(request, policy) {
      const effective = policy ?? options.policy;
      let result: AuthResult;
      try {
        const identity = await authenticator.authenticate(request);
        await applyPolicy(identity, effective);
        result = { identity, binding: identity.binding };
      } catch (error) {
        if (!(effective?.optional && isOidc2Error(error) && error.status === 401)) throw error;
        result = { identity: null, error, binding: bindingOf(request) };
      }
      if (source === undefined && result.binding?.signResponse) {
        // Refused before the route runs: it could only answer with an unsigned success (PROFILE 3).
        throw new Oidc2Error('response_signing_unavailable', 'the caller asked for a signed response and the service has no credential');
      }
      return result;
    },
    signResponse: sign,
    async errorResponse(error, request, binding) {
      const response = problemResponse(error);
      try {
        const added = await sign(response, request, binding ?? bindingOf(request));
        if (added) Object.assign(response.headers, added);
      } catch {
        // An error response stays unsigned when the credential itself is unavailable.
      }
      return response;
    },
  };
}
