// OIDC² draft section 4: a bearer credential (access token, API key, client assertion or, at the
// ICT endpoint, a WIT) plus a PoP token (`typ` `jwt+pop`) that proves possession of the key to
// certify; answered 201. The WIT endpoint takes the same request and answers with a WIT.
import { Oidc2Error, type HttpRequest, type HttpResponse } from '@oidc2/core';
import { authenticate, credentialsFrom } from '../credentials.js';
import { parseBody } from '../lib/request-params.js';
import { verifyPopToken, type VerifiedPop } from '../lib/pop.js';
import { jsonResponse } from '../lib/responses.js';
import { hasThumbprint, mintIct, mintWit } from '../mint.js';
import { grantFor } from '../policy.js';
import type { IssuerState } from '../state.js';
import type { Authentication } from '../types.js';

/** The key checks every proof of possession at these endpoints passes: the credential's binding. */
async function checkBinding(pop: VerifiedPop, auth: Authentication): Promise<void> {
  if (auth.keyThumbprint !== undefined && !(await hasThumbprint(pop.jwk, auth.keyThumbprint))) throw new Oidc2Error('pop_key_invalid', 'the credential is bound to another key');
  if (auth.keyAlgorithm !== undefined && pop.jwk.alg !== auth.keyAlgorithm) throw new Oidc2Error('pop_key_invalid', 'the credential requires proofs with another algorithm');
}

/** Serves a POST to the ICT endpoint (`endpoint` `ict`) or the WIT endpoint (`wit`). */
export async function popGrant(state: IssuerState, request: HttpRequest, endpoint: 'ict' | 'wit' = 'ict'): Promise<HttpResponse> {
  const { issuer, clockTolerance } = state;
  const params = parseBody(request, ['jwt', 'json', 'form'], state.maxBodyBytes);
  const credentials = credentialsFrom(request, params, endpoint);
  const popToken = params.pop_token;
  if (popToken === undefined) throw new Oidc2Error('request_malformed', 'the PoP token is missing');
  const pop = await verifyPopToken(popToken, { issuer, now: state.now(), clockTolerance });
  if (endpoint === 'wit') return witGrant(state, request, params, credentials, pop);
  const auth = await authenticate(state, request, 'ict', params, credentials);
  if (pop.sub !== auth.subject) throw new Oidc2Error('pop_invalid', 'PoP token sub is not the authenticated subject');
  if (auth.clientId !== undefined && pop.iss !== auth.clientId) throw new Oidc2Error('pop_invalid', 'PoP token iss is not the authenticated client');
  await checkBinding(pop, auth);
  const grant = grantFor(state, auth, { ...(pop.requiredClaims ? { requiredClaims: pop.requiredClaims } : {}), ...(pop.optionalClaims ? { optionalClaims: pop.optionalClaims } : {}) });
  let aud: string | undefined;
  if (pop.withAudience !== false) aud = auth.clientId;
  if (pop.withAudience === true && aud === undefined) throw new Oidc2Error('pop_invalid', 'with_audience needs a known client');
  // Spent last: a request refused above can be retried with the same PoP token.
  await state.checkReplay(`pop:${pop.jti}`, pop.exp + clockTolerance);
  const { token, expiresIn } = await mintIct(state, auth, grant, pop.jwk, aud);
  return jsonResponse(201, { identity_certification_token: token, expires_in: expiresIn, e2e_auth_contexts: grant.contexts });
}

async function witGrant(
  state: IssuerState,
  request: HttpRequest,
  params: Record<string, string>,
  credentials: ReturnType<typeof credentialsFrom>,
  pop: VerifiedPop,
): Promise<HttpResponse> {
  const workloads = state.workloads!;
  // A WIT carries no audience and no identity claims: asking for them is refused, not ignored.
  if (pop.requiredClaims !== undefined || pop.optionalClaims !== undefined || pop.withAudience !== undefined) {
    throw new Oidc2Error('pop_invalid', 'required_claims, optional_claims and with_audience do not apply to a WIT');
  }
  const auth = await authenticate(state, request, 'wit', params, credentials);
  const subject = await workloads.identify(auth);
  // The caller may name itself by what it authenticated as or by the identifier it will get.
  if (pop.sub !== auth.subject && pop.sub !== subject) throw new Oidc2Error('pop_invalid', 'PoP token sub is neither the authenticated subject nor its Workload Identifier');
  if (auth.clientId !== undefined && pop.iss !== auth.clientId) throw new Oidc2Error('pop_invalid', 'PoP token iss is not the authenticated client');
  await checkBinding(pop, auth);
  await state.checkReplay(`pop:${pop.jti}`, pop.exp + state.clockTolerance);
  const { token, expiresIn } = await mintWit({ ...state, workloads }, auth, subject, pop.jwk);
  return jsonResponse(201, { workload_identity_token: token, expires_in: expiresIn });
}
