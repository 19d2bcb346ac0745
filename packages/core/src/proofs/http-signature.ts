/**
 * The HTTP-signature proof (PROFILE 2.1): an RFC 9421 signature tagged with a signature profile's
 * tag, made with the key the profile's token certifies.
 */
import { Oidc2Error } from '../errors.js';
import { fieldLines, type HttpRequest } from '../message.js';
import { parseSignature, parseSignatureInput, verifyMessageSignature, type ComponentIdentifier, type SignatureInputEntry } from '../rfc9421/index.js';
import { decodeBase64Url } from '../lib/base64.js';
import type { SignatureProfile } from '../profile.js';
import { signatureBinding } from '../binding.js';
import type { Identity } from '../authenticator.js';
import { ictIdentity, singleField, type ProofContext, type ProofHooks } from './context.js';

const NONCE_PATTERN = /^[A-Za-z0-9_-]{22,128}$/;

function covers(components: ComponentIdentifier[], name: string): boolean {
  return components.some((c) => c.name === name && c.params.key === undefined && c.params.req !== true && c.params.name === undefined && c.params.tr !== true);
}

/**
 * Verifies the HTTP-signature proof of `request` under `profile` and returns the caller. Order:
 * the one signature tagged with the profile's tag and its token (sizes bounded); the token; the
 * covered components and parameters; the signature with the token's key; time window, audience,
 * Content-Digest, Txn-Token; `hooks.beforeRecord`; and last the nonce, recorded in the replay store.
 * Throws `Oidc2Error` (`signature_*`, `component_not_covered`, `ict_*`, `audience_mismatch`,
 * `digest_*`, `replay_detected`, ...).
 *
 * @example
 * ```ts
 * const identity = await verifyHttpSignatureProof(request, OIDC2_PROFILE, context)
 * ```
 */
export async function verifyHttpSignatureProof(request: HttpRequest, profile: SignatureProfile, ctx: ProofContext, hooks: ProofHooks = {}): Promise<Identity> {
  const { maxHeaderBytes } = ctx;
  // 1. Parse and bound sizes.
  const inputs = parseSignatureInput(fieldLines(request.headers, 'signature-input'), { maxBytes: maxHeaderBytes });
  let entry: SignatureInputEntry | undefined;
  for (const candidate of inputs.values()) {
    if (candidate.params.tag !== profile.tag) continue;
    if (entry) throw new Oidc2Error('signature_ambiguous', `more than one signature is tagged ${profile.tag}`);
    entry = candidate;
  }
  if (!entry) throw new Oidc2Error('signature_missing', `no signature tagged ${profile.tag}`);
  const signatures = parseSignature(fieldLines(request.headers, 'signature'), { maxBytes: maxHeaderBytes });
  const signature = signatures.get(entry.label);
  if (!signature) throw new Oidc2Error('signature_missing', `no Signature member for label ${entry.label}`);
  const token = singleField(request, profile.tokenHeader, maxHeaderBytes, () => new Oidc2Error('ict_missing', `the ${profile.tokenHeader} field is missing`));

  // 2. Verify the token.
  if (profile.token !== 'ict') throw new Oidc2Error('proof_not_accepted', `signatures tagged ${profile.tag} are not accepted by this service`);
  const ict = await ctx.ictVerifier.verify(token);

  // 3. Verify the signature with cnf.jwk: first what it must cover and which parameters it may carry.
  const params = entry.params;
  if (params.keyid !== undefined || params.alg !== undefined) {
    throw new Oidc2Error('signature_params_invalid', 'keyid and alg must not appear: the key and algorithm come from the token');
  }
  const required: string[] = [...profile.requiredComponents, ...ctx.requiredComponents];
  for (const field of profile.coveredWhenPresent) if (fieldLines(request.headers, field)) required.push(field);
  for (const name of required) {
    if (!covers(entry.components, name)) throw new Oidc2Error('component_not_covered', `the signature must cover ${name}`);
  }
  const created = params.created;
  const expires = params.expires;
  const nonce = params.nonce;
  const aud = params[profile.audienceParam];
  const signResponse = params[profile.signResponseParam];
  if (typeof created !== 'number' || typeof expires !== 'number' || !Number.isInteger(created) || !Number.isInteger(expires)) {
    throw new Oidc2Error('signature_params_invalid', 'created and expires are required integers');
  }
  if (expires <= created || expires - created > ctx.maxSignatureAge) {
    throw new Oidc2Error('signature_params_invalid', `expires - created must be between 1 and ${ctx.maxSignatureAge} seconds`);
  }
  if (typeof nonce !== 'string' || !NONCE_PATTERN.test(nonce) || (decodeBase64Url(nonce)?.length ?? 0) < 16) {
    throw new Oidc2Error('signature_params_invalid', 'nonce must be at least 128 random bits, base64url');
  }
  if (typeof aud !== 'string') throw new Oidc2Error('signature_params_invalid', `${profile.audienceParam} is required`);
  if (signResponse !== undefined && typeof signResponse !== 'boolean') {
    throw new Oidc2Error('signature_params_invalid', `${profile.signResponseParam} must be a boolean`);
  }
  if (!ict.key) throw new Oidc2Error('ict_cnf_invalid', 'the ICT must carry cnf.jwk for HTTP message signatures');
  if (!(await verifyMessageSignature(request, entry, signature, ict.key))) {
    throw new Oidc2Error('signature_invalid', 'the request signature does not verify with the ICT key');
  }

  // 4. Time window, audience, digest.
  const t = ctx.now();
  const tolerance = ctx.clockTolerance;
  if (created > t + tolerance) throw new Oidc2Error('signature_not_yet_valid', 'the signature was created in the future');
  if (expires < t - tolerance) throw new Oidc2Error('signature_expired', 'the signature has expired');
  if (!ctx.audiences.matches(aud, request.url)) throw new Oidc2Error('audience_mismatch', `${profile.audienceParam} does not name this service and path`);
  await ctx.checkDigest(request, true);
  const transaction = await ctx.transaction(request);
  const identity = ictIdentity(ict, ict.jwk!, 'http-signature', signatureBinding(profile, { nonce, audience: aud, signResponse: signResponse === true, headers: request.headers }), transaction);

  // 5. Only now record the nonce.
  await hooks.beforeRecord?.(identity);
  if (!(await ctx.replayStore.checkAndRecord(`sig:${nonce}`, expires + tolerance, t))) {
    throw new Oidc2Error('replay_detected', 'this signature nonce was seen before');
  }
  return identity;
}
