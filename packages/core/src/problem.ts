/** RFC 9457 rendering of coded errors (docs/protocol.md section 5). */
import { PROBLEM_CONTENT_TYPE, type Oidc2Error } from './errors.js';
import type { Fields, HttpResponse } from './message.js';
import { utf8 } from './lib/base64.js';

/**
 * The unsigned RFC 9457 rendering of an error: its status, its challenge headers, `no-store`, and the
 * problem+json body. The service's exchange signs it on the way out.
 */
export function problemResponse(error: Oidc2Error): HttpResponse {
  const headers: Fields = {};
  for (const [name, value] of Object.entries(error.headers)) headers[name.toLowerCase()] = [value];
  headers['content-type'] = [PROBLEM_CONTENT_TYPE];
  headers['cache-control'] = ['no-store'];
  return { status: error.status, headers, body: utf8(JSON.stringify(error.toProblem())) };
}
