/**
 * What every proof module verifies a request with: the configured token verifiers, the replay
 * store, the clock and its tolerances, the service's audiences and the checks every proof shares
 * (Content-Digest, Txn-Token). Built once by the authenticator from its validated options.
 */
import type { JWK } from 'jose';
import { Oidc2Error } from '../errors.js';
import { fieldLines, type HttpRequest } from '../message.js';
import type { IctVerifier, VerifiedIct } from '../ict.js';
import type { VerifiedWit, WitVerifier } from '../wimse.js';
import type { DpopNonces } from '../dpop.js';
import type { ReplayStore } from '../replay-store.js';
import type { AudienceMatcher } from '../lib/audience.js';
import type { TransactionContext } from '../txn-token.js';
import type { ProofType, RequestBinding } from '../binding.js';
import type { Identity } from '../authenticator.js';

/** The shared context of the proof modules (`proofs/http-signature`, `proofs/dpop`, `proofs/wpt`). */
export interface ProofContext {
  /** Verifies ICTs: the token of the OIDC² signature profile and of DPoP. */
  readonly ictVerifier: IctVerifier;
  /** Verifies WITs, when workloads are accepted. */
  readonly witVerifier?: WitVerifier;
  /** Where signature nonces, DPoP and WPT `jti`s are recorded. */
  readonly replayStore: ReplayStore;
  /** Clock in unix seconds. */
  readonly now: () => number;
  /** Allowed clock skew in seconds. */
  readonly clockTolerance: number;
  /** Largest accepted signature or proof age in seconds. */
  readonly maxSignatureAge: number;
  /** Largest accepted credential or signature field, in bytes. */
  readonly maxHeaderBytes: number;
  /** The service's public base URLs. */
  readonly audiences: AudienceMatcher;
  /** Components a request signature must cover beyond its profile's (lower case). */
  readonly requiredComponents: readonly string[];
  /** DPoP server nonces, when required. */
  readonly dpopNonces?: DpopNonces;
  /**
   * Verifies `Content-Digest` when present; with `requiredForBody`, demands one for any body
   * (HTTP signatures, which cover it; DPoP and WPT cover no body).
   */
  checkDigest(request: HttpRequest, requiredForBody: boolean): Promise<void> | void;
  /**
   * The verified `Txn-Token`, when the service accepts them (and one was sent or is required); a
   * promise only when there is one to verify.
   */
  transaction(request: HttpRequest): Promise<TransactionContext | undefined> | TransactionContext | undefined;
}

/** Per-request hooks of a proof verification. */
export interface ProofHooks {
  /**
   * Runs after every check of the proof and immediately before its nonce or `jti` is recorded in
   * the replay store; when it throws, nothing is recorded and the error propagates.
   */
  beforeRecord?: (identity: Identity) => Promise<void> | void;
  /**
   * The body is an end-to-end encrypted body streamed without `Content-Digest` and decrypted record
   * by record after admission (docs/protocol.md section 7.7): an HTTP signature demands no digest of it.
   */
  streamedEncryptedBody?: boolean;
}

/**
 * The one field line of `name`, trimmed. Throws `missing()` when absent, `request_malformed` when
 * repeated, `header_too_large` beyond `maxHeaderBytes`.
 */
export function singleField(request: HttpRequest, name: string, maxHeaderBytes: number, missing: () => Oidc2Error): string {
  const lines = fieldLines(request.headers, name);
  if (!lines) throw missing();
  if (lines.length !== 1) throw new Oidc2Error('request_malformed', `exactly one ${name} field line is allowed`);
  const value = lines[0]!.trim();
  if (value.length > maxHeaderBytes) throw new Oidc2Error('header_too_large', `${name} exceeds ${maxHeaderBytes} bytes`);
  return value;
}

/** The identity an ICT-based proof establishes: a user. */
export function ictIdentity(ict: VerifiedIct, publicKey: JWK, proof: ProofType, binding: RequestBinding, transaction?: TransactionContext): Identity {
  return {
    kind: 'user',
    subject: ict.subject,
    issuer: ict.issuer,
    claims: ict.payload,
    contexts: ict.contexts,
    publicKey,
    thumbprint: ict.thumbprint,
    proof,
    binding,
    ...(transaction ? { transaction } : {}),
  };
}

/**
 * The identity a WIT-based proof establishes: a workload, whose issuer is the WIT's `iss` or the
 * empty string when it has none (the `iss` that end-to-end encryption binds, docs/protocol.md section 7.1).
 */
export function witIdentity(wit: VerifiedWit, proof: ProofType, binding: RequestBinding, transaction?: TransactionContext): Identity {
  return {
    kind: 'workload',
    subject: wit.subject,
    issuer: typeof wit.claims.iss === 'string' ? wit.claims.iss : '',
    trustDomain: wit.trustDomain,
    claims: wit.claims,
    contexts: [],
    publicKey: wit.jwk,
    thumbprint: wit.thumbprint,
    proof,
    binding,
    ...(transaction ? { transaction } : {}),
  };
}
