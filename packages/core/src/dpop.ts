/**
 * RFC 9449 DPoP proofs for ICTs presented as `Authorization: DPoP <ICT>` (docs/protocol.md section 3): making
 * them (the caller's side) and verifying them, and stateless server nonces (RFC 9449 section 9).
 */
import type { JWK } from 'jose';
import { Oidc2Error } from './errors.js';
import { jwkThumbprint, parsePublicJwk } from './lib/jwk.js';
import { createNonce } from './request-signing.js';
import { decodeBase64Url, decodeJsonSegment, encodeBase64Url, fromUtf8, utf8 } from './lib/base64.js';
import { ASYMMETRIC_JWA, algorithmSpec, assertKeyFitsAlgorithm, digest, importKey, randomBytes, sign, timingSafeEqual, verify, type KeyHandle } from './lib/crypto.js';
import type { ReplayStore } from './replay-store.js';
import { argumentError, assertOptions } from './lib/validate.js';

/** Options of {@link createDpopNonces}. */
export interface DpopNonceOptions {
  /**
   * HMAC-SHA256 key, at least 32 bytes. Every instance behind one audience must share it, or a
   * nonce issued by one is refused by the others. Default: 32 random bytes per process.
   */
  secret?: Uint8Array;
  /** Seconds a nonce stays acceptable after it was issued. Default `300`. */
  lifetime?: number;
}

/** Every key of {@link DpopNonceOptions}: any other key is refused with `ERR_UNKNOWN_OPTION`. */
export const DPOP_NONCE_OPTION_KEYS = Object.freeze(['secret', 'lifetime'] as const satisfies ReadonlyArray<keyof DpopNonceOptions>);

/** Issues and checks DPoP server nonces without server-side state. */
export interface DpopNonces {
  /** A fresh nonce for `DPoP-Nonce` (27 base64url characters). `now` in unix seconds. */
  issue(now: number): Promise<string>;
  /** True when `nonce` was issued by this secret at most `lifetime` seconds before `now`. */
  check(nonce: string, now: number): Promise<boolean>;
}

// A nonce is base64url(issued-at as 32-bit seconds || first 16 bytes of HMAC-SHA256(secret,
// label || issued-at)). Issuing twice in one second gives the same nonce, which is harmless: a
// nonce only limits how far ahead of use a proof can be made.
const NONCE_LABEL = utf8('oidc2 dpop-nonce v1');
const NONCE_PATTERN = /^[A-Za-z0-9_-]{27}$/;
// Allowance for instances sharing a secret whose clocks differ slightly.
const NONCE_SKEW = 5;

/**
 * Creates stateless DPoP nonces: HMAC over the issuing second, checked in constant time.
 *
 * @example
 * ```ts
 * const nonces = createDpopNonces({ secret: sharedSecret });
 * res.setHeader('DPoP-Nonce', await nonces.issue(Date.now() / 1000));
 * ```
 */
