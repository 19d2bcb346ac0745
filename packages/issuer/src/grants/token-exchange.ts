// RFC 8693 token exchange: the credential is the `subject_token`, the key to certify is the one
// an RFC 9449 DPoP proof introduces; answered 200 with the ICT (or, when `requested_token_type`
// asks for one, the WIT) as `access_token`.
import { fieldLines, isOidc2Error, Oidc2Error, verifyDpopProof, type HttpRequest, type HttpResponse } from '@oidc2/core';
import { decodeProtectedHeader, type JWK } from 'jose';
import { contextsFromScopes } from '../authenticators/claims.js';
import { CONTEXT_SCOPE_PREFIX, ICT_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT_TYPE, WIT_TOKEN_TYPE } from '../constants.js';
import { authenticate, credentialsFrom } from '../credentials.js';
import { parseBody } from '../lib/request-params.js';
import { jsonResponse, markDpopFailure } from '../lib/responses.js';
import { hasThumbprint, mintIct, mintWit } from '../mint.js';
import { grantFor } from '../policy.js';
import type { IssuerState } from '../state.js';

/** Serves a POST to the token endpoint. */
export async function tokenExchangeGrant(state: IssuerState, request: HttpRequest): Promise<HttpResponse> {
  const params = parseBody(request, ['form', 'json'], state.maxBodyBytes);
  if (params.grant_type === undefined) throw new Oidc2Error('request_malformed', 'grant_type is required');
  if (params.grant_type !== TOKEN_EXCHANGE_GRANT_TYPE) throw new Oidc2Error('grant_type_unsupported', 'only token exchange is supported');
  const wantsWit = params.requested_token_type === WIT_TOKEN_TYPE && state.workloads !== undefined;
  if (params.requested_token_type !== undefined && params.requested_token_type !== ICT_TOKEN_TYPE && !wantsWit) throw new Oidc2Error('token_type_unsupported', 'this token type is not issued here');
  if (params.actor_token !== undefined || params.actor_token_type !== undefined) throw new Oidc2Error('request_malformed', 'delegation (actor_token) is not supported');
  if (params.resource !== undefined) throw new Oidc2Error('audience_mismatch', 'resource is not supported');
  const credentials = credentialsFrom(request, params, 'token');
  if (wantsWit) {
    if (credentials.workloadIdentityToken !== undefined) throw new Oidc2Error('token_type_unsupported', 'a WIT is not exchanged for a WIT: attest with another credential');
    if (params.scope !== undefined) throw new Oidc2Error('context_not_allowed', 'a WIT carries no scope');
    if (params.audience !== undefined) throw new Oidc2Error('audience_mismatch', 'a WIT carries no audience');
  }
  let requested: string[] | undefined;
  if (params.scope !== undefined) {
    const scopes = params.scope.split(' ').filter(Boolean);
    requested = contextsFromScopes(scopes);
    if (requested.length !== scopes.length) throw new Oidc2Error('context_not_allowed', `only ${CONTEXT_SCOPE_PREFIX}* scopes can be requested`);
  }
  const proofs = fieldLines(request.headers, 'dpop');
  if (proofs === undefined) throw markDpopFailure(new Oidc2Error('dpop_invalid', 'a DPoP proof is required'));
  if (proofs.length !== 1) throw markDpopFailure(new Oidc2Error('dpop_invalid', 'more than one DPoP proof'));
  let proof: Awaited<ReturnType<typeof verifyDpopProof>>;
  try {
    proof = await verifyDpopProof(proofs[0]!, {
      method: request.method,
      htu: state.endpoints.token,
      // A token endpoint: no access token yet (so no `ath`), and the proof introduces the key.
      accessToken: null,
      expectedThumbprint: null,
      now: state.now(),
      clockTolerance: state.clockTolerance,
      replayStore: state.replayStore,
      ...(state.dpopNonces ? { nonces: state.dpopNonces } : {}),
    });
  } catch (err) {
    throw isOidc2Error(err) ? markDpopFailure(err) : err;
  }
  const auth = await authenticate(state, request, 'token', params, credentials);
  const jwk: JWK = { ...proof.jwk, alg: decodeProtectedHeader(proofs[0]!).alg! };
  if (auth.keyThumbprint !== undefined && !(await hasThumbprint(jwk, auth.keyThumbprint))) {
    throw markDpopFailure(new Oidc2Error('dpop_invalid', 'the subject token is bound to another key'));
  }
  if (auth.keyAlgorithm !== undefined && jwk.alg !== auth.keyAlgorithm) {
    throw markDpopFailure(new Oidc2Error('dpop_invalid', 'the subject token requires proofs with another algorithm'));
  }
  if (wantsWit) {
    const workloads = state.workloads!;
    const subject = await workloads.identify(auth);
    const { token, expiresIn } = await mintWit({ ...state, workloads }, auth, subject, jwk);
    return jsonResponse(200, { access_token: token, issued_token_type: WIT_TOKEN_TYPE, token_type: 'N_A', expires_in: expiresIn });
  }
  const grant = grantFor(state, auth, requested ? { contexts: requested } : {});
  const aud = auth.clientId;
  if (params.audience !== undefined && params.audience !== aud) throw new Oidc2Error('audience_mismatch', 'the ICT audience can only be the client');
  const { token, expiresIn } = await mintIct(state, auth, grant, jwk, aud);
  return jsonResponse(200, {
    access_token: token,
    issued_token_type: ICT_TOKEN_TYPE,
    token_type: 'N_A',
    expires_in: expiresIn,
    scope: grant.contexts.map((c) => CONTEXT_SCOPE_PREFIX + c).join(' '),
  });
}
