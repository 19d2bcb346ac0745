/**
 * The `Signature-Input` and `Signature` fields (RFC 9421 sections 4.1 and 4.2): Structured Field
 * Dictionaries keyed by signature label. Parsed once, bounded in size, and validated strictly.
 */
import { parseDictionary, Token, type BareItem, type Dictionary, type InnerList } from 'structured-headers';
import { Oidc2Error } from '../errors.js';
import { parseDictionaryFast } from './fast-dictionary.js';
import { fastSignature, fastSignatureInput, rememberShape } from './fast-signature-fields.js';
import { MAX_SF_INTEGER, PRINTABLE_ASCII, assertDistinct, componentFromItem, failArgument, failMessage, sfString, toComponent, type ComponentIdentifier } from './components.js';
import { argumentError } from '../lib/validate.js';
import { repeatedKey } from '../lib/structured-keys.js';

export { Token };

/** A signature parameter value: String, Integer, Boolean or Token. */
export type SignatureParamValue = string | number | boolean | Token;

/**
 * Signature parameters (RFC 9421 section 2.3) in the order the signer serialized them. The defined
 * ones are type-checked when parsed; extension parameters keep their Structured Field type
 * (a Token stays a {@link Token}, so it never compares equal to a string).
 */
export interface SignatureParams {
  /** Creation time, unix seconds (Integer). */
  readonly created?: number;
  /** Expiration time, unix seconds (Integer). */
  readonly expires?: number;
  /** A nonce (String). */
  readonly nonce?: string;
  /** An RFC 9421 registry algorithm name (String). */
  readonly alg?: string;
  /** A key identifier (String). */
  readonly keyid?: string;
  /** An application tag (String). */
  readonly tag?: string;
  /** Extension parameters, e.g. a signature profile's `audienceParam`. */
  readonly [name: string]: SignatureParamValue | undefined;
}

/** One member of `Signature-Input`. */
export interface SignatureInputEntry {
  /** The dictionary key, e.g. `sig1`. */
  readonly label: string;
  /** The covered components, in order. */
  readonly components: ComponentIdentifier[];
  /** The signature parameters. */
  readonly params: SignatureParams;
  /**
   * The `@signature-params` value: the canonical serialization of the member's inner list with its
   * parameters, e.g. `("@method" "@path");created=1618884473;keyid="k"`.
   */
  readonly signatureParams: string;
}

/** Bounds applied before a field is parsed. */
export interface FieldLimits {
  /** Largest accepted field size in bytes, all field lines together. Default 8192. */
  maxBytes?: number;
  /** Most accepted dictionary members (signatures). Default 8. */
  maxMembers?: number;
  /** Most covered components of one signature (`Signature-Input` only). Default 64. */
  maxComponents?: number;
}

const DEFAULT_MAX_BYTES = 8192;
const DEFAULT_MAX_MEMBERS = 8;
// A response signature of this profile covers at most 14 components; 64 leaves room for services
// that require more, and bounds the work one signature base can ask for.
const DEFAULT_MAX_COMPONENTS = 64;
const PARAM_KEY = /^[a-z*][a-z0-9_\-.*]*$/;
const STRING_PARAMS = new Set(['nonce', 'alg', 'keyid', 'tag']);

function limitsOf(limits: FieldLimits | undefined): { maxBytes: number; maxMembers: number; maxComponents: number } {
  const maxBytes = limits?.maxBytes ?? DEFAULT_MAX_BYTES;
  const maxMembers = limits?.maxMembers ?? DEFAULT_MAX_MEMBERS;
  const maxComponents = limits?.maxComponents ?? DEFAULT_MAX_COMPONENTS;
  if (!Number.isInteger(maxComponents) || maxComponents < 1) throw argumentError('ERR_INVALID_ARG_VALUE', 'limits.maxComponents must be a positive integer');
  if (!Number.isInteger(maxBytes) || maxBytes < 1) throw argumentError('ERR_INVALID_ARG_VALUE', 'limits.maxBytes must be a positive integer');
  if (!Number.isInteger(maxMembers) || maxMembers < 1) throw argumentError('ERR_INVALID_ARG_VALUE', 'limits.maxMembers must be a positive integer');
  return { maxBytes, maxMembers, maxComponents };
}

