// The service's public base URLs and how a caller-named target (the signature profile's `audienceParam`, DPoP `htu`) is matched
// against them: scheme and host compared case-insensitively, default ports dropped, the request
// path appended to the base path. Query and fragment never take part.
import { argumentError } from './validate.js';

export interface AudienceMatcher {
  /** True when `target` equals one base URL joined with the request path. */
  matches(target: string, requestUrl: string): boolean;
  /** The base URL (origin and path, normalised) whose join with the request path equals `target`. */
  baseOf(target: string, requestUrl: string): string | undefined;
  /** Every accepted target URI for this request (one per base URL). */
  candidates(requestUrl: string): string[];
}

interface Base {
  origin: string;
  path: string;
}

/** Path of a request target (origin-form or absolute), without query or fragment. */
export function requestPath(url: string): string {
  if (url.startsWith('/')) {
    const q = url.search(/[?#]/);
    return q < 0 ? url : url.slice(0, q);
  }
  try {
    return new URL(url).pathname;
  } catch {
    return '/';
  }
}

/** Normalises a target URI to origin + path, or undefined when it is not one (or has a query or fragment). */
export function normalizeTarget(target: string): string | undefined {
  if (target.includes('?') || target.includes('#')) return undefined;
  let u: URL;
  try {
    u = new URL(target);
  } catch {
    return undefined;
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return undefined;
  if (u.username || u.password) return undefined;
  return u.origin + u.pathname;
}

export function audienceMatcher(bases: string[], option: string): AudienceMatcher {
  const parsed: Base[] = bases.map((b) => {
    let u: URL | undefined;
    try {
      u = typeof b === 'string' ? new URL(b) : undefined;
    } catch {
      u = undefined;
    }
    if (!u || (u.protocol !== 'https:' && u.protocol !== 'http:') || u.search || u.hash || u.username || u.password) {
      throw argumentError('ERR_INVALID_ARG_VALUE', `options.${option} must be absolute http(s) URLs without query, fragment or credentials`);
    }
    return { origin: u.origin, path: u.pathname.replace(/\/+$/, '') };
  });
  const join = (base: Base, path: string) => normalizeTarget(base.origin + base.path + (path.startsWith('/') ? path : `/${path}`));
  return {
    matches(target, requestUrl) {
      const path = requestPath(requestUrl);
      // Fast path: a caller that names the URI exactly as configured needs no URL parsing; equal
      // strings normalise equally.
      for (const b of parsed) if (target === b.origin + b.path + path) return true;
      const t = normalizeTarget(target);
      if (t === undefined) return false;
      return parsed.some((b) => join(b, path) === t);
    },
    baseOf(target, requestUrl) {
      const path = requestPath(requestUrl);
      // Fast path as in matches: a target named exactly as configured needs no URL parsing.
      for (const b of parsed) if (target === b.origin + b.path + path) return b.origin + b.path;
      const t = normalizeTarget(target);
      const base = t === undefined ? undefined : parsed.find((b) => target === b.origin + b.path + path || join(b, path) === t);
      return base === undefined ? undefined : base.origin + base.path;
    },
    candidates(requestUrl) {
      const path = requestPath(requestUrl);
      return parsed.map((b) => join(b, path)).filter((x): x is string => x !== undefined);
    },
  };
}
