/**
 * `@oidc2/core`: the framework-free OIDC² engine. It verifies Identity Certification Tokens, RFC 9421
 * HTTP Message Signatures, RFC 9530 Content-Digest and RFC 9449 DPoP proofs, signs requests and
 * responses, and renders coded RFC 9457 errors. Adapters and the client build on it.
 *
 * @packageDocumentation
 */
export { ERROR_STATUS, Oidc2Error, PROBLEM_CONTENT_TYPE, isOidc2Error, type Oidc2ErrorCode, type ProblemDetails, type RemoteCause } from './errors.js';
export { fieldLines, fieldValue, isAbsoluteForm, normalizeFields, type Fields, type FieldsInit, type HttpRequest, type HttpResponse } from './message.js';
export { OIDC2_PROFILE, SIGNATURE_PROFILES, WIMSE_06_PROFILE, WIMSE_PROFILE, WIT_HEADER, type SignatureProfile, type TokenKind } from './profile.js';
export { dpopBinding, wptBinding, type AcceptedProof, type ProofType, type RequestBinding } from './binding.js';
export { detectProof, requestBinding, type DetectedProof, type DetectProofOptions, type RequestBindingOptions } from './proofs/detect.js';
export {
  AUTHENTICATOR_OPTION_KEYS,
  createAuthenticator,
  type AuthenticateOptions,
  type Authenticator,
  type AuthenticatorOptions,
  type Identity,
  type WimseSignatureDraft,
  type WorkloadOptions,
} from './authenticator.js';
export { createOidc2Service, type AuthResult, type Oidc2Options, type Oidc2Service } from './service.js';
export { assertRoutePolicy, applyRoutePolicy, type EncryptedStreamsPolicy, type RoutePolicy, type WorkloadPolicy } from './policy.js';
export { problemResponse } from './problem.js';
export type { CredentialInput, CredentialSource, ServiceCredentials, WitCredentialInput, WitCredentialSource } from './service-credential.js';
export type { Admission, Admitted, Exchange, ExchangeResponse, Answered } from './exchange.js';
export { createNonce, signRequest, type SignableRequest, type SignedRequest, type SignRequestOptions } from './request-signing.js';
export {
  signResponse,
  verifyResponse,
  type ServiceCredential,
  type ServiceIdentity,
  type SignResponseOptions,
  type VerifyResponseOptions,
} from './response-signature.js';
export { createContentDigest, verifyContentDigest, type ContentDigestAlgorithm, type VerifyContentDigestOptions } from './content-digest.js';
export {
  DERIVED_COMPONENTS,
  SIGNATURE_ALGORITHMS,
  STRUCTURED_FIELDS,
  Token,
  componentValue,
  parseComponentIdentifier,
  parseSignature,
  parseSignatureInput,
  serializeSignatureParams,
  signMessage,
  signMessageFields,
  signatureBase,
  verifyMessageSignature,
  type ComponentIdentifier,
  type ComponentParams,
  type DerivedComponentName,
  type FieldLimits,
  type HttpMessage,
  type SignMessageOptions,
  type SignatureContext,
  type SignatureInputEntry,
  type SignatureParamValue,
  type SignatureParams,
  type SignedMessage,
  type StructuredFieldType,
} from './rfc9421/index.js';
export { ICT_TYPES, createIctVerifier, type IctVerifier, type IctVerifierOptions, type IctVerifyOptions, type VerifiedIct } from './ict.js';
export { jwkAlgorithm, jwkThumbprint, parsePublicJwk } from './lib/jwk.js';
export { type TrustedIssuer, type IssuerKeyOptions } from './issuer-keys.js';
export {
  createDpopNonces,
  createDpopProof,
  verifyDpopProof,
  type DpopNonceOptions,
  type DpopNonces,
  type DpopProofOptions,
  type DpopVerifyOptions,
  type VerifiedDpopProof,
} from './dpop.js';
export { MemoryReplayStore, type ReplayStore, type MemoryReplayStoreOptions } from './replay-store.js';
export { ASYMMETRIC_JWA, algorithmSpec, importKey, keyHandleFrom, publicJwk, type AlgorithmSpec, type KeyHandle } from './lib/crypto.js';
export type { Body } from './lib/body.js';
export { TXN_TOKEN_HEADER, TXN_TOKEN_TYPE, type TransactionContext, type TransactionTokenOptions } from './txn-token.js';
export {
  WIT_TYPE,
  WPT_TYPE,
  createWitVerifier,
  createWpt,
  verifyWpt,
  wimseTokenHash,
  type VerifiedWit,
  type VerifiedWpt,
  type WimseTrustDomain,
  type WitVerifier,
  type WitVerifierOptions,
  type WptCreateOptions,
  type WptVerifyOptions,
} from './wimse.js';
// End-to-end encryption (docs/protocol.md section 7): what a service or its operator configures.
export { SESSION_ENDPOINT_PATH, type E2eeOptions, type EncryptionPolicy } from './e2ee/service-side.js';
export {
  SESSION_MAC_TAG,
  SESSION_MAC_ALGORITHM,
  hasSessionMacSignature,
  signSessionMacRequest,
  verifySessionMacResponse,
  type SignSessionMacRequestOptions,
  type VerifySessionMacResponseOptions,
} from './e2ee/symmetric.js';
export { MemorySessionKeyStore, StaticSessionKeyStore, type SessionKey, type SessionKeyStore, type MemorySessionKeyStoreOptions, type StaticSessionKeyStoreOptions } from './e2ee/session-keys.js';
export type { SuiteName } from './e2ee/fields.js';
// Decision events (docs/events.md).
export {
  OIDC2_EVENT_CHANNELS,
  type AuthenticationEvent,
  type CredentialRefreshEvent,
  type IssuerGrantEvent,
  type KeyFetchEvent,
  type Oidc2Event,
  type Oidc2EventBase,
  type Oidc2EventListener,
  type Oidc2EventType,
  type ResponseSigningEvent,
  type ResponseVerificationEvent,
} from './events.js';
