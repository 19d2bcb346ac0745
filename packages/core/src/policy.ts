/**
 * Route policies (docs/protocol.md section 5, 403): what a route requires of an authenticated caller beyond
 * a valid credential and proof, users and workloads alike.
 */
import { Oidc2Error } from './errors.js';
import type { Identity } from './authenticator.js';
import { argumentError, assertOptions } from './lib/validate.js';
import { assertEncryptionPolicy, type EncryptionPolicy } from './e2ee/service-side.js';

/**
 * Which workloads a route admits. A route with this policy admits workloads only: a user (an ICT
 * caller) is refused with `access_denied`. Both members, when given, must hold.
 */
export interface WorkloadPolicy {
  /** Trust domains the workload's identifier must belong to (compared case-insensitively). Default: any configured trust domain. */
  trustDomains?: string[];
  /**
   * Workload identifiers admitted: a string must equal the caller's identifier (`sub` of its WIT)
   * exactly; a RegExp must match it (anchor it, e.g. `/^spiffe:\/\/example\.com\/billing\//`;
   * `g` and `y` flags are refused). Default: any identifier.
   */
  identifiers?: (string | RegExp)[];
}

/** Per-route access policy, applied after authentication. */
export interface RoutePolicy {
  /** Contexts (`ctx`) the ICT must all carry. Default none. */
  contexts?: string[];
  /** Claims the ICT or WIT must carry with these values (an array claim must include the value). Default none. */
  claims?: Record<string, unknown>;
  /** Admit only workloads, of these trust domains and identifiers. Default: users and workloads alike. */
  workloads?: WorkloadPolicy;
  /** A predicate that must return true. Default none. */
  allow?: (identity: Identity) => boolean | Promise<boolean>;
  /** Let unauthenticated requests through with `identity` null and the failure reason exposed. Default false. */
  optional?: boolean;
  /**
   * End-to-end encryption on this route (docs/protocol.md section 7.10): `'off'` refuses the e2ee fields
   * (`e2ee_unavailable`), `'optional'` lets the caller choose, `'required'` refuses a request without
   * a session or key share (`e2ee_required`) and any plaintext body (`e2ee_body_not_encrypted`).
   * Default `'optional'` when the service has end-to-end encryption, else `'off'`.
   */
  encryption?: EncryptionPolicy;
  /**
   * Streaming of end-to-end encrypted bodies on this route (docs/protocol.md section 7.7; docs/e2ee.md, streaming).
   * Default: no streamed request bodies, and encrypted responses streamed only when larger than
   * `maxResponseBytes` or of type `text/event-stream`.
   */
  encryptedStreams?: EncryptedStreamsPolicy;
  /**
   * Whether this route accepts symmetric session authentication (docs/protocol.md section 7.11) when
   * the service enables it (`e2ee.symmetric`): `false` refuses a session-MAC request with
   * `session_mac_unavailable` (the caller then signs with its key), e.g. for a route whose
   * decisions need the caller's own signature or its credential's full claims. Default true.
   */
  sessionMac?: boolean;
}

/** Which end-to-end encrypted bodies a route streams (docs/protocol.md section 7.7). */
export interface EncryptedStreamsPolicy {
  /**
   * Accept a session request whose `aes128gcm` body comes without `Content-Digest` (the one exception to
   * the digest rule of docs/protocol.md section 2): its body is not read before the route runs; the route reads it
   * as a stream of plaintext decrypted record by record, which errors (never ends early) when the
   * body is cut short or changed. `maxBodyBytes` does not bound it: the route's own reader does.
   * Default false.
   */
  requests?: boolean;
  /**
   * Stream every encrypted response of the route from its first byte (no `Content-Digest`), instead
   * of buffering those that fit `maxResponseBytes`. Default false.
   */
  responses?: boolean;
}

const POLICY_KEYS = ['contexts', 'claims', 'workloads', 'allow', 'optional', 'encryption', 'encryptedStreams', 'sessionMac'] as const;
const WORKLOAD_POLICY_KEYS = ['trustDomains', 'identifiers'] as const;
const ENCRYPTED_STREAMS_KEYS = ['requests', 'responses'] as const;

