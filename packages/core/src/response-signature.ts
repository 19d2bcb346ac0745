/**
 * The service's answer (docs/protocol.md section 4): its own token (its ICT, or its WIT under the WIMSE
 * profile), `Content-Digest` over the body as sent and an RFC 9421 signature bound to the request;
 * and the caller's verification of that answer.
 */
import type { JWK } from 'jose';
import { Oidc2Error, isOidc2Error } from './errors.js';
import { fieldLines, type Fields, type HttpRequest, type HttpResponse } from './message.js';
import { createContentDigest, createContentDigestSync, verifyContentDigest } from './content-digest.js';
import { parseSignature, parseSignatureInput, serializeSignatureParams, signMessage, verifyMessageSignature, type ComponentIdentifier, type SignatureInputEntry } from './rfc9421/index.js';
import { signPreparedSync } from './rfc9421/http-signatures.js';
import { MAX_SF_INTEGER, PRINTABLE_ASCII, sfString, toComponent } from './rfc9421/components.js';
import { bindingProfile, boundRequestFields, type RequestBinding } from './binding.js';
import type { IctVerifier } from './ict.js';
import type { WitVerifier } from './wimse.js';
import type { SignatureProfile, TokenKind } from './profile.js';
import type { KeyHandle } from './lib/crypto.js';
import { createNonce } from './request-signing.js';
import { argumentError, assertOptions } from './lib/validate.js';

/** The service's credential: its token and the private key the token certifies. */
export interface ServiceCredential {
  /**
   * The service's token (compact JWT) as its responses carry it: its ICT, or its WIT when `kind`
   * is `'wit'` (the member keeps the name it had when services signed with ICTs only).
   */
  ict: string;
  /** Signing key handle for the key in the token's `cnf.jwk` (`importKey(jwk, alg, 'sign')`). */
  key: KeyHandle;
  /** Which token {@link ict} holds, and so which profile's responses it signs. Default `'ict'`. */
  kind?: TokenKind;
  /** RFC 7638 thumbprint of the token's `cnf.jwk`, for decision events. Default none. */
  thumbprint?: string;
}

/** Options of {@link signResponse}. */
export interface SignResponseOptions {
  /** Clock in unix seconds. Default `Date.now() / 1000`. */
  now?: () => number;
  /** Signature lifetime in seconds. Default 60. */
  expiresIn?: number;
  /** Digest algorithm. Default `sha-256`. */
  digestAlgorithm?: 'sha-256' | 'sha-512';
  /**
   * The body follows the signed head as a stream of `aes128gcm` records (docs/protocol.md section 7.7, docs/protocol.md
   * 7.7): no `Content-Digest` is added or covered, since the head goes out before the body exists; the
   * records are authenticated under a key bound to the signed exchange. The response must carry
   * `Content-Encoding: aes128gcm`. Default false.
   */
  streamedEncryptedBody?: boolean;
}

/** Every key of {@link SignResponseOptions}: any other key is refused with `ERR_UNKNOWN_OPTION`. */
export const SIGN_RESPONSE_OPTION_KEYS = Object.freeze(['now', 'expiresIn', 'digestAlgorithm', 'streamedEncryptedBody'] as const satisfies ReadonlyArray<keyof SignResponseOptions>);

/** Whether a message's only content coding is `aes128gcm`, as a streamed encrypted body's must be (docs/protocol.md sections 7.2, 7.7). */
export function encryptedCoding(headers: Fields): boolean {
  const lines = fieldLines(headers, 'content-encoding');
  return lines !== undefined && lines.join(',').trim().toLowerCase() === 'aes128gcm';
}

/**
 * Signs a response to an authenticated (or at least parsed) request, under the binding's signature
 * profile, with a credential of that profile's token kind. Returns the fields to set on the
 * response: the profile's token field (the service's ICT or WIT), `Content-Digest`,
 * `Signature-Input`, `Signature`. The signature covers the profile's request components with
 * `;req` (`@method`, `@path`, `@query`; `@request-target` for WIMSE -06) and the binding's request
 * fields (`"dpop";req`, `"authorization";req`), and repeats the binding's nonce. The body must be
 * the bytes exactly as sent (after any content coding).
 */
