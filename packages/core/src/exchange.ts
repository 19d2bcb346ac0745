/**
 * One request/response exchange (docs/protocol.md section 2-4), framework-free. An adapter creates it from
 * the request's head, hands it the request body, runs the route when admitted, and hands it the
 * route's response; the exchange decides everything else: whether and how the body is read, who the
 * caller is, what the route receives, whether the response is signed, streamed unsigned or replaced
 * by a signed problem, and which fields it carries. Adapters only move bytes.
 */
import { Oidc2Error, isOidc2Error } from './errors.js';
import { fieldLines, type Fields, type HttpRequest } from './message.js';
import type { AuthenticateOptions, Identity, RequestBinding } from './authenticator.js';
import type { EncryptedStreamsPolicy, RoutePolicy } from './policy.js';
import type { ServiceCredential, SignResponseOptions } from './response-signature.js';
import { readBounded, readBoundedOrThrow, type Body } from './lib/body.js';
import { hasE2eeFields, type E2eeService, type EncryptionPolicy, type OpenedE2ee, type RequestE2ee } from './e2ee/service-side.js';
import { sessionMacBinding } from './e2ee/symmetric.js';

/** A response as the route produced it, or as the exchange sends it. */
export interface ExchangeResponse {
  status: number;
  /** Every field of the response (lower-case names). */
  headers: Fields;
  /** The body: whole, streamed, or absent. */
  body?: Body | undefined;
  /**
   * Set by {@link Exchange.respond} when what it returns is the route's own response with only these
   * fields added (status and the route's fields unchanged): an adapter may add just them instead of
   * replacing every field.
   */
  added?: Fields | undefined;
}

/** The exchange's answer to a request: run the route, or send the exchange's own response instead. */
export type Admission = Admitted | Answered;

/** The route runs. */
export interface Admitted {
  readonly answered: false;
  /** The caller; null on an optional route when authentication failed. */
  readonly identity: Identity | null;
  /** Why authentication failed on an optional route. */
  readonly error?: Oidc2Error;
  /**
   * The request body the route must read: the bytes as received, or a replacement (e.g. a decrypted
   * body, whole, or streamed as its records are read and failing with `e2ee_decrypt_failed` or
   * `e2ee_encoding_invalid` when one does). `undefined` when the request has none.
   */
  readonly body: Body | undefined;
  /** Whether {@link body} differs from the bytes received, so the adapter must swap it in. */
  readonly bodyReplaced: boolean;
  /** Fields the route must see changed (e.g. `content-length` of a replaced body); `undefined` removes one. */
  readonly headerChanges: Readonly<Record<string, string | undefined>>;
}

/**
 * The route must not run: send {@link response}, the exchange's own answer (already signed when the
 * service can sign): a refusal with its problem, or a response the protocol itself gives.
 */
export interface Answered {
  readonly answered: true;
  /** Why the request was refused; absent when the exchange answered a protocol request itself. */
  readonly error?: Oidc2Error;
  readonly response: ExchangeResponse;
}

/** One request/response exchange; made by `Oidc2Service.exchange`. */
export interface Exchange {
  /** The request as the core sees it (its `body` is set once admitted). */
  readonly request: HttpRequest;
  /** Whether the request's framing announces a body, so the adapter knows whether to offer one. */
  readonly expectsBody: boolean;
  /**
   * Whether the request's body streams to the route (docs/protocol.md section 7.7): a session request's `aes128gcm`
   * body without `Content-Digest`, on a route whose policy has `encryptedStreams.requests`. Offered
   * as chunks, such a body is not read before admission: the route gets its plaintext as a stream,
   * record by record, so the adapter must hand the route a body it pulls from as it reads (not one it
   * holds back). Offered whole, it is decrypted before the route runs.
   */
  readonly streamsBody: boolean;
  /**
   * Reads the request body (bounded by `maxBodyBytes`), authenticates the request and applies the
   * route policy. Rejects only for failures that are not the caller's (an `Oidc2Error` never rejects:
   * it becomes an {@link Answered} with the signed problem).
   */
  admit(body: Body | undefined): Promise<Admission>;
  /**
   * Takes the route's response and returns what to send: the response signed (body read up to
   * `maxResponseBytes`), streamed on unsigned when it is larger and nobody asked for a signature, or
   * a signed problem when the caller asked for a signature that cannot be made. The response to an
   * end-to-end encrypted request is encrypted: whole with `Content-Digest`, or streamed with a signed
   * head and no digest when it is larger than `maxResponseBytes`, is `text/event-stream`, or its
   * route's policy has `encryptedStreams.responses` (docs/protocol.md section 7.7). After the exchange answered
   * itself the response passes unchanged (it is that answer).
   */
  respond(response: ExchangeResponse): Promise<ExchangeResponse>;
}

