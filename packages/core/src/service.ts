/**
 * Everything an adapter needs, framework-free: authenticate a request, apply the route policy,
 * sign the response with the service's own credential and render errors (docs/protocol.md section 2-4).
 * Adapters only translate their framework's request and response to and from the core's messages.
 */
import { Oidc2Error, isOidc2Error } from './errors.js';
import type { Fields, HttpRequest, HttpResponse } from './message.js';
import { createAuthenticator, type AuthenticateOptions, type AuthenticatorOptions, type Identity, type RequestBinding } from './authenticator.js';
import { signResponse, type ServiceCredential, type SignResponseOptions } from './response-signature.js';
import { bindingProfile } from './binding.js';
import { OIDC2_PROFILE, WIMSE_PROFILE } from './profile.js';
import { requestBinding } from './proofs/detect.js';
import { applyRoutePolicy, assertRoutePolicy, type EncryptedStreamsPolicy, type RoutePolicy } from './policy.js';
import { problemResponse } from './problem.js';
import { credentialProviders, type CredentialSource, type ServiceCredentials } from './service-credential.js';
import { createExchange, type Exchange, type ExchangeHost } from './exchange.js';
import { argumentError, integerOption } from './lib/validate.js';
import { createE2eeService, hasE2eeFields, type E2eeOptions, type E2eeService, type EncryptionPolicy } from './e2ee/service-side.js';
import { assertEventListener, createEventSink, failureOf, type AuthenticationEvent, type EventSink, type Oidc2EventListener } from './events.js';
import { requestPath } from './lib/audience.js';

