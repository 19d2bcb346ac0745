/**
 * The framework-free HTTP message model. Adapters build these from their framework's request;
 * the core never sees a framework object.
 */

/** Header fields: lower-case name -> every field line, in order (as Node's `headersDistinct`). */
export type Fields = Record<string, string[]>;

/** Anything an adapter or a user may hand over as headers. */
export type FieldsInit =
  | Fields
  | Record<string, string | string[] | number | undefined | null>
  | Iterable<readonly [string, string]>
  | { forEach(cb: (value: string, name: string) => void): void };

/** An HTTP request as the core sees it. */
export interface HttpRequest {
  /** Method as sent, e.g. `POST`. */
  method: string;
  /** The request target as received (`/path?query`) or an absolute URL. */
  url: string;
  /**
   * Whether the request line carried `url` in absolute form (RFC 9112 section 3.2.2), as a request
   * to a forward proxy does. `@request-target` is then the absolute URL itself (RFC 9421 section
   * 2.2.5). Default false: an absolute `url` names the target URI only, and `@request-target` is
   * its origin-form, the request line a client sends to an origin server.
   */
  absoluteForm?: boolean | undefined;
  /** All field lines. Use {@link normalizeFields} to build. */
  headers: Fields;
  /** Raw body bytes as received (before any parsing). Absent or empty means no body. */
  body?: Uint8Array | undefined;
  /** Scheme for `@scheme`/`@target-uri` when `url` is origin-form. Default `https`. */
  scheme?: string | undefined;
  /** Authority for `@authority`/`@target-uri` when `url` is origin-form. Default: the `Host` field. */
  authority?: string | undefined;
}

// RFC 3986 section 3.1 scheme, then "://": the absolute-form of a request target (RFC 9112 section 3.2.2).
const ABSOLUTE_FORM = /^[a-z][a-z0-9+.-]*:\/\//i;

/**
 * Whether a request target as the request line carried it is in absolute form
 * (`http://host/path`), as Node's `req.url` is for such a request line: what an adapter sets
 * {@link HttpRequest.absoluteForm} from.
 *
 * @example
 * ```ts
 * isAbsoluteForm('http://api.example.com/orders') // true
 * isAbsoluteForm('/orders') // false
 * ```
 */
export function isAbsoluteForm(target: string): boolean {
  return ABSOLUTE_FORM.test(target);
}

/** An HTTP response as the core sees it. */
export interface HttpResponse {
  status: number;
  headers: Fields;
  body?: Uint8Array | undefined;
}

/** Normalises any header representation into {@link Fields} (lower-case names, one entry per field line). */
export function normalizeFields(init: FieldsInit | undefined): Fields {
  const out: Fields = Object.create(null) as Fields;
  if (init == null) return out;
  const add = (name: string, value: unknown) => {
    if (value === undefined || value === null) return;
    const key = name.toLowerCase();
    const list = (out[key] ??= []);
    if (Array.isArray(value)) for (const v of value) list.push(String(v));
    else list.push(String(value));
  };
  if (typeof (init as Iterable<unknown>)[Symbol.iterator] === 'function') {
    // Headers, Map and arrays of pairs.
    for (const [n, v] of init as Iterable<readonly [string, string]>) add(n, v);
  } else if (typeof (init as { forEach?: unknown }).forEach === 'function') {
    (init as { forEach(cb: (v: string, n: string) => void): void }).forEach((v, n) => add(n, v));
  } else {
    for (const [n, v] of Object.entries(init as Record<string, unknown>)) add(n, v);
  }
  return out;
}

/** The field lines of `name`, or undefined. */
export function fieldLines(fields: Fields, name: string): string[] | undefined {
  const v = fields[name.toLowerCase()];
  return v && v.length > 0 ? v : undefined;
}

/** The combined field value (lines joined with `, `, RFC 9110 5.3), or undefined. */
export function fieldValue(fields: Fields, name: string): string | undefined {
  const v = fieldLines(fields, name);
  return v === undefined ? undefined : v.join(', ');
}
