// A hand-built e2ee service for client tests that need no socket: a `fetch` that authenticates the
// request with the core's service, runs the service's side of PROFILE 5 with the core's pure
// functions (key exchange, session tokens, aes128gcm), and answers signed. Hooks let a test make the
// service misbehave *before* it signs (a response a genuine but faulty service would send); a
// network attacker is a wrapper around `fetch` instead.
import { Oidc2Error, createOidc2Service, fieldLines, fieldValue, isOidc2Error, normalizeFields, type HttpRequest, type HttpResponse, type Identity, type RoutePolicy } from '@oidc2/core';
import {
  KEY_SHARE_FIELD,
  MemorySessionKeyStore,
  acceptHandshake,
  acceptRekey,
  chooseSuite,
  SESSION_FIELD,
  checkSessionBinding,
  createSessionTokens,
  decryptBody,
  encryptBody,
  parseRequestKeyShare,
  parseRequestSession,
  requestKey,
  responseKey,
  serializeResponseKeyShare,
  serializeSession,
  type SessionTokens,
  type SuiteName,
  type ServiceExchange,
  type VerifiedSession,
} from '@oidc2/core/adapter';
import type { TestIssuer, TestKey } from '../../../../test/support/credentials';

export const SERVICE_URL = 'http://service.test';
export const SESSION_PATH = '/.well-known/oidc2-session';

/** What the service saw of one request. */
export interface Received {
  method: string;
  path: string;
  headers: Record<string, string[]>;
  /** The body as it travelled (ciphertext for a session request). */
  body: Uint8Array;
  /** The body after decryption (what the route saw), when it got that far. */
  plaintext?: Uint8Array;
}

export interface Answer {
  status?: number;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
}

export interface FakeServiceOptions {
  users: TestIssuer;
  services: TestIssuer;
  serviceKey: TestKey;
  subject?: string;
  now: () => number;
  /** Route policy by path: `off` refuses e2ee fields, `required` refuses requests without. Default `optional`. */
  policy?: (path: string) => 'off' | 'optional' | 'required';
  /** The service's suite preference. Default `['x25519', 'p256']`. */
  suites?: SuiteName[];
  /** False for a service without e2ee: every e2ee field, at the session endpoint too, gets `e2ee_unavailable`. Default true. */
  enabled?: boolean;
  /** The route policy passed to authentication (contexts and the like). Default none. */
  authPolicy?: RoutePolicy;
  epochSeconds?: number;
  rekeySeconds?: number;
  leewaySeconds?: number;
  /** The route; the default echoes method, caller and body. */
  handler?: (request: { method: string; path: string; body: Uint8Array; identity: Identity }) => Answer;
}

/** Lets a test change a response after the service made it and before it signs it. */
export type Misbehaviour = (response: HttpResponse, context: { request: HttpRequest; exchange?: ServiceExchange; session?: VerifiedSession }) => void | Promise<void>;

export interface FakeService {
  fetch: typeof fetch;
  received: Received[];
  /** The handshakes it ran (base and PSK mode). */
  handshakes: number;
  rekeys: number;
  /** Set to make the next responses misbehave before they are signed. */
  misbehave: Misbehaviour | undefined;
  /** Forgets every session key: every token held is `session_invalid` afterwards. */
  forgetSessionKeys(): void;
  /** Signs from now on with another credential (another key, possibly another subject). */
  useCredential(ict: string, key: TestKey): void;
}

const raw = (b64url: string) => new Uint8Array(Buffer.from(b64url, 'base64url'));

