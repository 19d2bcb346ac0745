/**
 * Creating and verifying one HTTP message signature (RFC 9421 sections 3.1 and 3.2). Policy (which
 * components and parameters a signature must carry, time windows, nonces) belongs to the caller.
 */
import { Oidc2Error } from '../errors.js';
import { argumentError } from '../lib/validate.js';
import { encodeBase64, utf8 } from '../lib/base64.js';
import { algorithmSpec, sign, signSync, verify, verifySync, type AlgorithmSpec, type KeyHandle } from '../lib/crypto.js';
import type { Fields, HttpRequest } from '../message.js';
import { toComponent, type ComponentIdentifier } from './components.js';
import { signatureBase, type HttpMessage, type SignatureContext, type StructuredFieldType } from './signature-base.js';
import { parseSignature, parseSignatureInput, serializeSignatureParams, type SignatureInputEntry, type SignatureParamValue } from './signature-fields.js';

/** The HTTP Signature Algorithms registry (RFC 9421 section 6.2.2). JWA names never appear in `alg` (section 3.3.7). */
export const SIGNATURE_ALGORITHMS = ['rsa-pss-sha512', 'rsa-v1_5-sha256', 'hmac-sha256', 'ecdsa-p256-sha256', 'ecdsa-p384-sha384', 'ed25519'] as const;

const REGISTRY = new Set<string>(SIGNATURE_ALGORITHMS);
const LABEL = /^[a-z*][a-z0-9_\-.*]*$/;

function sameAlgorithm(a: AlgorithmSpec, b: AlgorithmSpec): boolean {
  return a.kind === b.kind && a.hash === b.hash && (a.curve ?? null) === (b.curve ?? null) && (a.saltLength ?? null) === (b.saltLength ?? null);
}

/** True when `alg` is a registry name that denotes the key's algorithm. */
function algMatchesKey(alg: unknown, key: KeyHandle): boolean {
  if (typeof alg !== 'string' || !REGISTRY.has(alg)) return false;
  return sameAlgorithm(algorithmSpec(alg)!, key.spec);
}

function assertKey(key: KeyHandle, usage: 'sign' | 'verify'): void {
  if (key === null || typeof key !== 'object' || typeof key.spec !== 'object') throw argumentError('ERR_INVALID_ARG_TYPE', 'key must be a KeyHandle from importKey');
  // An HMAC secret both signs and verifies.
  if (key.usage !== usage && key.spec.kind !== 'hmac') throw argumentError('ERR_INVALID_ARG_VALUE', `key must be a ${usage === 'sign' ? 'signing' : 'verification'} key`);
}

/** Options of {@link signMessage}. */
export interface SignMessageOptions {
  /** The signature label (Structured Field key). Default `sig` ({@link signMessageFields}: the first free of `sig`, `sig2`, `sig3`, ...). */
  label?: string;
  /** The covered components in order, as identifiers (`'"@query-param";name="Pet"'`, `'@method'`) or parsed objects. */
  components: ReadonlyArray<string | ComponentIdentifier>;
  /**
   * The signature parameters in the order to serialize them (`created`, `expires`, `nonce`, `tag`,
   * extensions). `alg`, when given, must be the RFC 9421 name of the key's algorithm. Default: none.
   */
  params?: Readonly<Record<string, SignatureParamValue | undefined>>;
  /** The signing key. */
  key: KeyHandle;
  /** The request that triggered the response being signed, for `;req` components. Default: none. */
  request?: HttpRequest;
  /** Structured Field types for `;sf` beyond the built-in table. Default: none. */
  structuredFields?: Readonly<Record<string, StructuredFieldType>>;
}

/** What {@link signMessage} produced. */
export interface SignedMessage {
  /** The label used. */
  label: string;
  /** The `Signature-Input` dictionary member, e.g. `sig=("@method");created=1618884473`. */
  signatureInput: string;
  /** The `Signature` dictionary member, e.g. `sig=:3q2+7w==:`. */
  signature: string;
  /** The signature base that was signed. */
  base: string;
}

/**
 * Signs a request or response (RFC 9421 section 3.1). The message is not changed; add the returned
 * members to its `Signature-Input` and `Signature` fields (or use {@link signMessageFields}).
 *
 * @throws TypeError for invalid options; Oidc2Error as {@link signatureBase} when a covered component cannot be computed.
 * @example
 * ```ts
 * const key = await importKey(privateJwk, 'ed25519', 'sign')
 * const { signatureInput, signature } = await signMessage(request, {
 *   components: ['@method', '@path', '@query', 'content-digest'],
 *   params: { created: 1618884473, nonce, tag: OIDC2_PROFILE.tag },
 *   key,
 * })
 * ```
 */