/** What an exchange needs of the service; built by `createOidc2Service`. */
export interface ExchangeHost {
  readonly maxBodyBytes: number;
  readonly maxResponseBytes: number;
  readonly signsResponses: boolean;
  authenticate(
    request: HttpRequest,
    policy: RoutePolicy | undefined,
    options?: AuthenticateOptions,
  ): Promise<{ identity: Identity | null; error?: Oidc2Error; binding: RequestBinding | undefined }>;
  signResponse(
    response: ExchangeResponse & { body?: Uint8Array | undefined },
    request: HttpRequest,
    binding: RequestBinding | undefined,
    credential?: ServiceCredential,
    options?: Pick<SignResponseOptions, 'streamedEncryptedBody'>,
  ): Promise<Fields | undefined>;
  errorResponse(error: Oidc2Error, request: HttpRequest, binding?: RequestBinding): Promise<ExchangeResponse>;
  bindingOf(request: HttpRequest): RequestBinding | undefined;
  /** End-to-end encryption, when the service has it. */
  readonly e2ee: E2eeService | undefined;
  /** The service's credential for a caller bound by `binding` (the one of its profile). */
  credential(binding?: RequestBinding): Promise<ServiceCredential>;
  encryptionPolicy(policy: RoutePolicy | undefined): EncryptionPolicy;
  encryptedStreams(policy: RoutePolicy | undefined): EncryptedStreamsPolicy;
  /** Publishes the admission decision, taken since `start` (a {@link now} reading). */
  decided(request: HttpRequest, start: number, result: { identity: Identity | null; error?: Oidc2Error; binding: RequestBinding | undefined } | undefined, error: unknown, e2ee?: 'handshake' | 'session' | 'rekey'): void;
  /** A monotonic clock in milliseconds. */
  now(): number;
  sessionMacAllowed(policy: RoutePolicy | undefined): boolean;
}

/** Whether a request's framing fields announce a body (RFC 9112 section 6.3). */
export function announcesBody(headers: Fields): boolean {
  if (fieldLines(headers, 'transfer-encoding') !== undefined) return true;
  const length = fieldLines(headers, 'content-length');
  return length !== undefined && length.some((l) => l.trim() !== '0');
}

/** Whether a response to `method` with `status` has no body (RFC 9110 sections 6.4.1, 9.3.2). */
export function isBodylessResponse(method: string, status: number): boolean {
  return method === 'HEAD' || status < 200 || status === 204 || status === 304;
}

const NO_CHANGES: Readonly<Record<string, string | undefined>> = Object.freeze({});
// Never a partial answer to an e2ee request (docs/protocol.md section 7.7): the route does not see a range.
const RANGE_FIELDS = ['range', 'if-range'] as const;

// What the route must see of an e2ee request: the plaintext's length (or chunked framing for a
// streamed one), no coding, no digest of the ciphertext, no range.
function e2eeHeaderChanges(request: HttpRequest, plaintext: Body | undefined): Readonly<Record<string, string | undefined>> {
  const changes: Record<string, string | undefined> = {};
  for (const name of RANGE_FIELDS) if (request.headers[name] !== undefined) changes[name] = undefined;
  if (plaintext !== undefined) {
    const whole = plaintext instanceof Uint8Array;
    changes['content-length'] = whole ? String(plaintext.length) : undefined;
    changes['content-encoding'] = undefined;
    changes['content-digest'] = undefined;
    changes['transfer-encoding'] = whole ? undefined : 'chunked';
  }
  return changes;
}

