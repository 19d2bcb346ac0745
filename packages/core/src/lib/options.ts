// Shared helpers for validating options once, at construction, and for handing out results that
// callers cannot change.

/**
 * A numeric option, or `fallback` when absent. Throws a TypeError naming the option (`name` as the
 * caller spells it, e.g. `options.clockTolerance`) unless it is a finite number >= 0 (> 0 when
 * `allowZero` is false).
 */
export function numberOption(name: string, value: number | undefined, fallback: number, allowZero = true): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new TypeError(`ERR_INVALID_ARG_VALUE: ${name} must be a ${allowZero ? 'non-negative' : 'positive'} number`);
  }
  return value;
}

/** Freezes a value and everything reachable from it (results shared between callers). */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