export async function fakeE2eeService(options: FakeServiceOptions): Promise<FakeService> {
  const subject = options.subject ?? 'spiffe://test.example/orders';
  const suites = options.suites ?? ['x25519', 'p256'];
  const policy = options.policy ?? (() => 'optional' as const);
  const handler =
    options.handler ??
    (({ method, body, identity }) => ({
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ method, caller: identity.subject, echo: new TextDecoder().decode(body) }),
    }));
  let serviceParty = { iss: options.services.issuer, sub: subject, jkt: raw(options.serviceKey.thumbprint) };
  const makeService = (ict: string, key: TestKey) =>
    createOidc2Service({
      issuers: [{ issuer: options.users.issuer, jwks: options.users.jwks }],
      audiences: [SERVICE_URL],
      credential: { ict, privateKey: key.privateJwk },
      now: options.now,
    });
  let service = makeService(await options.services.mint(options.serviceKey, { subject, now: options.now(), lifetime: 3600 }), options.serviceKey);
  const makeTokens = (): SessionTokens =>
    createSessionTokens({
      keys: new MemorySessionKeyStore({ now: options.now }),
      now: options.now,
      ...(options.epochSeconds !== undefined ? { epochSeconds: options.epochSeconds } : {}),
      ...(options.rekeySeconds !== undefined ? { rekeySeconds: options.rekeySeconds } : {}),
      ...(options.leewaySeconds !== undefined ? { leewaySeconds: options.leewaySeconds } : {}),
    });
  let tokens = makeTokens();

  const state: FakeService = {
    received: [],
    handshakes: 0,
    rekeys: 0,
    misbehave: undefined,
    forgetSessionKeys: () => {
      tokens = makeTokens();
    },
    useCredential(ict, key) {
      service = makeService(ict, key);
      serviceParty = { iss: options.services.issuer, sub: JSON.parse(Buffer.from(ict.split('.')[1]!, 'base64url').toString()).sub, jkt: raw(key.thumbprint) };
    },
    fetch: async (input, init) => toResponse(await handle(new Request(input, init))),
  };

  function toResponse(message: HttpResponse): Response {
    const headers = new Headers();
    for (const [name, lines] of Object.entries(message.headers)) for (const line of lines) headers.append(name, line);
    const bodyless = [204, 304].includes(message.status) || !message.body || message.body.length === 0;
    return new Response(bodyless ? null : (message.body as BodyInit), { status: message.status, headers });
  }

  async function handle(req: Request): Promise<HttpResponse> {
    const url = new URL(req.url);
    const body = new Uint8Array(await req.arrayBuffer());
    const request: HttpRequest = { method: req.method, url: url.pathname + url.search, headers: normalizeFields(req.headers), body, scheme: 'http' };
    const seen: Received = { method: req.method, path: url.pathname, headers: request.headers, body };
    state.received.push(seen);
    let identity: Identity;
    try {
      identity = (await service.authenticate(request, options.authPolicy)).identity!;
    } catch (error) {
      if (!isOidc2Error(error)) throw error;
      return service.errorResponse(error, request);
    }
    try {
      return await e2ee(request, identity, seen);
    } catch (error) {
      if (!isOidc2Error(error)) throw error;
      return service.errorResponse(error, request, identity.binding);
    }
  }

  async function e2ee(request: HttpRequest, identity: Identity, seen: Received): Promise<HttpResponse> {
    const shares = fieldLines(request.headers, KEY_SHARE_FIELD);
    const sessionLines = fieldLines(request.headers, SESSION_FIELD);
    const path = seen.path;
    const isEndpoint = path === SESSION_PATH;
    const routePolicy = options.enabled === false ? 'off' : isEndpoint ? 'optional' : policy(path);
    if ((shares || sessionLines) && routePolicy === 'off') throw new Oidc2Error('e2ee_unavailable', 'this route does not offer end-to-end encryption');
    if (!shares && !sessionLines && routePolicy === 'required') throw new Oidc2Error('e2ee_required', 'this route requires end-to-end encryption');
    const { nonce, audience } = identity.binding as { nonce: string; audience: string };
    const caller = { iss: identity.issuer, sub: identity.subject, jkt: raw(identity.thumbprint) };
    let session: VerifiedSession | undefined;
    let plaintext = request.body ?? new Uint8Array(0);
    if (sessionLines) {
      session = await tokens.verify(parseRequestSession(sessionLines).token, SERVICE_URL);
      checkSessionBinding(session, caller);
      if (plaintext.length > 0) {
        if (fieldValue(request.headers, 'content-encoding') !== 'aes128gcm') throw new Oidc2Error('e2ee_body_not_encrypted', 'the body must be encrypted');
        plaintext = await decryptBody(await requestKey({ rk: session.rk, sid: session.sid, nonce, method: request.method, audience }), plaintext);
      }
    } else if (plaintext.length > 0 && routePolicy === 'required') {
      throw new Oidc2Error('e2ee_body_not_encrypted', 'the body must be encrypted');
    }
    seen.plaintext = plaintext;
    let exchange: ServiceExchange | undefined;
    let issued: { token: string; exp: number; rekey: number } | undefined;
    if (shares) {
      const offered = parseRequestKeyShare(shares);
      const chosen = chooseSuite(offered, suites);
      const binding = { keyShare: offered.canonical, nonce, audience, caller, service: serviceParty };
      exchange = session ? await acceptRekey(chosen, binding, session) : await acceptHandshake(chosen, binding);
      if (session) state.rekeys++;
      else state.handshakes++;
      issued = await tokens.issue({
        sid: exchange.sid,
        rk: exchange.rk,
        suite: exchange.suite,
        epoch: session ? session.epoch + 1 : 0,
        ...(session ? { sessionStart: session.sessionStart } : {}),
        audience: SERVICE_URL,
        caller,
      });
    }

    const answer: Answer = isEndpoint && request.method === 'POST' ? { status: 204 } : handler({ method: request.method, path, body: plaintext, identity });
    const status = answer.status ?? 200;
    let body = typeof answer.body === 'string' ? new TextEncoder().encode(answer.body) : (answer.body ?? new Uint8Array(0));
    const response: HttpResponse = { status, headers: normalizeFields(answer.headers ?? {}), body };
    if (exchange || session) {
      if (body.length > 0) {
        const key = exchange ? exchange.responseKey : await responseKey({ rk: session!.rk, sid: session!.sid, nonce, status });
        body = await encryptBody(key, body);
        response.body = body;
        response.headers['content-encoding'] = ['aes128gcm'];
      }
      if (exchange) response.headers[KEY_SHARE_FIELD] = [serializeResponseKeyShare({ suite: exchange.suite, key: exchange.enc })];
      if (issued) response.headers[SESSION_FIELD] = [serializeSession(issued.token, { exp: issued.exp, rekey: issued.rekey })];
    }
    await state.misbehave?.(response, { request, ...(exchange ? { exchange } : {}), ...(session ? { session } : {}) });
    const added = await service.signResponse(response, request, identity.binding);
    Object.assign(response.headers, added);
    return response;
  }

  return state;
}