/** @internal Joins field lines (RFC 9110 section 5.3) after checking the size bound. */
export function joinBounded(lines: readonly string[], maxBytes: number, field: string): string {
  let size = 2 * (lines.length - 1);
  for (const line of lines) size += line.length;
  if (size > maxBytes) throw new Oidc2Error('header_too_large', `${field} exceeds ${maxBytes} bytes`);
  return lines.length === 1 ? lines[0]! : lines.join(', ');
}

function parseBoundedDictionary(text: string, maxMembers: number, field: string): Dictionary {
  let dictionary: Dictionary;
  try {
    dictionary = parseDictionaryFast(text) ?? parseDictionary(text);
  } catch (error) {
    throw new Oidc2Error('request_malformed', `${field} is not a Structured Field Dictionary`, { cause: error });
  }
  if (dictionary.size > maxMembers) throw new Oidc2Error('request_malformed', `${field} has more than ${maxMembers} members`);
  // Two members under one label, or one parameter twice: the parser would keep only the last.
  if (repeatedKey(text) !== undefined) throw new Oidc2Error('request_malformed', `${field} repeats a label or a parameter`);
  return dictionary;
}

/** Serializes one checked parameter (RFC 9651 section 4.1.1.2). */
function serializeParam(key: string, value: SignatureParamValue): string {
  if (value === true) return `;${key}`;
  if (value === false) return `;${key}=?0`;
  if (typeof value === 'string') return `;${key}=${sfString(value)}`;
  return `;${key}=${String(value)}`;
}

function innerList(components: readonly ComponentIdentifier[]): string {
  let out = '(';
  for (let i = 0; i < components.length; i++) out += (i === 0 ? '' : ' ') + components[i]!.id;
  return `${out})`;
}

function checkParam(key: string, value: BareItem, fail: (message: string) => never): SignatureParamValue {
  if (key === 'created' || key === 'expires') {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) fail(`${key} must be a non-negative Integer`);
    return value;
  }
  if (STRING_PARAMS.has(key)) {
    if (typeof value !== 'string') fail(`${key} must be a String`);
    return value;
  }
  if (typeof value === 'string' || typeof value === 'boolean' || value instanceof Token) return value;
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  return fail(`signature parameter ${key} must be a String, Integer, Boolean or Token`);
}

/**
 * Parses `Signature-Input` (RFC 9421 section 4.1) into entries by label. Every member must be an
 * inner list of valid, distinct component identifiers; `created` and `expires` must be Integers and
 * `nonce`, `alg`, `keyid` and `tag` Strings. A field that fails any of this is rejected whole.
 *
 * @param lines The field lines, e.g. `fieldLines(request.headers, 'signature-input')`; absent means no signatures.
 * @throws Oidc2Error `header_too_large` over `limits.maxBytes`; `request_malformed` for anything
 *   malformed, a label or parameter named twice, more than `limits.maxMembers` members or more than
 *   `limits.maxComponents` covered components in one member; `component_unsupported` for an unknown
 *   derived component or component parameter, or `tr`.
 */
export function parseSignatureInput(lines: readonly string[] | undefined, limits?: FieldLimits): Map<string, SignatureInputEntry> {
  if (lines === undefined || lines.length === 0) return new Map();
  const { maxBytes, maxMembers, maxComponents } = limitsOf(limits);
  const text = joinBounded(lines, maxBytes, 'Signature-Input');
  return fastSignatureInput(text, maxMembers, maxComponents) ?? parseSignatureInputText(text, maxMembers, maxComponents);
}

/**
 * The generic path of {@link parseSignatureInput}, the reference of its fast path: `text` is the
 * joined field, already bounded in size.
 *
 * @internal
 */