/** Whether an encrypted response streams from its first byte, rather than when it outgrows `maxResponseBytes`. */
function streamsFromStart(response: ExchangeResponse, streams: EncryptedStreamsPolicy): boolean {
  if (streams.responses === true) return true;
  const type = fieldLines(response.headers, 'content-type')?.[0];
  return type !== undefined && /^\s*text\/event-stream\s*(;|$)/i.test(type);
}

/**
 * Step 5 of docs/protocol.md section 7.9 for a service without end-to-end encryption: its fields are refused, and a
 * route that requires it refuses everything.
 */
function withoutE2ee(request: HttpRequest, policy: EncryptionPolicy): undefined {
  if (hasE2eeFields(request)) throw new Oidc2Error('e2ee_unavailable', 'this service does not offer end-to-end encryption');
  if (policy === 'required') throw new Oidc2Error('e2ee_required', 'this route requires end-to-end encryption, which this service cannot offer');
  return undefined;
}

// Starts a body and stops it at once, so whatever feeds it discards the rest (an adapter's source
// resumes its socket on return, so that a refusal can still be answered on the connection).
async function discard(body: Body): Promise<void> {
  if (body instanceof Uint8Array) return;
  const iterator = body[Symbol.asyncIterator]();
  try {
    await iterator.next();
  } finally {
    await iterator.return?.();
  }
}

async function* chunksOf(body: Body): AsyncGenerator<Uint8Array> {
  if (body instanceof Uint8Array) yield body;
  else yield* body;
}

