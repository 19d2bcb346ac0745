/**
 * The service's side of end-to-end encryption within one exchange (docs/protocol.md section 7.3 to 5.9): read the
 * request's e2ee fields, and once the request is otherwise verified apply the route's encryption
 * policy, check the session token or choose a suite, run the handshake or rekey, and decrypt the
 * body; then encrypt the route's response and add the fields it carries. The exchange calls these
 * in the profile's order; nothing here records anything.
 */
import { decodeJwt, type JWK } from 'jose';
import { Oidc2Error } from '../errors.js';
import { fieldLines, type Fields, type HttpRequest, type HttpResponse } from '../message.js';
import type { Identity } from '../authenticator.js';
import { encryptedCoding, type ServiceCredential } from '../response-signature.js';
import { audienceMatcher, requestPath } from '../lib/audience.js';
import { decodeBase64Url } from '../lib/base64.js';
import { jwkThumbprint } from '../lib/jwk.js';
import { argumentError, assertOptions, integerOption } from '../lib/validate.js';
import { E2EE_SUITES, preloadHpkeSuites } from './hpke.js';
import {
  KEY_SHARE_FIELD,
  SESSION_FIELD,
  parseRequestKeyShare,
  parseRequestSession,
  serializeResponseKeyShare,
  serializeSession,
  type RequestKeyShare,
  type SuiteName,
} from './fields.js';
import { acceptHandshake, acceptRekey, chooseSuite, type ExchangeBinding, type ServiceExchange } from './key-exchange.js';
import { createSessionTokens, checkSessionBinding, type IssuedSessionToken, type SessionTokenInput, type SessionTokens, type VerifiedSession } from './session-token.js';
import { MemorySessionKeyStore, type SessionKeyStore } from './session-keys.js';
import { requestKey, requestKeySync, responseKey, responseKeySync, type PartyIdentity } from './transcript.js';
import { decryptBody, decryptBodyStream, encryptBody, encryptBodyStream } from './aes128gcm.js';
import type { Body } from '../lib/body.js';
import type { KeyHandle } from '../lib/crypto.js';
import type { SignatureProfile } from '../profile.js';
import { sessionOfIdentity, signSessionMacResponse, type SessionMacHost } from './symmetric.js';

/** A route's end-to-end encryption policy (docs/protocol.md section 7.10). */
export type EncryptionPolicy = 'off' | 'optional' | 'required';

/** End-to-end encryption options of a service (docs/protocol.md section 7). */
export interface E2eeOptions {
  /**
   * The suites accepted, in the service's preference order. Default `['x25519', 'p256']`.
   * `'xwing'` (MLKEM768-X25519, post-quantum hybrid; e.g. `['xwing', 'x25519', 'p256']`) needs the
   * optional peer dependency `@panva/hpke-noble` (exactly 1.0.3): its import starts when the service
   * is created, and if it fails, every handshake or rekey that chooses xwing throws a `TypeError`
   * (`ERR_INVALID_ARG_VALUE`) naming the package (see docs/e2ee.md).
   */
  suites?: SuiteName[];
  /**
   * Where session-token encryption keys (STEKs) come from. Default: a {@link MemorySessionKeyStore}
   * (one instance; use a shared store such as `RedisSessionKeyStore` when several instances serve
   * one audience).
   */
  sessionKeys?: SessionKeyStore;
  /** Seconds a session token (one epoch) is valid. Default 600. */
  epochSeconds?: number;
  /** Seconds after an epoch starts when the caller should rekey; at most `epochSeconds`. Default 480. */
  rekeySeconds?: number;
  /** Seconds from the handshake after which only a new handshake continues a session. Default 3600. */
  maxAgeSeconds?: number;
  /**
   * Symmetric session authentication (docs/protocol.md section 7.11; docs/e2ee.md): session tokens
   * issued by handshakes and rekeys say `mac: true` (with the caller credential's contexts and type,
   * and an `exp` no later than the credential's), and a session request may then be signed with
   * `hmac-sha256` under the session's `K_c2s` instead of the caller's credential and key; its
   * response is signed under `K_s2c` instead of the service's key. Handshakes and rekeys stay
   * public-key signed. A route can refuse the mode with `policy.sessionMac: false`.
   *
   * What it trades away: **non-repudiation** (both sides hold the MAC keys, so a MAC-signed message
   * proves nothing to a third party, and nothing in it is signed by the caller's key), and **the
   * STEK becomes a credential**: whoever obtains a STEK that has not been deleted can read every
   * token issued under it and sign requests with them until they expire, and can mint new tokens
   * for *any* caller identity, accepted (and impersonating that caller) until the STEK is deleted
   * (`stekRetentionSeconds`, default 1,260 s). In public-key mode a leaked STEK exposes bodies but
   * lets nobody act as a caller. Default `false`.
   */
  symmetric?: boolean;
}

