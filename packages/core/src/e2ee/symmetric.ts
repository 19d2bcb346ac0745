/**
 * Symmetric session authentication (docs/protocol.md section 7.11): inside a session whose token
 * says `mac: true`, a request may replace the caller's credential and public-key signature by an
 * RFC 9421 `hmac-sha256` signature tagged `oidc2-session` under `K_c2s`, and its response is signed
 * the same way under `K_s2c`. Both keys are HKDF-Expand of the session root (section 7.5), so only
 * the caller and the service (which reads the root from the token) hold them.
 *
 * Both sides live here: the service's verification of a request and signing of its response, and
 * the caller's signing of a request and verification of its response. The MAC is compared in
 * constant time (the core's crypto layer: node:crypto `timingSafeEqual`, or WebCrypto's HMAC).
 */
import { Oidc2Error, isOidc2Error } from '../errors.js';
import { fieldLines, type Fields, type HttpRequest, type HttpResponse } from '../message.js';
import type { Identity } from '../authenticator.js';
import { signatureBinding, type RequestBinding } from '../binding.js';
import { createContentDigest, createContentDigestSync, verifyContentDigest, type ContentDigestAlgorithm } from '../content-digest.js';
import { OIDC2_PROFILE, WIMSE_PROFILE, nonceAccepted, nonceRule, type SignatureProfile } from '../profile.js';
import type { ProofContext, ProofHooks } from '../proofs/context.js';
import { covers } from '../proofs/detect.js';
import { messageSignatureValid, signPreparedSync } from '../rfc9421/http-signatures.js';
import { parseSignature, parseSignatureInput, serializeSignatureParams, signMessage, verifyMessageSignature, type ComponentIdentifier, type SignatureInputEntry } from '../rfc9421/index.js';
import { MAX_SF_INTEGER, PRINTABLE_ASCII, sfString, toComponent } from '../rfc9421/components.js';
import type { AudienceMatcher } from '../lib/audience.js';
import { encodeBase64Url } from '../lib/base64.js';
import { importKey, randomBytes, type KeyHandle } from '../lib/crypto.js';
import { argumentError } from '../lib/validate.js';
import { KEY_SHARE_FIELD, SESSION_FIELD, parseRequestSession } from './fields.js';
import type { SessionTokens, VerifiedSession } from './session-token.js';
import { macKeys } from './transcript.js';

/** The `tag` of a symmetric session signature, request and response. */
export const SESSION_MAC_TAG = 'oidc2-session';
/** The RFC 9421 algorithm of a symmetric session signature (never sent as `alg`). */
export const SESSION_MAC_ALGORITHM = 'hmac-sha256';
const TAG_PARAM = `tag="${SESSION_MAC_TAG}"`;
/** The label this implementation writes (verifiers select by tag). */
const LABEL = 'sig';
const AUDIENCE_PARAM = OIDC2_PROFILE.audienceParam;
const REQUEST_NONCE_PARAM = OIDC2_PROFILE.requestNonceParam;
/** What every symmetric request signature covers. */
const REQUEST_COMPONENTS = Object.freeze(['@method', '@path', '@query', SESSION_FIELD]);
/** What it covers whenever present (section 7.11: no token field, no key share). */
const REQUEST_WHEN_PRESENT = Object.freeze(['content-type', 'content-encoding', 'content-digest', 'authorization', 'txn-token']);
/** What a symmetric response signature covers whenever present, besides `content-digest`. */
const RESPONSE_WHEN_PRESENT = Object.freeze(['content-type', 'content-encoding', KEY_SHARE_FIELD, SESSION_FIELD]);
/** The request components every symmetric response signature covers with `;req`. */
const RESPONSE_REQUEST_COMPONENTS = Object.freeze(['@method', '@path', '@query', SESSION_FIELD]);
/** Lifetime of a response signature, seconds (as public-key response signatures). */
const RESPONSE_SIGNATURE_SECONDS = 60;
const MAX_FIELD_BYTES = 8192;

