/**
 * The HTTP-signature proof (docs/protocol.md sections 2 and 3a): an RFC 9421 signature tagged with a signature
 * profile's tag, made with the key the profile's token certifies: an ICT under the OIDC² profile,
 * a WIT under the WIMSE profile.
 */
import { Oidc2Error, isOidc2Error, type Oidc2ErrorCode } from '../errors.js';
import { fieldLines, type HttpRequest } from '../message.js';
import { parseSignature, parseSignatureInput, type SignatureInputEntry } from '../rfc9421/index.js';
import { messageSignatureValid } from '../rfc9421/http-signatures.js';
import type { KeyHandle } from '../lib/crypto.js';
import { nonceAccepted, nonceRule, type SignatureProfile } from '../profile.js';
import { signatureBinding, type RequestBinding } from '../binding.js';
import type { Identity } from '../authenticator.js';
import type { VerifiedIct } from '../ict.js';
import type { VerifiedWit } from '../wimse.js';
import type { TransactionContext } from '../txn-token.js';
import { covers } from './detect.js';
import { ictIdentity, singleField, witIdentity, type ProofContext, type ProofHooks } from './context.js';

/**
 * The failures of a WIMSE request signature, which draft-ietf-wimse-http-signature answers with
 * 400 instead of 401: each becomes `wimse_signature_invalid` with the OIDC² code as its `reason`.
 */
const WIMSE_SIGNATURE_FAILURES: ReadonlySet<Oidc2ErrorCode> = new Set<Oidc2ErrorCode>([
  'signature_missing',
  'signature_invalid',
  'signature_params_invalid',
  'signature_expired',
  'signature_not_yet_valid',
  'component_not_covered',
  'component_missing',
  'digest_missing',
  'digest_mismatch',
  'audience_mismatch',
  'replay_detected',
]);

function asWimseFailure(error: unknown): unknown {
  if (!isOidc2Error(error) || !WIMSE_SIGNATURE_FAILURES.has(error.code)) return error;
  return new Oidc2Error('wimse_signature_invalid', error.message, { cause: error, extensions: { reason: error.code } });
}

/** The caller's verified token: the key it certifies and the identity it establishes. */
interface Credential {
  readonly key: KeyHandle;
  /** The replay-store scope of the caller's nonces. */
  readonly nonceScope: string;
  identity(binding: RequestBinding, transaction: TransactionContext | undefined): Identity;
}

function ictCredential(ict: VerifiedIct): Credential {
  // An ICT verified without allowJkt always carries cnf.jwk.
  return { key: ict.key!, nonceScope: 'sig:', identity: (binding, transaction) => ictIdentity(ict, ict.jwk!, 'http-signature', binding, transaction) };
}

/** The caller's token verified: synchronously when the verifier holds it verified already. */
function tokenCredential(profile: SignatureProfile, token: string, ctx: ProofContext): Credential | Promise<Credential> {
  if (profile.token === 'ict') {
    const cached = ctx.ictVerifier.verifyCached?.(token);
    if (cached) return ictCredential(cached);
  } else {
    const cached = ctx.witVerifier?.verifyCached?.(token);
    if (cached) return witCredential(cached);
  }
  return verifyToken(profile, token, ctx);
}

async function verifyToken(profile: SignatureProfile, token: string, ctx: ProofContext): Promise<Credential> {
  if (profile.token === 'ict') return ictCredential(await ctx.ictVerifier.verify(token));
  if (!ctx.witVerifier) throw new Oidc2Error('proof_not_accepted', `signatures tagged ${profile.tag} are not accepted by this service`);
  return witCredential(await ctx.witVerifier.verify(token));
}

function witCredential(wit: VerifiedWit): Credential {
  // A WIMSE nonce need only be unique per sender: recorded per WIT key, so senders cannot collide.
  return { key: wit.key, nonceScope: `wimse:${wit.thumbprint}:`, identity: (binding, transaction) => witIdentity(wit, 'http-signature', binding, transaction) };
}