export function parseSignatureInputText(text: string, maxMembers: number, maxComponents: number): Map<string, SignatureInputEntry> {
  const out = new Map<string, SignatureInputEntry>();
  for (const [label, member] of parseBoundedDictionary(text, maxMembers, 'Signature-Input')) {
    if (!Array.isArray(member[0])) throw new Oidc2Error('request_malformed', `Signature-Input member ${label} is not an inner list`);
    const list = member as InnerList;
    if (list[0].length > maxComponents) throw new Oidc2Error('request_malformed', `Signature-Input member ${label} covers more than ${maxComponents} components`);
    const components = list[0].map((item) => componentFromItem(item, failMessage));
    assertDistinct(components, failMessage);
    const params: Record<string, SignatureParamValue> = {};
    // The canonical @signature-params value: the member re-serialized (RFC 9421 section 3.2 step 7).
    const serializedList = innerList(components);
    rememberShape(serializedList, components);
    let signatureParams = serializedList;
    for (const [key, value] of list[1]) {
      const checked = checkParam(key, value, (message) => {
        throw new Oidc2Error('request_malformed', `Signature-Input member ${label}: ${message}`);
      });
      params[key] = checked;
      signatureParams += serializeParam(key, checked);
    }
    out.set(label, { label, components, params, signatureParams });
  }
  return out;
}

/**
 * Parses `Signature` (RFC 9421 section 4.2) into signature bytes by label. Every member must be a
 * Byte Sequence.
 *
 * @throws Oidc2Error `header_too_large` over `limits.maxBytes`; `request_malformed` otherwise (also
 *   for a label named twice).
 */
export function parseSignature(lines: readonly string[] | undefined, limits?: FieldLimits): Map<string, Uint8Array> {
  if (lines === undefined || lines.length === 0) return new Map();
  const { maxBytes, maxMembers } = limitsOf(limits);
  const text = joinBounded(lines, maxBytes, 'Signature');
  return fastSignature(text, maxMembers) ?? parseSignatureText(text, maxMembers);
}

/**
 * The generic path of {@link parseSignature}, the reference of its fast path: `text` is the joined
 * field, already bounded in size.
 *
 * @internal
 */
export function parseSignatureText(text: string, maxMembers: number): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const [label, member] of parseBoundedDictionary(text, maxMembers, 'Signature')) {
    const value = member[0];
    if (!(value instanceof ArrayBuffer)) throw new Oidc2Error('request_malformed', `Signature member ${label} is not a Byte Sequence`);
    out.set(label, new Uint8Array(value));
  }
  return out;
}

/**
 * Serializes covered components and signature parameters as the `@signature-params` value, which
 * is also the `Signature-Input` member value (RFC 9421 section 2.3). Parameters are written in the
 * object's insertion order; `undefined` values are skipped.
 *
 * @throws TypeError for invalid or repeated components, invalid parameter names, or values of the wrong type.
 * @example
 * ```ts
 * serializeSignatureParams(['@method', '"@query-param";name="Pet"'], { created: 1618884473, keyid: 'k' })
 * // '("@method" "@query-param";name="Pet");created=1618884473;keyid="k"'
 * ```
 */
export function serializeSignatureParams(
  components: ReadonlyArray<string | ComponentIdentifier>,
  params: Readonly<Record<string, SignatureParamValue | undefined>> = {},
): string {
  if (!Array.isArray(components)) throw argumentError('ERR_INVALID_ARG_TYPE', 'components must be an array');
  const parsed = components.map(toComponent);
  assertDistinct(parsed, failArgument);
  let out = innerList(parsed);
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined) continue;
    if (!PARAM_KEY.test(key)) throw argumentError('ERR_INVALID_ARG_VALUE', `${JSON.stringify(key)} is not a valid parameter name`);
    checkParam(key, value, (message) => {
      throw argumentError('ERR_INVALID_ARG_VALUE', `${message}`);
    });
    if (typeof value === 'number' && Math.abs(value) > MAX_SF_INTEGER) throw argumentError('ERR_INVALID_ARG_VALUE', `${key} is out of the Integer range`);
    if (typeof value === 'string' && !PRINTABLE_ASCII.test(value)) throw argumentError('ERR_INVALID_ARG_VALUE', `${key} must be printable ASCII`);
    out += serializeParam(key, value);
  }
  return out;
}
