// The caller's side of end-to-end encryption for the bench, built from the core's exports the way
// @oidc2/client builds it (packages/client/src/lib/e2ee.ts): a handshake at the session endpoint,
// then session requests whose bodies are encrypted under K_req of the nonce they are signed with.
// Requests are made ahead of a measurement, so that the measurement sees only the service's work.
import { loadAdapter } from './env.mjs';
import { AUDIENCE, ISSUER, newIssuer, newKey } from './credentials.mjs';

const adapter = await loadAdapter();
const ENCODING = 'aes128gcm';
const JSON_TYPE = 'application/json';

/** Raw 32-octet RFC 7638 thumbprint from the base64url one the core computes. */
function rawThumbprint(b64) {
  return new Uint8Array(Buffer.from(b64, 'base64url'));
}

/** One JSON body of exactly `size` octets (a string member padded to length). */
export function jsonBody(size) {
  const shell = '{"data":""}';
  if (size < shell.length) throw new RangeError(`a body has at least ${shell.length} octets`);
  return new TextEncoder().encode(`{"data":"${'x'.repeat(size - shell.length)}"}`);
}

/**
 * A caller: its ICT, signing key handle and public JWK. `send(signed)` delivers a signed request
 * (method, url relative to the service, headers, body) and resolves { status, headers, body }.
 */
export function e2eeCaller(core, { ict, key, publicJwk, subject = 'alice', ictVerifier }) {
  const host = new URL(AUDIENCE).host;
  const identity = (async () => ({ iss: ISSUER, sub: subject, jkt: rawThumbprint(await core.jwkThumbprint(publicJwk)) }))();

  /** A plaintext signed request (ordinary mutual authentication). */
  async function plain(method, path, body) {
    const headers = { host, ...(body ? { 'content-type': JSON_TYPE } : {}) };
    const signed = await core.signRequest({ method, url: AUDIENCE + path, headers, ...(body ? { body } : {}) }, { ict, key, expiresIn: 300 });
    return { method, url: path, headers: signed.headers, body: signed.body, nonce: signed.nonce, binding: signed.binding, signed };
  }

  /**
   * Opens a session with a handshake at `POST /.well-known/oidc2-session`, as the client does
   * before a first confidential body. Resolves the session state the client keeps.
   */
  async function handshake(send, suite = 'x25519') {
    const hpke = adapter.hpkeSuite(suite);
    const pair = await hpke.generateKeyPair();
    const keyShare = adapter.serializeRequestKeyShare([{ suite, key: await hpke.serializePublicKey(pair.publicKey) }]);
    const path = core.SESSION_ENDPOINT_PATH;
    const nonce = core.createNonce();
    const audience = AUDIENCE + path;
    const signed = await core.signRequest({ method: 'POST', url: audience, headers: { host, [adapter.KEY_SHARE_FIELD]: [keyShare] } }, { ict, key, expiresIn: 300, nonce, audience });
    const response = await send({ method: 'POST', url: path, headers: signed.headers });
    if (response.status !== 204) throw new Error(`the session endpoint answered ${response.status}: ${new TextDecoder().decode(response.body ?? new Uint8Array())}`);
    const service = await core.verifyResponse(response, { request: signed, binding: signed.binding, ictVerifier });
    const chosen = adapter.parseResponseKeyShare(core.fieldLines(response.headers, adapter.KEY_SHARE_FIELD));
    const field = adapter.parseResponseSession(core.fieldLines(response.headers, adapter.SESSION_FIELD));
    const binding = {
      keyShare,
      nonce,
      audience,
      caller: await identity,
      service: { iss: service.issuer, sub: service.subject, jkt: rawThumbprint(service.thumbprint) },
    };
    const keys = await adapter.completeHandshake(chosen, new Map([[suite, pair]]), binding);
    return { token: field.token, exp: field.exp, rk: keys.rk, sid: keys.sid, suite: keys.suite, openedAt: Date.now() / 1000 };
  }

  /** A session request: `Oidc2-Session`, the body encrypted under K_req, signed with that nonce. */
  async function sealed(session, method, path, plaintext) {
    const nonce = core.createNonce();
    const audience = AUDIENCE + path;
    const headers = { host, [adapter.SESSION_FIELD]: [adapter.serializeSession(session.token)] };
    let body;
    if (plaintext && plaintext.length > 0) {
      body = await adapter.encryptBody(await adapter.requestKey({ rk: session.rk, sid: session.sid, nonce, method, audience }), plaintext);
      headers['content-type'] = JSON_TYPE;
      headers['content-encoding'] = ENCODING;
    }
    const signed = await core.signRequest({ method, url: audience, headers, ...(body ? { body } : {}) }, { ict, key, expiresIn: 300, nonce, audience });
    return { method, url: path, headers: signed.headers, body: signed.body, nonce, binding: signed.binding, signed };
  }

  /** Verifies a session response (signature, then body) and returns its plaintext. */
  async function open(session, request, response) {
    await core.verifyResponse(response, { request: request.signed, binding: request.binding, ictVerifier });
    if (!response.body || response.body.length === 0) return new Uint8Array(0);
    if (core.fieldValue(response.headers, 'content-encoding') !== ENCODING) throw new Error('the session response is not encrypted');
    return adapter.decryptBody(await adapter.responseKey({ rk: session.rk, sid: session.sid, nonce: request.nonce, status: response.status }), response.body);
  }

  return { ict, plain, handshake, sealed, open, identity };
}

/**
 * The two parties of the in-process session benchmarks: a service (`createOidc2Service` with an
 * ES256 credential, audience AUDIENCE) and an `e2eeCaller` with its own ES256 ICT, both from one
 * fresh issuer.
 */
export async function sessionParties(core) {
  const issuer = await newIssuer();
  const issuers = [{ issuer: issuer.issuer, jwks: issuer.jwks }];
  const callerKey = await newKey('ES256');
  const serviceKey = await newKey('ES256');
  const service = core.createOidc2Service({ issuers, audiences: [AUDIENCE], credential: { ict: await issuer.mintIct(serviceKey, 'api'), privateKey: serviceKey.privateJwk } });
  const caller = e2eeCaller(core, {
    ict: await issuer.mintIct(callerKey, 'alice'),
    key: await core.importKey(callerKey.privateJwk, 'ES256', 'sign'),
    publicJwk: callerKey.publicJwk,
    ictVerifier: core.createIctVerifier({ issuers }),
  });
  return { service, caller };
}
