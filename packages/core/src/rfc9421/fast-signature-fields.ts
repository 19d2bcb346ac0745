// The hot path of `Signature-Input` and `Signature` parsing, for the fields signers write: every
// request carries both, and the generic path (a Dictionary, then each member's components checked
// one by one, then the text scanned again for repeated keys) costs several times what this does.
//
// A `Signature-Input` member is taken here only when its text is already canonical (RFC 9651
// section 4.1): then its `@signature-params` value is that text, and its inner list is one the
// generic path has parsed and checked before, looked up by its exact text in a bounded table of
// shapes (a client covers the same components on every request). Parameters are read directly:
// Integers without leading zeros, Strings without escapes, `?0` and bare flags. A `Signature` member
// is taken when it is a canonical Byte Sequence without parameters. Anything else, including every
// repeated label or parameter and every value the generic path would refuse, returns undefined and
// goes to the generic path, which decides; a differential test holds the two to the same results.
import { decodeBase64 } from '../lib/base64.js';
import { isKeyChar, isKeyStart } from '../lib/structured-keys.js';
import { stringEnd } from './fast-dictionary.js';
import type { ComponentIdentifier } from './components.js';
import type { SignatureInputEntry, SignatureParamValue } from './signature-fields.js';

const SP = 32;
const HTAB = 9;
const QUOTE = 34;

// Inner lists are keyed by their canonical text. Each entry is a pure function of its key, so
// nobody can make the table answer wrongly; flooding it with shapes only sends requests to the
// generic path. Bounded in entries and in key length.
const SHAPES_MAX = 128;
const SHAPE_MAX_CHARS = 1024;
const shapes = new Map<string, readonly ComponentIdentifier[]>();
// The shape found last, compared in place before the table is asked (most requests repeat it).
let lastShape = '';
let lastComponents: readonly ComponentIdentifier[] = [];

/**
 * Records the components of an inner list the generic path accepted, under their canonical
 * serialization `serialized` (e.g. `("@method" "@path")`). The shared copies are frozen.
 *
 * @internal
 */
export function rememberShape(serialized: string, components: readonly ComponentIdentifier[]): void {
  if (serialized.length > SHAPE_MAX_CHARS) return;
  // A shape parsed again moves to the recent end, so the last one to go is the last one seen.
  let known = shapes.get(serialized);
  if (known !== undefined) shapes.delete(serialized);
  else if (shapes.size >= SHAPES_MAX) shapes.delete(shapes.keys().next().value as string);
  known ??= Object.freeze(components.map((c) => Object.freeze({ name: c.name, params: Object.freeze({ ...c.params }), id: c.id })));
  shapes.set(serialized, known);
}

/** The end of the key at `i`, or -1 when none starts there. */
function keyEnd(s: string, i: number): number {
  if (!isKeyStart(s.charCodeAt(i))) return -1;
  i++;
  while (i < s.length && isKeyChar(s.charCodeAt(i))) i++;
  return i;
}

/** Skips optional whitespace after a member; returns the start of the next key, `s.length` at the end, or -1. */
function nextMember(s: string, i: number): number {
  let c = s.charCodeAt(i);
  while (c === SP || c === HTAB) c = s.charCodeAt(++i);
  if (i >= s.length) return s.length;
  if (c !== 44 /* , */) return -1;
  i++;
  while (s.charCodeAt(i) === SP || s.charCodeAt(i) === HTAB) i++;
  return i >= s.length ? -1 : i; // a trailing comma
}

/** The end of the canonical inner list opening at `i` (after its `)`), or -1. */
function innerListEnd(s: string, i: number): number {
  for (i++; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 41 /* ) */) return i + 1;
    if (c === QUOTE) {
      i = stringEnd(s, i);
      if (i < 0) return -1;
    }
  }
  return -1;
}

const STRING_PARAMS = new Set(['nonce', 'alg', 'keyid', 'tag']);

/**
 * Parses `text` (the joined field lines) when every member takes the fast path; undefined otherwise.
 *
 * @internal
 */
