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

/** What a caller keeps of a session (PROFILE 5.3). */
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
  if (options.session) {
    headers['oidc2-session'] = serializeSession(options.session.token);
    if (body && body.length > 0 && !options.plaintextBody) {
      const { rk, sid } = options.session;
      body = await encryptBody(await requestKey({ rk, sid, nonce, method: options.method, audience }), body);
      headers['content-encoding'] = 'aes128gcm';
    }
  }
  const request = await signRequest(
    { method: options.method, url: options.url, headers, ...(body && body.length > 0 ? { body } : {}) },
    { ict: who.ict, key: who.key.signer, nonce, audience, ...(options.now ? { now: options.now } : {}) },
  );
  return { request, keyPairs, keyShare, session: options.session, nonce, audience };
}

export interface Opened {
  service: ServiceIdentity;
  mode: 'handshake' | 'session' | 'rekey' | 'clear';
  /** The decrypted body (or the body as received when nothing was encrypted). */
  plaintext: Uint8Array;
  /** The session after this response (new after a handshake or rekey). */
  session: E2eeSession | undefined;
}

/** Verifies an e2ee response as PROFILE 5.9 says a caller must, and decrypts it. */
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
    return { service, mode: prepared.session ? 'rekey' : 'handshake', plaintext, session };
  }
  if (prepared.session && encoded) {
    const { rk, sid } = prepared.session;
    const plaintext = await decryptBody(await responseKey({ rk, sid, nonce: prepared.nonce, status: response.status }), body);
    return { service, mode: 'session', plaintext, session: prepared.session };
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
