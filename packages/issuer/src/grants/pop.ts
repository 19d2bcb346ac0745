// OIDC² draft section 4: a bearer credential (access token, API key or client assertion) plus a
// PoP token (`typ` `jwt+pop`) that proves possession of the key to certify; answered 201.
import { Oidc2Error, type HttpRequest, type HttpResponse } from '@oidc2/core';
import { authenticate, credentialsFrom } from '../credentials.js';
import { parseBody } from '../lib/request-params.js';
import { verifyPopToken } from '../lib/pop.js';
import { jsonResponse } from '../lib/responses.js';
import { hasThumbprint, mintIct } from '../mint.js';
import { grantFor } from '../policy.js';
import type { IssuerState } from '../state.js';

/** Serves a POST to the ICT endpoint. */
export async function popGrant(state: IssuerState, request: HttpRequest): Promise<HttpResponse> {
  const { issuer, clockTolerance } = state;
  const params = parseBody(request, ['jwt', 'json', 'form'], state.maxBodyBytes);
  const credentials = credentialsFrom(request, params, 'ict');
  const popToken = params.pop_token;
  if (popToken === undefined) throw new Oidc2Error('request_malformed', 'the PoP token is missing');
  const pop = await verifyPopToken(popToken, { issuer, now: state.now(), clockTolerance });
  const auth = await authenticate(state, request, 'ict', params, credentials);
  if (pop.sub !== auth.subject) throw new Oidc2Error('pop_invalid', 'PoP token sub is not the authenticated subject');
  if (auth.clientId !== undefined && pop.iss !== auth.clientId) throw new Oidc2Error('pop_invalid', 'PoP token iss is not the authenticated client');
  if (auth.keyThumbprint !== undefined && !(await hasThumbprint(pop.jwk, auth.keyThumbprint))) throw new Oidc2Error('pop_key_invalid', 'the credential is bound to another key');
  const grant = grantFor(state, auth, { ...(pop.requiredClaims ? { requiredClaims: pop.requiredClaims } : {}), ...(pop.optionalClaims ? { optionalClaims: pop.optionalClaims } : {}) });
  let aud: string | undefined;
  if (pop.withAudience !== false) aud = auth.clientId;
  if (pop.withAudience === true && aud === undefined) throw new Oidc2Error('pop_invalid', 'with_audience needs a known client');
  // Spent last: a request refused above can be retried with the same PoP token.
  await state.checkReplay(`pop:${pop.jti}`, pop.exp + clockTolerance);
  const { token, expiresIn } = await mintIct(state, auth, grant, pop.jwk, aud);
  return jsonResponse(201, { identity_certification_token: token, expires_in: expiresIn, e2e_auth_contexts: grant.contexts });
}