/** Every key of {@link E2eeOptions}: any other key is refused with `ERR_UNKNOWN_OPTION`. */
export const E2EE_OPTION_KEYS = Object.freeze(['suites', 'sessionKeys', 'epochSeconds', 'rekeySeconds', 'maxAgeSeconds', 'symmetric'] as const satisfies ReadonlyArray<keyof E2eeOptions>);

/** The path every service answers a handshake on, below each of its base URLs (docs/protocol.md section 7.3). */
export const SESSION_ENDPOINT_PATH = '/.well-known/oidc2-session';

const ENCODING = 'aes128gcm';
const DEFAULT_SUITES: readonly SuiteName[] = Object.freeze(['x25519', 'p256']);
const ENCRYPTED_CACHE_CONTROL = 'no-store, no-transform';
/**
 * How long a streamed response waits for the route's next bytes before it sends what it holds as a
 * record padded to 16,384 octets: short enough for events to go out at once, long enough that a
 * steady producer (a piped file) fills its records.
 */
const FLUSH_AFTER_MS = 10;

/** A request's e2ee fields as read in step 1 (docs/protocol.md section 7.9). */
export interface RequestE2ee {
  readonly keyShare?: RequestKeyShare;
  readonly session?: string;
  /** Whether `Content-Encoding` names `aes128gcm` (and nothing else). */
  readonly encoded: boolean;
  /** Whether `Content-Encoding` names any coding. */
  readonly coded: boolean;
}

/** How the response of an admitted e2ee request is encrypted, and which fields it carries. */
export interface OpenedE2ee {
  readonly mode: 'handshake' | 'session' | 'rekey';
  readonly suite: SuiteName;
  readonly epoch: number;
  /** The decrypted request body, when the request had one: whole, or for a streamed body its records' plaintext as they are read. */
  readonly body?: Body;
  /** The response body's IKM for a status (without a promise where node:crypto derives it). */
  responseKey(status: number): Uint8Array | Promise<Uint8Array>;
  /** `Oidc2-Key-Share` and `Oidc2-Session` of a handshake or rekey response. */
  readonly fields: Fields;
  /** The credential whose identity the handshake or rekey is bound to: it must sign the response. */
  readonly credential: ServiceCredential;
  /**
   * For a session-authenticated request (docs/protocol.md section 7.11): `K_s2c`, which signs the
   * response instead of {@link credential}, and the request nonce the response repeats.
   */
  readonly mac?: { readonly key: KeyHandle; readonly nonce: string };
}

