// What the built-in authenticators read from a verified token or an introspection answer.
import { CONTEXT_SCOPE_PREFIX } from '../constants.js';

// JWT types that are never access tokens: refusing them stops token confusion.
export const NOT_ACCESS_TOKENS = ['ict+jwt', 'jwt+ict', 'application/ict+jwt', 'jwt+pop', 'dpop+jwt', 'wit+jwt', 'wpt+jwt', 'txntoken+jwt', 'jwt+e2epop'];

/**
 * Contexts granted by OAuth scopes: each `e2e_auth_<ctx>` scope grants `<ctx>`.
 *
 * @example
 * ```ts
 * contextsFromScopes(['openid', 'e2e_auth_email']); // ['email']
 * ```
 */
export function contextsFromScopes(scopes: readonly string[]): string[] {
  const out = new Set<string>();
  for (const s of scopes) if (s.startsWith(CONTEXT_SCOPE_PREFIX) && s.length > CONTEXT_SCOPE_PREFIX.length) out.add(s.slice(CONTEXT_SCOPE_PREFIX.length));
  return [...out];
}

/** The scopes of `scope` (space-separated) or `scp` (array or string). */
export function scopesOf(payload: Record<string, unknown>): string[] {
  if (typeof payload.scope === 'string') return payload.scope.split(' ').filter(Boolean);
  if (Array.isArray(payload.scp)) return payload.scp.filter((s): s is string => typeof s === 'string');
  if (typeof payload.scp === 'string') return payload.scp.split(' ').filter(Boolean);
  return [];
}

/** The members of `payload` named in `names` that are set. */
export function pick(payload: Record<string, unknown>, names: readonly string[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const n of names ?? []) if (payload[n] !== undefined) out[n] = payload[n];
  return out;
}

/** `client_id`, else `azp`. */
export function clientIdOf(payload: Record<string, unknown>): string | undefined {
  const id = payload.client_id ?? payload.azp;
  return typeof id === 'string' && id.length > 0 ? id : undefined;
}

/** `cnf.jkt` of a sender-constrained token. */
export function jktOf(payload: Record<string, unknown>): string | undefined {
  const cnf = payload.cnf as Record<string, unknown> | undefined;
  return typeof cnf === 'object' && cnf !== null && typeof cnf.jkt === 'string' ? cnf.jkt : undefined;
}
