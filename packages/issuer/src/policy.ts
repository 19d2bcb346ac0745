// What an ICT may say: the credential's contexts narrowed by client and subject policy; claims
// from configuration and the credential, never from the request.
import { Oidc2Error } from '@oidc2/core';
import { CONTEXT_NAME, RESERVED_CLAIMS, type ClientPolicy } from './options.js';
import type { IssuerState } from './state.js';
import type { Authentication } from './types.js';

/** The contexts and claims granted for one ICT. */
export interface Grant {
  contexts: string[];
  claims: Record<string, unknown>;
}

/** What the request asks for beyond the credential's grant: fewer contexts, selected claims. */
export interface GrantRequest {
  contexts?: string[];
  requiredClaims?: string[];
  optionalClaims?: string[];
}

/** Applies client and subject policy and the request's selection to an authentication. */
export function grantFor(state: Pick<IssuerState, 'clients' | 'subjects'>, auth: Authentication, request: GrantRequest): Grant {
  const { clients, subjects } = state;
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