/** Options shared by every adapter. */
export interface Oidc2Options extends AuthenticatorOptions {
  /**
   * The service's own ICT credential, used to sign responses: shorthand for `credentials: { ict }`,
   * which it excludes. Default none.
   */
  credential?: CredentialSource;
  /**
   * The service's own credentials, used to sign responses: an ICT for OIDC² callers, a WIT for
   * WIMSE callers (WIMSE signatures and WPTs), or both. A caller is answered with the credential of
   * its profile; a service without one leaves the response unsigned, and refuses a caller who asked
   * for a signed response with `response_signing_unavailable`. (A WPT caller of a service without a
   * WIT is answered under the OIDC² profile with its ICT.) Default none: responses are not signed.
   */
  credentials?: ServiceCredentials;
  /** The default policy of every route. Default: authentication required, nothing more. */
  policy?: RoutePolicy;
  /** Largest request body in bytes read for `Content-Digest`. Default 1 MiB. */
  maxBodyBytes?: number;
  /** Largest response body in bytes buffered for signing. Default 4 MiB. */
  maxResponseBytes?: number;
  /** Seconds before a credential's token expires at which its provider is called again. Default 60. */
  credentialRefreshMargin?: number;
  /**
   * End-to-end encryption (docs/protocol.md section 7): HPKE key exchange, session tokens and encrypted
   * bodies, negotiated per request and governed per route by `policy.encryption`. It needs a
   * credential, because every e2ee response is signed (with the credential of the caller's profile).
   * `false` turns it off. Default: on with the defaults of {@link E2eeOptions} when the service
   * has a credential, else off.
   */
  e2ee?: false | E2eeOptions;
  /**
   * Receives one event per authentication decision, response signature, key fetch and credential
   * renewal (docs/events.md): codes, identifiers and thumbprints, never a token, proof or key. The
   * same events are published on `node:diagnostics_channel` whether or not this is set. A
   * throwing listener changes nothing. Default none.
   */
  onEvent?: Oidc2EventListener;
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
   * Starts the exchange of one request: `request` carries its method, target and fields; the body
   * follows through {@link Exchange.admit}. This is all an adapter needs (see docs/adapters.md).
   */
  exchange(request: HttpRequest, policy?: RoutePolicy): Exchange;
  /**
   * Authenticates and applies the policy; throws an `Oidc2Error` unless the policy is optional. A
   * caller asking for a signed response from a service without a credential of its profile (an ICT
   * for users, a WIT for workloads) gets `response_signing_unavailable` (501) here, before any
   * route could answer unsigned.
   */
  authenticate(request: HttpRequest, policy?: RoutePolicy, options?: AuthenticateOptions): Promise<AuthResult>;
  /** Whether responses can be signed (a credential, ICT or WIT, is configured). */
  readonly signsResponses: boolean;
  /**
   * Fields to add to a response (token, digest, signature), or undefined without a credential of
   * the binding's profile. `credential` pins the one to sign with (the one an e2ee handshake was
   * bound to). Default: the current one of the binding's profile. `options.streamedEncryptedBody`
   * signs the head of a response whose `aes128gcm` body follows as a stream, without a digest.
   */
  signResponse(response: HttpResponse, request: HttpRequest, binding: RequestBinding | undefined, credential?: ServiceCredential, options?: Pick<SignResponseOptions, 'streamedEncryptedBody'>): Promise<Fields | undefined>;
  /** The problem+json response for an error, signed when a credential is configured. */
  errorResponse(error: Oidc2Error, request: HttpRequest, binding?: RequestBinding): Promise<HttpResponse>;
  /** The binding a request asks for, read from its fields without trusting them (for error responses). */
  bindingOf(request: HttpRequest): RequestBinding | undefined;
  /** Largest request body read, in bytes. */
  readonly maxBodyBytes: number;
  /** Largest response body buffered for signing, in bytes. */
  readonly maxResponseBytes: number;
  /** End-to-end encryption, when the service has it. */
  readonly e2ee: E2eeService | undefined;
  /**
   * The service's current credential for a caller bound by `binding` (its profile's token kind;
   * default the OIDC² profile), or `response_signing_unavailable` without one.
   */
  credential(binding?: RequestBinding): Promise<ServiceCredential>;
  /** The encryption policy in force for a route policy. */
  encryptionPolicy(policy: RoutePolicy | undefined): EncryptionPolicy;
  /** Which encrypted bodies a route streams, for a route policy (`policy.encryptedStreams`). */
  encryptedStreams(policy: RoutePolicy | undefined): EncryptedStreamsPolicy;
  /**
   * Obtains every configured credential and checks that it can sign (its private key matches the
   * public key its token certifies). Resolves when all can; rejects with the first failure, a
   * `response_signing_unavailable` error whose message and cause say why. Call it at start-up to
   * fail before serving: `await service.ready()` (adapters expose it as `ready()` too). The check
   * also starts, unawaited, when the service is created, and reports a failure as a
   * `credential_refresh` event.
   */
  ready(): Promise<void>;
  /** Whether a route accepts symmetric session authentication, for a route policy (`policy.sessionMac`). */
  sessionMacAllowed(policy: RoutePolicy | undefined): boolean;
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
  if (typeof options !== 'object' || options === null) throw argumentError('ERR_INVALID_ARG_TYPE', 'options must be an object');
  const { credential: source, credentials: sources, policy, maxBodyBytes: maxBody, maxResponseBytes: maxResponse, credentialRefreshMargin, e2ee: e2eeOptions, onEvent, ...authenticatorOptions } = options;
  assertEventListener(onEvent, 'options.onEvent');
  const events = createEventSink(onEvent);
  const authenticator = createAuthenticator(authenticatorOptions, events);
  assertRoutePolicy(policy, 'options.policy');
  const now = options.now ?? (() => Date.now() / 1000);
  const maxBodyBytes = integerOption('options.maxBodyBytes', maxBody, 1024 * 1024);
  const maxResponseBytes = integerOption('options.maxResponseBytes', maxResponse, 4 * 1024 * 1024);
  const margin = integerOption('options.credentialRefreshMargin', credentialRefreshMargin, 60);
  const providers = credentialProviders(source, sources, margin, now, events);
  const signs = providers.ict !== undefined || providers.wit !== undefined;
  const noCredential = () => new Oidc2Error('response_signing_unavailable', 'the caller asked for a signed response and the service has no credential for its profile');
  if (e2eeOptions !== undefined && e2eeOptions !== false) {
    if (typeof e2eeOptions !== 'object' || e2eeOptions === null) throw argumentError('ERR_INVALID_ARG_TYPE', 'options.e2ee must be an object or false');
    if (!signs) throw argumentError('ERR_INVALID_ARG_VALUE', 'options.e2ee needs options.credential or options.credentials: every end-to-end encrypted response is signed');
  }
  const e2ee =
    signs && e2eeOptions !== false
      ? createE2eeService(e2eeOptions ?? {}, authenticatorOptions.audiences, now, typeof authenticatorOptions.clockTolerance === 'number' ? authenticatorOptions.clockTolerance : 60, providers.ict ? OIDC2_PROFILE : WIMSE_PROFILE)
      : undefined;