/** What the service's symmetric verification needs of its end-to-end encryption. */
export interface SessionMacHost {
  /** Whether the service accepts symmetric session authentication at all (`e2ee.symmetric`). */
  readonly enabled: boolean;
  /** The service's session tokens. */
  readonly tokens: SessionTokens;
  /** The service's public base URLs. */
  readonly bases: AudienceMatcher;
  /**
   * The profile whose credential signs what is not MAC-signed (refusals, and the binding a route
   * sees): the OIDC² profile when the service holds an ICT, else the WIMSE profile of its WIT.
   * Default the OIDC² profile.
   */
  readonly profile?: SignatureProfile;
}

/** Per-call options of {@link verifySessionMacRequest}. */
export interface SessionMacRequestOptions {
  /**
   * Whether the route accepts symmetric session authentication (`policy.sessionMac`). When false the
   * request is refused with `session_mac_unavailable` before its token is opened. Default true.
   */
  readonly routeAllows?: boolean;
  /** The token of the request's `Oidc2-Session`, when the caller parsed the field already. Default: parsed here. */
  readonly token?: string;
}

/** The session each session-authenticated identity was verified with (its root: never exposed). */
const sessions = new WeakMap<Identity, { session: VerifiedSession; s2c: KeyHandle }>();

/** @internal The session, and the handle of its `K_s2c`, a session-authenticated identity was verified with. */
export function sessionOfIdentity(identity: Identity): { session: VerifiedSession; s2c: KeyHandle } | undefined {
  return sessions.get(identity);
}

/**
 * The one `Signature-Input` member tagged `oidc2-session` among `inputs`, or undefined.
 *
 * @throws Oidc2Error `signature_ambiguous` when two members carry the tag.
 */
export function sessionMacEntry(inputs: ReadonlyMap<string, SignatureInputEntry>): SignatureInputEntry | undefined {
  let entry: SignatureInputEntry | undefined;
  for (const candidate of inputs.values()) {
    if (candidate.params.tag !== SESSION_MAC_TAG) continue;
    if (entry) throw new Oidc2Error('signature_ambiguous', `more than one signature is tagged ${SESSION_MAC_TAG}`);
    entry = candidate;
  }
  return entry;
}

/**
 * A message's `Signature-Input` as parsed when one of its members is tagged `oidc2-session`, read
 * without verifying anything; undefined otherwise, or when the field does not parse (the verifier of
 * the message's other proof then reports it).
 */
