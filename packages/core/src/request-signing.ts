/**
 * The caller's side of docs/protocol.md sections 2 and 3a: sign a request with the key its token
 * certifies (RFC 9421), under a signature profile: OIDC² with an ICT, WIMSE with a WIT. Runs in
 * browsers and Node alike. DPoP proofs are made in `dpop.ts`, beside their verification.
 */
import { createContentDigest } from './content-digest.js';
import { fieldLines, normalizeFields, type Fields, type FieldsInit, type HttpRequest } from './message.js';
import { parseSignatureInput, signMessage } from './rfc9421/index.js';
import { encodeBase64Url } from './lib/base64.js';
import { randomBytes, type KeyHandle } from './lib/crypto.js';
import { OIDC2_PROFILE, WIMSE_PROFILE, nonceAccepted, nonceRule, type SignatureProfile } from './profile.js';
import { normalizeTarget } from './lib/audience.js';
import { argumentError, assertOptions } from './lib/validate.js';
import { signatureBinding, type RequestBinding } from './binding.js';

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
  /** The signature nonce: the service's response signature must repeat it (the profile's `requestNonceParam`). */
  nonce: string;
  /** What the service's response must be bound to: pass it to `verifyResponse` as `options.binding`. */
  binding: RequestBinding;
}

/** Options of {@link signRequest}. */
export interface SignRequestOptions {
  /** The caller's ICT (compact JWT): signs under the OIDC² profile. Exactly one of `ict` and `wit` is required. */
  ict?: string;
  /** The caller's WIT (compact JWT): signs under the WIMSE profile. Exactly one of `ict` and `wit` is required. */
  wit?: string;
  /**
   * The signature profile. Default {@link OIDC2_PROFILE} with `ict`, {@link WIMSE_PROFILE} (draft
   * -07) with `wit`; `WIMSE_06_PROFILE` signs in the form of draft -06. Its token kind must be
   * that of the token given.
   */
  profile?: SignatureProfile;
  /** The private key certified by the token, as a handle from `importKey(jwk, alg, 'sign')`. */
  key: KeyHandle;
  /** The profile's audience parameter: the target URI without query or fragment as the caller knows it. Default: from `url`. */
  audience?: string;
  /** Ask the service for a signed response (the profile's `signResponseParam`). Default true. */
  signResponse?: boolean;
  /** Signature lifetime in seconds (`expires - created`), at most 300. Default 60. */
  expiresIn?: number;
  /** Further components to cover, e.g. `['@authority']`. Default none. */
  components?: string[];
  /** Digest algorithm for `Content-Digest`. Default `sha-256`. */
  digestAlgorithm?: 'sha-256' | 'sha-512';
  /**
   * The signature's `nonce`, never used twice: at least 128 random bits, base64url (any string of 1
   * to 256 printable characters under the WIMSE profile). Set it only when something must be
   * derived from the nonce before signing (an end-to-end encrypted body's key, docs/protocol.md section 7.5).
   * Default: a fresh {@link createNonce}.
   */
  nonce?: string;
  /** Clock in unix seconds. Default `Date.now() / 1000`. */
  now?: () => number;
}

/** Every key of {@link SignRequestOptions}: any other key is refused with `ERR_UNKNOWN_OPTION`. */
export const SIGN_REQUEST_OPTION_KEYS = Object.freeze([
  'ict',
  'wit',
  'profile',
  'key',
  'audience',
  'signResponse',
  'expiresIn',
  'components',
  'digestAlgorithm',
  'nonce',
  'now',
] as const satisfies ReadonlyArray<keyof SignRequestOptions>);


/** A fresh 128-bit nonce, base64url (from the core's pooled CSPRNG output: each octet is handed out once). */
export function createNonce(): string {
  return encodeBase64Url(randomBytes(16));
}

