// RFC 9651 lets a later Dictionary member or parameter with the same key overwrite an earlier one,
// so a parsed Dictionary cannot show that its text named a key twice. For the fields a signature or
// digest check reads, a repeated key means two values for one thing (two signatures under one label,
// two `created`, two sha-256 digests of which only the last is compared); this finds it in the text.

const QUOTE = 34;
const BACKSLASH = 92;

/** @internal The first character of an RFC 9651 key. */
export function isKeyStart(c: number): boolean {
  return (c >= 97 && c <= 122) || c === 42; // lcalpha / "*"
}
/** @internal A later character of a key. */
export function isKeyChar(c: number): boolean {
  return isKeyStart(c) || (c >= 48 && c <= 57) || c === 95 || c === 45 || c === 46; // DIGIT "_" "-" "."
}

/**
 * The first key that the Dictionary `text` repeats: a member key, or a parameter key within one
 * member's, one inner list's or one item's parameters; undefined when none is. `text` must be a
 * Dictionary that parsed: this only reads keys and skips Strings, it checks nothing else.
 *
 * @example
 * ```ts
 * repeatedKey('sig=("@method");created=1;created=1') // 'created'
 * repeatedKey('sha-256=:AA==:, sha-256=:AQ==:') // 'sha-256'
 * ```
 */
export function repeatedKey(text: string): string | undefined {
  const members = new Set<string>();
  let params = new Set<string>();
  let depth = 0;
  // Reads the key at `i` (after optional spaces); returns it and where it ends.
  const keyAt = (i: number): [string, number] => {
    while (text.charCodeAt(i) === 32) i++;
    const start = i;
    while (i < text.length && isKeyChar(text.charCodeAt(i))) i++;
    return [text.slice(start, i), i];
  };
  const [firstKey, afterFirst] = keyAt(0);
  members.add(firstKey);
  let i = afterFirst;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      for (i++; i < text.length && text.charCodeAt(i) !== QUOTE; i++) if (text.charCodeAt(i) === BACKSLASH) i++;
      i++;
    } else if (c === 59 /* ; */) {
      const [key, end] = keyAt(i + 1);
      if (params.has(key)) return key;
      params.add(key);
      i = end;
    } else if (c === 44 /* , */ && depth === 0) {
      let j = i + 1;
      while (text.charCodeAt(j) === 32 || text.charCodeAt(j) === 9) j++;
      const [key, end] = keyAt(j);
      if (members.has(key)) return key;
      members.add(key);
      params = new Set();
      i = end;
    } else {
      // An inner list opens or closes, or one of its items begins: each has parameters of its own.
      if (c === 40 /* ( */) depth++;
      else if (c === 41 /* ) */) depth--;
      if (c === 40 || c === 41 || (c === 32 && depth > 0)) params = new Set();
      i++;
    }
  }
  return undefined;
}
