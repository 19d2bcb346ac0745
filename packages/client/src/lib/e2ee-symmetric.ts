// Symmetric session authentication, the caller's side (docs/protocol.md section 7.11): a session
// request signed with hmac-sha256 under K_c2s instead of the caller's key, and its response checked
// under K_s2c. Rekeys and handshakes stay public-key signed (e2ee.ts decides which message is which).
//
// How the client knows a session allows it: the response's Oidc2-Session carries only `exp` and
// `rekey` (docs/protocol.md section 7.2), and the token is opaque to the caller, so the client tries
// when its own option says so and learns otherwise from a *signed* refusal of the service it
// pinned (`session_mac_unavailable`, `session_mac_not_allowed`): nothing ran, so it sends the same
// request again signed with its key, and stops trying at that service.
import { hasSessionMacSignature, isOidc2Error, signSessionMacRequest, verifySessionMacResponse, type HttpRequest, type HttpResponse, type RequestBinding, type ServiceIdentity } from '@oidc2/core';
import { macKeys, sessionMacBinding, sessionMacProfile } from '@oidc2/core/adapter';

/** The refusals after which a request is sent again with a public-key signature. */
export const SESSION_MAC_REFUSALS: ReadonlySet<string> = new Set(['session_mac_unavailable', 'session_mac_not_allowed']);

/** The MAC keys of a session and the service pinned at its handshake, which MAC-signed responses come from. */
export interface SessionMacParams {
  readonly c2s: Uint8Array;
  readonly s2c: Uint8Array;
  readonly service: ServiceIdentity;
}

/** `K_c2s` and `K_s2c` of a session (docs/protocol.md section 7.5). */
export async function sessionMacParams(rk: Uint8Array, sid: Uint8Array, service: ServiceIdentity): Promise<SessionMacParams> {
  const { c2s, s2c } = await macKeys(rk, sid);
  return { c2s, s2c, service };
}

/** What the request signing of the client needs here. */
export interface SessionMacSigning {
  readonly nonce: string;
  readonly audience: string;
  readonly expiresIn: number;
  readonly digestAlgorithm: 'sha-256' | 'sha-512';
  readonly now: () => number;
  /** The client's proof: a workload's refusals are signed with the service's WIT, a user's with its ICT. */
  readonly proof: string;
}

/**
 * Signs a session request under `K_c2s`. The binding it returns is the one a public-key-signed
 * refusal of the service is verified under (the profile of the client's proof, bound to this nonce,
 * covering `"oidc2-session";req`).
 */
export async function signWithSessionMac(request: HttpRequest, mac: SessionMacParams, o: SessionMacSigning): Promise<{ sent: HttpRequest; binding: RequestBinding }> {
  const sent = await signSessionMacRequest(request, { key: mac.c2s, nonce: o.nonce, audience: o.audience, expiresIn: o.expiresIn, now: o.now, digestAlgorithm: o.digestAlgorithm });
  return { sent, binding: sessionMacBinding(sent, sessionMacProfile(o.proof))! };
}

/**
 * Verifies a response signed under `K_s2c` and returns the pinned service; undefined when the
 * response carries no signature tagged `oidc2-session` (a refusal the service signed with its key,
 * which the client verifies as any other response).
 *
 * @throws Oidc2Error `response_signature_invalid`.
 */
export async function verifySessionMacSigned(
  message: HttpResponse,
  sent: HttpRequest,
  nonce: string,
  mac: SessionMacParams,
  o: { clockTolerance: number; now: () => number; streamedEncryptedBody?: boolean },
): Promise<ServiceIdentity | undefined> {
  if (!hasSessionMacSignature(message.headers)) return undefined;
  try {
    await verifySessionMacResponse(message, { request: sent, nonce, key: mac.s2c, clockTolerance: o.clockTolerance, now: o.now, streamedEncryptedBody: o.streamedEncryptedBody === true });
  } catch (error) {
    if (isOidc2Error(error) && error.code === 'response_unsigned') return undefined;
    throw error;
  }
  return mac.service;
}