export async function signResponse(
  response: HttpResponse,
  request: HttpRequest,
  binding: RequestBinding,
  credential: ServiceCredential,
  options: SignResponseOptions = {},
): Promise<Fields> {
  assertOptions(options as unknown, SIGN_RESPONSE_OPTION_KEYS, 'options');
  const profile = bindingProfile(binding);
  if ((credential.kind ?? 'ict') !== profile.token) {
    throw argumentError('ERR_INVALID_ARG_VALUE', `credential must be a ${profile.token.toUpperCase()} credential: the binding's profile answers with its ${profile.tokenHeader}`);
  }
  const streamed = options.streamedEncryptedBody === true;
  if (streamed && (response.body !== undefined || !encryptedCoding(response.headers) || fieldLines(response.headers, 'content-digest') !== undefined)) {
    throw argumentError('ERR_INVALID_ARG_VALUE', 'a head is signed for a streamed body only when the body is aes128gcm-encoded, follows the head (no body given) and has no Content-Digest');
  }
  const algorithm = options.digestAlgorithm ?? 'sha-256';
  const added: Fields = { [profile.tokenHeader]: [credential.ict] };
  if (!streamed) added['content-digest'] = [createContentDigestSync(response.body ?? EMPTY, algorithm) ?? (await createContentDigest(response.body ?? EMPTY, algorithm))];
  const requestFields = boundRequestFields(binding);
  // The request's nonce travels in clear: another holder of a trusted ICT can sign a request of its
  // own with it, whose response would then verify as the answer to this one. Covering the caller's
  // ICT binds the response to the caller. (End-to-end encrypted exchanges are bound to both
  // identities by their key exchange already, and WIMSE responses keep the draft's form.)
  const coversCallerToken = binding.proof === 'http-signature' && profile.token === 'ict' && requestFields.length === 0 && fieldLines(request.headers, profile.tokenHeader)?.length === 1;
  const created = Math.floor((options.now ?? (() => Date.now() / 1000))());
  const expires = created + (options.expiresIn ?? 60);
  const nonce = createNonce();
  // The prepared path: the components of this shape of response parsed and serialized once, the
  // parameters (integers, base64url and the profile's tag, the request's nonce when it is printable
  // ASCII) written directly, only the covered fields handed to the signature base, and a
  // synchronous signature. Anything else takes signMessage, the reference, which a differential
  // test runs against this path.
  const prepared = preparedComponents(profile, response.headers, added, requestFields, streamed, coversCallerToken);
  const key = credential.key as KeyHandle | null | undefined;
  const simple = typeof key === 'object' && key !== null && typeof key.spec === 'object' && key.usage === 'sign';
  if (simple && created >= 0 && Number.isInteger(expires) && expires <= MAX_SF_INTEGER && (binding.nonce === undefined || (typeof binding.nonce === 'string' && PRINTABLE_ASCII.test(binding.nonce)))) {
    let signatureParams = `${prepared.serialized};created=${created};expires=${expires};nonce="${nonce}";tag="${profile.tag}"`;
    if (binding.nonce !== undefined) signatureParams += `;${profile.requestNonceParam}=${sfString(binding.nonce)}`;
    const covered: Fields = { ...added };
    for (const field of prepared.fromResponse) covered[field] = response.headers[field]!;
    const signature = signPreparedSync({ status: response.status, headers: covered }, prepared.components, signatureParams, credential.key, request);
    if (signature !== undefined) {
      added['signature-input'] = [`${profile.label}=${signatureParams}`];
      added['signature'] = [`${profile.label}=:${signature}:`];
      return added;
    }
  }
  const headers: Fields = { ...response.headers, ...added };
  delete headers['signature-input'];
  delete headers['signature'];
  const params: Record<string, string | number | boolean> = { created, expires, nonce, tag: profile.tag };
  if (binding.nonce !== undefined) params[profile.requestNonceParam] = binding.nonce;
  const signed = await signMessage({ ...response, headers }, { label: profile.label, components: prepared.list, params, key: credential.key, request });
  added['signature-input'] = [signed.signatureInput];
  added['signature'] = [signed.signature];
  return added;
}