/** The profile and token of a signRequest call, checked. */
function profileAndToken(options: SignRequestOptions): { profile: SignatureProfile; token: string } {
  const { ict, wit } = options;
  if ((ict === undefined) === (wit === undefined)) throw argumentError('ERR_INVALID_ARG_VALUE', 'options takes exactly one of ict and wit');
  const token = (ict ?? wit)!;
  const kind = ict !== undefined ? 'ict' : 'wit';
  if (typeof token !== 'string' || token.length === 0) throw argumentError('ERR_INVALID_ARG_VALUE', `options.${kind} must be a compact JWT`);
  const profile = options.profile ?? (kind === 'ict' ? OIDC2_PROFILE : WIMSE_PROFILE);
  if (typeof profile !== 'object' || profile === null || profile.token !== kind) {
    throw argumentError('ERR_INVALID_ARG_VALUE', `options.profile must be a signature profile whose token is the ${kind} given`);
  }
  return { profile, token };
}

/**
 * Signs a request as docs/protocol.md sections 2 and 3a require: adds the profile's token field (the
 * ICT, or the WIT under the WIMSE profile), `Content-Digest` (when there is a body),
 * `Signature-Input` and `Signature` tagged with the profile's tag. The result carries the
 * `binding` to verify the response with.
 *
 * @example
 * ```ts
 * const key = await importKey(privateJwk, 'ES256', 'sign')
 * const signed = await signRequest({ method: 'GET', url: 'https://api.example.com/me' }, { ict, key })
 * const res = await fetch(signed.url, { method: signed.method, headers: toHeaders(signed.headers) })
 * await verifyResponse(await toMessage(res), { request: signed, binding: signed.binding, ictVerifier })
 * ```
 * @example A workload with a WIT (draft-ietf-wimse-http-signature)
 * ```ts
 * const signed = await signRequest({ method: 'POST', url, headers, body }, { wit, key: witKey })
 * await verifyResponse(response, { request: signed, binding: signed.binding, witVerifier })
 * ```
 */
export async function signRequest(request: SignableRequest, options: SignRequestOptions): Promise<SignedRequest> {
  assertOptions(options as unknown, SIGN_REQUEST_OPTION_KEYS, 'options');
  const { profile, token } = profileAndToken(options);
  if (!options.key || options.key.usage !== 'sign') throw argumentError('ERR_INVALID_ARG_VALUE', 'options.key must be a signing key handle');
  const expiresIn = options.expiresIn ?? 60;
  if (!Number.isInteger(expiresIn) || expiresIn < 1 || expiresIn > 300) {
    throw argumentError('ERR_INVALID_ARG_VALUE', 'options.expiresIn must be an integer from 1 to 300');
  }
  const audience = normalizeTarget((options.audience ?? request.url).split(/[?#]/, 1)[0]!);
  if (audience === undefined) throw argumentError('ERR_INVALID_ARG_VALUE', 'the request URL (or options.audience) must be an absolute http(s) URL');
  const headers: Fields = normalizeFields(request.headers);
  headers[profile.tokenHeader] = [token];
  const body = request.body && request.body.length > 0 ? request.body : undefined;
  if (body) headers['content-digest'] = [await createContentDigest(body, options.digestAlgorithm ?? 'sha-256')];

  const components: string[] = [...profile.requiredComponents];
  for (const field of profile.coveredWhenPresent) if (fieldLines(headers, field) && !components.includes(field)) components.push(field);
  for (const extra of options.components ?? []) if (!components.includes(extra)) components.push(extra);

  const created = Math.floor((options.now ?? (() => Date.now() / 1000))());
  const nonce = options.nonce ?? createNonce();
  if (typeof nonce !== 'string' || !nonceAccepted(profile, nonce)) throw argumentError('ERR_INVALID_ARG_VALUE', `options.nonce must be ${nonceRule(profile)}`);
  const params: Record<string, string | number | boolean> = {
    created,
    expires: created + expiresIn,
    nonce,
    tag: profile.tag,
    [profile.audienceParam]: audience,
  };
  const signResponse = options.signResponse ?? true;
  if (signResponse) params[profile.signResponseParam] = true;

  const message: HttpRequest = { method: request.method.toUpperCase(), url: request.url, headers, body };
  const taken = parseSignatureInput(fieldLines(headers, 'signature-input'));
  let label = profile.label;
  for (let i = 2; taken.has(label); i++) label = `${profile.label}${i}`;
  const signed = await signMessage(message, { label, components, params, key: options.key });
  (headers['signature-input'] ??= []).push(signed.signatureInput);
  (headers['signature'] ??= []).push(signed.signature);
  return { ...message, nonce, binding: signatureBinding(profile, { nonce, audience, signResponse, headers }) };
}