/** The service's end-to-end encryption, made by {@link createE2eeService}. */
export interface E2eeService {
  readonly suites: readonly SuiteName[];
  /** Step 1: parses and bounds the e2ee fields and `Content-Encoding`; undefined when the request has none of them. */
  inspect(request: HttpRequest): RequestE2ee | undefined;
  /**
   * Steps 5 and 6, after the request's proof is verified and before its nonce is recorded: the
   * proof and policy checks, the session token or the suite choice and key share, the handshake or
   * rekey, and the decryption of the body. Undefined when the exchange stays in clear.
   */
  open(request: HttpRequest, identity: Identity, fields: RequestE2ee | undefined, policy: EncryptionPolicy, credential: () => Promise<ServiceCredential>, streamed?: AsyncIterable<Uint8Array>): Promise<OpenedE2ee | undefined>;
  /**
   * Encrypts a response body (absent for bodyless responses) and returns the fields to set: the
   * e2ee fields due, `Content-Encoding` and `Cache-Control`.
   */
  seal(opened: OpenedE2ee, status: number, body: Uint8Array | undefined): Promise<{ headers: Fields; body: Uint8Array | undefined }>;
  /**
   * Encrypts a response body as a stream of records, sent as they fill or when the route pauses
   * (docs/protocol.md section 7.7), and returns the fields to set, as {@link seal} does (no `Content-Length`).
   */
  sealStream(opened: OpenedE2ee, status: number, body: AsyncIterable<Uint8Array>): Promise<{ headers: Fields; body: AsyncIterable<Uint8Array> }>;
  /**
   * Whether a request's body is a streamed encrypted body (docs/protocol.md section 7.7): one `aes128gcm` body
   * without `Content-Digest` in a session, not to the session endpoint. Read from the head alone;
   * the route's policy decides whether it is accepted.
   */
  streamsRequestBody(request: HttpRequest): boolean;
  /** Whether a request is the handshake endpoint's (`POST <base>/.well-known/oidc2-session`: its path is exactly `/.well-known/oidc2-session`). */
  isSessionEndpoint(request: HttpRequest): boolean;
  /** What the verification of a session-MAC request needs (docs/protocol.md section 7.11); `enabled` is `options.symmetric`. */
  readonly sessionMac: SessionMacHost;
  /**
   * Signs the sealed response of a session-MAC request under `K_s2c` (`opened.mac`; docs/protocol.md
   * section 7.11); `streamed` for a head whose `aes128gcm` body follows. Returns the fields to set.
   */
  signSessionMac(opened: OpenedE2ee, response: HttpResponse, request: HttpRequest, streamed: boolean): Promise<Fields>;
}

/** Whether a request carries an e2ee field (and so is treated as asking for a signed response). */
export function hasE2eeFields(request: Pick<HttpRequest, 'headers'>): boolean {
  return fieldLines(request.headers, KEY_SHARE_FIELD) !== undefined || fieldLines(request.headers, SESSION_FIELD) !== undefined;
}

/** Checks an encryption policy value where it is declared. */
export function assertEncryptionPolicy(value: unknown, name: string): asserts value is EncryptionPolicy | undefined {
  if (value !== undefined && value !== 'off' && value !== 'optional' && value !== 'required') {
    throw argumentError('ERR_INVALID_ARG_VALUE', `${name} must be 'off', 'optional' or 'required'`);
  }
}

/** The credential's party identity `id(S)`, computed once per credential. */
const parties = new WeakMap<ServiceCredential, Promise<PartyIdentity>>();
function servicePartyOf(credential: ServiceCredential): Promise<PartyIdentity> {
  let party = parties.get(credential);
  if (!party) {
    party = (async () => {
      const claims = decodeJwt(credential.ict);
      const jwk = (claims.cnf as { jwk?: JWK } | undefined)?.jwk;
      if (typeof claims.sub !== 'string' || !jwk) throw new Oidc2Error('response_signing_unavailable', 'the service credential has no sub or cnf.jwk');
      return { iss: typeof claims.iss === 'string' ? claims.iss : '', sub: claims.sub, jkt: decodeBase64Url(await jwkThumbprint(jwk))! };
    })();
    parties.set(credential, party);
  }
  return party;
}

