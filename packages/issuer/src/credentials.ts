// The one credential a request carries, by where it travels, and the chain of client
// authenticators that turns it into an Authentication.
import { fieldLines, Oidc2Error, type HttpRequest } from '@oidc2/core';
import { argumentError } from '@oidc2/core/adapter';
import { ACCESS_TOKEN_TYPE, API_KEY_TOKEN_TYPE, JWT_BEARER_ASSERTION_TYPE, JWT_TOKEN_TYPE, WIT_TOKEN_TYPE } from './constants.js';
import type { BodyParams } from './lib/request-params.js';
import type { IssuerState } from './state.js';
import type { Authentication, AuthenticationContext, IssuanceEndpoint } from './types.js';

const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const MAX_CREDENTIAL_CHARS = 8192;

/** The credential members of an {@link AuthenticationContext}. */
export type Credentials = Pick<AuthenticationContext, 'accessToken' | 'apiKey' | 'clientAssertion' | 'workloadIdentityToken'>;

/**
 * The credential of a request: at the token endpoint the RFC 8693 `subject_token`; at the ICT and
 * WIT endpoints the `Authorization` field or an RFC 7523 client assertion, exactly one, and at the
 * ICT endpoint alternatively a `Workload-Identity-Token` field (a WIT is never exchanged for a WIT).
 */
export function credentialsFrom(request: HttpRequest, params: BodyParams, endpoint: IssuanceEndpoint): Credentials {
  const out: Credentials = {};
  const authorization = fieldLines(request.headers, 'authorization');
  if (endpoint === 'token') {
    if (authorization !== undefined || params.client_assertion !== undefined || fieldLines(request.headers, 'workload-identity-token') !== undefined) {
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
    else if (type === WIT_TOKEN_TYPE) out.workloadIdentityToken = token;
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
  const wits = fieldLines(request.headers, 'workload-identity-token');
  if (wits !== undefined) {
    if (endpoint === 'wit') throw new Oidc2Error('request_malformed', 'a WIT is not exchanged for a WIT: attest with another credential');
    if (wits.length !== 1) throw new Oidc2Error('request_malformed', 'more than one Workload-Identity-Token field');
    const wit = wits[0]!.trim();
    if (!COMPACT_JWS.test(wit) || wit.length > MAX_CREDENTIAL_CHARS) throw new Oidc2Error('wit_invalid', 'malformed Workload-Identity-Token field');
    out.workloadIdentityToken = wit;
  }
  if (Object.keys(out).length > 1) throw new Oidc2Error('request_malformed', 'more than one credential');
  return out;
}

/**
 * Runs the authenticators in order on the request's `credentials` (from {@link credentialsFrom},
 * read before any proof is checked): the first that recognises the credential decides. None
 * recognising it is `access_token_missing`, `access_token_invalid`, `client_invalid` or
 * `wit_untrusted`, by what was presented.
 */
// The authentication of each request, for its grant event.
const authenticated = new WeakMap<HttpRequest, Authentication>();

/** Who the request authenticated as, once {@link authenticate} succeeded for it. */
export function authenticationOf(request: HttpRequest): Authentication | undefined {
  return authenticated.get(request);
}

export async function authenticate(state: IssuerState, request: HttpRequest, endpoint: IssuanceEndpoint, params: BodyParams, credentials: Credentials): Promise<Authentication> {
  const context: AuthenticationContext = {
    endpoint,
    issuer: state.issuer,
    // The WIT endpoint is routed only when it exists.
    endpointUrl: state.endpoints[endpoint] ?? state.issuer,
    now: state.now(),
    clockTolerance: state.clockTolerance,
    params,
    ...credentials,
    checkReplay: state.checkReplay,
  };
  for (const authenticator of state.authenticators) {
    const result = await authenticator(request, context);
    if (result === undefined) continue;
    if (typeof result !== 'object' || result === null || typeof result.subject !== 'string' || result.subject.length === 0 || (result.kind !== 'user' && result.kind !== 'workload')) {
      throw argumentError('ERR_INVALID_RETURN_VALUE', 'an authenticator returned no subject or kind');
    }
    authenticated.set(request, result);
    return result;
  }
  if (context.accessToken !== undefined) throw new Oidc2Error('access_token_invalid', 'access token is not accepted');
  if (context.apiKey !== undefined || context.clientAssertion !== undefined) throw new Oidc2Error('client_invalid', 'client credential is not accepted');
  if (context.workloadIdentityToken !== undefined) throw new Oidc2Error('wit_untrusted', 'no trust domain of this issuer accepts the WIT');
  throw new Oidc2Error('access_token_missing', 'no credential');
}