const EMPTY = new Uint8Array(0);

/** A response's covered components, parsed and serialized once per shape (a service has a handful). */
interface PreparedComponents {
  /** The identifiers, as signMessage takes them. */
  list: readonly string[];
  components: readonly ComponentIdentifier[];
  serialized: string;
  /** The covered fields the signature base reads from the response's own fields. */
  fromResponse: readonly string[];
}
const PREPARED_MAX = 64;
// Keyed weakly by profile: a programmer may pass profiles of its own, which must not pile up here.
const prepared = new WeakMap<SignatureProfile, Map<string, PreparedComponents>>();

/**
 * The covered components of a response under `profile`: `@status`, the token field, the profile's
 * fields covered when present (in `responseHeaders`, or among the `added` fields, which replace the
 * response's own), the digest unless `streamed`, the profile's request components and the bound
 * request fields with `;req`, and the caller's token with `;req` when `coversCallerToken`.
 */
function preparedComponents(profile: SignatureProfile, responseHeaders: Fields, added: Fields, requestFields: readonly string[], streamed: boolean, coversCallerToken: boolean): PreparedComponents {
  const present = (field: string) => (Object.hasOwn(added, field) ? true : field !== 'signature-input' && field !== 'signature' && fieldLines(responseHeaders, field) !== undefined);
  let shape = `${streamed ? 's' : 'd'}${coversCallerToken ? 't' : '-'}${requestFields.join(' ')}:`;
  for (const field of profile.responseCoveredWhenPresent) shape += present(field) ? '1' : '0';
  let byShape = prepared.get(profile);
  if (byShape === undefined) prepared.set(profile, (byShape = new Map()));
  let entry = byShape.get(shape);
  if (entry === undefined) {
    const list = ['@status', profile.tokenHeader];
    const fromResponse: string[] = [];
    for (const field of profile.responseCoveredWhenPresent) {
      if (!present(field)) continue;
      list.push(field);
      if (!Object.hasOwn(added, field)) fromResponse.push(field);
    }
    if (!streamed) list.push('content-digest');
    for (const component of profile.responseRequestComponents) list.push(`"${component}";req`);
    for (const field of requestFields) list.push(`"${field}";req`);
    if (coversCallerToken) list.push(`"${profile.tokenHeader}";req`);
    // serializeSignatureParams parses and checks the identifiers (distinct, supported) as signMessage does.
    entry = { list: Object.freeze(list), components: Object.freeze(list.map(toComponent)), serialized: serializeSignatureParams(list), fromResponse: Object.freeze(fromResponse) };
    if (byShape.size >= PREPARED_MAX) byShape.delete(byShape.keys().next().value as string);
    byShape.set(shape, entry);
  }
  return entry;
}

/** The verified identity of the service that answered. */
export interface ServiceIdentity {
  /** `sub` of its ICT or WIT. */
  subject: string;
  /** `iss` of its ICT or WIT; the empty string for a WIT without `iss`. */
  issuer: string;
  /** The trust domain of a service that answered with a WIT. */
  trustDomain?: string;
  claims: Record<string, unknown>;
  /** Its ICT's contexts; empty for a WIT. */
  contexts: string[];
  publicKey: JWK;
  thumbprint: string;
}

