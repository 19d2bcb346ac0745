// End-to-end encryption, the caller's side (docs/protocol.md section 7): handshakes (on a request
// without a body, or at the service's session endpoint before a request with one), session
// requests with encrypted bodies, rekeys, and the checks of every response in the profile's order.
// Sessions live in memory only, one per session endpoint, pinned to the service that answered the
// handshake. The signing, sending and signature verification of each message is the client's
// (index.ts); this module adds the e2ee fields, encrypts, and opens what comes back.
import { ERROR_STATUS, Oidc2Error, createNonce, fieldLines, fieldValue, isOidc2Error, type Fields, type HttpResponse, type Oidc2ErrorCode, type ServiceIdentity } from '@oidc2/core';
import {
  KEY_SHARE_FIELD,
  SESSION_FIELD,
  argumentError,
  assertOptions,
  completeHandshake,
  completeRekey,
  decryptBody,
  encryptBody,
  hpkeSuite,
  integerOption,
  parseResponseKeyShare,
  preloadHpkeSuites,
  parseResponseSession,
  requestKey,
  responseKey,
  serializeRequestKeyShare,
  serializeSession,
  type HpkeKeyPair,
  type KeyShare,
  type PartyIdentity,
  type SuiteName,
} from '@oidc2/core/adapter';
import { base64url } from 'jose';
import { decryptResponseStream, encryptRequestStream } from './e2ee-stream.js';
import { SESSION_MAC_REFUSALS, sessionMacParams, type SessionMacParams } from './e2ee-symmetric.js';

/** A key-encapsulation suite the client offers. */
export type E2eeSuite = 'x25519' | 'p256' | 'xwing';

/**
 * Whether the client encrypts: `'required'` (never a body or response in clear), `'preferred'`
 * (encrypted unless the service says, signed, that it cannot), `'off'`.
 */
export type EncryptionMode = 'required' | 'preferred' | 'off';

/** Tuning of end-to-end encryption (`ClientOptions.e2ee`). */
export interface E2eeOptions {
  /**
   * The suites offered in every handshake and rekey, in the client's preference order (the service
   * picks by its own). Each costs one ephemeral key pair per handshake. Default `['x25519', 'p256']`.
   */
  suites?: E2eeSuite[];
  /**
   * Rekey on every request (a fresh key exchange per response: each response is forward-secret,
   * at one extra key agreement per request on each side). Default `false`: rekey only after the
   * service's `rekey` hint.
   */
  ratchet?: boolean;
  /**
   * The handshake endpoint of the service that serves `url`; sessions are kept per endpoint.
   * Default `` `${url.origin}/.well-known/oidc2-session` ``.
   */
  sessionEndpoint?: (url: URL) => string;
  /**
   * Most sessions kept at once (least recently used dropped first); also bounds the memory of
   * services and routes known to answer only in clear. Default `100`.
   */
  maxSessions?: number;
  /**
   * Sign session requests with the session's MAC key (`hmac-sha256` under `K_c2s`, docs/protocol.md
   * section 7.11) instead of the ICT and key, and accept responses MAC-signed under `K_s2c`, when the
   * service allows it (its `e2ee.symmetric`). Handshakes and rekeys stay signed with the client's
   * key. The caller cannot see whether a token allows it: the client tries, and after a signed
   * `session_mac_unavailable` or `session_mac_not_allowed` from the pinned service (nothing ran)
   * sends the request again signed with its key and no longer tries at that service. It trades
   * away non-repudiation of the requests, and lets whoever obtains a service's session-token key
   * act as this caller (docs/e2ee.md). Default `false`.
   */
  symmetric?: boolean;
}

/** How a verified response was protected (`VerifiedResponse.encryption`). */
export interface ResponseEncryption {
  /** The suite of the session's current key exchange. */
  readonly suite: E2eeSuite;
  /** `'handshake'` (this exchange opened the session), `'rekey'` (it renewed the root), `'session'`. */
  readonly mode: 'handshake' | 'session' | 'rekey';
  /** The session's epoch after this exchange: 0 after a handshake, one more per rekey. */
  readonly epoch: number;
  /** Whether the response had a body, which was encrypted (bodyless responses carry no coding). */
  readonly bodyEncrypted: boolean;
}

