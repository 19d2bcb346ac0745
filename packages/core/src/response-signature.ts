/**
 * The service's answer (PROFILE section 3): its own ICT, `Content-Digest` over the body as sent and
 * an RFC 9421 signature bound to the request; and the caller's verification of that answer.
 */
import type { JWK } from 'jose';
import { Oidc2Error, isOidc2Error } from './errors.js';
import { fieldLines, type Fields, type HttpRequest, type HttpResponse } from './message.js';
import { createContentDigest, verifyContentDigest } from './content-digest.js';
import { parseSignature, parseSignatureInput, signMessage, verifyMessageSignature, type ComponentIdentifier, type SignatureInputEntry } from './rfc9421/index.js';
import { ICT_HEADER, ICT_SIGNATURE_TAG, RESPONSE_COVERED_WHEN_PRESENT } from './profile.js';
import type { RequestBinding } from './authenticator.js';
import type { IctVerifier } from './ict.js';
import type { KeyHandle } from './lib/crypto.js';
import { createNonce } from './request-signing.js';

/** The service's credential: its ICT and the private key the ICT certifies. */
export interface ServiceCredential {
  /** The service's ICT (compact JWT). */
  ict: string;
  /** Signing key handle for the key in the ICT's `cnf.jwk` (`importKey(jwk, alg, 'sign')`). */
  key: KeyHandle;
}

/** Options of {@link signResponse}. */
export interface SignResponseOptions {
  /** Clock in unix seconds. Default `Date.now() / 1000`. */
  now?: () => number;
  /** Signature lifetime in seconds. Default 60. */
  expiresIn?: number;
  /** Digest algorithm. Default `sha-256`. */
  digestAlgorithm?: 'sha-256' | 'sha-512';
}

/**
 * Signs a response to an authenticated (or at least parsed) request. Returns the fields to set on
 * the response: `Identity-Certification-Token`, `Content-Digest`, `Signature-Input`, `Signature`.
 * The body must be the bytes exactly as sent (after any content coding).
 */
export async function signResponse(
  response: HttpResponse,
  request: HttpRequest,
  binding: RequestBinding,
  credential: ServiceCredential,
  options: SignResponseOptions = {},
): Promise<Fields> {
  const added: Fields = {
    [ICT_HEADER]: [credential.ict],
    'content-digest': [await createContentDigest(response.body ?? new Uint8Array(0), options.digestAlgorithm ?? 'sha-256')],
  };
  const headers: Fields = { ...response.headers, ...added };
  delete headers['signature-input'];
  delete headers['signature'];
  const components = ['@status', ICT_HEADER];
  for (const field of RESPONSE_COVERED_WHEN_PRESENT) if (fieldLines(headers, field)) components.push(field);
  components.push('content-digest', '"@method";req', '"@path";req', '"@query";req');
  if (binding.proof === 'dpop') components.push('"dpop";req');
  if (binding.proof === 'wpt') components.push('"authorization";req');
  const created = Math.floor((options.now ?? (() => Date.now() / 1000))());
  const params: Record<string, string | number | boolean> = {
    created,
    expires: created + (options.expiresIn ?? 60),
    nonce: createNonce(),
    tag: ICT_SIGNATURE_TAG,
  };
  if (binding.nonce !== undefined) params['oidc2-req-nonce'] = binding.nonce;
  const signed = await signMessage({ ...response, headers }, { label: 'sig', components, params, key: credential.key, request });
  added['signature-input'] = [signed.signatureInput];
  added['signature'] = [signed.signature];
  return added;
}

/** The verified identity of the service that answered. */
export interface ServiceIdentity {
  subject: string;
  issuer: string;
  claims: Record<string, unknown>;
  contexts: string[];
  publicKey: JWK;
  thumbprint: string;
}

/** Options of {@link verifyResponse}. */
export interface VerifyResponseOptions {
  /** The request exactly as sent (method, URL, headers including any `DPoP`). */
  request: HttpRequest;
  /** The request signature's nonce; absent for DPoP requests. */
  requestNonce?: string;
  /** Verifier for the service's ICT, configured with the issuers trusted for services. */
  ictVerifier: IctVerifier;
  /** The service subject(s) expected to answer. Default: any subject of a trusted issuer. */
  expectedSubject?: string | string[];
  /** Allowed clock skew in seconds. Default 60. */
  clockTolerance?: number;
  /** Clock in unix seconds. Default `Date.now() / 1000`. */
  now?: () => number;
}

