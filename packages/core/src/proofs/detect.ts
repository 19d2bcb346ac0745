/**
 * Which proof a request uses, read from its fields without verifying anything. The authenticator
 * dispatches on it, and {@link requestBinding} uses it to name what an error response to a request
 * that was not (or could not be) authenticated binds to.
 */
import { fieldLines, type HttpRequest } from '../message.js';
import { SIGNATURE_PROFILES, type SignatureProfile } from '../profile.js';
import { parseSignatureInput, type ComponentIdentifier, type SignatureInputEntry } from '../rfc9421/index.js';
import { dpopBinding, profileProof, signatureBinding, wptBinding, type AcceptedProof, type RequestBinding } from '../binding.js';

/** The legacy (wpt-01) field carrying a Workload Proof Token. */
export const LEGACY_WPT_HEADER = 'workload-proof-token';

/** What {@link detectProof} decides from a request's fields. */
export type DetectedProof =
  /**
   * An HTTP message signature of `profile`: the first signature tagged with an accepted profile's
   * tag (or, without `Signature-Input`, the profile whose token field is present). `inputs` is the
   * request's `Signature-Input` as parsed, when it parsed.
   */
  | { readonly proof: 'http-signature'; readonly profile: SignatureProfile; readonly inputs?: ReadonlyMap<string, SignatureInputEntry> }
  /** `Authorization: DPoP <token>`; `token` is what follows the scheme, trimmed (possibly empty). */
  | { readonly proof: 'dpop'; readonly token: string }
  /**
   * A Workload Proof Token: from `Authorization: WPT <wpt>`, or with `legacy` from the
   * `Workload-Proof-Token` field, then with the `Authorization: Bearer` token it binds, if any.
   */
  | { readonly proof: 'wpt'; readonly wpt: string; readonly legacy: boolean; readonly bearer?: string }
  /** A proof of this kind was presented, and the options do not accept it. */
  | { readonly proof: 'not-accepted'; readonly presented: AcceptedProof }
  /** The request names a proof but its fields are malformed (e.g. a repeated proof field). */
  | { readonly proof: 'malformed'; readonly message: string }
  /** No proof at all. */
  | { readonly proof: 'none' };

/** Options of {@link detectProof}. */
export interface DetectProofOptions {
  /** The accepted proofs. Default all: `http-signature`, `wimse-signature`, `dpop` and `wpt`. */
  proofs?: readonly AcceptedProof[];
  /** Also look for a WPT in the legacy `Workload-Proof-Token` field. Default false. */
  legacyProofHeader?: boolean;
  /**
   * The HTTP-signature profiles looked for, in this order; those whose proof (see `proofs`) is
   * accepted are accepted. Default: {@link SIGNATURE_PROFILES}.
   */
  profiles?: readonly SignatureProfile[];
  /** Largest `Signature-Input` parsed, in bytes. Default 8192. */
  maxHeaderBytes?: number;
}

const ALL_PROOFS: readonly AcceptedProof[] = Object.freeze(['http-signature', 'wimse-signature', 'dpop', 'wpt']);

/**
 * Whether `components` cover `name` plainly: no `key`, `req`, `name` or `tr` parameter (a
 * component with a parameter is another value than the one a profile requires).
 */
export function covers(components: readonly ComponentIdentifier[], name: string): boolean {
  const names = plainNames.get(components) ?? plainNamesOf(components);
  return names === undefined ? components.some((c) => c.name === name && isPlain(c)) : names.has(name);
}

function isPlain(c: ComponentIdentifier): boolean {
  return c.params.key === undefined && c.params.req !== true && c.params.name === undefined && c.params.tr !== true;
}

// The names a list covers plainly, kept for lists that cannot change (the shared, frozen lists of
// parsed shapes): a request's required components are looked up in a set, not searched for.
const plainNames = new WeakMap<readonly ComponentIdentifier[], ReadonlySet<string>>();

function plainNamesOf(components: readonly ComponentIdentifier[]): ReadonlySet<string> | undefined {
  if (!Object.isFrozen(components) || !components.every((c) => Object.isFrozen(c) && Object.isFrozen(c.params))) return undefined;
  const names = new Set(components.filter(isPlain).map((c) => c.name));
  plainNames.set(components, names);
  return names;
}

/**
 * The profile of the first signature in `inputs` tagged with one of `profiles`' tags. Profiles
 * sharing a tag (the -07 and -06 forms of the WIMSE profile) are told apart by what the signature
 * covers: the first whose required components it covers, else the first with that tag.
 */
export function signatureProfile(inputs: ReadonlyMap<string, SignatureInputEntry>, profiles: readonly SignatureProfile[]): SignatureProfile | undefined {
  for (const entry of inputs.values()) {
    const tagged = profiles.filter((p) => p.tag === entry.params.tag);
    if (tagged.length > 0) return tagged.find((p) => p.requiredComponents.every((c) => covers(entry.components, c))) ?? tagged[0];
  }
  return undefined;
}

/** The accepted profiles, and every known one after them (for naming a proof that is not accepted). */
interface DetectionProfiles {
  accepted: readonly SignatureProfile[];
  known: readonly SignatureProfile[];
}
// Kept per options object only when it is deeply frozen, as the authenticator's is.
const detectionProfiles = new WeakMap<DetectProofOptions, DetectionProfiles>();

function profilesOf(options: DetectProofOptions, proofs: readonly AcceptedProof[]): DetectionProfiles {
  const kept = detectionProfiles.get(options);
  if (kept) return kept;
  const accepted = (options.profiles ?? SIGNATURE_PROFILES).filter((p) => proofs.includes(profileProof(p)));
  // Any profile this implementation knows names the proof a request presents, accepted or not.
  const derived = { accepted, known: [...accepted, ...SIGNATURE_PROFILES] };
  const frozen = Object.isFrozen(options) && Object.isFrozen(proofs) && (options.profiles === undefined || Object.isFrozen(options.profiles));
  if (frozen) detectionProfiles.set(options, derived);
  return derived;
}

