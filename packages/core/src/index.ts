/**
 * `@oidc2/core`: the framework-free OIDC² engine. It verifies Identity Certification Tokens, RFC 9421
 * HTTP Message Signatures, RFC 9530 Content-Digest and RFC 9449 DPoP proofs, signs requests and
 * responses, and renders coded RFC 9457 errors. Adapters and the client build on it.
 *
 * @packageDocumentation
 */
export * from './errors.js';
export * from './message.js';
export * from './profile.js';
export * from './authenticator.js';
export { createOidc2Service, type AuthResult, type Oidc2Options, type Oidc2Service } from './service.js';
export { assertRoutePolicy, applyRoutePolicy, type RoutePolicy } from './policy.js';
export { problemResponse } from './problem.js';
export type { CredentialInput, CredentialSource } from './service-credential.js';
export type { Admission, Admitted, Exchange, ExchangeResponse, Answered } from './exchange.js';
export * from './request-signing.js';
export * from './response-signature.js';
export { createContentDigest, verifyContentDigest, type ContentDigestAlgorithm, type VerifyContentDigestOptions } from './content-digest.js';
export * from './rfc9421/index.js';
export {
  ICT_TYPES,
  createIctVerifier,
  jwkAlgorithm,
  jwkThumbprint,
  parsePublicJwk,
  type IctVerifier,
  type IctVerifierOptions,
  type IctVerifyOptions,
  type VerifiedIct,
} from './ict.js';
export { type TrustedIssuer, type IssuerKeyOptions } from './issuer-keys.js';
export {
  createDpopNonces,
  verifyDpopProof,
  type DpopNonceOptions,
  type DpopNonces,
  type DpopVerifyOptions,
  type VerifiedDpopProof,
} from './dpop.js';
export { MemoryReplayStore, type ReplayStore, type MemoryReplayStoreOptions } from './replay-store.js';
export { ASYMMETRIC_JWA, algorithmSpec, importKey, keyHandleFrom, publicJwk, type AlgorithmSpec, type KeyHandle } from './lib/crypto.js';
export { readBoundedBody, type Body } from './lib/body.js';
export { TXN_TOKEN_HEADER, TXN_TOKEN_TYPE, type TransactionContext, type TransactionTokenOptions } from './txn-token.js';
export * from './wimse.js';