/** Options of {@link verifyResponse}. */
export interface VerifyResponseOptions {
  /** The request exactly as sent (method, URL, headers including any `DPoP`). */
  request: HttpRequest;
  /**
   * What the response must be bound to: `signRequest(...).binding` for a signed request,
   * {@link dpopBinding} for a DPoP request, {@link wptBinding} for a WPT. Its profile names the
   * response's tag, token field and request-nonce parameter; its nonce must be repeated (for DPoP
   * only when one is given); its request fields must be covered with `;req`.
   */
  binding: RequestBinding;
  /**
   * Verifier for the service's ICT, configured with the issuers trusted for services. Required
   * when the binding's profile is OIDC² (the default).
   */
  ictVerifier?: IctVerifier;
  /**
   * Verifier for the service's WIT, configured with the trust domains trusted for services.
   * Required when the binding's profile is the WIMSE profile (a WIMSE signature or a WPT binding).
   */
  witVerifier?: WitVerifier;
  /** The service subject(s) expected to answer. Default: any subject of a trusted issuer. */
  expectedSubject?: string | string[];
  /** Allowed clock skew in seconds. Default 60. */
  clockTolerance?: number;
  /** Clock in unix seconds. Default `Date.now() / 1000`. */
  now?: () => number;
  /**
   * Set by a caller of an end-to-end encrypted exchange that reads the body as a stream (docs/protocol.md section 7.7,
   * docs/protocol.md 7.7): a response without `Content-Digest` is then accepted when its only content
   * coding is `aes128gcm` (covered by the signature). Its body is not checked here: the caller must
   * decrypt it record by record under the exchange's key and must not treat it as complete before the
   * final record. A response with `Content-Digest` is verified as usual. Default false: every
   * response needs a digest (or, under the WIMSE profile, one without a body may omit it).
   */
  streamedEncryptedBody?: boolean;
}

/** Every key of {@link VerifyResponseOptions}: any other key is refused with `ERR_UNKNOWN_OPTION`. */
export const VERIFY_RESPONSE_OPTION_KEYS = Object.freeze([
  'request',
  'binding',
  'ictVerifier',
  'witVerifier',
  'expectedSubject',
  'clockTolerance',
  'now',
  'streamedEncryptedBody',
] as const satisfies ReadonlyArray<keyof VerifyResponseOptions>);

function coversReq(components: ComponentIdentifier[], name: string, req: boolean): boolean {
  return components.some((c) => c.name === name && (c.params.req === true) === req && c.params.key === undefined && c.params.name === undefined);
}

/** The answering service's verified token. */
interface VerifiedService {
  readonly key: KeyHandle;
  readonly identity: ServiceIdentity;
}

async function verifyServiceToken(token: string, options: VerifyResponseOptions, kind: TokenKind): Promise<VerifiedService> {
  const name = kind.toUpperCase();
  try {
    if (kind === 'wit') {
      const wit = await options.witVerifier!.verify(token);
      const issuer = typeof wit.claims.iss === 'string' ? wit.claims.iss : '';
      return { key: wit.key, identity: { subject: wit.subject, issuer, trustDomain: wit.trustDomain, claims: wit.claims, contexts: [], publicKey: wit.jwk, thumbprint: wit.thumbprint } };
    }
    const ict = await options.ictVerifier!.verify(token);
    return { key: ict.key!, identity: { subject: ict.subject, issuer: ict.issuer, claims: ict.payload, contexts: ict.contexts, publicKey: ict.jwk!, thumbprint: ict.thumbprint } };
  } catch (error) {
    throw new Oidc2Error('response_untrusted', `the service ${name} was rejected (${isOidc2Error(error) ? error.code : 'invalid'})`, { cause: error });
  }
}

/**
 * Verifies a service's response under the binding's profile: its token (an ICT from a trusted
 * issuer, or under the WIMSE profile a WIT from a trusted trust domain), the signature over
 * status, token, digest and the request components, the binding to this request, and the body
 * digest. Throws `response_unsigned`, `response_untrusted` or `response_signature_invalid`.
 */