/** Every key of {@link E2eeOptions}. */
const E2EE_OPTION_KEYS = ['suites', 'ratchet', 'sessionEndpoint', 'maxSessions', 'symmetric'] as const satisfies ReadonlyArray<keyof E2eeOptions>;
const DEFAULT_SUITES: readonly E2eeSuite[] = Object.freeze(['x25519', 'p256']);
const ENCODING = 'aes128gcm';

/** Refusals after which a session is dropped and the request sent again after one new handshake (nothing ran). */
const SESSION_REFUSALS = new Set<string>(['session_expired', 'session_invalid']);
/** Signed refusals after which a client that only prefers e2ee sends in clear. */
const FALLBACK_REFUSALS = new Set<string>(['e2ee_unavailable', 'e2ee_kem_unsupported']);

function isCode(code: string): code is Oidc2ErrorCode {
  return Object.prototype.hasOwnProperty.call(ERROR_STATUS, code);
}

/** True for the service-side codes of end-to-end encryption: a refusal of the e2ee exchange itself. */
function isE2eeRefusal(code: string): code is Oidc2ErrorCode {
  return (code.startsWith('e2ee_') || code.startsWith('session_')) && !code.startsWith('e2ee_response_') && isCode(code);
}

/** The validated e2ee configuration of a client. */
export interface E2eeConfig {
  readonly mode: 'required' | 'preferred';
  readonly suites: readonly E2eeSuite[];
  readonly ratchet: boolean;
  readonly sessionEndpoint: (url: URL) => string;
  readonly maxSessions: number;
  readonly symmetric: boolean;
}

/** Validates `options.encryption` and `options.e2ee` once, at construction; undefined when encryption is off. */
export function e2eeConfig(encryption: unknown, options: E2eeOptions | undefined): E2eeConfig | undefined {
  if (encryption !== 'required' && encryption !== 'preferred' && encryption !== 'off') {
    throw argumentError('ERR_INVALID_ARG_VALUE', "options.encryption must be 'required', 'preferred' or 'off'");
  }
  const o: E2eeOptions = options ?? {};
  assertOptions(o, E2EE_OPTION_KEYS, 'options.e2ee');
  const suites = o.suites ?? DEFAULT_SUITES;
  if (!Array.isArray(suites) || suites.length === 0 || suites.some((s) => s !== 'x25519' && s !== 'p256' && s !== 'xwing') || new Set(suites).size !== suites.length) {
    throw argumentError('ERR_INVALID_ARG_VALUE', "options.e2ee.suites must list 'x25519', 'p256' and/or 'xwing', each at most once");
  }
  if (o.ratchet !== undefined && typeof o.ratchet !== 'boolean') throw argumentError('ERR_INVALID_ARG_TYPE', 'options.e2ee.ratchet must be a boolean');
  if (o.sessionEndpoint !== undefined && typeof o.sessionEndpoint !== 'function') throw argumentError('ERR_INVALID_ARG_TYPE', 'options.e2ee.sessionEndpoint must be a function');
  const maxSessions = integerOption('options.e2ee.maxSessions', o.maxSessions, 100, false);
  if (o.symmetric !== undefined && typeof o.symmetric !== 'boolean') throw argumentError('ERR_INVALID_ARG_TYPE', 'options.e2ee.symmetric must be a boolean');
  if (encryption === 'off') return undefined;
  // xwing's engine (@panva/hpke-noble, an optional peer) is imported now, not at the first request.
  preloadHpkeSuites(suites);
  return Object.freeze({
    mode: encryption,
    suites: Object.freeze([...suites]),
    ratchet: o.ratchet === true,
    sessionEndpoint: o.sessionEndpoint ?? ((url: URL) => `${url.origin}/.well-known/oidc2-session`),
    maxSessions,
    symmetric: o.symmetric === true,
  });
}

/** A request as the client sends it, before the proof is added. */
export interface Outgoing {
  readonly method: string;
  /** Absolute URL. */
  readonly url: string;
  readonly headers: Fields;
  /** Absent for no body. */
  readonly body?: Uint8Array | undefined;
  /** A body given as a stream instead: sent encrypted record by record, without `Content-Digest` (docs/protocol.md section 7.7). */
  readonly stream?: ReadableStream<Uint8Array> | undefined;
}

