// What the property suites share: fixed seeds and bounded runs (a failure reproduces from its seed),
// and the one rule every parser obeys: it fails only with a coded error.
import fc from 'fast-check';
import { isOidc2Error } from '../../packages/core/src/errors';

/** fast-check parameters: a fixed seed per suite and a bounded number of runs. */
export function runs(numRuns: number, seed = 0x0_1dc2): fc.Parameters<unknown> {
  return { numRuns, seed, endOnFailure: true };
}

/** True for what a parser may throw: an Oidc2Error with a code, or a TypeError ERR_INVALID_ARG_* for programmer errors. */
export function isCodedError(error: unknown): boolean {
  if (isOidc2Error(error)) return typeof error.code === 'string' && error.status >= 400 && error.status < 600;
  const code = error instanceof TypeError ? (error as unknown as { code?: unknown }).code : undefined;
  return typeof code === 'string' && code.startsWith('ERR_INVALID_ARG_');
}

/** Runs `fn`; returns its value, or the thrown error's code. Rethrows anything that is not a coded error. */
export function outcome<T>(fn: () => T): { value: T } | { code: string } {
  try {
    return { value: fn() };
  } catch (error) {
    if (!isCodedError(error)) throw error;
    return { code: (error as { code: string }).code };
  }
}

/** As {@link outcome}, for async calls. */
export async function outcomeAsync<T>(fn: () => Promise<T>): Promise<{ value: T } | { code: string }> {
  try {
    return { value: await fn() };
  } catch (error) {
    if (!isCodedError(error)) throw error;
    return { code: (error as { code: string }).code };
  }
}

/** Structured Field text built from pieces that reach every branch of a Dictionary parser. */
export const SF_PIECES = [
  'sig', 'sig1', '*k', 'a-b.c_d', 'Sig', '=', '(', ')', '"@method"', '"@path"', '"content-digest"', '"a\\"b"', '"a\\\\b"', '";"', ';', 'req', 'key=',
  '"k"', 'created=', '1618884473', '-5', '-0', '007', '1.5', '-1.25', '1234567890123456', '999999999999999', '?1', '?0', '?2', 'tok', 'a/b:c',
  'nonce=', '"n"', ' ', '  ', '\t', ',', ', ', ':', ':AAEC:', ':AAE=:', ':AA==:', ':AAF=:', ':A:', ':!!:', '"é"', '""', '"\u007f"', '()', ';=',
  '@1659578233', '%"x"', '%"%e2%82%ac"', '\u00ff', '\u2028', 'x'.repeat(70),
];

/** Arbitrary Structured-Field-like text. */
export const sfText = fc.array(fc.constantFrom(...SF_PIECES), { minLength: 1, maxLength: 24 }).map((p) => p.join(''));

/** A single-character mutation of `s` at `at` (modulo its length): flip, drop, duplicate, swap, re-case, re-space. */
export type Mutation = 'flip' | 'drop' | 'duplicate' | 'swap' | 'recase' | 'respace';
export const MUTATIONS: readonly Mutation[] = ['flip', 'drop', 'duplicate', 'swap', 'recase', 'respace'];

export function mutate(s: string, kind: Mutation, at: number, bit = 0): string {
  const i = s.length === 0 ? 0 : at % s.length;
  const c = s.charCodeAt(i);
  switch (kind) {
    case 'flip':
      return s.slice(0, i) + String.fromCharCode(c ^ (1 << (bit % 7))) + s.slice(i + 1);
    case 'drop':
      return s.slice(0, i) + s.slice(i + 1);
    case 'duplicate':
      return s.slice(0, i + 1) + s.slice(i);
    case 'swap':
      return i + 1 < s.length ? s.slice(0, i) + s[i + 1] + s[i] + s.slice(i + 2) : s.slice(1) + s[0];
    case 'recase': {
      const ch = s[i]!;
      const other = ch === ch.toLowerCase() ? ch.toUpperCase() : ch.toLowerCase();
      return s.slice(0, i) + other + s.slice(i + 1);
    }
    case 'respace':
      return `${s.slice(0, i)} ${s.slice(i)}`;
  }
}