export function createDpopNonces(options: DpopNonceOptions = {}): DpopNonces {
  assertOptions(options as unknown, DPOP_NONCE_OPTION_KEYS, 'options');
  const secret = options.secret ?? randomBytes(32);
  if (!(secret instanceof Uint8Array) || secret.length < 32) throw argumentError('ERR_INVALID_ARG_VALUE', 'options.secret must be at least 32 bytes');
  const lifetime = options.lifetime ?? 300;
  if (typeof lifetime !== 'number' || !Number.isFinite(lifetime) || lifetime <= 0) {
    throw argumentError('ERR_INVALID_ARG_VALUE', 'options.lifetime must be a positive number of seconds');
  }
  const key = importKey(secret.slice(), 'HS256', 'sign');

  async function mac(issuedAt: number): Promise<Uint8Array> {
    const data = new Uint8Array(NONCE_LABEL.length + 4);
    data.set(NONCE_LABEL);
    new DataView(data.buffer).setUint32(NONCE_LABEL.length, issuedAt);
    return (await sign(await key, data)).subarray(0, 16);
  }

  return {
    async issue(now) {
      if (!Number.isFinite(now) || now < 0 || now >= 2 ** 32) throw argumentError('ERR_INVALID_ARG_VALUE', 'now must be unix seconds');
      const issuedAt = Math.floor(now);
      const out = new Uint8Array(20);
      new DataView(out.buffer).setUint32(0, issuedAt);
      out.set(await mac(issuedAt), 4);
      return encodeBase64Url(out);
    },
    async check(nonce, now) {
      if (typeof nonce !== 'string' || !NONCE_PATTERN.test(nonce)) return false;
      const bytes = decodeBase64Url(nonce);
      if (!bytes || bytes.length !== 20) return false;
      const issuedAt = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0);
      if (!(now - issuedAt <= lifetime && issuedAt - now <= NONCE_SKEW)) return false;
      return timingSafeEqual(await mac(issuedAt), bytes.subarray(4));
    },
  };
}

/** Options of {@link verifyDpopProof}. Times in unix seconds, durations in seconds. */
export interface DpopVerifyOptions {
  /** The request method; `htm` must equal it exactly. */
  method: string;
  /** The expected target URI (absolute http(s)); query and fragment, if any, are ignored. */
  htu: string;
  /**
   * The access token (the ICT) the proof must be bound to through `ath`. `null` only where no
   * access token is presented (a token endpoint, RFC 9449 section 5): then the proof must carry no `ath`.
   */
  accessToken: string | null;
  /**
   * RFC 7638 thumbprint of the key the access token is bound to (`VerifiedIct.thumbprint`). `null`
   * only where the proof itself introduces the key (a token endpoint): then any key is accepted
   * and the caller must bind the returned `thumbprint` itself.
   */
  expectedThumbprint: string | null;
  /** The current time. */
  now: number;
  /** Leeway around `iat`. Default `60`. */
  clockTolerance?: number;
  /** Oldest accepted `iat`, as seconds before `now`. Default `300`. */
  maxAge?: number;
  /** Where `jti`s are recorded. */
  replayStore: ReplayStore;
  /** When given, a valid server nonce is required in the proof. Default: none. */
  nonces?: DpopNonces;
  /** Accepted proof algorithms, a subset of the asymmetric allow-list. Default: all of {@link ASYMMETRIC_JWA}. */
  algorithms?: string[];
  /** Largest accepted proof, in bytes. Default `8192`. */
  maxProofBytes?: number;
  /**
   * Runs when every check has passed, immediately before the `jti` is recorded; when it throws,
   * the `jti` is not recorded and the error propagates. Default none.
   */
  beforeRecord?: (proof: VerifiedDpopProof) => Promise<void> | void;
}

/** Every key of {@link DpopVerifyOptions}: any other key is refused with `ERR_UNKNOWN_OPTION`. */
export const DPOP_VERIFY_OPTION_KEYS = Object.freeze([
  'method',
  'htu',
  'accessToken',
  'expectedThumbprint',
  'now',
  'clockTolerance',
  'maxAge',
  'replayStore',
  'nonces',
  'algorithms',
  'maxProofBytes',
  'beforeRecord',
] as const satisfies ReadonlyArray<keyof DpopVerifyOptions>);

/** What a verified proof establishes. */
export interface VerifiedDpopProof {
  /** The proof key (public members only). */
  jwk: JWK;
  /** Its RFC 7638 thumbprint (equal to `expectedThumbprint` when one was given). */
  thumbprint: string;
  jti: string;
  iat: number;
}

const SEGMENT = /^[A-Za-z0-9_-]+$/;
const MAX_JTI = 256;


const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