export async function signMessage(message: HttpMessage, options: SignMessageOptions): Promise<SignedMessage> {
  if (options === null || typeof options !== 'object') throw argumentError('ERR_INVALID_ARG_TYPE', 'options must be an object');
  const label = options.label ?? 'sig';
  if (typeof label !== 'string' || !LABEL.test(label)) throw argumentError('ERR_INVALID_ARG_VALUE', 'label must be a Structured Field key');
  assertKey(options.key, 'sign');
  const params = options.params ?? {};
  if (params.alg !== undefined && !algMatchesKey(params.alg, options.key)) {
    throw argumentError('ERR_INVALID_ARG_VALUE', `alg must be the RFC 9421 name of the key's algorithm`);
  }
  if (!Array.isArray(options.components)) throw argumentError('ERR_INVALID_ARG_TYPE', 'components must be an array');
  const components = options.components.map(toComponent);
  const signatureParams = serializeSignatureParams(components, params);
  const base = signatureBase(message, components, signatureParams, { request: options.request, structuredFields: options.structuredFields });
  const signature = signSync(options.key, base) ?? (await sign(options.key, utf8(base)));
  return { label, signatureInput: `${label}=${signatureParams}`, signature: `${label}=:${encodeBase64(signature)}:`, base };
}

/**
 * The last step of {@link signMessage} for a caller that built and checked the components and the
 * serialized `@signature-params` itself (the response signers, public-key and session MAC, which
 * prepare them once per shape of response): the signature base and a synchronous signature, the `Signature` member's base64, or
 * undefined where signing is not synchronous (the caller then uses {@link signMessage}).
 *
 * @internal
 */
export function signPreparedSync(message: HttpMessage, components: readonly ComponentIdentifier[], signatureParams: string, key: KeyHandle, request: HttpRequest | undefined): string | undefined {
  if (key.usage !== 'sign') return undefined;
  const base = signatureBase(message, components, signatureParams, { request });
  const signature = signSync(key, base);
  return signature === undefined ? undefined : encodeBase64(signature);
}

/**
 * Signs a message like {@link signMessage} and returns its `signature-input` and `signature`
 * field lines with the new members appended to those the message already carries, ready to
 * replace the message's two fields.
 *
 * @throws TypeError when `options.label` is already used in the message.
 * @example
 * ```ts
 * Object.assign(request.headers, await signMessageFields(request, { components: ['@method', '@path'], params: { created }, key }))
 * ```
 */
export async function signMessageFields(message: HttpMessage, options: SignMessageOptions): Promise<Fields> {
  const inputLines = message.headers['signature-input'] ?? [];
  const signatureLines = message.headers['signature'] ?? [];
  const taken = new Set([...parseSignatureInput(inputLines).keys(), ...parseSignature(signatureLines).keys()]);
  let label = options?.label;
  if (label === undefined) {
    label = 'sig';
    for (let i = 2; taken.has(label); i++) label = `sig${i}`;
  } else if (taken.has(label)) {
    throw argumentError('ERR_INVALID_ARG_VALUE', `the label ${label} is already used in this message`);
  }
  const signed = await signMessage(message, { ...options, label });
  return { 'signature-input': [...inputLines, signed.signatureInput], signature: [...signatureLines, signed.signature] };
}

/**
 * Verifies one signature (RFC 9421 section 3.2, the cryptographic steps): recreates the signature
 * base from the message and the entry, then checks `signature` with `key`. It does not choose the
 * signature, the key or the required components, and does not check `created`/`expires`: callers do.
 *
 * @param entry The parsed `Signature-Input` member to verify.
 * @param signature The matching `Signature` member's bytes.
 * @param key The verification key (or HMAC secret), whose algorithm decides how to verify.
 * @returns true when the signature is valid, false when it is not.
 * @throws Oidc2Error `signature_params_invalid` when `alg` is present and is not the registry name
 *   of the key's algorithm; as {@link signatureBase} when the base cannot be recreated.
 * @example
 * ```ts
 * const entry = parseSignatureInput(fieldLines(request.headers, 'signature-input')).get('sig1')
 * const signature = parseSignature(fieldLines(request.headers, 'signature')).get('sig1')
 * if (!(await verifyMessageSignature(request, entry, signature, key))) throw new Error('invalid')
 * ```
 */
export async function verifyMessageSignature(
  message: HttpMessage,
  entry: SignatureInputEntry,
  signature: Uint8Array,
  key: KeyHandle,
  context?: SignatureContext,
): Promise<boolean> {
  return messageSignatureValid(message, entry, signature, key, context);
}

/**
 * {@link verifyMessageSignature} answering synchronously where the runtime verifies synchronously,
 * else with a promise; throws (synchronously) as it rejects.
 *
 * @internal
 */
export function messageSignatureValid(message: HttpMessage, entry: SignatureInputEntry, signature: Uint8Array, key: KeyHandle, context?: SignatureContext): boolean | Promise<boolean> {
  assertKey(key, 'verify');
  if (!(signature instanceof Uint8Array)) throw argumentError('ERR_INVALID_ARG_TYPE', 'signature must be a Uint8Array');
  if (entry.params.alg !== undefined && !algMatchesKey(entry.params.alg, key)) {
    throw new Oidc2Error('signature_params_invalid', 'the alg parameter does not name the key algorithm');
  }
  const base = signatureBase(message, entry.components, entry.signatureParams, context);
  return verifySync(key, base, signature) ?? verify(key, utf8(base), signature);
}
