// Workload Identity Tokens (docs/protocol.md section 3a, draft-ietf-wimse-workload-creds): the `workloads` option,
// the rule that turns an authenticated workload into its Workload Identifier, and the check that
// the identifier lies in the issuer's trust domain.
import { Oidc2Error } from '@oidc2/core';
import { argumentError, assertOptions } from '@oidc2/core/adapter';
import { compileTemplate, isTrustDomain, parseWorkloadIdentifier, type WorkloadScheme } from './lib/identifier.js';
import type { Authentication } from './types.js';

/**
 * Turns an authenticated workload into its Workload Identifier: a full `spiffe://` or `wimse://`
 * URI, or a path (`/billing`) that the issuer puts under its trust domain. `undefined` refuses the
 * WIT (403 `access_denied`). May be async. It runs only for callers of kind `workload`.
 */
export type WorkloadIdentifierRule = (workload: Readonly<Authentication>) => string | undefined | Promise<string | undefined>;

/**
 * Options of WIT issuance (`IssuerOptions.workloads`). Unknown keys are refused (`ERR_UNKNOWN_OPTION`).
 *
 * @example
 * ```ts
 * workloads: { trustDomain: 'example.org', subject: '/ns/{claims.namespace}/sa/{claims.serviceAccount}' }
 * ```
 */
export interface WorkloadIdentityOptions {
  /**
   * The trust domain whose Workload Identifiers this issuer certifies: the authority of every WIT
   * `sub`. A lower-case DNS name without port, e.g. `example.org`. Required.
   */
  trustDomain: string;
  /** The URI scheme of the identifiers: `spiffe` or `wimse`. Default `spiffe`. */
  scheme?: WorkloadScheme;
  /**
   * WIT lifetime in seconds, never beyond the `exp` of the credential that authorised the request.
   * At most `maxIctLifetime`, which also bounds how long retired signing keys stay published.
   * Default 3600, or `maxIctLifetime` when that is smaller.
   */
  lifetime?: number;
  /**
   * How the WIT `sub` is made from the authenticated workload, checked to be in the trust domain
   * (same scheme and authority) before anything is signed:
   * - a template: a path (`/workload/{subject}`) or a full identifier
   *   (`spiffe://example.org/ns/{claims.namespace}`) with placeholders `{subject}`, `{clientId}`
   *   and `{claims.<name>}` (a string claim of the {@link Authentication}); each value must be one
   *   path segment (letters, digits, `.`, `-`, `_`), or the WIT is refused;
   * - a {@link WorkloadIdentifierRule} function.
   *
   * Default: the authenticated subject when it already is a Workload Identifier, else
   * `/{subject}` (so the API-key subject `billing` becomes `spiffe://<trustDomain>/billing`).
   */
  subject?: string | WorkloadIdentifierRule;
  /**
   * Accept this issuer's own WITs as credentials: an RFC 8693 `subject_token` of type
   * `WIT_TOKEN_TYPE` exchanged for an ICT, or the `Workload-Identity-Token` field at the ICT
   * endpoint. The proof must be made with the WIT's key and `cnf.jwk.alg`. Default `true`.
   */
  exchange?: boolean;
}

const WORKLOAD_OPTIONS: readonly (keyof WorkloadIdentityOptions)[] = ['trustDomain', 'scheme', 'lifetime', 'subject', 'exchange'];
const WHERE = 'options.workloads';

/** {@link WorkloadIdentityOptions}, checked, with every default filled in. */
export interface ResolvedWorkloads {
  trustDomain: string;
  scheme: WorkloadScheme;
  /** `<scheme>://<trustDomain>`: the Workload Identifier Origin (draft-ietf-wimse-identifier 4.6). */
  origin: string;
  lifetime: number;
  exchange: boolean;
  /**
   * The WIT `sub` for `auth`. Throws 403 `access_denied` for a caller that is no workload, a rule
   * that yields nothing or no valid identifier, or an identifier outside the trust domain.
   */
  identify(auth: Authentication): Promise<string>;
}

function denied(message: string): Oidc2Error {
  return new Oidc2Error('access_denied', message);
}