  // A response bound to nothing (a request that named no proof) is signed with the ICT, else the WIT.
  const unbound: RequestBinding = providers.ict ? { proof: 'http-signature', signResponse: false } : { proof: 'http-signature', signResponse: false, profile: WIMSE_PROFILE };

  // The binding a response is signed under and the credential that signs it: the one of the binding's
  // profile, or for a WPT caller of a service without a WIT the ICT under the OIDC² profile.
  function signer(binding: RequestBinding): { binding: RequestBinding; credential: () => Promise<ServiceCredential> } | undefined {
    const own = providers[bindingProfile(binding).token];
    if (own) return { binding, credential: own };
    if (binding.proof === 'wpt' && providers.ict) return { binding: { ...binding, profile: OIDC2_PROFILE }, credential: providers.ict };
    return undefined;
  }

  async function sign(response: HttpResponse, request: HttpRequest, binding: RequestBinding | undefined, pinned?: ServiceCredential, options?: Pick<SignResponseOptions, 'streamedEncryptedBody'>): Promise<Fields | undefined> {
    const chosen = signer(binding ?? unbound);
    if (!chosen) {
      if (binding?.signResponse) {
        const error = noCredential();
        signingEvent(request, response.status, undefined, error);
        throw error;
      }
      return undefined;
    }
    let credential: ServiceCredential | undefined = pinned;
    try {
      credential ??= await chosen.credential();
      const added = await signResponse(response, request, chosen.binding, credential, { ...options, now });
      signingEvent(request, response.status, credential, undefined, options?.streamedEncryptedBody);
      return added;
    } catch (error) {
      signingEvent(request, response.status, credential, error);
      throw error;
    }
  }

  function signingEvent(request: HttpRequest, status: number, credential: ServiceCredential | undefined, error: unknown, streamed?: boolean): void {
    if (!events.wants('response_signing')) return;
    events.publish({
      type: 'response_signing',
      method: request.method,
      path: requestPath(request.url),
      status,
      ...(credential ? { credential: credential.kind ?? 'ict', ...(credential.thumbprint ? { thumbprint: credential.thumbprint } : {}) } : {}),
      ...(error === undefined ? { outcome: 'success', ...(streamed ? { streamed: true } : {}) } : { outcome: 'failure', ...failureOf(error) }),
    });
  }

  const configuredAudiences = Object.freeze([...authenticatorOptions.audiences]);
  const tokenAudiences = Object.freeze(authenticatorOptions.tokenAudiences ?? authenticatorOptions.issuers.flatMap((i) => i.tokenAudiences ?? []));

  /** Publishes the authentication decision on `request`, started at `start` (ms). */
  function decided(request: HttpRequest, start: number, result: AuthResult | undefined, error: unknown, e2ee?: AuthenticationEvent['e2ee']): void {
    if (!events.wants('authentication')) return;
    const identity = result?.identity;
    const failure = error ?? result?.error;
    const code = isOidc2Error(failure) ? failure.code : undefined;
    const expected = code === 'audience_mismatch' ? { audiences: configuredAudiences } : code === 'ict_audience_mismatch' ? { audiences: tokenAudiences } : undefined;
    events.publish({
      type: 'authentication',
      method: request.method,
      path: requestPath(request.url),
      ...(failure === undefined ? { outcome: 'success' } : { outcome: 'failure', ...failureOf(failure), ...(isOidc2Error(failure) ? { status: failure.status } : {}) }),
      ...(result && failure !== undefined ? { anonymous: true } : {}),
      ...(identity
        ? { proof: identity.proof, kind: identity.kind, subject: identity.subject, issuer: identity.issuer, thumbprint: identity.thumbprint }
        : result?.binding
          ? { proof: result.binding.proof }
          : {}),
      ...(e2ee ? { e2ee } : {}),
      ...(expected ? { expected } : {}),
      durationMs: Math.max(0, performanceNow() - start),
    });
  }

