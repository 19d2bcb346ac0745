// A caller of end-to-end encryption built from the core's building blocks, with every step exposed,
// so tests can run the protocol against a real service and change any part of it on the way.
import { decodeJwt } from 'jose';
import {
  createNonce,
  fieldLines,
  normalizeFields,
  signRequest,
  verifyResponse,
  type Fields,
  type HttpResponse,
  type IctVerifier,
  type ServiceIdentity,
  type SignedRequest,
  type SuiteName,
} from '@oidc2/core';
import {
  completeHandshake,
  completeRekey,
  decryptBody,
  encryptBody,
  hpkeSuite,
  parseResponseKeyShare,
  parseResponseSession,
  requestKey,
  responseKey,
  serializeRequestKeyShare,
  serializeSession,
  type HpkeKeyPair,
  type PartyIdentity,
} from '@oidc2/core/adapter';
import { decodeBase64Url } from '../../packages/core/src/lib/base64';
import type { TestKey } from './credentials';

export interface E2eeCaller {
  key: TestKey;
  ict: string;
}

/** What a caller keeps of a session (docs/protocol.md section 7.3). */
export interface E2eeSession {
  token: string;
  rk: Uint8Array;
  sid: Uint8Array;
  suite: SuiteName;
  exp: number;
  rekey: number;
}

export interface PrepareOptions {
  method: string;
  url: string;
  /** The plaintext body. */
  body?: Uint8Array | string;
  headers?: Record<string, string>;
  /** Continue this session (its token in `Oidc2-Session`, the body encrypted under its root). */
  session?: E2eeSession;
  /** Suites to offer in `Oidc2-Key-Share` (a handshake, or a rekey with `session`). Default: none with a session, else `['x25519', 'p256']`. */
  offer?: SuiteName[];
  /** Send the body in clear even in a session. */
  plaintextBody?: boolean;
  /**
   * Replaces the encrypted body before it is signed (so its `Content-Digest` covers the result):
   * gets the ciphertext, the plaintext, the key `K_req` it was encrypted with and that key's inputs.
   */
  mutateBody?: (encrypted: Uint8Array, context: { plaintext: Uint8Array; key: Uint8Array; nonce: string; audience: string; session: E2eeSession }) => Uint8Array | Promise<Uint8Array>;
  now?: () => number;
}

/** A signed e2ee request and what the caller needs to read its response. */
export interface Prepared {
  request: SignedRequest;
  keyPairs: Map<SuiteName, HpkeKeyPair>;
  /** `KS` as sent. */
  keyShare: string | undefined;
  session: E2eeSession | undefined;
  nonce: string;
  audience: string;
  /** `K_req`, the IKM of the request body, when it was encrypted. */
  bodyKey?: Uint8Array;
}

function bytes(body: Uint8Array | string | undefined): Uint8Array | undefined {
  if (body === undefined) return undefined;
  return typeof body === 'string' ? new TextEncoder().encode(body) : body;
}

function audienceOf(url: string): string {
  const u = new URL(url);
  return u.origin + u.pathname;
}

export function callerParty(who: E2eeCaller): PartyIdentity {
  const claims = decodeJwt(who.ict);
  return { iss: claims.iss ?? '', sub: claims.sub!, jkt: decodeBase64Url(who.key.thumbprint)! };
}

/** Builds and signs an e2ee request: key shares, session token, encrypted body. */
export async function prepareE2ee(who: E2eeCaller, options: PrepareOptions): Promise<Prepared> {
  const headers: Record<string, string> = { ...options.headers };
  const offer = options.offer ?? (options.session ? [] : (['x25519', 'p256'] as SuiteName[]));
  const keyPairs = new Map<SuiteName, HpkeKeyPair>();
  let keyShare: string | undefined;
  if (offer.length > 0) {
    const shares = [];
    for (const suite of offer) {
      const s = hpkeSuite(suite);
      const pair = await s.generateKeyPair();
      keyPairs.set(suite, pair);
      shares.push({ suite, key: await s.serializePublicKey(pair.publicKey) });
    }
    keyShare = serializeRequestKeyShare(shares);
    headers['oidc2-key-share'] = keyShare;
  }
  const nonce = createNonce();
  const audience = audienceOf(options.url);
  let body = bytes(options.body);
  let bodyKey: Uint8Array | undefined;
  if (options.session) {
    headers['oidc2-session'] = serializeSession(options.session.token);
    if (body && body.length > 0 && !options.plaintextBody) {
      const { rk, sid } = options.session;
      const plaintext = body;
      bodyKey = await requestKey({ rk, sid, nonce, method: options.method, audience });
      body = await encryptBody(bodyKey, plaintext);
      if (options.mutateBody) body = await options.mutateBody(body, { plaintext, key: bodyKey, nonce, audience, session: options.session });
      headers['content-encoding'] = 'aes128gcm';
    }
  }
  const request = await signRequest(
    { method: options.method, url: options.url, headers, ...(body && body.length > 0 ? { body } : {}) },
    { ict: who.ict, key: who.key.signer, nonce, audience, ...(options.now ? { now: options.now } : {}) },
  );
  return { request, keyPairs, keyShare, session: options.session, nonce, audience, ...(bodyKey ? { bodyKey } : {}) };
}

