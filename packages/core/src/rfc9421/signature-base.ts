/**
 * Component values (RFC 9421 sections 2.1 to 2.4) and the signature base (section 2.5).
 */
import {
  isInnerList,
  parseDictionary,
  parseItem,
  parseList,
  serializeDictionary,
  serializeInnerList,
  serializeItem,
  serializeList,
  type Dictionary,
} from 'structured-headers';
import { Oidc2Error } from '../errors.js';
import { encodeBase64 } from '../lib/base64.js';
import type { Fields, HttpRequest, HttpResponse } from '../message.js';
import { assertDistinct, failMessage, toComponent, type ComponentIdentifier } from './components.js';
import { argumentError } from '../lib/validate.js';

/** The Structured Field type of a field, needed for `;sf` (RFC 9421 section 2.1.1). */
export type StructuredFieldType = 'item' | 'list' | 'dictionary';

/**
 * Fields whose Structured Field type is defined by an RFC. `;sf` is accepted only for these and for
 * those named in {@link SignatureContext.structuredFields}: the type is never guessed, because a
 * value such as `a, b` is both a valid List and a valid Dictionary.
 */
export const STRUCTURED_FIELDS: Readonly<Record<string, StructuredFieldType>> = Object.freeze({
  // RFC 9421
  'signature-input': 'dictionary',
  signature: 'dictionary',
  'accept-signature': 'dictionary',
  // RFC 9530
  'content-digest': 'dictionary',
  'repr-digest': 'dictionary',
  'want-content-digest': 'dictionary',
  'want-repr-digest': 'dictionary',
  // RFC 9218, RFC 9213, RFC 9211, RFC 9209, RFC 9440, RFC 8942
  priority: 'dictionary',
  'cdn-cache-control': 'dictionary',
  'cache-status': 'list',
  'proxy-status': 'list',
  'client-cert': 'item',
  'client-cert-chain': 'list',
  'accept-ch': 'list',
  // This project's key share (docs/protocol.md)
  'oidc2-key-share': 'dictionary',
});

/** Where component values come from besides the target message. */
export interface SignatureContext {
  /** The request that triggered the response being signed or verified; needed for `;req` components. Default: none. */
  request?: HttpRequest;
  /**
   * Structured Field types of fields beyond {@link STRUCTURED_FIELDS}, by lower-case name, for
   * `;sf` and `;key`. Default: none.
   */
  structuredFields?: Readonly<Record<string, StructuredFieldType>>;
}

/** A request or a response. */
export type HttpMessage = HttpRequest | HttpResponse;

function isRequest(message: HttpMessage): message is HttpRequest {
  return typeof (message as HttpRequest).method === 'string';
}

