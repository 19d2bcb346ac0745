/**
 * The service's own credentials (docs/protocol.md section 4): its ICT, its WIT, or both, each with the
 * private key it certifies, fixed or from a provider that is called again before the token
 * expires. A response is signed with the credential of the caller's profile.
 */
import { decodeJwt, type JWK } from 'jose';
import { Oidc2Error, isOidc2Error } from './errors.js';
import type { ServiceCredential } from './response-signature.js';
import type { TokenKind } from './profile.js';
import { importKey, keyHandleFrom, sign, verify, type KeyHandle } from './lib/crypto.js';
import { CredentialRefresher, renewalTime, type Renewable } from './lib/credential-refresh.js';
import { argumentError, assertOptions } from './lib/validate.js';
import { jwkThumbprint, parsePublicJwk } from './lib/jwk.js';
import { CHANNEL_SINK, failureOf, type EventSink } from './events.js';

/** The service's ICT credential as configured: its ICT and the private key it certifies. */
export interface CredentialInput {
  /** The service's ICT (compact JWT) whose `cnf.jwk` is the public half of `privateKey`. */
  ict: string;
  /** The private key: a private JWK, a CryptoKey / KeyObject, or a handle from `importKey`. */
  privateKey: JWK | CryptoKey | KeyHandle | object;
  /** JWA algorithm of the key. Default: `cnf.jwk.alg` of the ICT, else the curve's default. */
  alg?: string;
}

/** The service's WIT credential as configured: its WIT and the private key it certifies. */
export interface WitCredentialInput {
  /** The service's WIT (compact JWT, `typ` `wit+jwt`) whose `cnf.jwk` is the public half of `privateKey`. */
  wit: string;
  /** The private key: a private JWK, a CryptoKey / KeyObject, or a handle from `importKey`. */
  privateKey: JWK | CryptoKey | KeyHandle | object;
  /** JWA algorithm of the key. Default: `cnf.jwk.alg` of the WIT (which a WIT must carry). */
  alg?: string;
}

/** A fixed ICT credential, or a provider called again before the current ICT expires. */
export type CredentialSource = CredentialInput | (() => CredentialInput | Promise<CredentialInput>);

/** A fixed WIT credential, or a provider called again before the current WIT expires. */
export type WitCredentialSource = WitCredentialInput | (() => WitCredentialInput | Promise<WitCredentialInput>);

/**
 * The service's credentials, one per token kind: users (ICT callers) are answered with the ICT,
 * workloads (WIT callers: WIMSE signatures and WPTs) with the WIT. At least one is required.
 */
export interface ServiceCredentials {
  /** The ICT credential: signs responses to OIDC² (ICT) callers. Default none. */
  ict?: CredentialSource;
  /** The WIT credential: signs responses to WIMSE (WIT) callers. Default none. */
  wit?: WitCredentialSource;
}

/** Every key of {@link ServiceCredentials}: any other key is refused with `ERR_UNKNOWN_OPTION`. */
export const SERVICE_CREDENTIALS_KEYS = Object.freeze(['ict', 'wit'] as const satisfies ReadonlyArray<keyof ServiceCredentials>);

