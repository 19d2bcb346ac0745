/**
 * RFC 9421 component identifiers (section 2): a component name (a derived component such as
 * `@method`, or a lower-case field name) plus parameters (`sf`, `key`, `bs`, `req`, `tr`, `name`),
 * serialized as a Structured Field string item, e.g. `"@query-param";name="Pet"`.
 */
import { parseItem, type Item } from 'structured-headers';
import { Oidc2Error, type Oidc2ErrorCode } from '../errors.js';
import { argumentError } from '../lib/validate.js';

/** The derived components of RFC 9421 section 2.2, except `@signature-params`, which is never covered. */
export const DERIVED_COMPONENTS = [
  '@method',
  '@target-uri',
  '@authority',
  '@scheme',
  '@request-target',
  '@path',
  '@query',
  '@query-param',
  '@status',
] as const;

/** One of {@link DERIVED_COMPONENTS}. */
export type DerivedComponentName = (typeof DERIVED_COMPONENTS)[number];

/** Parameters of a component identifier (RFC 9421 section 6.5.2 registry). */
export interface ComponentParams {
  /** Strict Structured Field re-serialization of the field value (section 2.1.1). */
  readonly sf?: boolean;
  /** One member of a Dictionary field, re-serialized (section 2.1.2). */
  readonly key?: string;
  /** Each field line wrapped as a Byte Sequence (section 2.1.3). */
  readonly bs?: boolean;
  /** Taken from the request that triggered this response (section 2.4). */
  readonly req?: boolean;
  /** Taken from the trailers (section 2.1.4); not supported by this implementation. */
  readonly tr?: boolean;
  /** The encoded name of a query parameter, for `@query-param` (section 2.2.8). */
  readonly name?: string;
}

/** A parsed, validated component identifier. */
export interface ComponentIdentifier {
  /** The component name: a derived component (`@path`) or a lower-case field name (`content-digest`). */
  readonly name: string;
  /** Its parameters. */
  readonly params: ComponentParams;
  /**
   * The identifier exactly as it appears in the signature base and in `Signature-Input`, with the
   * parameters in the order the signer chose, e.g. `"@query-param";name="Pet"`.
   */
  readonly id: string;
}

/** Raises a failure; internal parsing raises coded errors, programmer input raises TypeError. */
export type Fail = (code: Oidc2ErrorCode, message: string) => never;

/** @internal What a Structured Field String may hold (RFC 9651 section 3.3.3): printable ASCII. */
export const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;
/** @internal RFC 9651 section 3.3.1: the largest Integer. */
export const MAX_SF_INTEGER = 999_999_999_999_999;

/** @internal Serializes a String whose characters the parser has already checked (printable ASCII). */
export function sfString(value: string): string {
  return value.includes('"') || value.includes('\\') ? `"${value.replace(/["\\]/g, '\\$&')}"` : `"${value}"`;
}

/** @internal Failure for what arrived in a message. */
export const failMessage: Fail = (code, message) => {
  throw new Oidc2Error(code, message);
};

/** @internal Failure for what a programmer passed in. */
export const failArgument: Fail = (_code, message) => {
  throw argumentError('ERR_INVALID_ARG_VALUE', `${message}`);
};

const DERIVED = new Set<string>(DERIVED_COMPONENTS);
// RFC 9110 token characters, lower case only: RFC 9421 section 2.1 requires lower-cased names.
const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const FLAGS = new Set(['sf', 'bs', 'req', 'tr']);

/**
 * @internal Validates one parsed Structured Field item as a component identifier. Applies every
 * rule of RFC 9421 section 2 that does not need the message: known names and parameters, parameter
 * types, and parameter combinations.
 */