// Component values must be printable ASCII (RFC 9421 sections 2.1 and 2.5); HTAB occurs inside field values.
const NOT_ASCII = /[^\t\x20-\x7e]/;
const OBS_FOLD = /\r?\n[\t ]+/g;
const AUTHORITY = /^(?:[a-z0-9\-._~!$&'()*+,;=%]+|\[[0-9a-f:.]+\])(?::[0-9]*)?$/;
const SCHEME = /^[a-z][a-z0-9+\-.]*$/;

/** Frozen component lists already found free of repeats. */
const distinctLists = new WeakSet<readonly ComponentIdentifier[]>();

// The last few long values found printable: the same tokens (the service's, a caller's) come back
// on every message, and comparing a string with an equal one is cheaper than scanning it again.
const KNOWN_PRINTABLE_MIN = 128;
const KNOWN_PRINTABLE_MAX = 8192;
const knownPrintable: string[] = ['', '', '', ''];
let knownNext = 0;

function assertAscii(value: string, what: string): string {
  const long = value.length >= KNOWN_PRINTABLE_MIN && value.length <= KNOWN_PRINTABLE_MAX;
  if (long && (value === knownPrintable[0] || value === knownPrintable[1] || value === knownPrintable[2] || value === knownPrintable[3])) return value;
  if (NOT_ASCII.test(value)) throw new Oidc2Error('request_malformed', `${what} contains a character that cannot be signed`);
  if (long) {
    knownPrintable[knownNext] = value;
    knownNext = (knownNext + 1) & 3;
  }
  return value;
}

/** The parts of a request's target URI, computed once per signature base. */
interface Target {
  scheme: string;
  authority: string | undefined;
  path: string;
  query: string | undefined;
  requestTarget: string;
  params?: QueryParams;
}

function trimOws(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && (s.charCodeAt(start) === 32 || s.charCodeAt(start) === 9)) start++;
  while (end > start && (s.charCodeAt(end - 1) === 32 || s.charCodeAt(end - 1) === 9)) end--;
  return start === 0 && end === s.length ? s : s.slice(start, end);
}

function normalizeAuthority(raw: string, scheme: string): string {
  let authority = raw.toLowerCase();
  if (!AUTHORITY.test(authority)) throw new Oidc2Error('request_malformed', 'the request authority is malformed');
  // RFC 9110 section 4.2.3: an empty or default port is omitted.
  if (authority.endsWith(':')) authority = authority.slice(0, -1);
  else if (scheme === 'https' && authority.endsWith(':443')) authority = authority.slice(0, -4);
  else if (scheme === 'http' && authority.endsWith(':80')) authority = authority.slice(0, -3);
  return authority;
}

function hostOf(request: HttpRequest): string | undefined {
  const lines = request.headers['host'];
  if (lines === undefined || lines.length === 0) return undefined;
  if (lines.length > 1) throw new Oidc2Error('request_malformed', 'more than one Host field');
  return trimOws(lines[0]!);
}

function parseTarget(request: HttpRequest): Target {
  let url = request.url;
  if (typeof url !== 'string') throw argumentError('ERR_INVALID_ARG_TYPE', 'request.url must be a string');
  const hash = url.indexOf('#');
  if (hash >= 0) url = url.slice(0, hash);
  let scheme = (request.scheme ?? 'https').toLowerCase();
  let authority: string | undefined;
  let rest: string;
  const sep = url.charCodeAt(0) === 47 /* / */ ? -1 : url.indexOf('://');
  if (sep > 0) {
    // absolute-form: the target URI carries its own scheme and authority (RFC 9112 section 3.2.2).
    scheme = url.slice(0, sep).toLowerCase();
    let end = sep + 3;
    while (end < url.length) {
      const c = url.charCodeAt(end);
      if (c === 47 || c === 63) break; // '/' or '?'
      end++;
    }
    authority = url.slice(sep + 3, end);
    rest = url.slice(end);
  } else if (url === '*') {
    rest = '';
  } else if (url.charCodeAt(0) === 47 || url.length === 0) {
    rest = url;
  } else {
    // authority-form (CONNECT): the target is the authority alone.
    authority = url;
    rest = '';
  }
  if (request.absoluteForm === true && sep <= 0) throw argumentError('ERR_INVALID_ARG_VALUE', 'request.absoluteForm needs an absolute request.url');
  if (!SCHEME.test(scheme)) throw new Oidc2Error('request_malformed', 'the request scheme is malformed');
  authority ??= request.authority ?? hostOf(request);
  const q = rest.indexOf('?');
  const path = q < 0 ? rest : rest.slice(0, q);
  return {
    scheme,
    authority: authority === undefined ? undefined : normalizeAuthority(authority, scheme),
    path: path.length === 0 ? '/' : path,
    query: q < 0 ? undefined : rest.slice(q + 1),
    // An absolute URL names the target URI; unless the request line carried it in absolute form
    // (RFC 9421 section 2.2.5's proxy example), the request line a client sends to an origin server
    // carries its origin-form (RFC 9112 section 3.2.1), which is what both ends can agree on.
    requestTarget: sep > 0 && request.absoluteForm !== true ? `${path.length === 0 ? '/' : path}${q < 0 ? '' : rest.slice(q)}` : url,
  };
}

// application/x-www-form-urlencoded percent-encode set: everything but ASCII alphanumerics and *-._
const FORM_SAFE = new Uint8Array(128);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789*-._') FORM_SAFE[c.charCodeAt(0)] = 1;
const HEX = '0123456789ABCDEF';
const utf8Encoder = new TextEncoder();
// WHATWG "UTF-8 decode without BOM": invalid sequences become U+FFFD.
const utf8Decoder = new TextDecoder('utf-8', { ignoreBOM: true });

function isCanonicalFormComponent(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || FORM_SAFE[c] === 0) return false;
  }
  return true;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

