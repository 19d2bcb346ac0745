// An e2ee service for client tests that need no socket: a `fetch` that runs the core's own exchange
// (createOidc2Service with end-to-end encryption) in process, with a route behind it. A hook makes
// the service misbehave: it changes the response after the exchange made it, and the response is
// signed again, as a genuine but faulty service would send it; a network attacker is a wrapper
// around `fetch` instead.
import { createOidc2Service, fieldLines, normalizeFields, type HttpRequest, type HttpResponse, type Identity, type Oidc2Service, type RoutePolicy } from '@oidc2/core';
import { KEY_SHARE_FIELD, MemorySessionKeyStore, SESSION_FIELD, type SessionKey, type SessionKeyStore, type SuiteName } from '@oidc2/core/adapter';
import type { TestIssuer, TestKey } from '../../../../test/support/credentials';

export const SERVICE_URL = 'http://service.test';
export const SESSION_PATH = '/.well-known/oidc2-session';

/** What the service saw of one request. */
export interface Received {
  method: string;
  path: string;
  headers: Record<string, string[]>;
  /** The body as it travelled (ciphertext in a session). */
  body: Uint8Array;
  /** The body the route received (decrypted), when the route ran. */
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
  /** The encryption policy of a route, by path. Default: the service's (`optional`). */
  policy?: (path: string) => 'off' | 'optional' | 'required' | undefined;
  /** False for a service without end-to-end encryption. Default true. */
  enabled?: boolean;
  /** The service's default route policy (contexts and the like). Default none. */
  routePolicy?: RoutePolicy;
  /** The service's suite preference. Default `['x25519', 'p256']`. */
  suites?: SuiteName[];
  epochSeconds?: number;
  rekeySeconds?: number;
  /** The service's clock tolerance, also the leeway of its session tokens. Default 60. */
  clockTolerance?: number;
  /** The route; the default echoes method, caller and body. */
  handler?: (request: { method: string; path: string; body: Uint8Array; identity: Identity | null }) => Answer;
}

/** Changes a response the service made; it is signed again afterwards. */
export type Misbehaviour = (response: HttpResponse) => void | Promise<void>;

export interface FakeService {
  fetch: typeof fetch;
  received: Received[];
  /** Handshakes and rekeys the service answered. */
  readonly handshakes: number;
  readonly rekeys: number;
  /** Set to make the next responses misbehave. */
  misbehave: Misbehaviour | undefined;
  /** Forgets every session key: every token held is `session_invalid` afterwards. */
  forgetSessionKeys(): void;
  /** Signs from now on with another credential (another key, possibly another subject). */
  useCredential(ict: string, key: TestKey): void;
}

export async function fakeE2eeService(options: FakeServiceOptions): Promise<FakeService> {
  const subject = options.subject ?? 'spiffe://test.example/orders';
  const handler: NonNullable<FakeServiceOptions['handler']> =
    options.handler ??
    (({ method, body, identity }) => ({
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ method, caller: identity?.subject ?? null, echo: new TextDecoder().decode(body) }),
    }));
  // Session keys outlive a change of credential; forgetting them swaps the store underneath.
  let keys = new MemorySessionKeyStore({ now: options.now });
  const sessionKeys: SessionKeyStore = { current: (): Promise<SessionKey> => keys.current(), get: (kid) => keys.get(kid) };
  const makeService = (ict: string, key: TestKey): Oidc2Service =>
    createOidc2Service({
      issuers: [{ issuer: options.users.issuer, jwks: options.users.jwks }],
      audiences: [SERVICE_URL],
      credential: { ict, privateKey: key.privateJwk },
      now: options.now,
      maxBodyBytes: 4 * 1024 * 1024,
      ...(options.clockTolerance !== undefined ? { clockTolerance: options.clockTolerance } : {}),
      ...(options.routePolicy ? { policy: options.routePolicy } : {}),
      e2ee:
        options.enabled === false
          ? false
          : {
              sessionKeys,
              ...(options.suites ? { suites: options.suites } : {}),
              ...(options.epochSeconds !== undefined ? { epochSeconds: options.epochSeconds } : {}),
              ...(options.rekeySeconds !== undefined ? { rekeySeconds: options.rekeySeconds } : {}),
            },
    });
  let service = makeService(await options.services.mint(options.serviceKey, { subject, now: options.now(), lifetime: 3600 }), options.serviceKey);
  let handshakes = 0;
  let rekeys = 0;

  const state: FakeService = {
    received: [],
    get handshakes() {
      return handshakes;
    },
    get rekeys() {
      return rekeys;
    },
    misbehave: undefined,
    forgetSessionKeys: () => {
      keys = new MemorySessionKeyStore({ now: options.now });
    },
    useCredential(ict, key) {
      service = makeService(ict, key);
    },
    fetch: async (input, init) => toResponse(await handle(new Request(input, init))),
  };

  function toResponse(message: HttpResponse): Response {
    const headers = new Headers();
    for (const [name, lines] of Object.entries(message.headers)) for (const line of lines) headers.append(name, line);
    const body = message.body && message.body.length > 0 && message.status !== 204 && message.status !== 304 ? message.body : null;
    return new Response(body as BodyInit | null, { status: message.status, headers });
  }

  async function handle(req: Request): Promise<HttpResponse> {
    const url = new URL(req.url);
    const body = new Uint8Array(await req.arrayBuffer());
    const seen: Received = { method: req.method, path: url.pathname, headers: normalizeFields(req.headers), body };
    state.received.push(seen);
    const request: HttpRequest = { method: req.method, url: url.pathname + url.search, headers: normalizeFields(req.headers), scheme: 'http' };
    const encryption = options.policy?.(url.pathname);
    const exchange = service.exchange(request, encryption ? { ...options.routePolicy, encryption } : undefined);
    const admission = await exchange.admit(body.length > 0 ? body : undefined);
    let response: HttpResponse;
    if (admission.answered) {
      response = { ...admission.response, body: admission.response.body as Uint8Array | undefined };
    } else {
      const plaintext = (admission.body as Uint8Array | undefined) ?? new Uint8Array(0);
      seen.plaintext = plaintext;
      const answer = handler({ method: req.method, path: url.pathname, body: plaintext, identity: admission.identity });
      const bytes = typeof answer.body === 'string' ? new TextEncoder().encode(answer.body) : answer.body;
      const sent = await exchange.respond({ status: answer.status ?? 200, headers: normalizeFields(answer.headers ?? {}), ...(bytes ? { body: bytes } : {}) });
      response = { status: sent.status, headers: sent.headers, body: sent.body as Uint8Array | undefined };
    }
    if (fieldLines(response.headers, KEY_SHARE_FIELD)) {
      if (fieldLines(request.headers, SESSION_FIELD)) rekeys++;
      else handshakes++;
    }
    if (state.misbehave) {
      await state.misbehave(response);
      Object.assign(response.headers, await service.signResponse(response, request, service.bindingOf(request), await service.credential()));
    }
    return response;
  }

  return state;
}
