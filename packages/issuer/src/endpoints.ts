// The issuer's endpoints behind one framework-free handler: discovery and JWKS (GET, HEAD,
// cacheable), the ICT endpoint, the token endpoint and, with `workloads`, the WIT endpoint (POST). Every failure becomes the OAuth
// error response of the endpoint's standard.
import { Oidc2Error, type HttpRequest, type HttpResponse } from '@oidc2/core';
import { failureOf } from '@oidc2/core/adapter';
import { calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, type JWK, type JWTPayload } from 'jose';
import { authenticationOf } from './credentials.js';
import { TOKEN_EXCHANGE_GRANT_TYPE, WIT_TYP } from './constants.js';
import { popGrant } from './grants/pop.js';
import { tokenExchangeGrant } from './grants/token-exchange.js';
import { SIGNING_ALGORITHMS } from './lib/keys.js';
import { errorResponse, jsonResponse, type Endpoint } from './lib/responses.js';
import type { IssuerState } from './state.js';

/** The discovery document (OpenID Connect Discovery 1.0 plus the OIDC² and WIT members). */
export async function discoveryDocument(state: IssuerState): Promise<Record<string, unknown>> {
  const algs = state.keys.algorithms();
  return {
    ...state.metadata,
    issuer: state.issuer,
    jwks_uri: state.endpoints.jwks,
    ict_endpoint: state.endpoints.ict,
    token_endpoint: state.endpoints.token,
    grant_types_supported: [TOKEN_EXCHANGE_GRANT_TYPE],
    id_token_signing_alg_values_supported: algs,
    ict_signing_alg_values_supported: algs,
    dpop_signing_alg_values_supported: [...SIGNING_ALGORITHMS],
    ...(state.contextsSupported.length > 0 ? { e2e_auth_contexts_supported: state.contextsSupported } : {}),
    ...(state.workloads !== undefined
      ? { wit_endpoint: state.endpoints.wit, wit_signing_alg_values_supported: algs, workload_identifier_origin: state.workloads.origin }
      : {}),
  };
}

/** The path of a request target (absolute URL or origin form), without query or fragment. */
export function pathnameOf(url: string): string {
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

/** Whether the issuer serves the path of `url` (full request target). */
export function servesPath(state: Pick<IssuerState, 'routes'>, url: string): boolean {
  return state.routes.has(pathnameOf(url));
}

/**
 * Serves one request. Never throws: a path the issuer does not serve gets 404
 * `{ "error": "not_found" }`, failures their OAuth error response.
 */
export async function handleRequest(state: IssuerState, request: HttpRequest): Promise<HttpResponse> {
  const route = state.routes.get(pathnameOf(request.url));
  if (route === undefined) return jsonResponse(404, { error: 'not_found' });
  const endpoint: Endpoint = route === 'ict' || route === 'token' || route === 'wit' ? route : 'metadata';
  try {
    const method = request.method.toUpperCase();
    if (endpoint === 'metadata') {
      if (method !== 'GET' && method !== 'HEAD') throw new Oidc2Error('method_not_allowed', 'use GET', { headers: { allow: 'GET, HEAD' } });
      const body = route === 'jwks' ? await state.keys.jwks(state.now()) : await discoveryDocument(state);
      const response = jsonResponse(200, body, { 'cache-control': [`public, max-age=${state.jwksMaxAge}`] });
      return method === 'HEAD' ? { ...response, body: undefined } : response;
    }
    if (method !== 'POST') throw new Oidc2Error('method_not_allowed', 'use POST', { headers: { allow: 'POST' } });
    const response = route === 'token' ? await tokenExchangeGrant(state, request) : await popGrant(state, request, route === 'wit' ? 'wit' : 'ict');
    if (state.events.wants('issuer_grant')) await granted(state, request, endpoint, response);
    return response;
  } catch (err) {
    const response = errorResponse(err, endpoint, state.issuer);
    if (endpoint !== 'metadata' && state.events.wants('issuer_grant')) {
      const auth = authenticationOf(request);
      state.events.publish({
        type: 'issuer_grant',
        side: 'issuer',
        grant: endpoint === 'token' ? 'token-exchange' : endpoint,
        outcome: 'failure',
        ...failureOf(err),
        status: response.status,
        ...(auth ? { subject: auth.subject, ...(auth.clientId !== undefined ? { client: auth.clientId } : {}) } : {}),
      });
    }
    return response;
  }
}

// Publishes the grant a successful response carries, read back from the token just minted.
async function granted(state: IssuerState, request: HttpRequest, endpoint: 'ict' | 'wit' | 'token', response: HttpResponse): Promise<void> {
  const auth = authenticationOf(request);
  let claims: JWTPayload = {};
  let typ: string | undefined;
  try {
    const body = JSON.parse(new TextDecoder().decode(response.body)) as Record<string, string>;
    const token = body.identity_certification_token ?? body.workload_identity_token ?? body.access_token ?? '';
    claims = decodeJwt(token);
    typ = decodeProtectedHeader(token).typ;
  } catch {
    // Every successful grant carries a token; nothing more to report without one.
  }
  const jwk = (claims.cnf as { jwk?: JWK } | undefined)?.jwk;
  state.events.publish({
    type: 'issuer_grant',
    side: 'issuer',
    grant: endpoint === 'token' ? 'token-exchange' : endpoint,
    outcome: 'success',
    token: typ === WIT_TYP ? 'wit' : 'ict',
    ...(typeof claims.sub === 'string' ? { subject: claims.sub } : {}),
    ...(auth?.clientId !== undefined ? { client: auth.clientId } : {}),
    ...(jwk ? { thumbprint: await calculateJwkThumbprint(jwk) } : {}),
    ...(typeof claims.exp === 'number' ? { expiresAt: claims.exp } : {}),
  });
}