function coversReq(components: ComponentIdentifier[], name: string, req: boolean): boolean {
  return components.some((c) => c.name === name && (c.params.req === true) === req && c.params.key === undefined && c.params.name === undefined);
}

/**
 * Verifies a service's response: its ICT (from a trusted issuer), the signature over status,
 * token, digest and the request components, the binding to this request, and the body digest.
 * Throws `response_unsigned`, `response_untrusted` or `response_signature_invalid`.
 */
export async function verifyResponse(response: HttpResponse, options: VerifyResponseOptions): Promise<ServiceIdentity> {
  const tolerance = options.clockTolerance ?? 60;
  const now = (options.now ?? (() => Date.now() / 1000))();
  const tokenLines = fieldLines(response.headers, ICT_HEADER);
  let entry: SignatureInputEntry | undefined;
  let signature: Uint8Array | undefined;
  try {
    for (const candidate of parseSignatureInput(fieldLines(response.headers, 'signature-input')).values()) {
      if (candidate.params.tag !== ICT_SIGNATURE_TAG) continue;
      if (entry) throw new Oidc2Error('response_signature_invalid', 'more than one response signature is tagged oidc2-ict');
      entry = candidate;
    }
    if (entry) signature = parseSignature(fieldLines(response.headers, 'signature')).get(entry.label);
  } catch (error) {
    if (isOidc2Error(error) && error.code.startsWith('response_')) throw error;
    throw new Oidc2Error('response_signature_invalid', 'the response signature fields are malformed', { cause: error });
  }
  if (!tokenLines || !entry || !signature) throw new Oidc2Error('response_unsigned', 'the response carries no ICT-bound signature');
  if (tokenLines.length !== 1) throw new Oidc2Error('response_signature_invalid', 'exactly one Identity-Certification-Token is allowed');

  let ict;
  try {
    ict = await options.ictVerifier.verify(tokenLines[0]!.trim());
  } catch (error) {
    throw new Oidc2Error('response_untrusted', `the service ICT was rejected (${isOidc2Error(error) ? error.code : 'invalid'})`, { cause: error });
  }
  const expected = options.expectedSubject === undefined ? undefined : ([] as string[]).concat(options.expectedSubject);
  if (expected && !expected.includes(ict.subject)) throw new Oidc2Error('response_untrusted', 'the response was signed by an unexpected service');
  if (!ict.key || !ict.jwk) throw new Oidc2Error('response_untrusted', 'the service ICT carries no cnf.jwk');

  const c = entry.components;
  const required: Array<[string, boolean]> = [
    ['@status', false],
    [ICT_HEADER, false],
    ['content-digest', false],
    ['@method', true],
    ['@path', true],
    ['@query', true],
  ];
  for (const field of RESPONSE_COVERED_WHEN_PRESENT) if (fieldLines(response.headers, field)) required.push([field, false]);
  const dpop = fieldLines(options.request.headers, 'dpop') !== undefined;
  if (dpop) required.push(['dpop', true]);
  if (/^wpt /i.test(fieldLines(options.request.headers, 'authorization')?.[0]?.trim() ?? '')) required.push(['authorization', true]);
  for (const [name, req] of required) {
    if (!coversReq(c, name, req)) throw new Oidc2Error('response_signature_invalid', `the response signature must cover ${name}${req ? ';req' : ''}`);
  }
  const p = entry.params;
  if (!dpop || options.requestNonce !== undefined) {
    if (p['oidc2-req-nonce'] !== options.requestNonce) throw new Oidc2Error('response_signature_invalid', 'the response is not bound to this request');
  }
  if (typeof p.created !== 'number' || typeof p.expires !== 'number' || typeof p.nonce !== 'string') {
    throw new Oidc2Error('response_signature_invalid', 'created, expires and nonce are required');
  }
  if (p.created > now + tolerance || p.expires < now - tolerance) throw new Oidc2Error('response_signature_invalid', 'the response signature is outside its time window');
  if (!(await verifyMessageSignature(response, entry, signature, ict.key, { request: options.request }))) {
    throw new Oidc2Error('response_signature_invalid', 'the response signature does not verify with the service ICT key');
  }
  try {
    await verifyContentDigest(fieldLines(response.headers, 'content-digest'), response.body ?? new Uint8Array(0), { required: true });
  } catch (error) {
    throw new Oidc2Error('response_signature_invalid', `the response body does not match its digest (${isOidc2Error(error) ? error.code : 'invalid'})`, { cause: error });
  }
  return { subject: ict.subject, issuer: ict.issuer, claims: ict.payload, contexts: ict.contexts, publicKey: ict.jwk, thumbprint: ict.thumbprint };
}
