// A caller of streamed end-to-end encrypted bodies (docs/protocol.md section 7.7) over real sockets: a session request
// whose body is encrypted as it is sent, without Content-Digest, and a response whose signed head is
// verified before its records are decrypted as they arrive. Nothing is held whole.
import { request as httpRequest, type Agent, type IncomingMessage } from 'node:http';
import {
  createIctVerifier,
  createNonce,
  normalizeFields,
  signRequest,
  verifyResponse,
  type Fields,
  type HttpResponse,
  type IctVerifier,
  type ServiceIdentity,
} from '@oidc2/core';
import { decryptBodyStream, encryptBodyStream, requestKey, responseKey, serializeSession } from '@oidc2/core/adapter';
import { newIssuer, newKey } from './credentials';
import type { E2eeCaller, E2eeSession, Prepared } from './e2ee-caller';

/**
 * A caller (alice, her ICT from one issuer) and a service credential (subject `svc`, from another),
 * with what each side trusts: the caller's verifier of service ICTs, and the service's options short
 * of its audiences (JSON, so they can go to a child process).
 */
export async function newStreamingParties(): Promise<{
  alice: E2eeCaller;
  verifier: IctVerifier;
  serviceOptions: { issuers: { issuer: string; jwks: { keys: unknown[] } }[]; credential: { ict: string; privateKey: unknown } };
}> {
  const callers = await newIssuer('https://op.example.test', 'Ed25519');
  const services = await newIssuer('https://attest.example.test', 'Ed25519');
  const serviceKey = await newKey('Ed25519');
  const key = await newKey('Ed25519');
  return {
    alice: { key, ict: await callers.mint(key, { lifetime: 3600 }) },
    verifier: createIctVerifier({ issuers: [{ issuer: services.issuer, jwks: services.jwks }] }),
    serviceOptions: {
      issuers: [{ issuer: callers.issuer, jwks: callers.jwks }],
      credential: { ict: await services.mint(serviceKey, { subject: 'svc', lifetime: 3600 }), privateKey: serviceKey.privateJwk },
    },
  };
}

/**
 * Sends a request (over a fresh connection, unless `agent` is given), the body written as its chunks
 * come; resolves with the response head.
 */
export function sendRaw(origin: string, message: { method: string; url: string; headers: Fields; body?: AsyncIterable<Uint8Array> | Uint8Array }, agent: Agent | false = false): Promise<IncomingMessage> {
  const u = new URL(message.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest(origin + u.pathname + u.search, { method: message.method, agent });
    for (const [name, lines] of Object.entries(message.headers)) req.setHeader(name, lines.length === 1 ? lines[0]! : lines);
    req.on('response', resolve).on('error', reject);
    void (async () => {
      const body = message.body;
      if (body instanceof Uint8Array) req.end(body);
      else if (body === undefined) req.end();
      else {
        for await (const chunk of body) if (!req.write(chunk)) await new Promise((done) => req.once('drain', done));
        req.end();
      }
    })().catch((error: unknown) => req.destroy(error as Error));
  });
}

/** The whole body of a response as received (for small answers and for cutting bodies in tests). */
export async function bodyOf(response: IncomingMessage): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const chunk of response) chunks.push(chunk as Buffer);
  return new Uint8Array(Buffer.concat(chunks));
}

/** The head of a response as the core sees it (no body). */
export const headOf = (response: IncomingMessage): HttpResponse => ({ status: response.statusCode!, headers: normalizeFields(response.headersDistinct) });

/**
 * Signs a session request whose `aes128gcm` body follows as a stream without `Content-Digest` and
 * returns it with that body: `plaintext` encrypted under `K_req` as it is read.
 */
export async function prepareStreamedUpload(
  who: E2eeCaller,
  session: E2eeSession,
  options: { method?: string; url: string; headers?: Record<string, string>; plaintext: AsyncIterable<Uint8Array>; now?: () => number },
): Promise<{ prepared: Prepared; body: AsyncIterable<Uint8Array> }> {
  const method = options.method ?? 'POST';
  const u = new URL(options.url);
  const audience = u.origin + u.pathname;
  const nonce = createNonce();
  const headers = { ...options.headers, 'oidc2-session': serializeSession(session.token), 'content-encoding': 'aes128gcm' };
  const request = await signRequest({ method, url: options.url, headers }, { ict: who.ict, key: who.key.signer, nonce, audience, ...(options.now ? { now: options.now } : {}) });
  const bodyKey = await requestKey({ rk: session.rk, sid: session.sid, nonce, method, audience });
  const prepared: Prepared = { request, keyPairs: new Map(), keyShare: undefined, session, nonce, audience, bodyKey };
  return { prepared, body: encryptBodyStream(bodyKey, options.plaintext) };
}

/**
 * Verifies the signed head of a streamed encrypted response (no `Content-Digest`, docs/protocol.md section 7.7) and
 * returns its body decrypted record by record, which throws rather than ends early.
 */
export async function openStreamedResponse(prepared: Prepared, response: IncomingMessage, verifier: IctVerifier): Promise<{ service: ServiceIdentity; head: HttpResponse; plaintext: AsyncIterable<Uint8Array>; key: Uint8Array }> {
  const head = headOf(response);
  const service = await verifyResponse(head, { request: prepared.request, binding: prepared.request.binding, ictVerifier: verifier, streamedEncryptedBody: true });
  const { rk, sid } = prepared.session!;
  const key = await responseKey({ rk, sid, nonce: prepared.nonce, status: head.status });
  return { service, head, plaintext: decryptBodyStream(key, response as AsyncIterable<Uint8Array>), key };
}