/** How one e2ee message is signed: the nonce and audience its keys derive from, chosen before signing. */
export interface SendParams {
  readonly nonce: string;
  readonly audience: string;
  /** The URL whose expected service must have answered (the request's, also for a handshake at the endpoint). */
  readonly expectFor: string;
  /** The message serves several requests (a shared handshake): no single request's abort signal applies. */
  readonly shared: boolean;
  /** Sign with the session's MAC key instead of the client's key (docs/protocol.md section 7.11). */
  readonly mac?: SessionMacParams;
}

/** A response whose signature and service were verified. */
export interface Exchanged {
  readonly response: Response;
  readonly message: HttpResponse;
  readonly service: ServiceIdentity;
  /** The head announced a streamed encrypted body, verified without one: the ciphertext is still unread in `response.body`. */
  readonly streamed: boolean;
}

/** Signs, sends and verifies one message (the client's own path); `params` absent for a request in clear. */
export type Send = (out: Outgoing, params?: SendParams) => Promise<Exchanged>;

/**
 * Reports what became of one message (`mode` undefined for one in clear): its verified exchange
 * (with the plaintext of an encrypted body, when there is one), or the error it was refused with.
 */
export type VerificationReport = (
  out: Outgoing,
  mode: ResponseEncryption['mode'] | undefined,
  result: { readonly exchanged?: Exchanged; readonly plaintext?: Uint8Array; readonly error?: unknown },
) => void;

/** What the client hands back: the verified exchange, the body to expose, and how it was protected. */
export interface E2eeResult {
  readonly exchanged: Exchanged;
  /**
   * The response body as the caller reads it: the decrypted plaintext, or the verified bytes; for a
   * streamed encrypted body, its plaintext as a stream decrypted as it is read.
   */
  readonly body: Uint8Array | ReadableStream<Uint8Array>;
  readonly encryption: ResponseEncryption | null;
}

/** The state of one session, as the client holds it. */
interface Session {
  readonly token: string;
  readonly rk: Uint8Array;
  readonly sid: Uint8Array;
  readonly suite: E2eeSuite;
  readonly exp: number;
  readonly rekey: number;
  readonly epoch: number;
  /** The service pinned at the handshake: every later response of the session must come from it. */
  readonly serviceIssuer: string;
  readonly serviceSubject: string;
  readonly serviceThumbprint: string;
  /** The service's identity as verified at the handshake or rekey: what a MAC-signed response stands for. */
  readonly service: ServiceIdentity;
}

/** The ephemeral key pairs of one handshake or rekey, and `KS`, the key share as sent. */
interface Offer {
  readonly keyPairs: Map<SuiteName, HpkeKeyPair>;
  readonly keyShare: string;
}

/** What one e2ee message came back with. */
type Outcome =
  | { readonly kind: 'done'; readonly result: E2eeResult; readonly session: Session | undefined }
  /** A signed problem of the service's middleware (never encrypted); `code` is its code. */
  | { readonly kind: 'problem'; readonly code: string; readonly exchanged: Exchanged };

/** What a request goes with: a session, or none (it is the handshake itself), or the endpoint's refusal. */
type Acquired =
  | { readonly session: Session; readonly settle?: undefined; readonly refusal?: undefined }
  | { readonly session: undefined; readonly settle: (session: Session | undefined) => void; readonly refusal?: undefined }
  | { readonly session?: undefined; readonly settle?: undefined; readonly refusal: Extract<Outcome, { kind: 'problem' }> };

/**
 * A handshake in flight at one endpoint, for the requests that wait for it: the session it opened,
 * the session endpoint's refusal, or undefined (it failed, or it was a request's own handshake that
 * was refused: each waiter then tries its own).
 */
type Flight = Promise<Session | Extract<Outcome, { kind: 'problem' }> | undefined>;