export function fastSignatureInput(text: string, maxMembers: number, maxComponents: number): Map<string, SignatureInputEntry> | undefined {
  const out = new Map<string, SignatureInputEntry>();
  let i = 0;
  while (text.charCodeAt(i) === SP) i++;
  if (i >= text.length) return undefined;
  for (;;) {
    const labelEnd = keyEnd(text, i);
    if (labelEnd < 0 || text.charCodeAt(labelEnd) !== 61 /* = */ || text.charCodeAt(labelEnd + 1) !== 40 /* ( */) return undefined;
    const label = text.slice(i, labelEnd);
    const open = labelEnd + 1;
    let close: number;
    let components: readonly ComponentIdentifier[] | undefined;
    // A canonical inner list ends at its first `)` outside a String: text that starts with a known
    // shape at `open` holds exactly that inner list.
    if (lastShape !== '' && text.startsWith(lastShape, open)) {
      close = open + lastShape.length;
      components = lastComponents;
    } else {
      close = innerListEnd(text, open);
      if (close < 0) return undefined;
      const shape = text.slice(open, close);
      components = shapes.get(shape);
      if (components === undefined) return undefined;
      lastShape = shape;
      lastComponents = components;
    }
    if (components.length > maxComponents) return undefined;
    const params: Record<string, SignatureParamValue> = {};
    i = close;
    while (text.charCodeAt(i) === 59 /* ; */) {
      const end = keyEnd(text, i + 1);
      if (end < 0) return undefined;
      const key = text.slice(i + 1, end);
      if (Object.hasOwn(params, key)) return undefined;
      i = end;
      let value: SignatureParamValue;
      if (text.charCodeAt(i) !== 61 /* = */) {
        value = true;
      } else {
        i++;
        const c = text.charCodeAt(i);
        if (c === QUOTE) {
          const end = stringEnd(text, i);
          if (end < 0) return undefined;
          value = text.slice(i + 1, end);
          i = end + 1;
        } else if (c === 63 /* ? */) {
          if (text.charCodeAt(i + 1) !== 48 /* 0: ?1 is written as a bare flag */) return undefined;
          value = false;
          i += 2;
        } else {
          const negative = c === 45; /* - */
          const start = negative ? i + 1 : i;
          let j = start;
          while (j < text.length && text.charCodeAt(j) >= 48 && text.charCodeAt(j) <= 57) j++;
          const digits = j - start;
          // Canonical Integers only: 1 to 15 digits, no leading zero, no -0, no decimal point.
          if (digits === 0 || digits > 15 || (digits > 1 && text.charCodeAt(start) === 48) || text.charCodeAt(j) === 46) return undefined;
          const n = Number(text.slice(start, j));
          if (negative && n === 0) return undefined;
          value = negative ? -n : n;
          i = j;
        }
      }
      // What the generic path refuses, it refuses with its own message.
      if (key === 'created' || key === 'expires') {
        if (typeof value !== 'number' || value < 0) return undefined;
      } else if (STRING_PARAMS.has(key) && typeof value !== 'string') {
        return undefined;
      }
      params[key] = value;
    }
    if (out.has(label)) return undefined;
    // A shared, frozen list: an entry's components are read, never changed.
    out.set(label, { label, components: components as ComponentIdentifier[], params, signatureParams: text.slice(open, i) });
    if (out.size > maxMembers) return undefined;
    i = nextMember(text, i);
    if (i < 0) return undefined;
    if (i === text.length) return out;
  }
}

/**
 * Parses `text` (the joined field lines) when every member is a canonical Byte Sequence without
 * parameters; undefined otherwise.
 *
 * @internal
 */
export function fastSignature(text: string, maxMembers: number): Map<string, Uint8Array> | undefined {
  const out = new Map<string, Uint8Array>();
  let i = 0;
  while (text.charCodeAt(i) === SP) i++;
  if (i >= text.length) return undefined;
  for (;;) {
    const labelEnd = keyEnd(text, i);
    if (labelEnd < 0 || text.charCodeAt(labelEnd) !== 61 /* = */ || text.charCodeAt(labelEnd + 1) !== 58 /* : */) return undefined;
    const label = text.slice(i, labelEnd);
    const end = text.indexOf(':', labelEnd + 2);
    if (end < 0) return undefined;
    const bytes = decodeBase64(text.slice(labelEnd + 2, end));
    if (bytes === undefined || out.has(label)) return undefined;
    out.set(label, bytes);
    if (out.size > maxMembers) return undefined;
    i = nextMember(text, end + 1);
    if (i < 0) return undefined;
    if (i === text.length) return out;
  }
}
