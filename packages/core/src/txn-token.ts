/**
 * Transaction Tokens (draft-ietf-oauth-transaction-tokens; docs/protocol.md section 3b): the user and
 * transaction context a call chain carries in `Txn-Token`. It never authenticates the caller by
 * itself; the authenticator verifies it beside the caller's proof and exposes it on the identity.
 */
import { errors, jwtVerify, type JWK, type JWTPayload } from 'jose';
import { Oidc2Error, isOidc2Error } from './errors.js';
import type { EventSink } from './events.js';
import { assertTrustedIssuer, createIssuerKeyResolver, type IssuerKeyResolver } from './issuer-keys.js';
import { decodeBase64Url } from './lib/base64.js';
import { ASYMMETRIC_JWA } from './lib/crypto.js';
import { argumentError, assertOptions } from './lib/validate.js';

/** Header carrying the Transaction Token. */
export const TXN_TOKEN_HEADER = 'txn-token';
/** The `typ` of Transaction Tokens. */
export const TXN_TOKEN_TYPE = 'txntoken+jwt';

/** The Transaction Token Service whose tokens a service accepts. */
export interface TransactionTokenOptions {
  /** The service's trust domain: the required `aud` of every Txn-Token. Required. */
  trustDomain: string;
  /** The Transaction Token Service's public keys, inline. Exactly one of `jwks` and `jwksUri`. */
  jwks?: { keys: JWK[] };
  /** The Transaction Token Service's JWKS URL (configured, never taken from a token). */
  jwksUri?: string;
  /** Required `iss`, when the Transaction Token Service names itself (the claim is optional in the draft). Default: not checked. */
  issuer?: string;
  /** Refuse requests without a `Txn-Token` (`txn_token_missing`). Default `false`. */
  required?: boolean;
  /** Largest accepted `exp - iat` in seconds: Txn-Tokens are short-lived. Default 300. */
  maxTokenAge?: number;
}

/** Every key of {@link TransactionTokenOptions}: any other key is refused with `ERR_UNKNOWN_OPTION`. */
export const TRANSACTION_TOKEN_OPTION_KEYS = Object.freeze([
  'trustDomain',
  'jwks',
  'jwksUri',
  'issuer',
  'required',
  'maxTokenAge',
] as const satisfies ReadonlyArray<keyof TransactionTokenOptions>);

/** A verified Transaction Token, exposed to handlers as `identity.transaction`. */
export interface TransactionContext {
  /** `sub`: the principal of the transaction, unique within the trust domain. */
  subject: string;
  /** `txn`: the transaction identifier shared by the whole call chain, when present. */
  transactionId?: string;
  /** `scope`, when present. */
  scope?: string;
  /** All claims, including `tctx` (transaction context) and `rctx` (request context). */
  claims: JWTPayload;
}

/** Verifies Transaction Tokens of one Transaction Token Service. */
export interface TxnTokenVerifier {
  readonly required: boolean;
  verify(token: string): Promise<TransactionContext>;
}

/** Creates the verifier; options are validated here, once. */
export function createTxnTokenVerifier(
  options: TransactionTokenOptions,
  context: { now: () => number; clockTolerance: number; fetch?: typeof fetch; events?: EventSink },
): TxnTokenVerifier {
  const where = 'options.transactionTokens';
  assertOptions(options as unknown, TRANSACTION_TOKEN_OPTION_KEYS, where);
  if (typeof options.trustDomain !== 'string' || options.trustDomain.length === 0) {
    throw argumentError('ERR_INVALID_ARG_VALUE', `${where}.trustDomain must be a non-empty string`);
  }
  if ((options.jwks === undefined) === (options.jwksUri === undefined)) {
    throw argumentError('ERR_INVALID_ARG_VALUE', `${where} takes exactly one of jwks and jwksUri`);
  }
  const maxTokenAge = options.maxTokenAge ?? 300;
  if (!Number.isInteger(maxTokenAge) || maxTokenAge < 1) throw argumentError('ERR_INVALID_ARG_VALUE', `${where}.maxTokenAge must be a positive integer`);
  const config = { issuer: options.issuer ?? options.trustDomain, jwks: options.jwks, jwksUri: options.jwksUri };
  assertTrustedIssuer(config, where);
  const keys: IssuerKeyResolver = createIssuerKeyResolver(config, { fetch: context.fetch }, context.events);

  return {
    required: options.required === true,
    async verify(token) {
      if (token.length > 8192) throw new Oidc2Error('header_too_large', 'Txn-Token exceeds 8192 bytes');
      // Exactly three canonical base64url segments: jose's decoder skips whitespace and spare bits,
      // so without this one token would have many accepted spellings.
      const parts = token.split('.');
      if (parts.length !== 3 || !parts.every((p) => p.length > 0 && decodeBase64Url(p) !== undefined)) {
        throw new Oidc2Error('txn_token_invalid', 'the Txn-Token is not a compact JWS');
      }
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, keys, {
          typ: TXN_TOKEN_TYPE,
          algorithms: [...ASYMMETRIC_JWA],
          audience: options.trustDomain,
          issuer: options.issuer,
          requiredClaims: ['iat', 'exp', 'aud', 'sub'],
          maxTokenAge,
          clockTolerance: context.clockTolerance,
          currentDate: new Date(context.now() * 1000),
        }));
      } catch (error) {
        // Keys that cannot be fetched are the service's problem (503), everything else the token's.
        if (isOidc2Error(error) && error.code === 'issuer_unavailable') throw error;
        throw new Oidc2Error('txn_token_invalid', `the Txn-Token was rejected (${reason(error)})`);
      }
      if (typeof payload.sub !== 'string') throw new Oidc2Error('txn_token_invalid', 'the Txn-Token sub must be a string');
      // jose's maxTokenAge bounds the age since iat; the lifetime needs its own bound.
      if (payload.exp! - payload.iat! > maxTokenAge) throw new Oidc2Error('txn_token_invalid', `the Txn-Token lives longer than ${maxTokenAge} seconds`);
      const txn = payload.txn;
      const scope = payload.scope;
      return {
        subject: payload.sub,
        ...(typeof txn === 'string' ? { transactionId: txn } : {}),
        ...(typeof scope === 'string' ? { scope } : {}),
        claims: payload,
      };
    },
  };
}

// A short, token-free reason from jose's error classes.
function reason(error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'expired';
  if (error instanceof errors.JWTClaimValidationFailed) return `claim ${error.claim} ${error.reason}`;
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'bad signature';
  if (error instanceof errors.JOSEAlgNotAllowed) return 'algorithm not allowed';
  if (error instanceof errors.JWKSNoMatchingKey) return 'unknown key';
  return 'malformed';
}