export function componentFromItem(item: Item, fail: Fail): ComponentIdentifier {
  const name = item[0];
  if (typeof name !== 'string') fail('request_malformed', 'a component identifier must be a string');
  if (name === '@signature-params') fail('request_malformed', '@signature-params must not be a covered component');
  const derived = name.charCodeAt(0) === 64; /* @ */
  if (derived) {
    if (!DERIVED.has(name)) fail('component_unsupported', `unknown derived component ${name}`);
  } else if (!FIELD_NAME.test(name)) {
    fail('request_malformed', 'a field component name must be a lower-case field name');
  }
  const params: { -readonly [K in keyof ComponentParams]: ComponentParams[K] } = {};
  // The identifier is re-serialized here rather than by the Structured Field serializer: the name
  // holds no character that needs escaping, and this runs for every covered component of every request.
  let id = `"${name}"`;
  for (const [key, value] of item[1]) {
    if (FLAGS.has(key)) {
      if (value !== true) fail('request_malformed', `component parameter ${key} must be a bare flag`);
      (params as Record<string, unknown>)[key] = true;
      id += `;${key}`;
    } else if (key === 'key' || key === 'name') {
      if (typeof value !== 'string') fail('request_malformed', `component parameter ${key} must be a string`);
      params[key] = value;
      id += `;${key}=${sfString(value)}`;
    } else {
      fail('component_unsupported', `unknown component parameter ${key}`);
    }
  }
  if (derived) {
    if (params.sf || params.bs || params.tr || params.key !== undefined) {
      fail('request_malformed', `${name} does not take field parameters`);
    }
    if ((name === '@query-param') !== (params.name !== undefined)) {
      fail('request_malformed', 'the name parameter is required on @query-param and allowed nowhere else');
    }
    if (name === '@status' && params.req) fail('request_malformed', '@status cannot be taken from the request');
  } else {
    if (params.name !== undefined) fail('request_malformed', 'the name parameter applies only to @query-param');
    if (params.bs && (params.sf || params.key !== undefined)) fail('request_malformed', 'bs cannot be combined with sf or key');
    if (params.tr) fail('component_unsupported', 'trailer fields (tr) are not supported');
  }
  return { name, params, id };
}

/**
 * Parses a component identifier written by a programmer: the Structured Field form
 * (`"@query-param";name="Pet"`, `"content-digest";req`) or the bare shorthand (`@method`,
 * `content-digest`, `content-digest;req`).
 *
 * @throws TypeError when the identifier is malformed or not supported.
 * @example
 * ```ts
 * parseComponentIdentifier('"@query-param";name="Pet"') // { name: '@query-param', params: { name: 'Pet' }, id: '"@query-param";name="Pet"' }
 * parseComponentIdentifier('@method').id               // '"@method"'
 * ```
 */
export function parseComponentIdentifier(input: string): ComponentIdentifier {
  if (typeof input !== 'string' || input.length === 0) failArgument('request_malformed', 'a component identifier must be a non-empty string');
  let text = input;
  if (text.charCodeAt(0) !== 34 /* " */) {
    const semicolon = text.indexOf(';');
    const bare = semicolon < 0 ? text : text.slice(0, semicolon);
    if (bare.includes('"') || bare.includes('\\')) failArgument('request_malformed', `malformed component identifier ${JSON.stringify(input)}`);
    text = `"${bare}"${semicolon < 0 ? '' : text.slice(semicolon)}`;
  }
  let item: Item;
  try {
    item = parseItem(text);
  } catch {
    return failArgument('request_malformed', `malformed component identifier ${JSON.stringify(input)}`);
  }
  return componentFromItem(item, failArgument);
}

// A signer covers the same few identifiers on every message (a response signature names eight), so
// each distinct string is parsed once. The strings come from code, never from a message, and the
// cache is bounded all the same; its entries are frozen because every caller shares them.
const parsedIdentifiers = new Map<string, ComponentIdentifier>();
const MAX_PARSED_IDENTIFIERS = 256;

/** @internal Accepts identifiers as strings or parsed objects, for programmer input. */
export function toComponent(component: string | ComponentIdentifier): ComponentIdentifier {
  if (typeof component === 'string') {
    let parsed = parsedIdentifiers.get(component);
    if (parsed === undefined) {
      const fresh = parseComponentIdentifier(component);
      parsed = Object.freeze({ ...fresh, params: Object.freeze({ ...fresh.params }) });
      if (parsedIdentifiers.size < MAX_PARSED_IDENTIFIERS) parsedIdentifiers.set(component, parsed);
    }
    return parsed;
  }
  if (component === null || typeof component !== 'object' || typeof component.id !== 'string') {
    return failArgument('request_malformed', 'a component must be a string or a ComponentIdentifier');
  }
  return component;
}

/**
 * @internal Equality of identifiers ignores the order of parameters (RFC 9421 section 2:
 * `"foo";bar;baz` and `"foo";baz;bar` are the same identifier).
 */
export function componentKey(c: ComponentIdentifier): string {
  const p = c.params;
  let key = c.name;
  if (p.bs) key += ';bs';
  if (p.key !== undefined) key += `;key=${JSON.stringify(p.key)}`;
  if (p.name !== undefined) key += `;name=${JSON.stringify(p.name)}`;
  if (p.req) key += ';req';
  if (p.sf) key += ';sf';
  if (p.tr) key += ';tr';
  return key;
}

/** @internal Rejects a repeated component identifier (RFC 9421 section 2). */
export function assertDistinct(components: readonly ComponentIdentifier[], fail: Fail): void {
  if (components.length < 2) return;
  const seen = new Set<string>();
  for (const c of components) {
    const key = componentKey(c);
    if (seen.has(key)) fail('request_malformed', `component ${c.id} is covered more than once`);
    seen.add(key);
  }
}