/**
 * RFC 9421 section 2.2.8: parse with the application/x-www-form-urlencoded parser (`+` is a space,
 * percent-escapes are decoded, UTF-8 with replacement), then percent-encode every byte outside
 * ASCII alphanumerics and `*-._`. A space becomes `%20`, as the RFC's own example shows.
 */
function formComponent(raw: string): string {
  if (isCanonicalFormComponent(raw)) return raw;
  const bytes: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === 43 /* + */) {
      bytes.push(32);
    } else if (c === 37 /* % */ && i + 2 < raw.length && hexValue(raw.charCodeAt(i + 1)) >= 0 && hexValue(raw.charCodeAt(i + 2)) >= 0) {
      bytes.push(hexValue(raw.charCodeAt(i + 1)) * 16 + hexValue(raw.charCodeAt(i + 2)));
      i += 2;
    } else if (c < 128) {
      bytes.push(c);
    } else {
      // A non-ASCII character in a raw query: its UTF-8 bytes (the URL parser would have encoded it).
      // A surrogate pair is one character; a lone surrogate is one U+FFFD, never with its neighbour.
      const next = i + 1 < raw.length ? raw.charCodeAt(i + 1) : 0;
      const end = c >= 0xd800 && c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff ? i + 2 : i + 1;
      for (const b of utf8Encoder.encode(raw.slice(i, end))) bytes.push(b);
      i = end - 1;
    }
  }
  const decoded = utf8Encoder.encode(utf8Decoder.decode(Uint8Array.from(bytes)));
  let out = '';
  for (const b of decoded) out += b < 128 && FORM_SAFE[b] === 1 ? String.fromCharCode(b) : `%${HEX[b >> 4]}${HEX[b & 15]}`;
  return out;
}

/** Query parameters by encoded name; null marks a name that occurs more than once. */
type QueryParams = Map<string, string | null>;

function parseQuery(query: string | undefined): QueryParams {
  const params: QueryParams = new Map();
  if (query === undefined) return params;
  let start = 0;
  while (start < query.length) {
    let end = query.indexOf('&', start);
    if (end < 0) end = query.length;
    if (end > start) {
      const eq = query.indexOf('=', start);
      const hasValue = eq >= 0 && eq < end;
      const name = formComponent(query.slice(start, hasValue ? eq : end));
      params.set(name, params.has(name) ? null : hasValue ? formComponent(query.slice(eq + 1, end)) : '');
    }
    start = end + 1;
  }
  return params;
}

function queryParam(target: Target, name: string): string {
  // Parsed once per message, so covering many parameters costs one pass over the query.
  const value = (target.params ??= parseQuery(target.query)).get(name);
  if (value === undefined) throw new Oidc2Error('component_missing', 'a covered query parameter is missing');
  // RFC 9421 section 2.2.8: a parameter name that occurs more than once MUST NOT be covered.
  if (value === null) throw new Oidc2Error('request_malformed', 'a covered query parameter occurs more than once');
  return value;
}

/** What one signature base computes once per message, however many components use it. */
interface MessageCache {
  target?: Target;
  dictionaries?: Map<string, Dictionary>;
}