export async function verifyResponse(response: HttpResponse, options: VerifyResponseOptions): Promise<ServiceIdentity> {
  assertOptions(options as unknown, VERIFY_RESPONSE_OPTION_KEYS, 'options');
  const binding = options.binding;
  if (typeof binding !== 'object' || binding === null || typeof binding.proof !== 'string') {
    throw argumentError('ERR_INVALID_ARG_TYPE', 'options.binding must be the RequestBinding of the request sent');
  }
  const profile = bindingProfile(binding);
  const verifier = profile.token === 'wit' ? 'witVerifier' : 'ictVerifier';
  if (typeof options[verifier]?.verify !== 'function') {
    throw argumentError('ERR_INVALID_ARG_TYPE', `options.${verifier} is required to verify a response under the ${profile.tag} profile`);
  }
  const tolerance = options.clockTolerance ?? 60;
  const now = (options.now ?? (() => Date.now() / 1000))();
  const tokenLines = fieldLines(response.headers, profile.tokenHeader);
  let entry: SignatureInputEntry | undefined;
  let signature: Uint8Array | undefined;
  try {
    for (const candidate of parseSignatureInput(fieldLines(response.headers, 'signature-input')).values()) {
      if (candidate.params.tag !== profile.tag) continue;
      if (entry) throw new Oidc2Error('response_signature_invalid', `more than one response signature is tagged ${profile.tag}`);
      entry = candidate;
    }
    if (entry) signature = parseSignature(fieldLines(response.headers, 'signature')).get(entry.label);
  } catch (error) {
    if (isOidc2Error(error) && error.code.startsWith('response_')) throw error;
    throw new Oidc2Error('response_signature_invalid', 'the response signature fields are malformed', { cause: error });
  }
  if (!tokenLines || !entry || !signature) throw new Oidc2Error('response_unsigned', `the response carries no signature bound to a ${profile.tokenHeader}`);
  if (tokenLines.length !== 1) throw new Oidc2Error('response_signature_invalid', `exactly one ${profile.tokenHeader} field is allowed`);

  const service = await verifyServiceToken(tokenLines[0]!.trim(), options, profile.token);
  const expected = options.expectedSubject === undefined ? undefined : ([] as string[]).concat(options.expectedSubject);
  if (expected && !expected.includes(service.identity.subject)) throw new Oidc2Error('response_untrusted', 'the response was signed by an unexpected service');

  const c = entry.components;
  const digestLines = fieldLines(response.headers, 'content-digest');
  const body = response.body ?? new Uint8Array(0);
  // Under the WIMSE profile a response without a body need not carry a digest (draft-ietf-wimse-http-signature);
  // nor does a streamed encrypted body, when the caller reads it as one (docs/protocol.md section 7.7).
  const streamed = options.streamedEncryptedBody === true && digestLines === undefined && encryptedCoding(response.headers);
  const checksDigest = !streamed && (profile.responseDigest === 'always' || body.length > 0 || digestLines !== undefined);
  const required: Array<[string, boolean]> = [
    ['@status', false],
    [profile.tokenHeader, false],
  ];
  if (checksDigest) required.push(['content-digest', false]);
  for (const component of profile.responseRequestComponents) required.push([component, true]);
  for (const field of profile.responseCoveredWhenPresent) if (fieldLines(response.headers, field)) required.push([field, false]);
  for (const field of boundRequestFields(binding)) required.push([field, true]);
  for (const [name, req] of required) {
    if (!coversReq(c, name, req)) throw new Oidc2Error('response_signature_invalid', `the response signature must cover ${name}${req ? ';req' : ''}`);
  }
  const p = entry.params;
  // A DPoP request carries no signature nonce to repeat, unless the binding names one.
  if (binding.proof !== 'dpop' || binding.nonce !== undefined) {
    if (p[profile.requestNonceParam] !== binding.nonce) throw new Oidc2Error('response_signature_invalid', 'the response is not bound to this request');
  }
  if (typeof p.created !== 'number' || typeof p.expires !== 'number' || typeof p.nonce !== 'string') {
    throw new Oidc2Error('response_signature_invalid', 'created, expires and nonce are required');
  }
  if (p.created > now + tolerance || p.expires < now - tolerance) throw new Oidc2Error('response_signature_invalid', 'the response signature is outside its time window');
  if (!(await verifyMessageSignature(response, entry, signature, service.key, { request: options.request }))) {
    throw new Oidc2Error('response_signature_invalid', `the response signature does not verify with the key of the service ${profile.tokenHeader}`);
  }
  if (checksDigest) {
    try {
      await verifyContentDigest(digestLines, body, { required: true });
    } catch (error) {
      throw new Oidc2Error('response_signature_invalid', `the response body does not match its digest (${isOidc2Error(error) ? error.code : 'invalid'})`, { cause: error });
    }
  }
  return service.identity;
}