/**
 * Verifies the HTTP-signature proof of `request` under `profile` and returns the caller. Order:
 * the one signature tagged with the profile's tag and its token (sizes bounded); the token; the
 * covered components and parameters; the signature with the token's key; time window, audience,
 * Content-Digest, Txn-Token; `hooks.beforeRecord`; and last the nonce, recorded in the replay store.
 * `inputs` is the request's `Signature-Input` when the caller parsed it already.
 * Throws `Oidc2Error`: under the OIDC² profile `signature_*`, `component_not_covered`, `ict_*`,
 * `audience_mismatch`, `digest_*`, `replay_detected`, ...; under the WIMSE profile `wit_*` and
 * `wimse_signature_invalid` (400, its `reason` the OIDC² code) for every signature failure.
 *
 * @example
 * ```ts
 * const identity = await verifyHttpSignatureProof(request, OIDC2_PROFILE, context)
 * ```
 */
export async function verifyHttpSignatureProof(
  request: HttpRequest,
  profile: SignatureProfile,
  ctx: ProofContext,
  hooks: ProofHooks = {},
  inputs?: ReadonlyMap<string, SignatureInputEntry>,
): Promise<Identity> {
  const wimse = profile.token === 'wit';
  let checked: { identity: Identity; replayKey: string; until: number; t: number };
  try {
    checked = await checkSignature(request, profile, ctx, inputs, hooks.streamedEncryptedBody !== true);
  } catch (error) {
    throw wimse ? asWimseFailure(error) : error;
  }
  // 5. Only now record the nonce.
  if (hooks.beforeRecord) await hooks.beforeRecord(checked.identity);
  const recorded = ctx.replayStore.checkAndRecord(checked.replayKey, checked.until, checked.t);
  if (!(typeof recorded === 'boolean' ? recorded : await recorded)) {
    const replayed = new Oidc2Error('replay_detected', 'this signature nonce was seen before');
    throw wimse ? asWimseFailure(replayed) : replayed;
  }
  return checked.identity;
}

async function checkSignature(request: HttpRequest, profile: SignatureProfile, ctx: ProofContext, parsed: ReadonlyMap<string, SignatureInputEntry> | undefined, digestRequired: boolean) {
  const { maxHeaderBytes } = ctx;
  // 1. Parse and bound sizes.
  const inputs = parsed ?? parseSignatureInput(fieldLines(request.headers, 'signature-input'), { maxBytes: maxHeaderBytes });
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
  const missing = () => new Oidc2Error(profile.token === 'ict' ? 'ict_missing' : 'wit_missing', `the ${profile.tokenHeader} field is missing`);
  const token = singleField(request, profile.tokenHeader, maxHeaderBytes, missing);

  // 2. Verify the token. (Here and below, a step that answers synchronously is not awaited.)
  const verified = tokenCredential(profile, token, ctx);
  const credential = verified instanceof Promise ? await verified : verified;

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
  if (typeof nonce !== 'string' || !nonceAccepted(profile, nonce)) throw new Oidc2Error('signature_params_invalid', `nonce must be ${nonceRule(profile)}`);
  if (typeof aud !== 'string') throw new Oidc2Error('signature_params_invalid', `${profile.audienceParam} is required`);
  if (signResponse !== undefined && typeof signResponse !== 'boolean') {
    throw new Oidc2Error('signature_params_invalid', `${profile.signResponseParam} must be a boolean`);
  }
  const valid = messageSignatureValid(request, entry, signature, credential.key);
  if (!(typeof valid === 'boolean' ? valid : await valid)) {
    throw new Oidc2Error('signature_invalid', `the request signature does not verify with the key of the ${profile.tokenHeader}`);
  }

  // 4. Time window, audience, digest.
  const t = ctx.now();
  const tolerance = ctx.clockTolerance;
  if (created > t + tolerance) throw new Oidc2Error('signature_not_yet_valid', 'the signature was created in the future');
  if (expires < t - tolerance) throw new Oidc2Error('signature_expired', 'the signature has expired');
  if (!ctx.audiences.matches(aud, request.url)) throw new Oidc2Error('audience_mismatch', `${profile.audienceParam} does not name this service and path`);
  const digestChecked = ctx.checkDigest(request, digestRequired);
  if (digestChecked) await digestChecked;
  const pendingTransaction = ctx.transaction(request);
  const transaction = pendingTransaction instanceof Promise ? await pendingTransaction : pendingTransaction;
  const binding = signatureBinding(profile, { nonce, audience: aud, signResponse: signResponse === true, headers: request.headers });
  return { identity: credential.identity(binding, transaction), replayKey: credential.nonceScope + nonce, until: expires + tolerance, t };
}