  async function decide(request: HttpRequest, routePolicy?: RoutePolicy, authenticateOptions?: AuthenticateOptions): Promise<AuthResult> {
    const effective = routePolicy ?? policy;
    let result: AuthResult;
    try {
      const identity = await authenticator.authenticate(request, authenticateOptions);
      await applyRoutePolicy(identity, effective);
      result = { identity, binding: identity.binding };
    } catch (error) {
      // An e2ee request never reaches a route unauthenticated (its body and response need the
      // session), and a refusal of the encryption policy is never taken for a failed authentication.
      const e2eeRefusal = isOidc2Error(error) && (error.code.startsWith('e2ee_') || error.code.startsWith('session_'));
      if (!(effective?.optional && isOidc2Error(error) && error.status === 401 && !e2eeRefusal && !hasE2eeFields(request))) throw error;
      result = { identity: null, error, binding: requestBinding(request) };
    }
    // Refused before the route runs: it could only answer with an unsigned success (docs/protocol.md
    // section 4), or with a signed problem after it ran, when its credential is broken.
    if (result.binding?.signResponse) {
      const chosen = signer(result.binding);
      if (!chosen) throw noCredential();
      await chosen.credential();
    }
    return result;
  }

  async function authenticate(request: HttpRequest, routePolicy?: RoutePolicy, authenticateOptions?: AuthenticateOptions): Promise<AuthResult> {
    const start = performanceNow();
    try {
      const result = await decide(request, routePolicy, authenticateOptions);
      decided(request, start, result, undefined);
      return result;
    } catch (error) {
      decided(request, start, undefined, error);
      throw error;
    }
  }

  const checks = Object.values(providers).map((provider) => provider!);
  const ready = async (): Promise<void> => {
    await Promise.all(checks.map((provider) => provider()));
  };
  // Starts obtaining and checking the credentials now; a failure is published as an event and
  // surfaces again on the first response that needs the credential, or from ready().
  if (checks.length > 0) ready().catch(() => undefined);

  async function errorResponse(error: Oidc2Error, request: HttpRequest, binding?: RequestBinding): Promise<HttpResponse> {
    const response = problemResponse(error);
    try {
      const added = await sign(response, request, binding ?? requestBinding(request));
      if (added) Object.assign(response.headers, added);
    } catch {
      // An error response stays unsigned when the credential itself is unavailable.
    }
    return response;
  }

  const service: Oidc2Service = {
    signsResponses: signs,
    maxBodyBytes,
    maxResponseBytes,
    bindingOf: (request) => requestBinding(request),
    e2ee,
    credential: (binding) => {
      const own = providers[bindingProfile(binding ?? unbound).token];
      return own ? own() : Promise.reject(noCredential());
    },
    encryptionPolicy: (routePolicy) => (routePolicy ?? policy)?.encryption ?? (e2ee ? 'optional' : 'off'),
    encryptedStreams: (routePolicy) => (routePolicy ?? policy)?.encryptedStreams ?? {},
    sessionMacAllowed: (routePolicy) => (routePolicy ?? policy)?.sessionMac !== false,
    authenticate,
    signResponse: sign,
    errorResponse,
    ready,
    exchange: (request, routePolicy) => createExchange(host, request, routePolicy),
  };
  // The exchange publishes its own decision (it knows more: body errors, the e2ee step).
  const host: ExchangeHost = { ...service, authenticate: decide, decided, now: performanceNow };
  return service;
}

const performanceNow = (): number => globalThis.performance.now();
