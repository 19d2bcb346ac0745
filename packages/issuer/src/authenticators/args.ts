// Construction-time checks shared by the built-in authenticators.
import { argumentError } from '@oidc2/core/adapter';

/** A non-empty string option, or an `ERR_INVALID_ARG_VALUE` naming `where`. */
export function requireString(value: unknown, where: string): string {
  if (typeof value !== 'string' || value.length === 0) throw argumentError('ERR_INVALID_ARG_VALUE', `${where} must be a non-empty string`);
  return value;
}

/** An optional array of non-empty strings, copied. */
export function stringArray(value: unknown, where: string): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string' && v.length > 0)) throw argumentError('ERR_INVALID_ARG_VALUE', `${where} must be an array of strings`);
  return [...value];
}

/** An optional `fetch` implementation. */
export function fetchOption(value: unknown, where: string): typeof fetch | undefined {
  if (value !== undefined && typeof value !== 'function') throw argumentError('ERR_INVALID_ARG_TYPE', `${where} must be a function`);
  return value as typeof fetch | undefined;
}