function assertWorkloadPolicy(policy: WorkloadPolicy | undefined, name: string): void {
  if (policy === undefined) return;
  assertOptions(policy, WORKLOAD_POLICY_KEYS, name);
  if (policy.trustDomains !== undefined && (!Array.isArray(policy.trustDomains) || policy.trustDomains.some((d) => typeof d !== 'string' || d.length === 0))) {
    throw argumentError('ERR_INVALID_ARG_VALUE', `${name}.trustDomains must be an array of trust domain names`);
  }
  if (policy.identifiers !== undefined) {
    const valid = (p: unknown) => (typeof p === 'string' && p.length > 0) || (p instanceof RegExp && !p.global && !p.sticky);
    if (!Array.isArray(policy.identifiers) || !policy.identifiers.every(valid)) {
      throw argumentError('ERR_INVALID_ARG_VALUE', `${name}.identifiers must be an array of strings and RegExps without the g or y flag`);
    }
  }
}

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
  assertWorkloadPolicy(policy.workloads, `${name}.workloads`);
  if (policy.allow !== undefined && typeof policy.allow !== 'function') throw argumentError('ERR_INVALID_ARG_TYPE', `${name}.allow must be a function`);
  if (policy.optional !== undefined && typeof policy.optional !== 'boolean') throw argumentError('ERR_INVALID_ARG_TYPE', `${name}.optional must be a boolean`);
  assertEncryptionPolicy(policy.encryption, `${name}.encryption`);
  if (policy.sessionMac !== undefined && typeof policy.sessionMac !== 'boolean') throw argumentError('ERR_INVALID_ARG_TYPE', `${name}.sessionMac must be a boolean`);
  const streams = policy.encryptedStreams;
  if (streams !== undefined) {
    assertOptions(streams, ENCRYPTED_STREAMS_KEYS, `${name}.encryptedStreams`);
    for (const key of ENCRYPTED_STREAMS_KEYS) {
      if (streams[key] !== undefined && typeof streams[key] !== 'boolean') throw argumentError('ERR_INVALID_ARG_TYPE', `${name}.encryptedStreams.${key} must be a boolean`);
    }
  }
}

function claimMatches(actual: unknown, expected: unknown): boolean {
  if (Array.isArray(actual) && !Array.isArray(expected)) return actual.some((a) => claimMatches(a, expected));
  if (typeof expected !== 'object' || expected === null) return actual === expected;
  return JSON.stringify(actual) === JSON.stringify(expected);
}

function workloadAdmitted(identity: Identity, policy: WorkloadPolicy): boolean {
  if (identity.kind !== 'workload') return false;
  const domain = identity.trustDomain ?? '';
  if (policy.trustDomains && !policy.trustDomains.some((d) => d.toLowerCase() === domain)) return false;
  if (policy.identifiers && !policy.identifiers.some((p) => (typeof p === 'string' ? p === identity.subject : p.test(identity.subject)))) return false;
  return true;
}

/** Applies `policy` to an authenticated caller; throws `context_required` or `access_denied` (403). */
export async function applyRoutePolicy(identity: Identity, policy: RoutePolicy | undefined): Promise<void> {
  if (!policy) return;
  if (policy.workloads && !workloadAdmitted(identity, policy.workloads)) {
    throw new Oidc2Error('access_denied', identity.kind === 'workload' ? "the workload is not admitted by this route's policy" : 'this route admits workloads only');
  }
  for (const ctx of policy.contexts ?? []) {
    if (!identity.contexts.includes(ctx)) throw new Oidc2Error('context_required', `this route requires the authentication context ${ctx}`);
  }
  for (const [claim, value] of Object.entries(policy.claims ?? {})) {
    if (!claimMatches(identity.claims[claim], value)) throw new Oidc2Error('access_denied', `the claim ${claim} does not satisfy this route's policy`);
  }
  if (policy.allow && (await policy.allow(identity)) !== true) throw new Oidc2Error('access_denied', "the caller is not allowed by this route's policy");
}