function derivedValue(c: ComponentIdentifier, message: HttpMessage, cache: MessageCache): string {
  if (c.name === '@status') {
    if (isRequest(message)) throw new Oidc2Error('request_malformed', '@status cannot be used in a request');
    const status = message.status;
    if (!Number.isInteger(status) || status < 100 || status > 999) throw argumentError('ERR_INVALID_ARG_VALUE', 'response.status must be a three-digit integer');
    return String(status);
  }
  if (!isRequest(message)) throw new Oidc2Error('request_malformed', `${c.name} applies to requests; a response must use ;req`);
  if (c.name === '@method') {
    if (typeof message.method !== 'string' || message.method.length === 0) throw new Oidc2Error('component_missing', 'the request has no method');
    return assertAscii(message.method, '@method');
  }
  const target = (cache.target ??= parseTarget(message));
  switch (c.name) {
    case '@target-uri':
    case '@authority': {
      if (target.authority === undefined) throw new Oidc2Error('component_missing', 'the request has no authority (Host)');
      if (c.name === '@authority') return target.authority;
      return assertAscii(`${target.scheme}://${target.authority}${target.path}${target.query === undefined ? '' : `?${target.query}`}`, '@target-uri');
    }
    case '@scheme':
      return target.scheme;
    case '@request-target':
      return assertAscii(target.requestTarget, '@request-target');
    case '@path':
      return assertAscii(target.path, '@path');
    case '@query':
      return assertAscii(`?${target.query ?? ''}`, '@query');
    case '@query-param':
      return queryParam(target, c.params.name!);
    default:
      throw new Oidc2Error('component_unsupported', `unknown derived component ${c.name}`);
  }
}

function structuredType(name: string, context: SignatureContext | undefined): StructuredFieldType | undefined {
  const own = context?.structuredFields;
  if (own !== undefined && Object.prototype.hasOwnProperty.call(own, name)) return own[name];
  return Object.prototype.hasOwnProperty.call(STRUCTURED_FIELDS, name) ? STRUCTURED_FIELDS[name] : undefined;
}

function unfold(line: string): string {
  // Obsolete line folding cannot reach the message model from a parser, but a hand-built message may carry it.
  return line.includes('\n') ? line.replace(OBS_FOLD, ' ') : line;
}

function fieldComponentValue(c: ComponentIdentifier, fields: Fields, context: SignatureContext | undefined, cache: MessageCache): string {
  const lines = fields[c.name];
  if (lines === undefined || lines.length === 0) throw new Oidc2Error('component_missing', `the covered field ${c.name} is missing`);
  const p = c.params;
  if (p.bs) {
    // RFC 9421 section 2.1.3: each line's raw bytes. Field values arrive as byte strings (one
    // character per byte, as Node and fetch Headers give them).
    let out = '';
    for (let i = 0; i < lines.length; i++) {
      const line = trimOws(unfold(lines[i]!));
      const bytes = new Uint8Array(line.length);
      for (let j = 0; j < line.length; j++) {
        const code = line.charCodeAt(j);
        if (code > 0xff || code === 10 || code === 13) throw new Oidc2Error('request_malformed', `field ${c.name} is not a byte string`);
        bytes[j] = code;
      }
      out += `${i === 0 ? '' : ', '}:${encodeBase64(bytes)}:`;
    }
    return out;
  }
  let value = lines.length === 1 ? trimOws(unfold(lines[0]!)) : lines.map((l) => trimOws(unfold(l))).join(', ');
  if (p.sf || p.key !== undefined) {
    const type = structuredType(c.name, context);
    if (p.key !== undefined) {
      if (type !== undefined && type !== 'dictionary') throw new Oidc2Error('request_malformed', `field ${c.name} is not a Dictionary`);
      // Parsed once per message: covering many members costs one parse of the field.
      const dictionaries = (cache.dictionaries ??= new Map());
      let dictionary = dictionaries.get(c.name);
      if (dictionary === undefined) {
        try {
          dictionary = parseDictionary(value);
        } catch (error) {
          throw new Oidc2Error('request_malformed', `field ${c.name} is not a valid Dictionary`, { cause: error });
        }
        dictionaries.set(c.name, dictionary);
      }
      const member = dictionary.get(p.key);
      if (member === undefined) throw new Oidc2Error('component_missing', `field ${c.name} has no member ${p.key}`);
      value = isInnerList(member) ? serializeInnerList(member) : serializeItem(member);
    } else {
      if (type === undefined) throw new Oidc2Error('component_unsupported', `the Structured Field type of ${c.name} is not known`);
      try {
        value = type === 'dictionary' ? serializeDictionary(parseDictionary(value)) : type === 'list' ? serializeList(parseList(value)) : serializeItem(parseItem(value));
      } catch (error) {
        throw new Oidc2Error('request_malformed', `field ${c.name} is not a valid Structured Field ${type}`, { cause: error });
      }
    }
  }
  return assertAscii(value, `field ${c.name}`);
}

