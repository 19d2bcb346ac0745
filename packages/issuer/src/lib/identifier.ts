// Workload Identifiers (draft-ietf-wimse-identifier, SPIFFE ID rules) and the templates that build
// them from what an authenticator established. Strict on purpose: one spelling per identifier, so
// that an identifier compared as a string means one workload.
import { argumentError } from '@oidc2/core/adapter';

/** The URI schemes a Workload Identifier may use. */
export type WorkloadScheme = 'spiffe' | 'wimse';

/** Longest accepted Workload Identifier (draft-ietf-wimse-identifier 4.1), in characters. */
export const MAX_IDENTIFIER_LENGTH = 2048;

// A trust domain: a lower-case DNS name (no port, no user information, no IP literal syntax
// beyond digits and dots), which also satisfies the core's WIT verifier.
const TRUST_DOMAIN = /^(?=.{1,255}$)[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/;
// One path segment of a SPIFFE ID: letters, digits, dot, hyphen, underscore.
const SEGMENT = /^[A-Za-z0-9._-]+$/;

/** Whether `value` is a well-formed trust domain (lower-case DNS name, no port). */
export function isTrustDomain(value: unknown): value is string {
  return typeof value === 'string' && TRUST_DOMAIN.test(value);
}

/** Whether `value` may stand as one path segment of a Workload Identifier. */
export function isSegment(value: unknown): value is string {
  return typeof value === 'string' && SEGMENT.test(value) && value !== '.' && value !== '..';
}

/** A parsed Workload Identifier. */
export interface WorkloadIdentifier {
  scheme: WorkloadScheme;
  trustDomain: string;
  /** The path, starting with `/`; never empty, no empty, `.` or `..` segments. */
  path: string;
}

/**
 * Parses a Workload Identifier: `spiffe://` or `wimse://`, a trust domain as authority (no port, no
 * user information), a non-empty path of SPIFFE segments, no query, no fragment, no trailing slash,
 * at most {@link MAX_IDENTIFIER_LENGTH} characters. Anything else is `undefined`.
 */
export function parseWorkloadIdentifier(value: unknown): WorkloadIdentifier | undefined {
  if (typeof value !== 'string' || value.length > MAX_IDENTIFIER_LENGTH) return undefined;
  const m = /^(spiffe|wimse):\/\/([^/]*)(\/.*)$/.exec(value);
  if (!m) return undefined;
  const [, scheme, trustDomain, path] = m as unknown as [string, WorkloadScheme, string, string];
  if (!isTrustDomain(trustDomain)) return undefined;
  if (!path.slice(1).split('/').every(isSegment)) return undefined;
  return { scheme, trustDomain, path };
}

/** Values a template may substitute; a missing or ill-formed value makes the template yield nothing. */
export type TemplateValues = (name: string) => unknown;

/** A compiled identifier template. */
export interface IdentifierTemplate {
  /** The placeholder names, in order of appearance. */
  names: readonly string[];
  /**
   * The template with each placeholder replaced by its value, or `undefined` when a value is
   * missing or is not a single path segment (letters, digits, `.`, `-`, `_`; not `.` or `..`).
   */
  render(values: TemplateValues): string | undefined;
}

/**
 * Compiles `template`: literal text with `{name}` placeholders, each name accepted by `isName`.
 * Throws `ERR_INVALID_ARG_VALUE` naming `where` for an unknown name or a stray brace.
 */
export function compileTemplate(template: string, isName: (name: string) => boolean, where: string): IdentifierTemplate {
  const parts: Array<{ literal: string } | { name: string }> = [];
  const pattern = /\{([^{}]*)\}/g;
  let last = 0;
  for (let m = pattern.exec(template); m !== null; m = pattern.exec(template)) {
    parts.push({ literal: template.slice(last, m.index) });
    const name = m[1]!;
    if (!isName(name)) throw argumentError('ERR_INVALID_ARG_VALUE', `${where} has an unknown placeholder {${name}}`);
    parts.push({ name });
    last = m.index + m[0].length;
  }
  parts.push({ literal: template.slice(last) });
  for (const p of parts) {
    if ('literal' in p && /[{}]/.test(p.literal)) throw argumentError('ERR_INVALID_ARG_VALUE', `${where} has an unmatched brace`);
  }
  const names = parts.flatMap((p) => ('name' in p ? [p.name] : []));
  return {
    names,
    render(values) {
      let out = '';
      for (const p of parts) {
        if ('literal' in p) {
          out += p.literal;
          continue;
        }
        const value = values(p.name);
        if (!isSegment(value)) return undefined;
        out += value;
      }
      return out;
    },
  };
}