// The value of one template placeholder, read from the authentication.
function placeholder(auth: Readonly<Authentication>, name: string): unknown {
  if (name === 'subject') return auth.subject;
  if (name === 'clientId') return auth.clientId;
  const claims = auth.claims;
  const claim = name.slice('claims.'.length);
  return claims !== undefined && Object.hasOwn(claims, claim) ? claims[claim] : undefined;
}

const PLACEHOLDER = (name: string) => name === 'subject' || name === 'clientId' || /^claims\.[A-Za-z0-9_.:-]{1,64}$/.test(name);

/** Checks `options.workloads` and fills in the defaults; `undefined` when WITs are not issued. */
export function resolveWorkloads(value: WorkloadIdentityOptions | undefined, maxLifetime: number): ResolvedWorkloads | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw argumentError('ERR_INVALID_ARG_TYPE', `${WHERE} must be an object`);
  assertOptions(value, WORKLOAD_OPTIONS, WHERE);
  const { trustDomain } = value;
  if (!isTrustDomain(trustDomain)) throw argumentError('ERR_INVALID_ARG_VALUE', `${WHERE}.trustDomain must be a lower-case DNS name without port, such as example.org`);
  const scheme = value.scheme ?? 'spiffe';
  if (scheme !== 'spiffe' && scheme !== 'wimse') throw argumentError('ERR_INVALID_ARG_VALUE', `${WHERE}.scheme must be spiffe or wimse`);
  const lifetime = value.lifetime ?? Math.min(3600, maxLifetime);
  if (typeof lifetime !== 'number' || !Number.isFinite(lifetime) || lifetime <= 0) throw argumentError('ERR_INVALID_ARG_VALUE', `${WHERE}.lifetime must be a positive number`);
  if (lifetime > maxLifetime) throw argumentError('ERR_INVALID_ARG_VALUE', `${WHERE}.lifetime exceeds options.maxIctLifetime`);
  const exchange = value.exchange ?? true;
  if (typeof exchange !== 'boolean') throw argumentError('ERR_INVALID_ARG_TYPE', `${WHERE}.exchange must be a boolean`);
  const origin = `${scheme}://${trustDomain}`;

  // Full identifiers stay as they are; a path goes under the origin.
  const absolute = (id: string) => (id.startsWith('/') ? origin + id : id);
  let rule: WorkloadIdentifierRule;
  if (value.subject === undefined) {
    const fallback = compileTemplate('/{subject}', PLACEHOLDER, `${WHERE}.subject`);
    rule = (auth) => (parseWorkloadIdentifier(auth.subject) ? auth.subject : fallback.render((n) => placeholder(auth, n)));
  } else if (typeof value.subject === 'string') {
    const where = `${WHERE}.subject`;
    const template = compileTemplate(value.subject, PLACEHOLDER, where);
    // With every placeholder filled, the template must be an identifier of this trust domain: the
    // scheme and authority are literal, only path segments vary.
    const probe = parseWorkloadIdentifier(absolute(template.render(() => 'x') ?? ''));
    if (!probe || probe.scheme !== scheme || probe.trustDomain !== trustDomain) {
      throw argumentError('ERR_INVALID_ARG_VALUE', `${where} must be a path or a ${origin}/... identifier whose placeholders fill whole path segments`);
    }
    rule = (auth) => template.render((n) => placeholder(auth, n));
  } else if (typeof value.subject === 'function') {
    rule = value.subject;
  } else {
    throw argumentError('ERR_INVALID_ARG_TYPE', `${WHERE}.subject must be a template string or a function`);
  }

  async function identify(auth: Authentication): Promise<string> {
    if (auth.kind !== 'workload') throw denied('Workload Identity Tokens are issued to workloads only');
    const id = await rule(auth);
    if (id !== undefined && typeof id !== 'string') throw argumentError('ERR_INVALID_RETURN_VALUE', `${WHERE}.subject returned neither a string nor undefined`);
    if (id === undefined || id.length === 0) throw denied('no Workload Identifier is configured for this workload');
    const parsed = parseWorkloadIdentifier(absolute(id));
    if (!parsed) throw denied('the Workload Identifier for this workload is not a valid spiffe or wimse URI');
    if (parsed.scheme !== scheme || parsed.trustDomain !== trustDomain) throw denied('the Workload Identifier for this workload is outside the trust domain');
    return `${origin}${parsed.path}`;
  }

  return { trustDomain, scheme, origin, lifetime, exchange, identify };
}