function parsedInputs(lines: readonly string[], maxBytes: number): Map<string, SignatureInputEntry> | undefined {
  try {
    return parseSignatureInput(lines, { maxBytes });
  } catch {
    // The verifier parses again and reports what is wrong.
    return undefined;
  }
}

/**
 * Says which proof `request` uses, among those `options` accept, without verifying anything. The
 * order is fixed: `Authorization: WPT`, the legacy WPT field (when enabled), `Authorization: DPoP`,
 * then an HTTP signature (its `Signature-Input`, whose tag names the profile, or a profile's token
 * field); a proof that is present but not accepted is named as such.
 *
 * @example
 * ```ts
 * const detected = detectProof(request, { proofs: ['http-signature', 'dpop'] })
 * if (detected.proof === 'dpop') console.log('DPoP-bound token of', detected.token.length, 'bytes')
 * ```
 */
export function detectProof(request: Pick<HttpRequest, 'headers'>, options: DetectProofOptions = {}): DetectedProof {
  const proofs = options.proofs ?? ALL_PROOFS;
  const { accepted, known } = profilesOf(options, proofs);
  const acceptsWpt = proofs.includes('wpt');
  const headers = request.headers;
  const authorization = fieldLines(headers, 'authorization');
  const single = authorization?.length === 1 ? authorization[0]!.trim() : undefined;
  if (acceptsWpt && single !== undefined && /^wpt /i.test(single)) return { proof: 'wpt', wpt: single.slice(4).trim(), legacy: false };
  const legacy = options.legacyProofHeader === true && acceptsWpt ? fieldLines(headers, LEGACY_WPT_HEADER) : undefined;
  if (legacy) {
    if (legacy.length !== 1) return { proof: 'malformed', message: 'exactly one Workload-Proof-Token field line is allowed' };
    const bearer = single !== undefined ? /^bearer (.+)$/i.exec(single)?.[1] : undefined;
    return { proof: 'wpt', wpt: legacy[0]!.trim(), legacy: true, ...(bearer !== undefined ? { bearer } : {}) };
  }
  if (proofs.includes('dpop') && single !== undefined && /^dpop /i.test(single)) return { proof: 'dpop', token: single.slice(5).trim() };
  const signatureInput = fieldLines(headers, 'signature-input');
  const inputs = signatureInput ? parsedInputs(signatureInput, options.maxHeaderBytes ?? 8192) : undefined;
  if (accepted.length > 0) {
    if (signatureInput) {
      const profile = inputs && signatureProfile(inputs, accepted);
      if (profile) return { proof: 'http-signature', profile, inputs: inputs! };
      const other = inputs && signatureProfile(inputs, known);
      if (other) return { proof: 'not-accepted', presented: profileProof(other) };
      return { proof: 'http-signature', profile: accepted[0]!, ...(inputs ? { inputs } : {}) };
    }
    const profile = accepted.find((p) => fieldLines(headers, p.tokenHeader));
    if (profile) return { proof: 'http-signature', profile };
  }
  const first = authorization?.[0]?.trim() ?? '';
  if (authorization && /^dpop /i.test(first)) return { proof: 'not-accepted', presented: 'dpop' };
  if (signatureInput) {
    const other = inputs && signatureProfile(inputs, known);
    return { proof: 'not-accepted', presented: other ? profileProof(other) : 'http-signature' };
  }
  if (authorization && /^wpt /i.test(first)) return { proof: 'not-accepted', presented: 'wpt' };
  return { proof: 'none' };
}

/** Options of {@link requestBinding}. */
export interface RequestBindingOptions {
  /** The HTTP-signature profiles to look for. Default: {@link SIGNATURE_PROFILES}. */
  profiles?: readonly SignatureProfile[];
}

/**
 * The binding a request asks for, read from its fields without trusting them: for signing the
 * response to a request that was not authenticated (an error, or an optional route). A DPoP
 * binding needs the `DPoP` field, a WPT binding `Authorization: WPT`; otherwise the first
 * signature tagged with a profile's tag gives its nonce and whether a signed response was asked
 * for. Undefined when the request names none of these, or its signature fields are malformed.
 *
 * @example
 * ```ts
 * const response = problemResponse(error)
 * Object.assign(response.headers, await signResponse(response, request, requestBinding(request) ?? fallback, credential))
 * ```
 */
export function requestBinding(request: Pick<HttpRequest, 'headers'>, options: RequestBindingOptions = {}): RequestBinding | undefined {
  const profiles = options.profiles ?? SIGNATURE_PROFILES;
  const detected = detectProof(request, { proofs: ALL_PROOFS, profiles });
  if (detected.proof === 'dpop' && fieldLines(request.headers, 'dpop')) return dpopBinding();
  if (detected.proof === 'wpt') return wptBinding();
  const lines = fieldLines(request.headers, 'signature-input');
  const inputs = detected.proof === 'http-signature' ? detected.inputs : lines ? parsedInputs(lines, 8192) : undefined;
  const profile = inputs && signatureProfile(inputs, profiles);
  if (!profile) return undefined;
  const entry = [...inputs.values()].find((e) => e.params.tag === profile.tag)!;
  const { nonce, [profile.audienceParam]: audience } = entry.params;
  return signatureBinding(profile, {
    nonce: typeof nonce === 'string' ? nonce : undefined,
    audience: typeof audience === 'string' ? audience : undefined,
    signResponse: entry.params[profile.signResponseParam] === true,
    headers: request.headers,
  });
}