export interface Opened {
  service: ServiceIdentity;
  mode: 'handshake' | 'session' | 'rekey' | 'clear';
  /** The decrypted body (or the body as received when nothing was encrypted). */
  plaintext: Uint8Array;
  /** The session after this response (new after a handshake or rekey). */
  session: E2eeSession | undefined;
  /** The IKM the response body was encrypted with, when it was. */
  bodyKey?: Uint8Array;
}

/** Verifies an e2ee response as docs/protocol.md section 7.9 says a caller must, and decrypts it. */
export async function openE2ee(prepared: Prepared, response: HttpResponse, verifier: IctVerifier, who: E2eeCaller, now?: () => number): Promise<Opened> {
  const service = await verifyResponse(response, {
    request: prepared.request,
    binding: prepared.request.binding,
    ictVerifier: verifier,
    ...(now ? { now } : {}),
  });
  const body = response.body ?? new Uint8Array(0);
  const shareLines = fieldLines(response.headers, 'oidc2-key-share');
  const encoded = fieldLines(response.headers, 'content-encoding')?.[0] === 'aes128gcm';
  if (prepared.keyShare !== undefined) {
    if (!shareLines) throw Object.assign(new Error('no key share in the response'), { code: 'e2ee_response_key_share_missing' });
    const chosen = parseResponseKeyShare(shareLines);
    const binding = {
      keyShare: prepared.keyShare,
      nonce: prepared.nonce,
      audience: prepared.audience,
      caller: callerParty(who),
      service: { iss: service.issuer, sub: service.subject, jkt: decodeBase64Url(service.thumbprint)! },
    };
    const keys = prepared.session ? await completeRekey(chosen, prepared.keyPairs, binding, prepared.session) : await completeHandshake(chosen, prepared.keyPairs, binding);
    const field = parseResponseSession(fieldLines(response.headers, 'oidc2-session'));
    const session: E2eeSession = { token: field.token, exp: field.exp, rekey: field.rekey, rk: keys.rk, sid: keys.sid, suite: keys.suite };
    const plaintext = encoded ? await decryptBody(keys.responseKey, body) : body;
    return { service, mode: prepared.session ? 'rekey' : 'handshake', plaintext, session, ...(encoded ? { bodyKey: keys.responseKey } : {}) };
  }
  if (prepared.session && encoded) {
    const { rk, sid } = prepared.session;
    const bodyKey = await responseKey({ rk, sid, nonce: prepared.nonce, status: response.status });
    const plaintext = await decryptBody(bodyKey, body);
    return { service, mode: 'session', plaintext, session: prepared.session, bodyKey };
  }
  return { service, mode: prepared.session ? 'session' : 'clear', plaintext: body, session: prepared.session };
}

/** Sends a prepared request with `fetch` to `origin` (the request's URL names the audience). */
export async function sendE2ee(origin: string, message: { method: string; url: string; headers: Fields; body?: Uint8Array | undefined }): Promise<HttpResponse> {
  const u = new URL(message.url);
  const headers = new Headers();
  for (const [name, lines] of Object.entries(message.headers)) for (const line of lines) headers.append(name, line);
  const res = await fetch(origin + u.pathname + u.search, {
    method: message.method,
    headers,
    ...(message.body && message.body.length > 0 ? { body: message.body as BodyInit } : {}),
    redirect: 'manual',
  });
  return { status: res.status, headers: normalizeFields(res.headers), body: new Uint8Array(await res.arrayBuffer()) };
}

/** The RFC 9457 problem of a response, or undefined when it is not `application/problem+json`. */
export function problemOf(response: HttpResponse): Record<string, unknown> | undefined {
  if (!/^application\/problem\+json/.test(fieldLines(response.headers, 'content-type')?.[0] ?? '')) return undefined;
  return JSON.parse(new TextDecoder().decode(response.body ?? new Uint8Array(0))) as Record<string, unknown>;
}

/** Opens a session on `POST <origin>/.well-known/oidc2-session` (a signed 204 handshake). */
export async function openSession(who: E2eeCaller, base: string, verifier: IctVerifier, options: { origin?: string; offer?: SuiteName[]; now?: () => number } = {}): Promise<E2eeSession> {
  const hs = await prepareE2ee(who, { method: 'POST', url: `${base}/.well-known/oidc2-session`, ...(options.offer ? { offer: options.offer } : {}), ...(options.now ? { now: options.now } : {}) });
  const response = await sendE2ee(options.origin ?? base, hs.request);
  if (response.status !== 204) throw new Error(`the session endpoint answered ${response.status}: ${new TextDecoder().decode(response.body)}`);
  const opened = await openE2ee(hs, response, verifier, who, options.now);
  return opened.session!;
}