/** Creates the exchange of one request; `request` carries method, target and fields, no body. */
export function createExchange(host: ExchangeHost, request: HttpRequest, policy: RoutePolicy | undefined): Exchange {
  const start = host.now();
  let binding: RequestBinding | undefined;
  let authenticated = false;
  let answered = false;
  // A session-MAC request (docs/protocol.md section 7.11) names no binding of a public-key profile: its
  // refusals are signed with the service's credential, bound to its nonce.
  const currentBinding = () => (authenticated ? binding : (binding ??= host.bindingOf(request) ?? (host.e2ee ? sessionMacBinding(request, host.e2ee.sessionMac.profile) : undefined)));

  async function readRequestBody(body: Body): Promise<Uint8Array> {
    const limit = host.maxBodyBytes;
    const tooLarge = () => new Oidc2Error('body_too_large', `the request body exceeds ${limit} bytes`);
    const declared = fieldLines(request.headers, 'content-length');
    if (declared && Number(declared[0]) > limit) {
      await discard(body).catch(() => undefined);
      throw tooLarge();
    }
    try {
      return await readBoundedOrThrow(body, limit, tooLarge);
    } catch (cause) {
      if (isOidc2Error(cause)) throw cause;
      throw new Oidc2Error('request_malformed', 'the request body was not received completely', { cause });
    }
  }

  async function refuse(error: Oidc2Error): Promise<Answered> {
    answered = true;
    return { answered: true, error, response: await host.errorResponse(error, request, currentBinding()) };
  }

  let opened: OpenedE2ee | undefined;
  const expectsBody = announcesBody(request.headers);
  const streamsBody = expectsBody && host.e2ee?.streamsRequestBody(request) === true && host.encryptedStreams(policy).requests === true;

  // Steps 5 and 6 of docs/protocol.md section 7.9, run by the authenticator after every check of the proof and
  // before the nonce is recorded.
  function e2eeStep(fields: RequestE2ee | undefined, endpoint: boolean, streamed: AsyncIterable<Uint8Array> | undefined): AuthenticateOptions['beforeRecord'] {
    const mode = endpoint ? 'required' : host.encryptionPolicy(policy);
    const e2ee = host.e2ee;
    if (!e2ee) return mode !== 'required' && !hasE2eeFields(request) ? undefined : () => withoutE2ee(request, mode);
    return async (identity: Identity) => {
      if (endpoint) {
        if (request.body !== undefined && request.body.length > 0) throw new Oidc2Error('request_malformed', 'the session endpoint takes no body');
        if (fields?.keyShare === undefined && fields?.session !== undefined) throw new Oidc2Error('e2ee_key_missing', 'the session endpoint needs an Oidc2-Key-Share');
      }
      // The response of an e2ee exchange is signed with the credential of the caller's profile: the
      // key exchange binds that credential's identity, id(S).
      opened = await e2ee.open(request, identity, fields, mode, () => host.credential(identity.binding), streamed);
    };
  }

  // Refuses what an encrypted response cannot be: content-coded (its only coding is aes128gcm) or partial.
  function assertSealable(response: ExchangeResponse, hasBody: boolean): void {
    if (hasBody && fieldLines(response.headers, 'content-encoding') !== undefined) {
      throw new Oidc2Error('response_signing_unavailable', 'the route answered with a content coding: an encrypted response carries no other coding');
    }
    // Never a partial answer to an e2ee request (docs/protocol.md section 7.7); the route was not shown a range.
    if (response.status === 206) throw new Oidc2Error('response_signing_unavailable', 'an end-to-end encrypted request is never answered with 206');
  }

  // Signs a sealed response: under K_s2c for a session-MAC request (docs/protocol.md section 7.11),
  // else with the credential the key exchange was bound to.
  function signSealed(sealed: OpenedE2ee, response: ExchangeResponse & { body?: Uint8Array | undefined }, streamed: boolean): Promise<Fields | undefined> {
    if (sealed.mac) return host.e2ee!.signSessionMac(sealed, response, request, streamed);
    return host.signResponse(response, request, currentBinding(), sealed.credential, streamed ? { streamedEncryptedBody: true } : undefined);
  }

  // Encrypts the response of an e2ee request and adds its fields; then signs it with the credential
  // the key exchange was bound to.
  async function sealAndSign(e2ee: E2eeService, sealed: OpenedE2ee, response: ExchangeResponse, bytes: Uint8Array | undefined, bodyless: boolean): Promise<ExchangeResponse> {
    assertSealable(response, !bodyless && bytes !== undefined && bytes.length > 0);
    const { headers: fields, body } = await e2ee.seal(sealed, response.status, bodyless ? undefined : bytes);
    const headers = { ...response.headers, ...fields };
    const signed = await signSealed(sealed, { status: response.status, headers, body }, false);
    const added = { ...fields, ...signed };
    return { status: response.status, headers: { ...headers, ...signed }, body: bodyless ? bytes : body, added };
  }

  // The streamed form (docs/protocol.md section 7.7): the head goes out signed without a digest of a body that does
  // not exist yet; the records that follow are authenticated under the exchange's key. No `added`:
  // the route's `Content-Length` (of the plaintext) must go.
  async function sealAndSignStream(e2ee: E2eeService, sealed: OpenedE2ee, response: ExchangeResponse, body: AsyncIterable<Uint8Array>): Promise<ExchangeResponse> {
    assertSealable(response, true);
    const { headers: fields, body: records } = await e2ee.sealStream(sealed, response.status, body);
    const headers = { ...response.headers, ...fields };
    delete headers['content-length'];
    delete headers['content-digest'];
    const signed = await signSealed(sealed, { status: response.status, headers }, true);
    return { status: response.status, headers: { ...headers, ...signed }, body: records };
  }

  async function streamSealed(sealed: OpenedE2ee, response: ExchangeResponse, body: AsyncIterable<Uint8Array>, cancel: () => Promise<void>): Promise<ExchangeResponse> {
    try {
      return await sealAndSignStream(host.e2ee!, sealed, response, body);
    } catch (error) {
      await cancel().catch(() => undefined);
      return (await refuse(isOidc2Error(error) ? error : new Oidc2Error('response_signing_unavailable', 'the response could not be signed', { cause: error }))).response;
    }
  }

  return {
    request,
    expectsBody,
    streamsBody,
    async admit(body) {
      // A streamed body is read by the route once admitted, never here (docs/protocol.md section 7.7).
      const streamed = streamsBody && body !== undefined && !(body instanceof Uint8Array) ? body : undefined;
      try {
        if (body !== undefined && !streamed) request.body = await readRequestBody(body);
        // Step 1 of docs/protocol.md section 7.9: parse and bound the e2ee fields before anything is verified.
        const fields = host.e2ee?.inspect(request);
        const endpoint = host.e2ee?.isSessionEndpoint(request) === true;
        const beforeRecord = e2eeStep(fields, endpoint, streamed);
        const endpointPolicy = endpoint && policy?.optional ? { ...policy, optional: false } : policy;
        // The session field was parsed in step 1: its token is not parsed again.
        const sessionMac = host.e2ee ? { host: host.e2ee.sessionMac, routeAllows: host.sessionMacAllowed(policy), ...(fields?.session !== undefined ? { token: fields.session } : {}) } : undefined;
        const result = await host.authenticate(request, endpointPolicy, { beforeRecord, streamedEncryptedBody: streamsBody, ...(sessionMac ? { sessionMac } : {}) });
        binding = result.binding;
        authenticated = true;
        host.decided(request, start, result, undefined, opened?.mode);
        if (endpoint && opened) {
          // The handshake endpoint (docs/protocol.md section 7.3): answered here with a signed 204 and the new session.
          answered = true;
          const { added: _added, ...response } = await sealAndSign(host.e2ee!, opened, { status: 204, headers: {} }, undefined, true);
          return { answered: true, response };
        }
        if (opened) {
          return {
            answered: false,
            identity: result.identity,
            body: opened.body ?? request.body,
            bodyReplaced: opened.body !== undefined,
            headerChanges: e2eeHeaderChanges(request, opened.body),
          };
        }
        return {
          answered: false,
          identity: result.identity,
          ...(result.error ? { error: result.error } : {}),
          body: request.body,
          bodyReplaced: false,
          headerChanges: NO_CHANGES,
        };
      } catch (error) {
        // A refused request's streamed body is never read: whatever feeds it discards the rest.
        if (streamed) void discard(streamed).catch(() => undefined);
        if (!authenticated) host.decided(request, start, undefined, error);
        if (!isOidc2Error(error)) throw error;
        return refuse(error);
      }
    },
    async respond(response) {
      if (answered || !host.signsResponses) return response;
      const asked = currentBinding()?.signResponse === true;
      const bodyless = isBodylessResponse(request.method, response.status);
      // An encrypted body streams rather than being refused for its size (docs/protocol.md section 7.7).
      const sealed = !bodyless && response.body !== undefined ? opened : undefined;
      if (sealed && streamsFromStart(response, host.encryptedStreams(policy))) {
        const body = response.body!;
        return streamSealed(sealed, response, chunksOf(body), () => discard(body));
      }
      let bytes: Uint8Array | undefined;
      if (response.body !== undefined) {
        const body = response.body;
        const read = body instanceof Uint8Array && body.byteLength <= host.maxResponseBytes ? body : await readBounded(body, host.maxResponseBytes);
        if (!(read instanceof Uint8Array)) {
          if (sealed) return streamSealed(sealed, response, read.rest, read.cancel);
          // Never an unsigned success for a caller who asked for a signature (docs/protocol.md section 4);
          // nobody asked: stream it on unsigned instead of buffering without bound.
          if (!asked) return { ...response, body: read.rest };
          await read.cancel().catch(() => undefined);
          return (await refuse(new Oidc2Error('response_signing_unavailable', `the response exceeds ${host.maxResponseBytes} bytes and cannot be signed`))).response;
        }
        bytes = read;
      }
      try {
        if (opened) return await sealAndSign(host.e2ee!, opened, response, bytes, bodyless);
        const added = await host.signResponse({ status: response.status, headers: response.headers, body: bodyless ? undefined : bytes }, request, currentBinding());
        if (!added) return { status: response.status, headers: response.headers, body: bytes };
        return signedResponse(response.status, response.headers, added, bytes);
      } catch (error) {
        if (!asked) return { ...response, body: bytes };
        const failure = isOidc2Error(error) ? error : new Oidc2Error('response_signing_unavailable', 'the response could not be signed', { cause: error });
        return (await refuse(failure)).response;
      }
    },
  };
}

/**
 * A signed response: `added` on top of the route's fields. The merged `headers` are made when first
 * read; the adapters set the route's fields and `added` on their response and never read them.
 */
function signedResponse(status: number, fields: Fields, added: Fields, body: Uint8Array | undefined): ExchangeResponse {
  let merged: Fields | undefined;
  return {
    status,
    get headers(): Fields {
      return (merged ??= { ...fields, ...added });
    },
    set headers(value: Fields) {
      merged = value;
    },
    body,
    added,
  };
}