/**
 * The component value of one covered component (RFC 9421 section 2), taken from `message`, or from
 * `context.request` for a `;req` component of a response.
 *
 * @throws Oidc2Error `component_missing` when the message has no such component (absent field,
 *   dictionary member, query parameter or authority; `;req` without `context.request`);
 *   `request_malformed` when the component does not apply to the message or its value cannot be
 *   signed (control characters, non-ASCII without `;bs`, a repeated query parameter, a malformed
 *   Structured Field); `component_unsupported` for `;sf` on a field of unknown type.
 * @example
 * ```ts
 * componentValue({ method: 'GET', url: '/a?b=c', headers: { host: ['Example.com:443'] } }, '@authority') // 'example.com'
 * ```
 */
export function componentValue(message: HttpMessage, component: string | ComponentIdentifier, context?: SignatureContext): string {
  return valueOf(toComponent(component), message, context, {}, {});
}

function valueOf(c: ComponentIdentifier, message: HttpMessage, context: SignatureContext | undefined, cache: MessageCache, reqCache: MessageCache): string {
  let source = message;
  let sourceCache = cache;
  if (c.params.req) {
    if (isRequest(message)) throw new Oidc2Error('request_malformed', 'req cannot be used in a request signature');
    if (context?.request === undefined) throw new Oidc2Error('component_missing', `${c.id} needs the related request`);
    source = context.request;
    sourceCache = reqCache;
  }
  return c.name.charCodeAt(0) === 64 ? derivedValue(c, source, sourceCache) : fieldComponentValue(c, source.headers, context, sourceCache);
}

/**
 * Creates the signature base (RFC 9421 section 2.5): one line `<identifier>: <value>` per covered
 * component, then `"@signature-params": <signatureParams>`, joined with LF and without a final LF.
 *
 * @param signatureParams The `@signature-params` value, e.g. {@link SignatureInputEntry.signatureParams} or the output of {@link serializeSignatureParams}.
 * @throws Oidc2Error as {@link componentValue}; `request_malformed` for a repeated component.
 * @example
 * ```ts
 * const base = signatureBase(request, entry.components, entry.signatureParams)
 * ```
 */
export function signatureBase(
  message: HttpMessage,
  components: ReadonlyArray<string | ComponentIdentifier>,
  signatureParams: string,
  context?: SignatureContext,
): string {
  if (typeof signatureParams !== 'string' || signatureParams.charCodeAt(0) !== 40 /* ( */ || NOT_ASCII.test(signatureParams) || signatureParams.includes('\t')) {
    throw argumentError('ERR_INVALID_ARG_VALUE', 'signatureParams must be a serialized inner list');
  }
  const parsed = components.every((c) => typeof c !== 'string') ? (components as readonly ComponentIdentifier[]) : components.map(toComponent);
  // A frozen list (a parsed shape, a prepared response's) cannot change once checked.
  if (!distinctLists.has(parsed)) {
    assertDistinct(parsed, failMessage);
    if (Object.isFrozen(parsed)) distinctLists.add(parsed);
  }
  const cache: MessageCache = {};
  const reqCache: MessageCache = {};
  let base = '';
  for (const c of parsed) base += `${c.id}: ${valueOf(c, message, context, cache, reqCache)}\n`;
  return `${base}"@signature-params": ${signatureParams}`;
}