export function sessionMacInputs(headers: Fields, maxBytes = MAX_FIELD_BYTES): ReadonlyMap<string, SignatureInputEntry> | undefined {
  const lines = fieldLines(headers, 'signature-input');
  // A tag parameter equal to the token always appears as this text (no escapes, no white space around
  // `=` in a Structured Field), so the field is parsed only when it does; a public-key signature that
  // merely covers "oidc2-session" is not parsed twice.
  if (!lines || !lines.some((l) => l.includes(TAG_PARAM))) return undefined;
  try {
    const inputs = parseSignatureInput(lines, { maxBytes });
    return [...inputs.values()].some((e) => e.params.tag === SESSION_MAC_TAG) ? inputs : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a message carries a signature tagged `oidc2-session` (see {@link sessionMacInputs}). */
export function hasSessionMacSignature(headers: Fields): boolean {
  return sessionMacInputs(headers) !== undefined;
}

/**
 * The binding of a symmetric request, read from its fields without trusting them: its refusals are
 * signed with the service's credential under `profile` (the OIDC² profile by default; the WIMSE
 * profile for a service that holds only a WIT), bound to the request's nonce and covering its
 * `Oidc2-Session` with `;req`. Undefined when the request has no such signature.
 */
export function sessionMacBinding(request: Pick<HttpRequest, 'headers'>, profile: SignatureProfile = OIDC2_PROFILE): RequestBinding | undefined {
  const lines = fieldLines(request.headers, 'signature-input');
  if (!lines) return undefined;
  let entry: SignatureInputEntry | undefined;
  try {
    entry = sessionMacEntry(parseSignatureInput(lines, { maxBytes: MAX_FIELD_BYTES }));
  } catch {
    return undefined;
  }
  if (!entry) return undefined;
  const { nonce, [AUDIENCE_PARAM]: audience } = entry.params;
  return signatureBinding(profile, {
    nonce: typeof nonce === 'string' ? nonce : undefined,
    audience: typeof audience === 'string' ? audience : undefined,
    signResponse: true,
    headers: request.headers,
  });
}

/** The profile of the credential that signs for a workload or a user caller of symmetric mode. */
export function sessionMacProfile(proof: string): SignatureProfile {
  return proof === 'wimse-signature' ? WIMSE_PROFILE : OIDC2_PROFILE;
}

function hmacKey(secret: Uint8Array): Promise<KeyHandle> {
  return importKey(secret, SESSION_MAC_ALGORITHM, 'sign');
}

/** The handles of a session's MAC keys, derived once per opened token (which the token cache keeps). */
interface SessionMacKeys {
  readonly c2s: KeyHandle;
  readonly s2c: KeyHandle;
}
const macKeysOfSession = new WeakMap<VerifiedSession, Promise<SessionMacKeys>>();
/** The same keys once derived, read without a promise by the session's later requests. */
const derivedMacKeys = new WeakMap<VerifiedSession, SessionMacKeys>();

function sessionMacKeys(session: VerifiedSession): SessionMacKeys | Promise<SessionMacKeys> {
  const derived = derivedMacKeys.get(session);
  if (derived !== undefined) return derived;
  let entry = macKeysOfSession.get(session);
  if (entry === undefined) {
    entry = (async () => {
      const keys = await macKeys(session.rk, session.sid);
      const handles = { c2s: await hmacKey(keys.c2s), s2c: await hmacKey(keys.s2c) };
      derivedMacKeys.set(session, handles);
      return handles;
    })();
    // A failure is not kept: the next request derives again.
    entry.catch(() => macKeysOfSession.delete(session));
    macKeysOfSession.set(session, entry);
  }
  return entry;
}

function trustDomainOf(subject: string): string | undefined {
  try {
    const host = new URL(subject).host.toLowerCase();
    return host.length > 0 ? host : undefined;
  } catch {
    return undefined;
  }
}

/** The identity a session token states (docs/protocol.md section 7.11): no credential, no public key. */
function sessionIdentity(session: VerifiedSession, binding: RequestBinding): Identity {
  const mac = session.mac!;
  const { iss, sub, jkt } = session.caller;
  const workload = mac.ctyp === 'wit';
  const trustDomain = workload ? trustDomainOf(sub) : undefined;
  return {
    kind: workload ? 'workload' : 'user',
    subject: sub,
    issuer: iss,
    ...(trustDomain !== undefined ? { trustDomain } : {}),
    claims: { ...(iss !== '' ? { iss } : {}), sub, ...(workload ? {} : { ctx: [...mac.ctx] }) },
    contexts: [...mac.ctx],
    thumbprint: encodeBase64Url(jkt),
    proof: 'http-signature',
    binding,
    sessionMac: true,
  };
}

/**
 * Verifies a symmetric session request (docs/protocol.md section 7.11) in the order of section 7.9:
 * (1) the one signature tagged `oidc2-session` and the `Oidc2-Session` field, bounded, and no
 * `Oidc2-Key-Share` (a rekey needs a public-key signature: `e2ee_proof_unsupported`); the service
 * and the route must accept the mode (`session_mac_unavailable`); (2) the token, which must say
 * `mac: true` (`session_mac_not_allowed`); (3) coverage, parameters and the MAC under `K_c2s`; (4)
 * time window, audience, `Content-Digest`, `Txn-Token`; then `hooks.beforeRecord` (the route's
 * encryption policy and the body's decryption) and last the nonce, in the replay store. The
 * identity is the token's, marked `sessionMac`.
 *
 * @throws Oidc2Error as above, and `signature_*`, `component_not_covered`, `audience_mismatch`,
 *   `digest_*`, `session_invalid`, `session_expired`, `replay_detected`.
 */
export async function verifySessionMacRequest(
  request: HttpRequest,
  inputs: ReadonlyMap<string, SignatureInputEntry>,
  ctx: ProofContext,
  hooks: ProofHooks,
  host: SessionMacHost,
  options: SessionMacRequestOptions = {},
): Promise<Identity> {
  // 1. Parse and bound.
  const entry = sessionMacEntry(inputs);
  if (!entry) throw new Oidc2Error('signature_missing', `no signature tagged ${SESSION_MAC_TAG}`);
  if (fieldLines(request.headers, KEY_SHARE_FIELD)) {
    throw new Oidc2Error('e2ee_proof_unsupported', 'a rekey carries a public-key signature: a session MAC cannot authenticate a new key exchange');
  }
  if (!host.enabled) throw new Oidc2Error('session_mac_unavailable', 'this service does not accept symmetric session authentication');
  if (options.routeAllows === false) throw new Oidc2Error('session_mac_unavailable', 'this route does not accept symmetric session authentication');
  const signature = parseSignature(fieldLines(request.headers, 'signature'), { maxBytes: ctx.maxHeaderBytes }).get(entry.label);
  if (!signature) throw new Oidc2Error('signature_missing', `no Signature member for label ${entry.label}`);
  const sessionLines = fieldLines(request.headers, SESSION_FIELD);
  if (!sessionLines) throw new Oidc2Error('component_missing', `a signature tagged ${SESSION_MAC_TAG} needs an Oidc2-Session`);
  const token = options.token ?? parseRequestSession(sessionLines).token;
  const params = entry.params;
  const aud = params[AUDIENCE_PARAM];
  if (typeof aud !== 'string') throw new Oidc2Error('signature_params_invalid', `${AUDIENCE_PARAM} is required`);
  // The token is bound to the base URL the audience names; a name of no base is refused before it is opened.
  const base = host.bases.baseOf(aud, request.url);
  if (base === undefined) throw new Oidc2Error('audience_mismatch', `${AUDIENCE_PARAM} does not name this service and path`);

  // 2. The token (docs/protocol.md section 7.4), which must allow this mode.
  const session = await host.tokens.verify(token, base);
  if (!session.mac) throw new Oidc2Error('session_mac_not_allowed', 'this session token does not allow symmetric session authentication');

  // 3. Coverage, parameters, then the MAC under K_c2s.
  if (params.keyid !== undefined || params.alg !== undefined) {
    throw new Oidc2Error('signature_params_invalid', 'keyid and alg must not appear: the key and algorithm come from the session');
  }
  const required = [...REQUEST_COMPONENTS, ...ctx.requiredComponents];
  for (const field of REQUEST_WHEN_PRESENT) if (fieldLines(request.headers, field)) required.push(field);
  for (const name of required) {
    if (!covers(entry.components, name)) throw new Oidc2Error('component_not_covered', `the signature must cover ${name}`);
  }
  const { created, expires, nonce } = params;
  if (typeof created !== 'number' || typeof expires !== 'number' || !Number.isInteger(created) || !Number.isInteger(expires)) {
    throw new Oidc2Error('signature_params_invalid', 'created and expires are required integers');
  }
  if (expires <= created || expires - created > ctx.maxSignatureAge) {
    throw new Oidc2Error('signature_params_invalid', `expires - created must be between 1 and ${ctx.maxSignatureAge} seconds`);
  }
  if (typeof nonce !== 'string' || !nonceAccepted(OIDC2_PROFILE, nonce)) throw new Oidc2Error('signature_params_invalid', `nonce must be ${nonceRule(OIDC2_PROFILE)}`);
  const keys = sessionMacKeys(session);
  const { c2s, s2c } = keys instanceof Promise ? await keys : keys;
  const valid = messageSignatureValid(request, entry, signature, c2s);
  if (!(typeof valid === 'boolean' ? valid : await valid)) {
    throw new Oidc2Error('signature_invalid', 'the request signature does not verify with the session key');
  }

  // 4. Time window, audience, digest.
  const t = ctx.now();
  const tolerance = ctx.clockTolerance;
  if (created > t + tolerance) throw new Oidc2Error('signature_not_yet_valid', 'the signature was created in the future');
  if (expires < t - tolerance) throw new Oidc2Error('signature_expired', 'the signature has expired');
  if (!ctx.audiences.matches(aud, request.url)) throw new Oidc2Error('audience_mismatch', `${AUDIENCE_PARAM} does not name this service and path`);
  // Steps that answer synchronously are not awaited.
  const digestChecked = ctx.checkDigest(request, hooks.streamedEncryptedBody !== true);
  if (digestChecked instanceof Promise) await digestChecked;
  const pendingTransaction = ctx.transaction(request);
  const transaction = pendingTransaction instanceof Promise ? await pendingTransaction : pendingTransaction;

  const binding = signatureBinding(host.profile ?? OIDC2_PROFILE, { nonce, audience: aud, signResponse: true, headers: request.headers });
  const identity = sessionIdentity(session, binding);
  if (transaction) identity.transaction = transaction;
  sessions.set(identity, { session, s2c });
  // 5-6 (policy, decryption), then 7: the nonce, in the namespace of every OIDC² signature nonce.
  if (hooks.beforeRecord) await hooks.beforeRecord(identity);
  const recorded = ctx.replayStore.checkAndRecord(`sig:${nonce}`, expires + tolerance, t);
  if (!(typeof recorded === 'boolean' ? recorded : await recorded)) {
    throw new Oidc2Error('replay_detected', 'this signature nonce was seen before');
  }
  return identity;
}

/** Options of {@link signSessionMacResponse}. */
export interface SessionMacResponseOptions {
  /** Clock in unix seconds. Default `Date.now() / 1000`. */
  now?: () => number;
  /** The `aes128gcm` body follows the head as a stream: no `Content-Digest` (docs/protocol.md section 7.7). Default false. */
  streamedEncryptedBody?: boolean;
}

/**
 * Signs the response to a symmetric session request under `K_s2c` (docs/protocol.md section 7.11):
 * `@status`, `content-type`, `content-encoding`, `content-digest` (added here unless the body
 * streams), the e2ee fields sent, and `"@method";req`, `"@path";req`, `"@query";req`,
 * `"oidc2-session";req`; parameters `created`, `expires`, `nonce`, `tag` and `oidc2-req-nonce`.
 * Returns the fields to set (`Content-Digest`, `Signature-Input`, `Signature`): no token field.
 *
 * @param s2c `K_s2c` (32 octets), or its HMAC handle from `importKey(K_s2c, 'hmac-sha256', 'sign')`.
 */
export async function signSessionMacResponse(response: HttpResponse, request: HttpRequest, requestNonce: string, s2c: Uint8Array | KeyHandle, options: SessionMacResponseOptions = {}): Promise<Fields> {
  const streamed = options.streamedEncryptedBody === true;
  const added: Fields = {};
  if (!streamed) {
    const body = response.body ?? new Uint8Array(0);
    added['content-digest'] = [createContentDigestSync(body) ?? (await createContentDigest(body))];
  }
  const created = Math.floor((options.now ?? (() => Date.now() / 1000))());
  const expires = created + RESPONSE_SIGNATURE_SECONDS;
  const nonce = encodeBase64Url(randomBytes(16));
  const key = s2c instanceof Uint8Array ? await hmacKey(s2c) : s2c;
  // The prepared path: the components of this shape of response parsed and serialized once, the
  // parameters (integers, base64url, the tag, a printable request nonce) written directly, only the
  // covered fields handed to the signature base, and a synchronous MAC. Anything else takes
  // signMessage, the reference, which a differential test runs against this path.
  if (created >= 0 && expires <= MAX_SF_INTEGER && typeof requestNonce === 'string' && PRINTABLE_ASCII.test(requestNonce)) {
    const prepared = preparedResponseComponents(response.headers, added, streamed);
    const signatureParams = `${prepared.serialized};created=${created};expires=${expires};nonce="${nonce}";${TAG_PARAM};${REQUEST_NONCE_PARAM}=${sfString(requestNonce)}`;
    const covered: Fields = { ...added };
    for (const field of prepared.fromResponse) covered[field] = response.headers[field]!;
    const mac = signPreparedSync({ status: response.status, headers: covered }, prepared.components, signatureParams, key, request);
    if (mac !== undefined) {
      added['signature-input'] = [`${LABEL}=${signatureParams}`];
      added['signature'] = [`${LABEL}=:${mac}:`];
      return added;
    }
  }
  const headers: Fields = { ...response.headers, ...added };
  delete headers['signature-input'];
  delete headers['signature'];
  const params = { created, expires, nonce, tag: SESSION_MAC_TAG, [REQUEST_NONCE_PARAM]: requestNonce };
  const signed = await signMessage({ ...response, headers }, { label: LABEL, components: responseComponents((field) => fieldLines(headers, field) !== undefined, streamed), params, key, request });
  added['signature-input'] = [signed.signatureInput];
  added['signature'] = [signed.signature];
  return added;
}

/** What a symmetric response signature covers, given the fields it is sent with (docs/protocol.md section 7.11). */
function responseComponents(present: (field: string) => boolean, streamed: boolean): string[] {
  const components = ['@status'];
  for (const field of RESPONSE_WHEN_PRESENT) if (present(field)) components.push(field);
  if (!streamed) components.push('content-digest');
  for (const component of RESPONSE_REQUEST_COMPONENTS) components.push(`"${component}";req`);
  return components;
}

/** A response shape's covered components, parsed and serialized once (at most 32 shapes). */
interface PreparedResponse {
  readonly components: readonly ComponentIdentifier[];
  readonly serialized: string;
  /** The covered fields the signature base reads from the response's own fields. */
  readonly fromResponse: readonly string[];
}
const preparedResponses = new Map<string, PreparedResponse>();

function preparedResponseComponents(responseHeaders: Fields, added: Fields, streamed: boolean): PreparedResponse {
  const present = (field: string) => Object.hasOwn(added, field) || fieldLines(responseHeaders, field) !== undefined;
  let shape = streamed ? 's' : 'd';
  for (const field of RESPONSE_WHEN_PRESENT) shape += present(field) ? '1' : '0';
  let entry = preparedResponses.get(shape);
  if (entry === undefined) {
    const fromResponse = RESPONSE_WHEN_PRESENT.filter((field) => present(field) && !Object.hasOwn(added, field));
    const list = responseComponents(present, streamed);
    // serializeSignatureParams parses and checks the identifiers as signMessage does.
    entry = Object.freeze({ components: Object.freeze(list.map(toComponent)), serialized: serializeSignatureParams(list), fromResponse: Object.freeze(fromResponse) });
    preparedResponses.set(shape, entry);
  }
  return entry;
}

// ---------------------------------------------------------------------------------------------
// The caller's side.

/** Options of {@link signSessionMacRequest}. */
export interface SignSessionMacRequestOptions {
  /** `K_c2s` of the session (32 octets). */
  key: Uint8Array;
  /** The signature's nonce: the `N` the body's key was derived from. */
  nonce: string;
  /** `oidc2-aud`: the `AUD` the body's key was derived from. */
  audience: string;
  /** Signature lifetime in seconds, 1 to 300. Default 60. */
  expiresIn?: number;
  /** Clock in unix seconds. Default `Date.now() / 1000`. */
  now?: () => number;
  /** `Content-Digest` algorithm of a body. Default `'sha-256'`. */
  digestAlgorithm?: ContentDigestAlgorithm;
}

/**
 * Signs a session request under `K_c2s` (docs/protocol.md section 7.11): adds `Content-Digest` for a
 * body, `Signature-Input` and `Signature` covering `@method`, `@path`, `@query`, `oidc2-session` and
 * each of `content-type`, `content-encoding`, `content-digest`, `authorization`, `txn-token` present.
 * The request must carry `Oidc2-Session` and no `Oidc2-Key-Share` (a rekey is signed with the
 * caller's key). Returns the request with its new fields.
 *
 * @throws TypeError for such a request or bad options.
 */
export async function signSessionMacRequest<R extends HttpRequest>(request: R, options: SignSessionMacRequestOptions): Promise<R> {
  if (!(options.key instanceof Uint8Array) || options.key.length !== 32) throw argumentError('ERR_INVALID_ARG_VALUE', 'options.key must be K_c2s, 32 octets');
  if (typeof options.nonce !== 'string' || !nonceAccepted(OIDC2_PROFILE, options.nonce)) throw argumentError('ERR_INVALID_ARG_VALUE', `options.nonce must be ${nonceRule(OIDC2_PROFILE)}`);
  if (typeof options.audience !== 'string' || options.audience.length === 0) throw argumentError('ERR_INVALID_ARG_VALUE', 'options.audience must be the target URI');
  const expiresIn = options.expiresIn ?? 60;
  if (!Number.isInteger(expiresIn) || expiresIn < 1 || expiresIn > 300) throw argumentError('ERR_INVALID_ARG_VALUE', 'options.expiresIn must be an integer from 1 to 300');
  if (!fieldLines(request.headers, SESSION_FIELD) || fieldLines(request.headers, KEY_SHARE_FIELD)) {
    throw argumentError('ERR_INVALID_ARG_VALUE', 'a session MAC signs a request with Oidc2-Session and without Oidc2-Key-Share');
  }
  const headers: Fields = { ...request.headers };
  delete headers['signature-input'];
  delete headers['signature'];
  if (request.body !== undefined && request.body.length > 0) headers['content-digest'] = [await createContentDigest(request.body, options.digestAlgorithm ?? 'sha-256')];
  const components = [...REQUEST_COMPONENTS];
  for (const field of REQUEST_WHEN_PRESENT) if (fieldLines(headers, field)) components.push(field);
  const created = Math.floor((options.now ?? (() => Date.now() / 1000))());
  const params = { created, expires: created + expiresIn, nonce: options.nonce, tag: SESSION_MAC_TAG, [AUDIENCE_PARAM]: options.audience };
  const message = { ...request, headers };
  const signed = await signMessage(message, { label: LABEL, components, params, key: await hmacKey(options.key) });
  headers['signature-input'] = [signed.signatureInput];
  headers['signature'] = [signed.signature];
  return message;
}

/** Options of {@link verifySessionMacResponse}. */
export interface VerifySessionMacResponseOptions {
  /** The request exactly as sent. */
  request: HttpRequest;
  /** The request signature's nonce, which the response must repeat. */
  nonce: string;
  /** `K_s2c` of the session (32 octets). */
  key: Uint8Array;
  /** Allowed clock skew in seconds. Default 60. */
  clockTolerance?: number;
  /** Clock in unix seconds. Default `Date.now() / 1000`. */
  now?: () => number;
  /** Accept a response without `Content-Digest` whose only coding is `aes128gcm` (a streamed body, docs/protocol.md section 7.7). Default false. */
  streamedEncryptedBody?: boolean;
}

function coversReq(components: readonly ComponentIdentifier[], name: string, req: boolean): boolean {
  return components.some((c) => c.name === name && (c.params.req === true) === req && c.params.key === undefined && c.params.name === undefined);
}

/**
 * Verifies the service's MAC-signed response to a symmetric session request, failing closed: exactly
 * one signature tagged `oidc2-session`, no `keyid`/`alg`, coverage as {@link signSessionMacResponse}
 * makes it, `oidc2-req-nonce` equal to the request's nonce, the time window, the MAC under `K_s2c`
 * (constant time), and the body's `Content-Digest`.
 *
 * @throws Oidc2Error `response_unsigned` (no such signature) or `response_signature_invalid`.
 */
export async function verifySessionMacResponse(response: HttpResponse, options: VerifySessionMacResponseOptions): Promise<void> {
  if (!(options.key instanceof Uint8Array) || options.key.length !== 32) throw argumentError('ERR_INVALID_ARG_VALUE', 'options.key must be K_s2c, 32 octets');
  const invalid = (message: string, cause?: unknown) => new Oidc2Error('response_signature_invalid', message, cause === undefined ? undefined : { cause });
  let entry: SignatureInputEntry | undefined;
  let signature: Uint8Array | undefined;
  try {
    entry = sessionMacEntry(parseSignatureInput(fieldLines(response.headers, 'signature-input'), { maxBytes: MAX_FIELD_BYTES }));
    if (entry) signature = parseSignature(fieldLines(response.headers, 'signature'), { maxBytes: MAX_FIELD_BYTES }).get(entry.label);
  } catch (error) {
    throw invalid('the response signature fields are malformed', error);
  }
  if (!entry || !signature) throw new Oidc2Error('response_unsigned', `the response carries no signature tagged ${SESSION_MAC_TAG}`);
  const p = entry.params;
  if (p.keyid !== undefined || p.alg !== undefined) throw invalid('keyid and alg must not appear in a session signature');
  const digestLines = fieldLines(response.headers, 'content-digest');
  const streamed = options.streamedEncryptedBody === true && digestLines === undefined && fieldLines(response.headers, 'content-encoding')?.join(',').trim().toLowerCase() === 'aes128gcm';
  const required: Array<[string, boolean]> = [['@status', false]];
  if (!streamed) required.push(['content-digest', false]);
  for (const field of RESPONSE_WHEN_PRESENT) if (fieldLines(response.headers, field)) required.push([field, false]);
  for (const component of RESPONSE_REQUEST_COMPONENTS) required.push([component, true]);
  for (const [name, req] of required) {
    if (!coversReq(entry.components, name, req)) throw invalid(`the response signature must cover ${name}${req ? ';req' : ''}`);
  }
  if (p[REQUEST_NONCE_PARAM] !== options.nonce) throw invalid('the response is not bound to this request');
  if (typeof p.created !== 'number' || typeof p.expires !== 'number' || typeof p.nonce !== 'string') throw invalid('created, expires and nonce are required');
  const now = (options.now ?? (() => Date.now() / 1000))();
  const tolerance = options.clockTolerance ?? 60;
  if (p.created > now + tolerance || p.expires < now - tolerance) throw invalid('the response signature is outside its time window');
  let valid: boolean;
  try {
    valid = await verifyMessageSignature(response, entry, signature, await hmacKey(options.key), { request: options.request });
  } catch (error) {
    throw invalid(`the response signature base cannot be rebuilt (${isOidc2Error(error) ? error.code : 'invalid'})`, error);
  }
  if (!valid) throw invalid('the response signature does not verify with the session key');
  if (!streamed) {
    try {
      await verifyContentDigest(digestLines, response.body ?? new Uint8Array(0), { required: true });
    } catch (error) {
      throw invalid(`the response body does not match its digest (${isOidc2Error(error) ? error.code : 'invalid'})`, error);
    }
  }
}