type AnyInput = CredentialInput | WitCredentialInput;
const KEYS: Record<TokenKind, readonly string[]> = { ict: ['ict', 'privateKey', 'alg'], wit: ['wit', 'privateKey', 'alg'] };
const CURVE_ALG: Record<string, string> = { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512', Ed25519: 'Ed25519' };

/** Checks a configured credential source of `kind` once, at construction. */
export function assertCredentialSource(source: unknown, name: string, kind: TokenKind = 'ict'): asserts source is CredentialSource | WitCredentialSource | undefined {
  if (source === undefined || typeof source === 'function') return;
  if (typeof source !== 'object' || source === null || typeof (source as Record<string, unknown>)[kind] !== 'string') {
    throw argumentError('ERR_INVALID_ARG_VALUE', `${name} must be { ${kind}, privateKey } or a function returning it`);
  }
  assertOptions(source, KEYS[kind], name);
}

type HeldCredential = ServiceCredential & Renewable & { subject: string | undefined; issuer: string | undefined };

async function toServiceCredential(input: AnyInput, kind: TokenKind, now: number, margin: number, renews: boolean): Promise<HeldCredential> {
  assertCredentialSource(input, 'credential', kind);
  const token = (input as unknown as Record<TokenKind, string>)[kind];
  let claims;
  try {
    claims = decodeJwt(token);
  } catch {
    throw argumentError('ERR_INVALID_ARG_VALUE', `credential.${kind} is not a JWT`);
  }
  const cnf = (claims.cnf as { jwk?: JWK } | undefined)?.jwk;
  // A WIT's cnf.jwk.alg fixes the algorithm of every signature it backs; an ICT's may be implied by the curve.
  const alg = input.alg ?? cnf?.alg ?? (kind === 'ict' && cnf?.crv ? CURVE_ALG[cnf.crv] : undefined);
  if (!alg) throw argumentError('ERR_INVALID_ARG_VALUE', `credential.alg is required when the ${kind.toUpperCase()} key names no algorithm`);
  if (kind === 'wit' && cnf?.alg !== undefined && alg !== cnf.alg) throw argumentError('ERR_INVALID_ARG_VALUE', 'credential.alg must be the WIT cnf.jwk.alg');
  const pk = input.privateKey as Partial<KeyHandle> & JWK;
  let key: KeyHandle;
  if (pk === null || typeof pk !== 'object') throw argumentError('ERR_INVALID_ARG_TYPE', 'credential.privateKey must be a JWK, a CryptoKey, a KeyObject or a key handle');
  if (pk.spec !== undefined && pk.usage !== undefined) key = pk as KeyHandle;
  else if (typeof pk.kty === 'string') key = await importKey(pk, alg, 'sign');
  else key = keyHandleFrom(pk as unknown as CryptoKey, alg, 'sign');
  // A credential whose key does not match its token would sign every response with a signature no
  // caller accepts: refuse it here, where the cause is known, rather than on the caller's side.
  const publicKey = parsePublicJwk(cnf);
  if (!publicKey) throw new Oidc2Error('response_signing_unavailable', `the service ${kind.toUpperCase()} has no usable cnf.jwk`);
  const probe = new TextEncoder().encode('oidc2 credential check');
  let matches = false;
  try {
    matches = await verify(await importKey(publicKey, alg, 'verify'), probe, await sign(key, probe));
  } catch (cause) {
    throw new Oidc2Error('response_signing_unavailable', `the service private key cannot sign with ${alg}`, { cause });
  }
  if (!matches) throw new Oidc2Error('response_signing_unavailable', `the service private key is not the key its ${kind.toUpperCase()} certifies (cnf.jwk)`);
  const thumbprint = await jwkThumbprint(publicKey);
  const expiresAt = typeof claims.exp === 'number' ? claims.exp : Infinity;
  // A fixed credential is never renewed; a provider's is renewed `margin` before expiry, or half-way
  // for credentials shorter-lived than twice the margin, so a provider handing out short tokens is
  // not called on every response.
  const renewAt = renews && Number.isFinite(expiresAt) ? renewalTime(expiresAt, typeof claims.iat === 'number' ? claims.iat : undefined, now, margin) : Infinity;
  return { ict: token, key, kind, thumbprint, expiresAt, renewAt, subject: typeof claims.sub === 'string' ? claims.sub : undefined, issuer: typeof claims.iss === 'string' ? claims.iss : undefined };
}

/**
 * A service credential of `kind` as a function returning the current one, renewed single-flight; a
 * failed renewal keeps the old credential until it expires, then fails with `response_signing_unavailable`.
 */
export function serviceCredentialProvider(
  source: CredentialSource | WitCredentialSource,
  margin: number,
  now: () => number,
  kind: TokenKind = 'ict',
  events: EventSink = CHANNEL_SINK,
): () => Promise<ServiceCredential> {
  const renews = typeof source === 'function';
  let held: HeldCredential | undefined;
  const refresher = new CredentialRefresher(
    async () => {
      try {
        held = await toServiceCredential(typeof source === 'function' ? await answerWithin<AnyInput>(source as () => AnyInput | Promise<AnyInput>, CREDENTIAL_TIMEOUT_MS) : source, kind, now(), margin, renews);
      } catch (error) {
        if (events.wants('credential_refresh')) {
          const kept = held !== undefined && held.expiresAt > now();
          events.publish({ type: 'credential_refresh', side: 'service', credential: kind, outcome: 'failure', ...failureOf(error), ...(kept ? { keptPrevious: true } : {}) });
        }
        throw error;
      }
      if (events.wants('credential_refresh')) {
        const { subject, issuer, thumbprint, expiresAt } = held;
        events.publish({
          type: 'credential_refresh',
          side: 'service',
          credential: kind,
          outcome: 'success',
          ...(subject !== undefined ? { subject } : {}),
          ...(issuer !== undefined ? { issuer } : {}),
          ...(thumbprint !== undefined ? { thumbprint } : {}),
          ...(Number.isFinite(expiresAt) ? { expiresAt } : {}),
        });
      }
      return held;
    },
    now,
    (cause) => new Oidc2Error('response_signing_unavailable', `the service ${kind.toUpperCase()} credential is unavailable${isOidc2Error(cause) ? `: ${cause.message}` : ''}`, { cause }),
  );
  // A failure is answered again for a moment without asking the provider: the error response that
  // follows a failed signature would otherwise wait for the same broken provider a second time.
  let failedAt = -Infinity;
  let failure: unknown;
  return async () => {
    if (performance.now() - failedAt < CREDENTIAL_RETRY_MS) throw failure;
    try {
      return await refresher.get();
    } catch (error) {
      failedAt = performance.now();
      failure = error;
      throw error;
    }
  };
}

/**
 * How long a credential provider may take. One that hangs would otherwise hold every response that
 * must be signed (and every signed error response) for as long as it hangs; past this the response
 * fails with `response_signing_unavailable` and the next one asks the provider again.
 */
export const CREDENTIAL_TIMEOUT_MS = 5000;

/** After a provider failure, how long the same failure is answered without asking it again. */
const CREDENTIAL_RETRY_MS = 1000;

function answerWithin<T>(provider: () => T | Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the credential provider did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([Promise.resolve().then(provider), timeout]).finally(() => clearTimeout(timer));
}

/** The service's credential providers by token kind. */
export type CredentialProviders = Partial<Record<TokenKind, () => Promise<ServiceCredential>>>;

/**
 * Checks the `credential` and `credentials` options once and makes a provider per credential.
 * `credential` is the ICT credential alone (the form services had before they could hold a WIT);
 * the two options exclude each other.
 */
export function credentialProviders(credential: unknown, credentials: unknown, margin: number, now: () => number, events?: EventSink): CredentialProviders {
  if (credentials === undefined) {
    assertCredentialSource(credential, 'options.credential');
    return credential === undefined ? {} : { ict: serviceCredentialProvider(credential as CredentialSource, margin, now, 'ict', events) };
  }
  if (credential !== undefined) throw argumentError('ERR_INVALID_ARG_VALUE', 'options.credential and options.credentials exclude each other: name the ICT as options.credentials.ict');
  assertOptions(credentials, SERVICE_CREDENTIALS_KEYS, 'options.credentials');
  const set = credentials as ServiceCredentials;
  if (set.ict === undefined && set.wit === undefined) throw argumentError('ERR_INVALID_ARG_VALUE', 'options.credentials must name an ict, a wit or both');
  const providers: CredentialProviders = {};
  for (const kind of SERVICE_CREDENTIALS_KEYS) {
    const source = set[kind];
    assertCredentialSource(source, `options.credentials.${kind}`, kind);
    if (source !== undefined) providers[kind] = serviceCredentialProvider(source, margin, now, kind, events);
  }
  return providers;
}
