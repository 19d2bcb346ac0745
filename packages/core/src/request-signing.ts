/**
 * The caller's side of PROFILE section 2: sign a request with the ICT's key (RFC 9421) or make a
 * DPoP proof (RFC 9449). Runs in browsers and Node alike.
 */
import { createContentDigest } from './content-digest.js';
import { fieldLines, normalizeFields, type Fields, type FieldsInit, type HttpRequest } from './message.js';
import { parseSignatureInput, signMessage } from './rfc9421/index.js';
import { encodeBase64Url, utf8 } from './lib/base64.js';
import { digest, randomBytes, sign, type KeyHandle } from './lib/crypto.js';
import { COVERED_WHEN_PRESENT, ICT_HEADER, ICT_SIGNATURE_TAG, REQUIRED_REQUEST_COMPONENTS } from './profile.js';
import { normalizeTarget } from './lib/audience.js';
import type { JWK } from 'jose';
import { argumentError } from './lib/validate.js';

/** A request to sign. */
export interface SignableRequest {
  method: string;
  /** Absolute URL of the target. */
  url: string;
  headers?: FieldsInit;
  body?: Uint8Array;
}

/** A signed request: the original plus the added fields. */
export interface SignedRequest extends HttpRequest {
  /** The signature nonce: the service's response signature must carry it as `oidc2-req-nonce`. */
  nonce: string;
}

/** Options of {@link signRequest}. */
export interface SignRequestOptions {
  /** The caller's ICT (compact JWT). */
  ict: string;
  /** The private key certified by the ICT, as a handle from `importKey(jwk, alg, 'sign')`. */
  key: KeyHandle;
  /** `oidc2-aud`: the target URI without query or fragment as the caller knows it. Default: from `url`. */
  audience?: string;
  /** Ask the service for a signed response (`oidc2-sign-response`). Default true. */
  signResponse?: boolean;
  /** Signature lifetime in seconds (`expires - created`), at most 300. Default 60. */
  expiresIn?: number;
  /** Further components to cover, e.g. `['@authority']`. Default none. */
  components?: string[];
  /** Digest algorithm for `Content-Digest`. Default `sha-256`. */
  digestAlgorithm?: 'sha-256' | 'sha-512';
  /** Clock in unix seconds. Default `Date.now() / 1000`. */
  now?: () => number;
}

/** A fresh 128-bit nonce, base64url. */
export function createNonce(): string {
  // Drawn from a pool of CSPRNG output refilled 4 KiB at a time: one system call per 256 nonces
  // instead of one per nonce. Each byte is handed out once.
  if (poolOffset + 16 > noncePool.length) {
    noncePool = randomBytes(4096);
    poolOffset = 0;
  }
  const nonce = encodeBase64Url(noncePool.subarray(poolOffset, poolOffset + 16));
  noncePool.fill(0, poolOffset, poolOffset + 16);
  poolOffset += 16;
  return nonce;
}
let noncePool: Uint8Array = new Uint8Array(0);
let poolOffset = 0;

/**
 * Signs a request as PROFILE section 2.1 requires: adds `Identity-Certification-Token`,
 * `Content-Digest` (when there is a body), `Signature-Input` and `Signature` tagged `oidc2-ict`.
 *
 * @example
 * ```ts
 * const key = await importKey(privateJwk, 'ES256', 'sign')
 * const signed = await signRequest({ method: 'GET', url: 'https://api.example.com/me' }, { ict, key })
 * await fetch(signed.url, { method: signed.method, headers: toHeaders(signed.headers) })
 * ```
 */
export async function signRequest(request: SignableRequest, options: SignRequestOptions): Promise<SignedRequest> {
  if (typeof options?.ict !== 'string' || options.ict.length === 0) throw argumentError('ERR_INVALID_ARG_VALUE', 'options.ict must be a compact JWT');
  if (!options.key || options.key.usage !== 'sign') throw argumentError('ERR_INVALID_ARG_VALUE', 'options.key must be a signing key handle');
  const expiresIn = options.expiresIn ?? 60;
  if (!Number.isInteger(expiresIn) || expiresIn < 1 || expiresIn > 300) {
    throw argumentError('ERR_INVALID_ARG_VALUE', 'options.expiresIn must be an integer from 1 to 300');
  }
  const audience = normalizeTarget((options.audience ?? request.url).split(/[?#]/, 1)[0]!);
  if (audience === undefined) throw argumentError('ERR_INVALID_ARG_VALUE', 'the request URL (or options.audience) must be an absolute http(s) URL');
  const headers: Fields = normalizeFields(request.headers);
  headers[ICT_HEADER] = [options.ict];
  const body = request.body && request.body.length > 0 ? request.body : undefined;
  if (body) headers['content-digest'] = [await createContentDigest(body, options.digestAlgorithm ?? 'sha-256')];

  const components: string[] = [...REQUIRED_REQUEST_COMPONENTS];
  for (const field of COVERED_WHEN_PRESENT) if (fieldLines(headers, field) && !components.includes(field)) components.push(field);
  for (const extra of options.components ?? []) if (!components.includes(extra)) components.push(extra);

  const created = Math.floor((options.now ?? (() => Date.now() / 1000))());
  const nonce = createNonce();
  const params: Record<string, string | number | boolean> = {
    created,
    expires: created + expiresIn,
    nonce,
    tag: ICT_SIGNATURE_TAG,
    'oidc2-aud': audience,
  };
  if (options.signResponse ?? true) params['oidc2-sign-response'] = true;

  const message: HttpRequest = { method: request.method.toUpperCase(), url: request.url, headers, body };
  const taken = parseSignatureInput(fieldLines(headers, 'signature-input'));
  let label = 'sig';
  for (let i = 2; taken.has(label); i++) label = `sig${i}`;
  const signed = await signMessage(message, { label, components, params, key: options.key });
  (headers['signature-input'] ??= []).push(signed.signatureInput);
  (headers['signature'] ??= []).push(signed.signature);
  return { ...message, nonce };
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

/**
 * Creates an RFC 9449 DPoP proof JWT with the caller's key (which may be a non-extractable CryptoKey).
 *
 * @example
 * ```ts
 * const proof = await createDpopProof({ method: 'GET', url, key, jwk: publicJwk, accessToken: ict })
 * ```
 */
export async function createDpopProof(options: DpopProofOptions): Promise<string> {
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