/** A bounded least-recently-used map. */
class Lru<V> {
  readonly #map = new Map<string, V>();
  readonly #max: number;
  constructor(max: number) {
    this.#max = max;
  }
  get(key: string): V | undefined {
    const value = this.#map.get(key);
    if (value !== undefined) {
      this.#map.delete(key);
      this.#map.set(key, value);
    }
    return value;
  }
  set(key: string, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    if (this.#map.size > this.#max) this.#map.delete(this.#map.keys().next().value!);
  }
  delete(key: string): void {
    this.#map.delete(key);
  }
}

const EMPTY = new Uint8Array(0);

function responseError(code: Oidc2ErrorCode, message: string, cause?: unknown): Oidc2Error {
  return new Oidc2Error(code, message, cause === undefined ? undefined : { cause });
}

/** The audience parameter `signRequest` puts on a request to `url`: origin and path, no query. */
export function audienceOf(url: URL): string {
  return url.origin + url.pathname;
}

/** The code of a signed RFC 9457 problem of the service, or undefined when the body is not one. */
export function problemCode(message: HttpResponse): string | undefined {
  const type = fieldValue(message.headers, 'content-type');
  if (message.status < 400 || !type || !/^application\/problem\+json\s*(;|$)/i.test(type)) return undefined;
  try {
    const problem: unknown = JSON.parse(new TextDecoder().decode(message.body ?? EMPTY));
    const code = (problem as { code?: unknown } | null)?.code;
    return typeof code === 'string' ? code : undefined;
  } catch {
    return undefined;
  }
}

/** The RFC 7638 thumbprint (base64url, as `ServiceIdentity` and the client key carry it) as the raw 32 octets `jkt`. */
export function rawThumbprint(thumbprint: string): Uint8Array {
  return base64url.decode(thumbprint);
}

/**
 * The client's e2ee state: sessions per session endpoint, the handshakes in flight, and (in
 * `'preferred'` mode) the services and routes that said, signed, that they answer only in clear.
 */
export class E2eeClient {
  readonly #config: E2eeConfig;
  readonly #now: () => number;
  readonly #sessions: Lru<Session>;
  readonly #flights = new Map<string, Flight>();
  readonly #clearOnly: Lru<true>;
  /** Endpoints whose service refused a session MAC, signed: their requests are signed with the client's key. */
  readonly #macRefused: Lru<true>;
  readonly #macKeys = new WeakMap<Session, Promise<SessionMacParams>>();
  readonly #report: VerificationReport;

  constructor(config: E2eeConfig, now: () => number, report: VerificationReport) {
    this.#config = config;
    this.#now = now;
    this.#report = report;
    this.#sessions = new Lru(config.maxSessions);
    this.#clearOnly = new Lru(config.maxSessions);
    this.#macRefused = new Lru(config.maxSessions);
  }

  /**
   * Sends `out` end-to-end encrypted (or, in `'preferred'` mode, in clear where the service said it
   * must be) and opens the response. `send` signs, sends and verifies one message; `caller` is the
   * identity the request's ICT and key state.
   */
  async fetch(out: Outgoing, send: Send, caller: PartyIdentity): Promise<E2eeResult> {
    const url = new URL(out.url);
    const endpoint = this.#endpointFor(url);
    const route = `${out.method.toUpperCase()} ${audienceOf(url)}`;
    const preferred = this.#config.mode === 'preferred';
    if (preferred && (this.#clearOnly.get(endpoint) || this.#clearOnly.get(route))) return this.#clear(out, send);
    for (let retried = false, macRetried = false; ; retried = true) {
      const acquired = await this.#acquire(endpoint, out, send, caller);
      const outcome =
        acquired.refusal ??
        (await this.#exchange(endpoint, out, acquired.session, send, caller, out.url, false).then(
          (o) => (acquired.settle?.(o.kind === 'done' ? o.session : undefined), o),
          (error: unknown) => {
            acquired.settle?.(undefined);
            throw error;
          },
        ));
      if (outcome.kind === 'done') return outcome.result;
      const { code } = outcome;
      const session = acquired.session;
      if (SESSION_MAC_REFUSALS.has(code) && !macRetried) {
        // A signed refusal of the session MAC: nothing ran; the same request again, signed with the
        // key (a streamed body was read by the first attempt: its refusal is the answer).
        this.#macRefused.set(endpoint, true);
        macRetried = true;
        if (!out.stream) continue;
      }
      if (session && (SESSION_REFUSALS.has(code) || code === 'session_binding_mismatch')) {
        this.#drop(endpoint, session);
        // A streamed body has been read by the first attempt: it cannot be sent again.
        if (!retried && SESSION_REFUSALS.has(code) && !out.stream) continue;
      }
      if (FALLBACK_REFUSALS.has(code) && preferred && !out.stream) {
        // A refusal at the session endpoint speaks for the whole service, one at a route for that route.
        this.#clearOnly.set(acquired.refusal ? endpoint : route, true);
        return this.#clear(out, send);
      }
      if (isE2eeRefusal(code)) throw responseError(code, `the service refused end-to-end encryption (${code}, HTTP ${outcome.exchanged.message.status})`);
      if (acquired.refusal) {
        // The handshake at the endpoint was refused for another reason (e.g. the caller's ICT): no session, so no request.
        const status = outcome.exchanged.message.status;
        if (isCode(code)) throw responseError(code, `the session endpoint refused the handshake (${code}, HTTP ${status})`);
        throw responseError('e2ee_response_key_share_missing', `the session endpoint answered HTTP ${status} without a handshake`);
      }
      // An ordinary signed refusal (e.g. 403 from a route policy): returned like any verified response.
      return { exchanged: outcome.exchanged, body: outcome.exchanged.message.body ?? EMPTY, encryption: null };
    }
  }

  #endpointFor(url: URL): string {
    const value: unknown = this.#config.sessionEndpoint(url);
    let endpoint: URL | undefined;
    try {
      endpoint = typeof value === 'string' ? new URL(value) : undefined;
    } catch {
      endpoint = undefined;
    }
    if (!endpoint || (endpoint.protocol !== 'https:' && endpoint.protocol !== 'http:')) {
      throw argumentError('ERR_INVALID_RETURN_VALUE', 'options.e2ee.sessionEndpoint must return an absolute http(s) URL');
    }
    return endpoint.href;
  }

