/**
 * Route policies (PROFILE section 4, 403): what a route requires of an authenticated caller beyond
 * a valid credential and proof.
 */
import { Oidc2Error } from './errors.js';
import type { Identity } from './authenticator.js';
import { argumentError, assertOptions } from './lib/validate.js';
import { assertEncryptionPolicy, type EncryptionPolicy } from './e2ee/service-side.js';

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
  /**
   * End-to-end encryption on this route (PROFILE 5.11): `'off'` refuses the e2ee fields
   * (`e2ee_unavailable`), `'optional'` lets the caller choose, `'required'` refuses a request without
   * a session or key share (`e2ee_required`) and any plaintext body (`e2ee_body_not_encrypted`).
   * Default `'optional'` when the service has end-to-end encryption, else `'off'`.
   */
  encryption?: EncryptionPolicy;
}

const POLICY_KEYS = ['contexts', 'claims', 'allow', 'optional', 'encryption'] as const;

/**
 * Checks a route policy once, where it is declared (adapters call it for per-route policies).
 * Throws a `TypeError` whose `code` is `ERR_UNKNOWN_OPTION` for a key that is not a policy field
 * (a misspelt requirement would otherwise require nothing), or `ERR_INVALID_ARG_*` naming the bad field.
 */
export function assertRoutePolicy(policy: RoutePolicy | undefined, name = 'policy'): void {
  if (policy === undefined) return;
  assertOptions(policy, POLICY_KEYS, name);
  if (policy.contexts !== undefined && (!Array.isArray(policy.contexts) || policy.contexts.some((c) => typeof c !== 'string'))) {
    throw argumentError('ERR_INVALID_ARG_VALUE', `${name}.contexts must be an array of strings`);
  }
  if (policy.claims !== undefined && (typeof policy.claims !== 'object' || policy.claims === null)) {
    throw argumentError('ERR_INVALID_ARG_TYPE', `${name}.claims must be an object`);
  }
  if (policy.allow !== undefined && typeof policy.allow !== 'function') throw argumentError('ERR_INVALID_ARG_TYPE', `${name}.allow must be a function`);
  if (policy.optional !== undefined && typeof policy.optional !== 'boolean') throw argumentError('ERR_INVALID_ARG_TYPE', `${name}.optional must be a boolean`);
  assertEncryptionPolicy(policy.encryption, `${name}.encryption`);
}

function claimMatches(actual: unknown, expected: unknown): boolean {
  if (Array.isArray(actual) && !Array.isArray(expected)) return actual.some((a) => claimMatches(a, expected));
  if (typeof expected !== 'object' || expected === null) return actual === expected;
  return JSON.stringify(actual) === JSON.stringify(expected);
}

/** Applies `policy` to an authenticated caller; throws `context_required` or `access_denied` (403). */
export async function applyRoutePolicy(identity: Identity, policy: RoutePolicy | undefined): Promise<void> {
  if (!policy) return;
  for (const ctx of policy.contexts ?? []) {
    if (!identity.contexts.includes(ctx)) throw new Oidc2Error('context_required', `this route requires the authentication context ${ctx}`);
  }
  for (const [claim, value] of Object.entries(policy.claims ?? {})) {
    if (!claimMatches(identity.claims[claim], value)) throw new Oidc2Error('access_denied', `the ICT claim ${claim} does not satisfy this route's policy`);
  }
  if (policy.allow && (await policy.allow(identity)) !== true) throw new Oidc2Error('access_denied', "the caller is not allowed by this route's policy");
}