function coding(request: HttpRequest): { encoded: boolean; coded: boolean } {
  const lines = fieldLines(request.headers, 'content-encoding');
  if (!lines) return { encoded: false, coded: false };
  if (lines.length === 1 && lines[0] === ENCODING) return { encoded: true, coded: true };
  const codings = lines.flatMap((l) => l.split(',')).map((c) => c.trim().toLowerCase()).filter((c) => c.length > 0);
  const encoded = codings.includes(ENCODING);
  // aes128gcm is the only coding of an encrypted message (docs/protocol.md section 7.2).
  if (encoded && codings.length > 1) throw new Oidc2Error('e2ee_encoding_invalid', 'an encrypted body carries no other content coding');
  return { encoded, coded: codings.length > 0 };
}

/**
 * Creates the service side of end-to-end encryption. Options are checked here, once.
 *
 * @param audiences The service's public base URLs (the session token's `aud` is the one a request matched).
 * @param macProfile The profile whose credential signs the refusals of session-MAC requests (default OIDC²).
 */
export function createE2eeService(options: E2eeOptions, audiences: string[], now: () => number, leewaySeconds: number, macProfile?: SignatureProfile): E2eeService {
  assertOptions(options as unknown, E2EE_OPTION_KEYS, 'options.e2ee');
  const suites = options.suites ?? DEFAULT_SUITES;
  if (!Array.isArray(suites) || suites.length === 0 || new Set(suites).size !== suites.length || suites.some((s: unknown) => typeof s !== 'string' || !Object.hasOwn(E2EE_SUITES, s) || !E2EE_SUITES[s as SuiteName].implemented)) {
    throw argumentError('ERR_INVALID_ARG_VALUE', "options.e2ee.suites must list distinct implemented suites ('x25519', 'p256', 'xwing')");
  }
  preloadHpkeSuites(suites);
  const tokens: SessionTokens = createSessionTokens({
    keys: options.sessionKeys ?? new MemorySessionKeyStore({ now }),
    epochSeconds: integerOption('options.e2ee.epochSeconds', options.epochSeconds, 600),
    rekeySeconds: integerOption('options.e2ee.rekeySeconds', options.rekeySeconds, 480),
    maxAgeSeconds: integerOption('options.e2ee.maxAgeSeconds', options.maxAgeSeconds, 3600),
    leewaySeconds,
    now,
  });
  const bases = audienceMatcher(audiences, 'audiences');
  const kems = suites.join(' ');
  if (options.symmetric !== undefined && typeof options.symmetric !== 'boolean') throw argumentError('ERR_INVALID_ARG_TYPE', 'options.e2ee.symmetric must be a boolean');
  const symmetric = options.symmetric === true;

  // The token's permission of symmetric authentication (docs/protocol.md section 7.4): the caller
  // credential's contexts, type and `exp`, which bounds the token's. A credential whose contexts do
  // not fit a token's bounds, or without an integer `exp`, gets a token without it.
  function macOf(identity: Identity): SessionTokenInput['mac'] {
    if (!symmetric) return undefined;
    const exp = identity.claims.exp;
    const ctx = identity.contexts;
    if (typeof exp !== 'number' || !Number.isSafeInteger(exp) || exp < 0) return undefined;
    if (ctx.length > 32 || ctx.some((c) => c.length === 0 || c.length > 256)) return undefined;
    return { ctx, ctyp: identity.kind === 'workload' ? 'wit' : 'ict', credentialExpiresAt: exp };
  }

  function issuedFields(exchange: ServiceExchange, issued: IssuedSessionToken): Fields {
    return {
      [KEY_SHARE_FIELD]: [serializeResponseKeyShare({ suite: exchange.suite, key: exchange.enc })],
      [SESSION_FIELD]: [serializeSession(issued.token, { exp: issued.exp, rekey: issued.rekey })],
    };
  }

  async function decryptRequest(request: HttpRequest, fields: RequestE2ee, session: VerifiedSession, nonce: string, audience: string, streamed: AsyncIterable<Uint8Array> | undefined): Promise<Body | undefined> {
    const key = () => requestKey({ rk: session.rk, sid: session.sid, nonce, method: request.method, audience });
    // Only an aes128gcm body is ever streamed (streamsRequestBody); its records fail as they are read.
    if (streamed) return decryptBodyStream(await key(), streamed);
    const body = request.body;
    if (body === undefined || body.length === 0) {
      if (fields.coded) throw new Oidc2Error('e2ee_encoding_invalid', 'an empty body carries no content coding');
      return undefined;
    }
    if (!fields.encoded) {
      throw new Oidc2Error('e2ee_body_not_encrypted', 'a request body in a session must be encrypted (Content-Encoding: aes128gcm)', { headers: { 'accept-encoding': ENCODING } });
    }
    const input = { rk: session.rk, sid: session.sid, nonce, method: request.method, audience };
    return decryptBody(requestKeySync(input) ?? (await requestKey(input)), body);
  }

  function isSessionEndpoint(request: HttpRequest): boolean {
    return request.method === 'POST' && requestPath(request.url) === SESSION_ENDPOINT_PATH;
  }

  // The fields of an encrypted response body and its key.
  async function encryption(opened: OpenedE2ee, status: number): Promise<{ headers: Fields; key: Uint8Array }> {
    return { headers: { ...opened.fields, 'cache-control': [ENCRYPTED_CACHE_CONTROL], 'content-encoding': [ENCODING] }, key: await opened.responseKey(status) };
  }

  return {
    suites,
    // The request path is relative to the base URL the caller addressed (as for the audience), so
    // the endpoint is that path exactly: an application route that merely ends in it is not.
    isSessionEndpoint,
    sessionMac: { enabled: symmetric, tokens, bases, ...(macProfile ? { profile: macProfile } : {}) },
    signSessionMac(opened, response, request, streamed) {
      if (!opened.mac) throw argumentError('ERR_INVALID_ARG_VALUE', 'the exchange was not authenticated with a session MAC');
      return signSessionMacResponse(response, request, opened.mac.nonce, opened.mac.key, { now, streamedEncryptedBody: streamed });
    },

    streamsRequestBody: (request) =>
      fieldLines(request.headers, SESSION_FIELD) !== undefined && fieldLines(request.headers, 'content-digest') === undefined && encryptedCoding(request.headers) && !isSessionEndpoint(request),

    inspect(request) {
      const shareLines = fieldLines(request.headers, KEY_SHARE_FIELD);
      const sessionLines = fieldLines(request.headers, SESSION_FIELD);
      const { encoded, coded } = coding(request);
      if (!shareLines && !sessionLines && !encoded) return undefined;
      return {
        ...(shareLines ? { keyShare: parseRequestKeyShare(shareLines) } : {}),
        ...(sessionLines ? { session: parseRequestSession(sessionLines).token } : {}),
        encoded,
        coded,
      };
    },

    async open(request, identity, fields, policy, credentialOf, streamed) {
      const hasBody = streamed !== undefined || (request.body !== undefined && request.body.length > 0);
      if (!fields?.keyShare && fields?.session === undefined) {
        if (policy === 'required') {
          throw new Oidc2Error('e2ee_required', 'this route requires end-to-end encryption', {
            headers: { 'www-authenticate': `Oidc2 error="e2ee_required", kems="${kems}"` },
          });
        }
        if (fields?.encoded && hasBody) throw new Oidc2Error('e2ee_key_missing', 'an encrypted body needs an Oidc2-Session');
        return undefined;
      }
      if (identity.proof !== 'http-signature') throw new Oidc2Error('e2ee_proof_unsupported', 'end-to-end encryption needs an HTTP message signature: DPoP and WPT proofs do not cover its fields');
      if (policy === 'off') throw new Oidc2Error('e2ee_unavailable', 'end-to-end encryption is not available on this route');
      const { nonce, audience } = identity.binding;
      const base = audience === undefined ? undefined : bases.baseOf(audience, request.url);
      if (nonce === undefined || audience === undefined || base === undefined) throw new Oidc2Error('audience_mismatch', 'the request signature names no audience of this service');
      const credential = await credentialOf();
      const caller: PartyIdentity = { iss: identity.issuer, sub: identity.subject, jkt: decodeBase64Url(identity.thumbprint)! };
      const binding = (keyShare: RequestKeyShare, service: PartyIdentity): ExchangeBinding => ({ keyShare: keyShare.canonical, nonce, audience, caller, service });

      if (fields.session !== undefined) {
        // A session-authenticated request was verified with its token already; its response is MAC-signed.
        const macSession = identity.sessionMac ? sessionOfIdentity(identity) : undefined;
        if (identity.sessionMac && !macSession) throw new Oidc2Error('session_invalid', 'the session of this request is unknown');
        const session = macSession?.session ?? (await tokens.verify(fields.session, base));
        if (!macSession) checkSessionBinding(session, caller);
        const body = await decryptRequest(request, fields, session, nonce, audience, streamed);
        const opened = { ...(body ? { body } : {}), credential, ...(macSession ? { mac: { key: macSession.s2c, nonce } } : {}) };
        if (!fields.keyShare) {
          return {
            mode: 'session',
            suite: session.suite,
            epoch: session.epoch,
            fields: {},
            responseKey: (status) => {
              const input = { rk: session.rk, sid: session.sid, nonce, status };
              return responseKeySync(input) ?? responseKey(input);
            },
            ...opened,
          };
        }
        const share = chooseSuite(fields.keyShare, suites);
        const rekeyed = await acceptRekey(share, binding(fields.keyShare, await servicePartyOf(credential)), session);
        const mac = macOf(identity);
        const issued = await tokens.issue({ sid: session.sid, rk: rekeyed.rk, suite: rekeyed.suite, epoch: session.epoch + 1, sessionStart: session.sessionStart, audience: base, caller: session.caller, ...(mac ? { mac } : {}) });
        return { mode: 'rekey', suite: rekeyed.suite, epoch: session.epoch + 1, fields: issuedFields(rekeyed, issued), responseKey: async () => rekeyed.responseKey, ...opened };
      }

      const keyShare = fields.keyShare!;
      const share = chooseSuite(keyShare, suites);
      if (hasBody) {
        if (fields.encoded) throw new Oidc2Error('e2ee_key_missing', 'an encrypted body needs an Oidc2-Session: a handshake body is sent in clear');
        if (policy === 'required') {
          throw new Oidc2Error('e2ee_body_not_encrypted', 'this route takes only encrypted bodies: open a session first', { headers: { 'accept-encoding': ENCODING } });
        }
      }
      const handshake = await acceptHandshake(share, binding(keyShare, await servicePartyOf(credential)));
      const mac = macOf(identity);
      const issued = await tokens.issue({ sid: handshake.sid, rk: handshake.rk, suite: handshake.suite, epoch: 0, audience: base, caller, ...(mac ? { mac } : {}) });
      return { mode: 'handshake', suite: handshake.suite, epoch: 0, fields: issuedFields(handshake, issued), responseKey: async () => handshake.responseKey, credential };
    },

    async seal(opened, status, body) {
      if (body === undefined || body.length === 0) return { headers: { ...opened.fields, 'cache-control': [ENCRYPTED_CACHE_CONTROL] }, body };
      const { headers, key } = await encryption(opened, status);
      const encrypted = await encryptBody(key, body);
      headers['content-length'] = [String(encrypted.length)];
      return { headers, body: encrypted };
    },

    async sealStream(opened, status, body) {
      const { headers, key } = await encryption(opened, status);
      return { headers, body: encryptBodyStream(key, body, { flushAfterMs: FLUSH_AFTER_MS }) };
    },
  };
}