  async #clear(out: Outgoing, send: Send): Promise<E2eeResult> {
    // A streamed body goes only encrypted: in clear it would need a Content-Digest over all of it.
    if (out.stream) throw responseError('e2ee_unavailable', 'a streamed request body is sent only end-to-end encrypted, and this route answers in clear');
    const exchanged = await send(out);
    return { exchanged, body: exchanged.message.body ?? EMPTY, encryption: null };
  }

  /** The session still valid now, if any. */
  #live(endpoint: string): Session | undefined {
    const session = this.#sessions.get(endpoint);
    return session && session.exp > this.#now() ? session : undefined;
  }

  /**
   * The session a request goes with. Without one, a request without a body becomes the handshake
   * (and others wait for it); a request with a body first has the session endpoint handshake. Either
   * way one handshake per endpoint is in flight at a time.
   */
  async #acquire(endpoint: string, out: Outgoing, send: Send, caller: PartyIdentity): Promise<Acquired> {
    for (let waited = false; ; waited = true) {
      const live = this.#live(endpoint);
      if (live) return { session: live };
      const flight = this.#flights.get(endpoint);
      if (flight && !waited) {
        const result = await flight;
        if (result && 'kind' in result) return { refusal: result };
        if (result) return { session: result };
        continue;
      }
      let settle!: (value: Session | Extract<Outcome, { kind: 'problem' }> | undefined) => void;
      const own: Flight = new Promise((resolve) => (settle = resolve));
      this.#flights.set(endpoint, own);
      const land = (value: Session | Extract<Outcome, { kind: 'problem' }> | undefined) => {
        if (this.#flights.get(endpoint) === own) this.#flights.delete(endpoint);
        settle(value);
      };
      if (!out.body && !out.stream) return { session: undefined, settle: land };
      let outcome: Outcome;
      try {
        outcome = await this.#exchange(endpoint, { method: 'POST', url: endpoint, headers: {} }, undefined, send, caller, out.url, true);
      } catch (error) {
        land(undefined);
        throw error;
      }
      if (outcome.kind === 'problem') {
        land(outcome);
        return { refusal: outcome };
      }
      land(outcome.session);
      if (outcome.session) return { session: outcome.session };
      throw responseError('e2ee_response_key_share_missing', 'the session endpoint answered without a handshake');
    }
  }

  /** Keeps `next` unless the state held has a later `exp` (parallel rekeys fork; every branch is valid). */
  #store(endpoint: string, next: Session): void {
    const held = this.#sessions.get(endpoint);
    if (!held || next.exp >= held.exp) this.#sessions.set(endpoint, next);
  }

  /** Drops `session` unless another request has replaced it meanwhile. */
  #drop(endpoint: string, session: Session): void {
    if (this.#sessions.get(endpoint) === session) this.#sessions.delete(endpoint);
  }

  /** `K_c2s` and `K_s2c` of a session, derived once. */
  #macOf(session: Session): Promise<SessionMacParams> {
    let params = this.#macKeys.get(session);
    if (!params) {
      params = sessionMacParams(session.rk, session.sid, session.service);
      this.#macKeys.set(session, params);
    }
    return params;
  }

  async #offer(): Promise<Offer> {
    const keyPairs = new Map<SuiteName, HpkeKeyPair>();
    const shares: KeyShare[] = [];
    for (const suite of this.#config.suites) {
      const hpke = hpkeSuite(suite);
      const pair = await hpke.generateKeyPair();
      keyPairs.set(suite, pair);
      shares.push({ suite, key: await hpke.serializePublicKey(pair.publicKey) });
    }
    return { keyPairs, keyShare: serializeRequestKeyShare(shares) };
  }

  /** One e2ee message: a handshake (no session), a session request, or a rekey; then its response opened. */
  async #exchange(endpoint: string, out: Outgoing, session: Session | undefined, send: Send, caller: PartyIdentity, expectFor: string, shared: boolean): Promise<Outcome> {
    const mode: ResponseEncryption['mode'] = !session ? 'handshake' : this.#config.ratchet || this.#now() >= session.rekey ? 'rekey' : 'session';
    const nonce = createNonce();
    const audience = audienceOf(new URL(out.url));
    const offer = mode === 'session' ? undefined : await this.#offer();
    const mac = mode === 'session' && this.#config.symmetric && !this.#macRefused.get(endpoint) ? await this.#macOf(session!) : undefined;
    try {
      const headers: Fields = { ...out.headers };
      let { body, stream } = out;
      if (offer) headers[KEY_SHARE_FIELD] = [offer.keyShare];
      if (session) {
        headers[SESSION_FIELD] = [serializeSession(session.token)];
        if (body || stream) {
          const key = await requestKey({ rk: session.rk, sid: session.sid, nonce, method: out.method.toUpperCase(), audience });
          if (body) body = await encryptBody(key, body);
          else stream = encryptRequestStream(key, stream!);
          headers['content-encoding'] = [ENCODING];
        }
      }
      let exchanged: Exchanged;
      try {
        exchanged = await send({ method: out.method, url: out.url, headers, body, stream }, { nonce, audience, expectFor, shared, ...(mac ? { mac } : {}) });
      } catch (error) {
        // An unsigned answer to an e2ee request is a downgrade attempt as much as a missing proof.
        const refused = isOidc2Error(error) && error.code === 'response_unsigned' ? responseError('e2ee_response_unsigned', error.message, error) : error;
        // A response that was refused (not a request that never got one) is reported.
        if (isOidc2Error(refused)) this.#report(out, mode, { error: refused });
        throw refused;
      }
      let outcome: Outcome;
      try {
        outcome = await this.#open(endpoint, exchanged, mode, offer, session, { nonce, audience, caller });
      } catch (error) {
        if (exchanged.streamed) await exchanged.response.body?.cancel().catch(() => undefined);
        this.#report(out, mode, { exchanged, error });
        throw error;
      }
      const plaintext = outcome.kind === 'done' && outcome.result.body instanceof Uint8Array ? outcome.result.body : undefined;
      this.#report(out, mode, { exchanged, ...(plaintext ? { plaintext } : {}) });
      return outcome;
    } finally {
      // The ephemeral private keys serve this one response: gone once it is handled, whatever happened.
      offer?.keyPairs.clear();
    }
  }

  /** docs/protocol.md section 7.9, the caller's side, after the signature, its tag and the expected service were verified. */
  async #open(
    endpoint: string,
    exchanged: Exchanged,
    mode: ResponseEncryption['mode'],
    offer: Offer | undefined,
    session: Session | undefined,
    request: { nonce: string; audience: string; caller: PartyIdentity },
  ): Promise<Outcome> {
    const { message, service } = exchanged;
    if (session && (service.subject !== session.serviceSubject || service.issuer !== session.serviceIssuer || service.thumbprint !== session.serviceThumbprint)) {
      this.#drop(endpoint, session);
      throw responseError('response_untrusted', 'the response was signed by another service than the one the session was opened with');
    }
    const shareLines = fieldLines(message.headers, KEY_SHARE_FIELD);
    const sessionLines = fieldLines(message.headers, SESSION_FIELD);
    const coding = fieldValue(message.headers, 'content-encoding');
    if (!shareLines && !sessionLines && coding === undefined) {
      const code = problemCode(message);
      if (code !== undefined) return { kind: 'problem', code, exchanged };
    }
    if ((offer !== undefined) !== (shareLines !== undefined)) {
      throw responseError('e2ee_response_key_share_missing', offer ? 'the response carries no Oidc2-Key-Share' : 'the response carries an Oidc2-Key-Share the request did not ask for');
    }

    let next: Session | undefined;
    let key: Uint8Array | undefined;
    if (offer) {
      let chosen: KeyShare;
      try {
        chosen = parseResponseKeyShare(shareLines);
      } catch (error) {
        throw responseError('e2ee_response_key_share_missing', 'the response carries no valid Oidc2-Key-Share', error);
      }
      if (!offer.keyPairs.has(chosen.suite)) throw responseError('e2ee_response_suite_mismatch', 'the service chose a suite the request did not offer');
      const field = parseSessionField(sessionLines);
      const binding = {
        keyShare: offer.keyShare,
        nonce: request.nonce,
        audience: request.audience,
        caller: request.caller,
        service: { iss: service.issuer, sub: service.subject, jkt: rawThumbprint(service.thumbprint) },
      };
      let derived;
      try {
        derived = session ? await completeRekey(chosen, offer.keyPairs, binding, session) : await completeHandshake(chosen, offer.keyPairs, binding);
      } catch (error) {
        throw responseError('e2ee_response_decrypt_failed', 'the response key share does not complete the key exchange', error);
      }
      key = derived.responseKey;
      next = {
        token: field.token,
        exp: field.exp,
        rekey: field.rekey,
        rk: derived.rk,
        sid: derived.sid,
        suite: chosen.suite as E2eeSuite,
        epoch: session ? session.epoch + 1 : 0,
        serviceIssuer: service.issuer,
        serviceSubject: service.subject,
        serviceThumbprint: service.thumbprint,
        service,
      };
    } else if (sessionLines) {
      // A session response may renew the token (same root) without a rekey.
      const field = parseSessionField(sessionLines);
      next = { ...session!, token: field.token, exp: field.exp, rekey: field.rekey };
    }

    if (exchanged.streamed) {
      // The head is verified and names the keys; the records are checked as the caller reads them.
      key ??= await responseKey({ rk: session!.rk, sid: session!.sid, nonce: request.nonce, status: message.status });
      if (next) this.#store(endpoint, next);
      const state = (next ?? session)!;
      return {
        kind: 'done',
        session: next,
        result: { exchanged, body: decryptResponseStream(key, exchanged.response.body), encryption: { suite: state.suite, mode, epoch: state.epoch, bodyEncrypted: true } },
      };
    }
    const body = message.body ?? EMPTY;
    let plaintext: Uint8Array | undefined;
    if (body.length > 0 || coding !== undefined) {
      if (coding?.trim().toLowerCase() !== ENCODING) throw responseError('e2ee_response_not_encrypted', 'the response body is not end-to-end encrypted');
      key ??= await responseKey({ rk: session!.rk, sid: session!.sid, nonce: request.nonce, status: message.status });
      try {
        plaintext = await decryptBody(key, body);
      } catch (error) {
        throw responseError('e2ee_response_decrypt_failed', 'the response body could not be decrypted', error);
      }
    }
    if (next) this.#store(endpoint, next);
    const state = (next ?? session)!;
    return {
      kind: 'done',
      session: next,
      result: { exchanged, body: plaintext ?? body, encryption: { suite: state.suite, mode, epoch: state.epoch, bodyEncrypted: plaintext !== undefined } },
    };
  }
}

function parseSessionField(lines: string[] | undefined): { token: string; exp: number; rekey: number } {
  try {
    return parseResponseSession(lines);
  } catch (error) {
    // No client-side code names a bad session field; the service-side one says what is wrong.
    throw responseError('session_invalid', 'the response carries no valid Oidc2-Session', error);
  }
}