/**
 * `scheme://host[:port]/path` after RFC 3986 syntax- and scheme-based normalisation (RFC 9449
 * section 4.3): lower-case scheme and host, default port dropped, dot segments removed,
 * percent-encodings of unreserved characters decoded and the others upper-cased. Query and
 * fragment are dropped. Undefined for anything but an absolute http(s) URI without userinfo.
 */
function normalizeHtu(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.username || url.password) return undefined;
  const path = url.pathname.replace(/%[0-9A-Fa-f]{2}/g, (m) => {
    const c = String.fromCharCode(parseInt(m.slice(1), 16));
    return UNRESERVED.test(c) ? c : m.toUpperCase();
  });
  return `${url.protocol}//${url.host}${path}`;
}

function sameString(a: string, b: string): boolean {
  return timingSafeEqual(utf8(a), utf8(b));
}

/**
 * Verifies an RFC 9449 DPoP proof for a request carrying `Authorization: DPoP <accessToken>`.
 *
 * Checks: one compact JWS within the size limit; `typ` exactly `dpop+jwt`; `alg` allowed; a
 * public `jwk` header fitting `alg`, whose thumbprint equals `expectedThumbprint`; the signature;
 * `jti`, `htm`, `htu`, `iat` within `[now - maxAge - clockTolerance, now + clockTolerance]`, `ath`;
 * the server nonce when `nonces` is given; and last, `jti` not seen before (recorded for as long
 * as the proof could be accepted).
 *
 * Throws `Oidc2Error`: `dpop_invalid` with `WWW-Authenticate: DPoP error="invalid_dpop_proof"`;
 * `dpop_nonce_required` with `error="use_dpop_nonce"` and a fresh `DPoP-Nonce`; `replay_detected`;
 * or the replay store's `replay_store_unavailable`. Header names in `headers` are lower case.
 *
 * @example
 * ```ts
 * const ict = await ictVerifier.verify(token, { allowJkt: true });
 * const proof = await verifyDpopProof(dpopHeader, {
 *   method: 'GET', htu: 'https://api.example/accounts', accessToken: token,
 *   expectedThumbprint: ict.thumbprint, now: Date.now() / 1000, replayStore,
 * });
 * ```
 */
