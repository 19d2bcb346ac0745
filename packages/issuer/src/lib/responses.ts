// OAuth-style responses. Every failure is an Oidc2Error with a stable code; here it becomes the
// OAuth `error` its endpoint's standard prescribes, with that standard's status.
import { ERROR_STATUS, isOidc2Error, type Fields, type HttpResponse, type Oidc2Error, type Oidc2ErrorCode } from '@oidc2/core';

/** The endpoint that answered: it decides which standard's error table applies. */
export type Endpoint = 'ict' | 'token' | 'wit' | 'metadata';

interface Mapping {
  error: string;
  status?: number;
}

const COMMON: Partial<Record<Oidc2ErrorCode, Mapping>> = {
  request_malformed: { error: 'invalid_request' },
  body_too_large: { error: 'invalid_request' },
  media_type_unsupported: { error: 'invalid_request' },
  method_not_allowed: { error: 'invalid_request' },
  issuer_unavailable: { error: 'temporarily_unavailable', status: 503 },
  replay_store_unavailable: { error: 'temporarily_unavailable', status: 503 },
  context_not_allowed: { error: 'invalid_scope' },
  access_denied: { error: 'access_denied' },
};

// OIDC² draft section 4.4 and RFC 6750: the ICT endpoint is a protected resource of the OP.
const ICT: Partial<Record<Oidc2ErrorCode, Mapping>> = {
  access_token_missing: { error: 'invalid_request', status: 401 },
  access_token_invalid: { error: 'invalid_token' },
  access_token_expired: { error: 'invalid_token' },
  client_invalid: { error: 'invalid_client' },
  // The draft (4.4.1) demands 401 when the access token grants no end-to-end context.
  context_required: { error: 'insufficient_scope', status: 401 },
  replay_detected: { error: 'invalid_request', status: 400 },
  audience_mismatch: { error: 'invalid_request', status: 400 },
  claim_unavailable: { error: 'invalid_request' },
};

// RFC 6749 5.2, RFC 8693 2.2.2 (an invalid subject token is invalid_request) and RFC 9449 5.
const TOKEN: Partial<Record<Oidc2ErrorCode, Mapping>> = {
  grant_type_unsupported: { error: 'unsupported_grant_type' },
  token_type_unsupported: { error: 'invalid_request' },
  access_token_missing: { error: 'invalid_request', status: 400 },
  access_token_invalid: { error: 'invalid_request', status: 400 },
  access_token_expired: { error: 'invalid_request', status: 400 },
  client_invalid: { error: 'invalid_request', status: 400 },
  context_required: { error: 'invalid_scope', status: 400 },
  replay_detected: { error: 'invalid_request', status: 400 },
  audience_mismatch: { error: 'invalid_target', status: 400 },
  dpop_invalid: { error: 'invalid_dpop_proof', status: 400 },
  dpop_nonce_required: { error: 'use_dpop_nonce', status: 400 },
};

// Errors raised while checking the DPoP proof keep their code but answer as invalid_dpop_proof.
const dpopFailures = new WeakSet<Oidc2Error>();
/** Marks an error as a DPoP proof failure (RFC 9449 section 5: `invalid_dpop_proof`, 400). */
export function markDpopFailure(err: Oidc2Error): Oidc2Error {
  dpopFailures.add(err);
  return err;
}

const JSON_HEADERS = (): Fields => ({ 'content-type': ['application/json'], 'cache-control': ['no-store'] });

/** A JSON response. */
export function jsonResponse(status: number, body: unknown, headers: Fields = {}): HttpResponse {
  return { status, headers: { ...JSON_HEADERS(), ...headers }, body: new TextEncoder().encode(JSON.stringify(body)) };
}

// A description goes into a quoted-string of WWW-Authenticate: keep it plain printable ASCII.
function quotable(s: string): string {
  return s.replace(/[^\x20-\x7e]|["\\]/g, ' ').slice(0, 200);
}

/**
 * The OAuth error response for `err` at `endpoint`. Unexpected errors (a defect, never caller
 * input) become a bare 500 `server_error` that reveals nothing.
 */
export function errorResponse(err: unknown, endpoint: Endpoint, realm: string): HttpResponse {
  if (!isOidc2Error(err)) {
    return jsonResponse(500, { error: 'server_error', error_description: 'internal error', code: 'server_error' });
  }
  let mapping: Mapping | undefined;
  if (endpoint === 'token' && dpopFailures.has(err) && err.code !== 'dpop_nonce_required') mapping = { error: 'invalid_dpop_proof', status: 400 };
  // The WIT endpoint takes the ICT endpoint's request, so it answers by the same table.
  mapping ??= (endpoint === 'ict' || endpoint === 'wit' ? ICT : endpoint === 'token' ? TOKEN : {})[err.code] ?? COMMON[err.code];
  const status = mapping?.status ?? ERROR_STATUS[err.code];
  const error = mapping?.error ?? (status === 401 ? 'invalid_token' : 'invalid_request');
  const description = quotable(err.message);
  const headers: Fields = {};
  const nonce = err.headers['dpop-nonce'] ?? err.headers['DPoP-Nonce'];
  if (nonce !== undefined) headers['dpop-nonce'] = [nonce];
  if (err.code === 'method_not_allowed' && err.headers.allow !== undefined) headers.allow = [err.headers.allow];
  if (status === 401) {
    // RFC 6750 3.1: a request without credentials gets a challenge without an error code.
    const params = [`realm="${quotable(realm)}"`];
    if (err.code !== 'access_token_missing') params.push(`error="${error}"`, `error_description="${description}"`);
    headers['www-authenticate'] = [`Bearer ${params.join(', ')}`];
  }
  return jsonResponse(status, { error, error_description: description, code: err.code }, headers);
}
