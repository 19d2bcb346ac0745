// Callers presenting an opaque (or any) access token, checked by RFC 7662 token introspection.
import { Oidc2Error } from '@oidc2/core';
import { readBoundedBody } from '@oidc2/core/adapter';
import { argumentError, assertOptions, isArgumentError } from '@oidc2/core/adapter';
import type { ClientAuthenticator } from '../types.js';
import { fetchOption, requireString, stringArray } from './args.js';
import { accessTokenAuthentication, clientCredentialsOption, type ClientCredentialsOptions } from './claims.js';

const WHERE = 'tokenIntrospection options';

/** Options of {@link tokenIntrospection}. Unknown keys are refused (`ERR_UNKNOWN_OPTION`). */
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
  /**
   * Take the client-credentials tokens of these clients, each as a workload whose subject is its
   * client id. Introspection answers for such tokens often carry no `sub` (oidc-provider's do not):
   * this option is what maps their `client_id` to the subject, for the listed clients only.
   * Default: off, and a client-credentials token is refused (403 `access_denied`).
   */
  clientCredentials?: ClientCredentialsOptions;
  /** Milliseconds before the introspection request is abandoned (answered 503). Default 5000. */
  timeout?: number;
  /** `fetch` used for the request. Default `globalThis.fetch`. */
  fetch?: typeof fetch;
}

const OPTIONS: readonly (keyof IntrospectionOptions)[] = ['endpoint', 'clientId', 'clientSecret', 'issuer', 'audience', 'claims', 'clientCredentials', 'timeout', 'fetch'];
const MAX_INTROSPECTION_BYTES = 65536;

/**
 * Callers presenting an opaque (or any) access token, checked by RFC 7662 token introspection.
 * `active` must be `true`; `exp`/`nbf` are enforced when present; `scope` grants contexts, the grant
 * decides user or workload, and `cnf.jkt` binds the token, as for {@link jwtAccessTokens}. An
 * end-user's token needs a `sub`; a client-credentials token (`gty`, or a `client_id` without
 * `sub`) is taken only for a client listed in `clientCredentials`. An unreachable or failing
 * endpoint, or an answer over 64 KiB, answers 503 (`issuer_unavailable`), never a false success.
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
export function tokenIntrospection(options: IntrospectionOptions): ClientAuthenticator {
  assertOptions(options, OPTIONS, WHERE);
  let endpoint: URL;
  try {
    endpoint = new URL(requireString(options.endpoint, `${WHERE}.endpoint`));
  } catch (err) {
    if (isArgumentError(err)) throw err;
    throw argumentError('ERR_INVALID_ARG_VALUE', `${WHERE}.endpoint must be an absolute URL`);
  }
  const clientId = requireString(options.clientId, `${WHERE}.clientId`);
  const clientSecret = requireString(options.clientSecret, `${WHERE}.clientSecret`);
  const audience = typeof options.audience === 'string' ? [options.audience] : stringArray(options.audience, `${WHERE}.audience`);
  const claims = stringArray(options.claims, `${WHERE}.claims`);
  const workloadClients = clientCredentialsOption(options.clientCredentials, `${WHERE}.clientCredentials`);
  const timeout = options.timeout ?? 5000;
  if (!Number.isFinite(timeout) || timeout <= 0) throw argumentError('ERR_INVALID_ARG_VALUE', `${WHERE}.timeout must be a positive number`);
  const fetchImpl = fetchOption(options.fetch, `${WHERE}.fetch`) ?? ((input: URL | RequestInfo, init?: RequestInit) => globalThis.fetch(input, init));
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
      if (!response.ok) {
        await response.body?.cancel().catch(() => undefined);
        throw new Error(`introspection answered ${response.status}`);
      }
      const bytes = await readBoundedBody(response, MAX_INTROSPECTION_BYTES, () => new Error(`introspection answer exceeds ${MAX_INTROSPECTION_BYTES} bytes`));
      body = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as Record<string, unknown>;
      if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new Error('introspection answer is not an object');
    } catch (cause) {
      throw new Oidc2Error('issuer_unavailable', 'token introspection failed', { cause });
    }
    if (body.active !== true) throw new Oidc2Error('access_token_invalid', 'access token is not active');
    const { exp, nbf, iss, aud } = body;
    if (typeof exp === 'number' && context.now > exp + context.clockTolerance) throw new Oidc2Error('access_token_expired', 'access token has expired');
    if (typeof nbf === 'number' && nbf > context.now + context.clockTolerance) throw new Oidc2Error('access_token_invalid', 'access token is not yet valid');
    if (options.issuer !== undefined && iss !== undefined && iss !== options.issuer) throw new Oidc2Error('access_token_invalid', 'access token has the wrong issuer');
    if (audience !== undefined) {
      const auds = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
      if (!auds.some((a) => audience.includes(a as string))) throw new Oidc2Error('access_token_invalid', 'access token has the wrong audience');
    }
    return accessTokenAuthentication(body, claims, workloadClients);
  };
}