export async function verifyDpopProof(proof: string, options: DpopVerifyOptions): Promise<VerifiedDpopProof> {
  assertOptions(options as unknown, DPOP_VERIFY_OPTION_KEYS, 'options');
  const { method, accessToken, expectedThumbprint, now, replayStore, nonces } = options;
  if (typeof method !== 'string' || method.length === 0) throw argumentError('ERR_INVALID_ARG_VALUE', 'options.method must be a non-empty string');
  const htu = typeof options.htu === 'string' ? normalizeHtu(options.htu) : undefined;
  if (!htu) throw argumentError('ERR_INVALID_ARG_VALUE', 'options.htu must be an absolute http(s) URI');
  if (accessToken !== null && (typeof accessToken !== 'string' || accessToken.length === 0)) {
    throw argumentError('ERR_INVALID_ARG_VALUE', 'options.accessToken must be a non-empty string or null');
  }
  if (expectedThumbprint !== null && (typeof expectedThumbprint !== 'string' || expectedThumbprint.length === 0)) {
    throw argumentError('ERR_INVALID_ARG_VALUE', 'options.expectedThumbprint must be a non-empty string or null');
  }
  if (typeof now !== 'number' || !Number.isFinite(now)) throw argumentError('ERR_INVALID_ARG_VALUE', 'options.now must be a finite number');
  if (!replayStore || typeof replayStore.checkAndRecord !== 'function') throw argumentError('ERR_INVALID_ARG_TYPE', 'options.replayStore must implement checkAndRecord');
  const tolerance = options.clockTolerance ?? 60;
  const maxAge = options.maxAge ?? 300;
  const maxProofBytes = options.maxProofBytes ?? 8192;
  for (const [name, v] of [['clockTolerance', tolerance], ['maxAge', maxAge], ['maxProofBytes', maxProofBytes]] as const) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw argumentError('ERR_INVALID_ARG_VALUE', `options.${name} must be a non-negative number`);
  }
  const algorithms: readonly string[] = options.algorithms ?? ASYMMETRIC_JWA;
  if (!Array.isArray(algorithms) || algorithms.length === 0 || algorithms.some((a) => !(ASYMMETRIC_JWA as readonly string[]).includes(a))) {
    throw argumentError('ERR_INVALID_ARG_VALUE', `options.algorithms must be a non-empty subset of ${ASYMMETRIC_JWA.join(', ')}`);
  }

  const algs = algorithms.join(' ');
  const challenge = (error: string, description: string) => `DPoP error="${error}", error_description="${description}", algs="${algs}"`;
  const invalid = (description: string) =>
    new Oidc2Error('dpop_invalid', description, { headers: { 'www-authenticate': challenge('invalid_dpop_proof', description) } });

  // 1. Shape and header.
  if (typeof proof !== 'string' || proof.length > maxProofBytes) throw invalid('the DPoP proof is missing or too large');
  const parts = proof.split('.');
  if (parts.length !== 3 || !parts.every((p) => SEGMENT.test(p))) throw invalid('the DPoP proof is not a compact JWS');
  const header = decodeJsonSegment(parts[0]!);
  if (!header) throw invalid('the DPoP proof header is not a JSON object');
  if (header.typ !== 'dpop+jwt') throw invalid('the DPoP proof typ must be dpop+jwt');
  const alg = header.alg;
  if (typeof alg !== 'string' || !algorithms.includes(alg)) throw invalid('the DPoP proof alg is not allowed');
  // No JWS extension is understood here, so none may be critical (RFC 7515 section 4.1.11).
  if (header.crit !== undefined) throw invalid('the DPoP proof header must not carry crit');
  const jwk = parsePublicJwk(header.jwk);
  if (!jwk) throw invalid('the DPoP proof jwk must be a supported public key');
  const jwkAlg = (header.jwk as { alg?: unknown }).alg;
  try {
    if (jwkAlg !== undefined && jwkAlg !== alg) throw new TypeError('alg mismatch');
    assertKeyFitsAlgorithm(jwk, algorithmSpec(alg)!);
  } catch {
    throw invalid('the DPoP proof jwk does not fit its alg');
  }

  // 2. Key binding, then the signature.
  const thumbprint = await jwkThumbprint(jwk);
  if (expectedThumbprint !== null && !sameString(thumbprint, expectedThumbprint)) throw invalid('the DPoP proof key is not the key the token is bound to');
  const payload = decodeJsonSegment(parts[1]!);
  if (!payload) throw invalid('the DPoP proof payload is not a JSON object');
  let key: KeyHandle;
  try {
    key = await importKey(jwk, alg, 'verify');
  } catch {
    throw invalid('the DPoP proof jwk cannot be imported');
  }
  const signature = decodeBase64Url(parts[2]!);
  if (!signature || !(await verify(key, utf8(`${parts[0]}.${parts[1]}`), signature))) throw invalid('the DPoP proof signature does not verify');

  // 3. Claims.
  const { jti, htm, iat, ath } = payload;
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > MAX_JTI) throw invalid(`the DPoP proof jti must be a string of 1 to ${MAX_JTI} characters`);
  if (htm !== method) throw invalid('the DPoP proof htm does not match the request method');
  if (typeof payload.htu !== 'string' || normalizeHtu(payload.htu) !== htu) throw invalid('the DPoP proof htu does not match the request URI');
  if (typeof iat !== 'number' || !Number.isFinite(iat)) throw invalid('the DPoP proof iat must be a number');
  if (iat > now + tolerance) throw invalid('the DPoP proof was issued in the future');
  if (iat < now - maxAge - tolerance) throw invalid('the DPoP proof is too old');
  if (accessToken === null) {
    if (ath !== undefined) throw invalid('the DPoP proof carries ath but no access token was presented');
  } else {
    const expectedAth = encodeBase64Url(await digest('SHA-256', utf8(accessToken)));
    if (typeof ath !== 'string' || !sameString(ath, expectedAth)) throw invalid('the DPoP proof ath does not match the access token');
  }

  // 4. Server nonce.
  if (nonces && !(typeof payload.nonce === 'string' && (await nonces.check(payload.nonce, now)))) {
    const description = 'a fresh server nonce is required in the DPoP proof';
    throw new Oidc2Error('dpop_nonce_required', description, {
      headers: { 'www-authenticate': challenge('use_dpop_nonce', description), 'dpop-nonce': await nonces.issue(now) },
    });
  }

  // 5. Only now, with everything else verified, spend the jti.
  await options.beforeRecord?.({ jwk, thumbprint, jti, iat });
  if (!(await replayStore.checkAndRecord(`dpop:${thumbprint}:${jti}`, iat + maxAge + tolerance, now))) {
    const description = 'this DPoP proof was used before';
    throw new Oidc2Error('replay_detected', description, { headers: { 'www-authenticate': challenge('invalid_dpop_proof', description) } });
  }
  return { jwk, thumbprint, jti, iat };
}

