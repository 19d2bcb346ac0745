// Strict request-body parsing: one media type, bounded size, no duplicate parameters.
import { Oidc2Error, fieldLines, type HttpRequest } from '@oidc2/core';

/** Body formats an endpoint accepts. */
export type BodyFormat = 'form' | 'json' | 'jwt';

const MEDIA_TYPES: Record<string, BodyFormat> = {
  'application/x-www-form-urlencoded': 'form',
  'application/json': 'json',
  // OIDC² draft 4.3.1: the PoP token itself is the body.
  'application/jwt+pop': 'jwt',
  'application/jwt': 'jwt',
};

const MAX_PARAMS = 64;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** Parameters of a request body; a raw JWT body arrives as `pop_token`. */
export type BodyParams = Record<string, string>;

function malformed(message: string): Oidc2Error {
  return new Oidc2Error('request_malformed', message);
}

// The JSON strings in `text` (which parsed as JSON).
function stringsIn(text: string): number {
  let count = 0;
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) !== 34 /* " */) continue;
    count++;
    for (i++; text.charCodeAt(i) !== 34; i++) if (text.charCodeAt(i) === 92 /* \ */) i++;
  }
  return count;
}

/** Parses the body of `request` in one of `accepted` formats. */
export function parseBody(request: HttpRequest, accepted: readonly BodyFormat[], maxBytes: number): BodyParams {
  const body = request.body;
  if (body !== undefined && body.length > maxBytes) throw new Oidc2Error('body_too_large', `request body exceeds ${maxBytes} bytes`);
  const lines = fieldLines(request.headers, 'content-type');
  if (lines === undefined) throw new Oidc2Error('media_type_unsupported', 'Content-Type is required');
  if (lines.length !== 1) throw malformed('more than one Content-Type field');
  const [type, ...params] = lines[0]!.split(';');
  const format = MEDIA_TYPES[type!.trim().toLowerCase()];
  if (format === undefined || !accepted.includes(format)) throw new Oidc2Error('media_type_unsupported', 'unsupported Content-Type');
  for (const p of params) {
    const [name, value] = p.split('=').map((s) => s.trim().toLowerCase());
    if (name === 'charset' && value !== 'utf-8' && value !== '"utf-8"') throw new Oidc2Error('media_type_unsupported', 'only UTF-8 bodies are accepted');
  }
  if (body === undefined || body.length === 0) throw malformed('request body is empty');
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    throw malformed('request body is not UTF-8');
  }
  const out: BodyParams = Object.create(null) as BodyParams;
  switch (format) {
    case 'jwt': {
      const token = text.trim();
      if (!COMPACT_JWS.test(token)) throw malformed('body is not a compact JWT');
      out.pop_token = token;
      return out;
    }
    case 'json': {
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        throw malformed('body is not valid JSON');
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value)) throw malformed('JSON body must be an object');
      const entries = Object.entries(value as Record<string, unknown>);
      if (entries.length > MAX_PARAMS) throw malformed('too many parameters');
      for (const [k, v] of entries) {
        if (typeof v !== 'string') throw malformed('JSON body members must be strings');
        out[k] = v;
      }
      // JSON.parse keeps the last of a repeated member: with every member a string, the text holds
      // two strings per member exactly when none repeats.
      if (stringsIn(text) !== 2 * entries.length) throw malformed('a parameter is repeated');
      return out;
    }
    case 'form': {
      const pairs = text.split('&').filter((p) => p.length > 0);
      if (pairs.length > MAX_PARAMS) throw malformed('too many parameters');
      for (const pair of pairs) {
        const i = pair.indexOf('=');
        let name: string;
        let value: string;
        try {
          name = decodeURIComponent((i < 0 ? pair : pair.slice(0, i)).replace(/\+/g, ' '));
          value = i < 0 ? '' : decodeURIComponent(pair.slice(i + 1).replace(/\+/g, ' '));
        } catch {
          throw malformed('body is not valid form encoding');
        }
        // RFC 6749 3.2: parameters sent without a value are treated as omitted; none may repeat.
        if (Object.prototype.hasOwnProperty.call(out, name)) throw malformed('a parameter is repeated');
        out[name] = value;
      }
      for (const k of Object.keys(out)) if (out[k] === '') delete out[k];
      return out;
    }
  }
}
