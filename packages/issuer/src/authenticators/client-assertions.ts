// Workloads authenticating with an RFC 7523 JWT client assertion.
import { ASYMMETRIC_JWA, isOidc2Error, Oidc2Error } from '@oidc2/core';
import { argumentError, assertOptions, type IssuerKeyResolver } from '@oidc2/core/adapter';
import { decodeJwt, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose';
import type { ClientAuthenticator } from '../types.js';
import { fetchOption, stringArray } from './args.js';
import { isKeySourceFailure, keyResolver, remoteKeyOptions, type RemoteKeyOptions } from './keys.js';

const ASYMMETRIC: readonly string[] = ASYMMETRIC_JWA;
const WHERE = 'clientAssertions options';

/** One workload client that authenticates with RFC 7523 JWT assertions. Unknown keys are refused. */
export interface AssertionClient {
  /** The client's public keys. Exactly one of `jwks` and `jwksUri` is required. */
  jwks?: JSONWebKeySet;
  /** Where to fetch the client's public keys: `https` (`http` only on loopback). */
  jwksUri?: string;
  /** The ICT `sub`. Default: the client id. */
  subject?: string;
  /** Contexts the client's ICTs carry. Default none. */
  contexts?: string[];
  /** Claims released into the client's ICTs. Default none. */
  claims?: Record<string, unknown>;
}

/** Options of {@link clientAssertions}. Unknown keys are refused (`ERR_UNKNOWN_OPTION`). */
export interface ClientAssertionOptions {
  /** Registered clients by client id. Required, at least one. */
  clients: Record<string, AssertionClient>;
  /** Accepted JWS algorithms. Default: every asymmetric JWA algorithm. */
  algorithms?: string[];
  /** Largest accepted remaining lifetime (`exp - now`) and `exp - iat`, seconds. Default 300. */
  maxLifetime?: number;
  /** `fetch` for `jwksUri`. Default: a GET over node:http(s) on Node, else `globalThis.fetch` (see `IssuerKeyOptions.fetch` in @oidc2/core). */
  fetch?: typeof fetch;
  /** Caching and bounds of fetched keys; see {@link RemoteKeyOptions} for the defaults. */
  remoteKeys?: RemoteKeyOptions;
}

const OPTIONS: readonly (keyof ClientAssertionOptions)[] = ['clients', 'algorithms', 'maxLifetime', 'fetch', 'remoteKeys'];
const CLIENT_OPTIONS: readonly (keyof AssertionClient)[] = ['jwks', 'jwksUri', 'subject', 'contexts', 'claims'];

/**
 * Workloads authenticating with an RFC 7523 JWT client assertion: `iss` = `sub` = client id,
 * `aud` = the receiving endpoint's URL or the issuer, `exp` required and at most `maxLifetime`
 * ahead, `jti` required and accepted once. Signed with a key from the client's registered JWKS.
 * An assertion whose `iss` is no registered client is left to the next authenticator (and refused
 * as `client_invalid` when none takes it).
 *
 * @example
 * ```ts
 * const workloads = clientAssertions({
 *   clients: { billing: { jwksUri: 'https://billing.internal/jwks', subject: 'spiffe://example.com/billing' } },
 * });
 * ```
 */
export function clientAssertions(options: ClientAssertionOptions): ClientAuthenticator {
  assertOptions(options, OPTIONS, WHERE);
  if (typeof options.clients !== 'object' || options.clients === null || Array.isArray(options.clients)) {
    throw argumentError('ERR_INVALID_ARG_TYPE', `${WHERE}.clients must be an object`);
  }
  const algorithms = stringArray(options.algorithms, `${WHERE}.algorithms`) ?? [...ASYMMETRIC];
  if (algorithms.some((a) => !ASYMMETRIC.includes(a))) throw argumentError('ERR_INVALID_ARG_VALUE', `${WHERE}.algorithms may hold asymmetric algorithms only`);
  const maxLifetime = options.maxLifetime ?? 300;
  if (!Number.isFinite(maxLifetime) || maxLifetime <= 0) throw argumentError('ERR_INVALID_ARG_VALUE', `${WHERE}.maxLifetime must be a positive number`);
  const keyOptions = remoteKeyOptions(options.remoteKeys, fetchOption(options.fetch, `${WHERE}.fetch`), `${WHERE}.remoteKeys`);
  const clients = new Map<string, { keys: IssuerKeyResolver; client: AssertionClient }>();
  for (const [id, client] of Object.entries(options.clients)) {
    const where = `${WHERE}.clients.${id}`;
    if (id.length === 0) throw argumentError('ERR_INVALID_ARG_VALUE', `${WHERE}.clients has an empty client id`);
    assertOptions(client as unknown, CLIENT_OPTIONS, where);
    stringArray(client.contexts, `${where}.contexts`);
    // A client id is no discovery source: its keys are registered here.
    if ((client.jwks === undefined) === (client.jwksUri === undefined)) throw argumentError('ERR_INVALID_ARG_VALUE', `${where} needs exactly one of jwks and jwksUri`);
    const source = { issuer: id, ...(client.jwks !== undefined ? { jwks: client.jwks } : {}), ...(client.jwksUri !== undefined ? { jwksUri: client.jwksUri } : {}) };
    clients.set(id, { keys: keyResolver(source, keyOptions, where), client });
  }
  if (clients.size === 0) throw argumentError('ERR_INVALID_ARG_VALUE', `${WHERE}.clients is empty`);

  return async (_request, context) => {
    const assertion = context.clientAssertion;
    if (assertion === undefined) return undefined;
    let clientId: unknown;
    try {
      clientId = decodeJwt(assertion).iss;
    } catch {
      return undefined;
    }
    const registered = typeof clientId === 'string' ? clients.get(clientId) : undefined;
    // Not one of these clients: another authenticator (e.g. kubernetesServiceAccounts) may know
    // the assertion; if none does, the issuer refuses it as client_invalid.
    if (registered === undefined) return undefined;
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