/** Options of {@link createDpopProof}. */
export interface DpopProofOptions {
  method: string;
  /** Target URI; query and fragment are removed. */
  url: string;
  /** The private key, whose public JWK is `jwk`. */
  key: KeyHandle;
  /** The public JWK placed in the proof header. */
  jwk: JWK;
  /** The token the proof is bound to (`ath`). */
  accessToken?: string;
  /** A server nonce from `DPoP-Nonce`. */
  nonce?: string;
  /** Clock in unix seconds. Default `Date.now() / 1000`. */
  now?: () => number;
}

/** Every key of {@link DpopProofOptions}: any other key is refused with `ERR_UNKNOWN_OPTION`. */
export const DPOP_PROOF_OPTION_KEYS = Object.freeze(['method', 'url', 'key', 'jwk', 'accessToken', 'nonce', 'now'] as const satisfies ReadonlyArray<keyof DpopProofOptions>);

/**
 * Creates an RFC 9449 DPoP proof JWT with the caller's key (which may be a non-extractable CryptoKey).
 *
 * @example
 * ```ts
 * const proof = await createDpopProof({ method: 'GET', url, key, jwk: publicJwk, accessToken: ict })
 * // the response to this request is verified with `binding: dpopBinding()`
 * ```
 */
export async function createDpopProof(options: DpopProofOptions): Promise<string> {
  assertOptions(options as unknown, DPOP_PROOF_OPTION_KEYS, 'options');
  const alg = options.key.spec.name === 'ed25519' ? 'Ed25519' : options.key.spec.name;
  if (!/^(ES|PS|RS)(256|384|512)$|^Ed(DSA|25519)$/.test(alg)) throw argumentError('ERR_INVALID_ARG_VALUE', `${alg} is not a JWA signature algorithm`);
  const header = { typ: 'dpop+jwt', alg, jwk: options.jwk };
  const payload: Record<string, unknown> = {
    jti: createNonce(),
    htm: options.method.toUpperCase(),
    htu: options.url.split(/[?#]/, 1)[0],
    iat: Math.floor((options.now ?? (() => Date.now() / 1000))()),
  };
  if (options.accessToken !== undefined) payload.ath = encodeBase64Url(await digest('SHA-256', utf8(options.accessToken)));
  if (options.nonce !== undefined) payload.nonce = options.nonce;
  const input = `${encodeBase64Url(utf8(JSON.stringify(header)))}.${encodeBase64Url(utf8(JSON.stringify(payload)))}`;
  return `${input}.${encodeBase64Url(await sign(options.key, utf8(input)))}`;
}
