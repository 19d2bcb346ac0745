// Argument validation, run once at construction: coded TypeErrors (as oauth4webapi throws them) and
// the rejection of option keys nobody reads, so that a misspelt security option fails closed.

/** The codes of argument errors. */
export type ArgumentErrorCode = 'ERR_INVALID_ARG_TYPE' | 'ERR_INVALID_ARG_VALUE' | 'ERR_UNKNOWN_OPTION' | 'ERR_INVALID_RETURN_VALUE';

/** A `TypeError` thrown for a bad argument or option, with a stable `code`. */
export interface ArgumentError extends TypeError {
  readonly code: ArgumentErrorCode;
}

/** Makes an {@link ArgumentError}; the message names the argument as the caller spells it. */
export function argumentError(code: ArgumentErrorCode, message: string, options?: { cause?: unknown }): ArgumentError {
  const error = new TypeError(message, options) as TypeError & { code: ArgumentErrorCode };
  Object.defineProperty(error, 'code', { value: code, enumerable: true });
  return error as ArgumentError;
}

/** True for errors made by {@link argumentError} (by `code`, never `instanceof` across packages). */
export function isArgumentError(value: unknown): value is ArgumentError {
  if (!(value instanceof TypeError)) return false;
  const code = (value as { code?: unknown }).code;
  return code === 'ERR_INVALID_ARG_TYPE' || code === 'ERR_INVALID_ARG_VALUE' || code === 'ERR_UNKNOWN_OPTION' || code === 'ERR_INVALID_RETURN_VALUE';
}

/**
 * Asserts that `value` is a plain object whose own keys are all in `known`. `path` names it
 * (`options`, `options.workloads`, `route GET /x config.oidc2`); the error names the unknown key.
 * `renamed` maps a former option name to its current one: the error then names both, so code
 * written for the former name fails closed and says what to write instead.
 */
export function assertOptions<T>(value: T, known: readonly string[], path: string, renamed?: Readonly<Record<string, string>>): asserts value is T & Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw argumentError('ERR_INVALID_ARG_TYPE', `${path} must be an object`);
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue;
    if (renamed && Object.hasOwn(renamed, key)) throw argumentError('ERR_UNKNOWN_OPTION', `${path}.${key} is now ${path}.${renamed[key]}`);
    throw argumentError('ERR_UNKNOWN_OPTION', `${path}.${key} is not an option (known: ${known.join(', ')})`);
  }
}

/**
 * A numeric option, or `fallback` when absent. Throws naming the option (`name` as the caller spells
 * it, e.g. `options.clockTolerance`) unless it is a finite number >= 0 (> 0 when `allowZero` is false).
 */
export function numberOption(name: string, value: number | undefined, fallback: number, allowZero = true): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw argumentError('ERR_INVALID_ARG_VALUE', `${name} must be a ${allowZero ? 'non-negative' : 'positive'} number`);
  }
  return value;
}

/** An integer option >= 0 (> 0 when `allowZero` is false), or `fallback` when absent. */
export function integerOption(name: string, value: number | undefined, fallback: number, allowZero = true): number {
  const n = numberOption(name, value, fallback, allowZero);
  if (!Number.isInteger(n)) throw argumentError('ERR_INVALID_ARG_VALUE', `${name} must be an integer`);
  return n;
}

/** Freezes a value and everything reachable from it (results shared between callers). */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
