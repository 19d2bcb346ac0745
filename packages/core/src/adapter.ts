/**
 * `@oidc2/core/adapter`: what a framework adapter and oidc2's own packages build on, kept out of the
 * root export so that applications see only the protocol's API.
 *
 * @packageDocumentation
 */
export { argumentError, isArgumentError, assertOptions, numberOption, integerOption, type ArgumentError, type ArgumentErrorCode } from './lib/validate.js';
export { CHANNEL_SINK, assertEventListener, createEventSink, failureOf, type EventInit, type EventSink } from './events.js';
export { announcesBody, createExchange, isBodylessResponse, type ExchangeHost } from './exchange.js';
export { concatBytes, readBounded, readBoundedBody, readBoundedOrThrow, type Overflow } from './lib/body.js';
export { CredentialRefresher, renewalTime, type Renewable } from './lib/credential-refresh.js';
export {
  assertIssuerKeyOptions,
  assertTrustedIssuer,
  createIssuerKeyResolver,
  ISSUER_KEY_OPTIONS,
  type IssuerKeyOptions,
  type IssuerKeyResolver,
  type TrustedIssuer,
} from './issuer-keys.js';
export { E2EE_SUITES, hpkeSuite, loadHpkeSuite, preloadHpkeSuites, type E2eeSuiteInfo, type E2eeSuiteName, type HpkeExporter, type HpkeKeyPair, type HpkePublicKey, type HpkeSuite } from './e2ee/hpke.js';
// End-to-end encryption, session layer (docs/protocol.md, end-to-end encryption): fields, transcript
// and message keys, session tokens and the stores of their keys.
export {
  SUITE_NAMES,
  SUITE_LENGTHS,
  KEY_SHARE_FIELD,
  SESSION_FIELD,
  MAX_KEY_SHARE_FIELD_BYTES,
  MAX_SESSION_FIELD_BYTES,
  MAX_KEY_SHARES,
  assertKeyShareLength,
  parseRequestKeyShare,
  parseResponseKeyShare,
  serializeRequestKeyShare,
  serializeResponseKeyShare,
  parseRequestSession,
  parseResponseSession,
  serializeSession,
  type SuiteName,
  type KeyShare,
  type RequestKeyShare,
  type SessionField,
} from './e2ee/fields.js';
export {
  E2EE_LABELS,
  SESSION_KEY_LENGTH,
  SID_LENGTH,
  JKT_LENGTH,
  lp,
  partyId,
  handshakeTranscriptInput,
  handshakeTranscript,
  rekeyTranscriptInput,
  rekeyTranscript,
  handshakeInfo,
  rekeyInfo,
  rekeyPskId,
  requestKeyInfo,
  requestKey,
  responseKeyInfo,
  responseKey,
  macKeys,
  type PartyIdentity,
  type TranscriptInput,
  type RekeyTranscriptInput,
  type RequestKeyInput,
  type ResponseKeyInput,
  type MacKeys,
} from './e2ee/transcript.js';
export {
  SESSION_TOKEN_TYPE,
  MAX_SESSION_TOKEN_BYTES,
  DEFAULT_EPOCH_SECONDS,
  DEFAULT_MAX_AGE_SECONDS,
  DEFAULT_REKEY_SECONDS,
  DEFAULT_SESSION_LEEWAY_SECONDS,
  createSessionTokens,
  checkSessionBinding,
  type SessionTokenClaims,
  type SessionMac,
  type VerifiedSession,
  type SessionTokenInput,
  type IssuedSessionToken,
  type SessionTokenOptions,
  type SessionTokens,
} from './e2ee/session-token.js';
export { signSessionMacResponse, sessionMacBinding, sessionMacProfile, type SessionMacResponseOptions } from './e2ee/symmetric.js';
export {
  STEK_LENGTH,
  DEFAULT_STEK_ROTATION_SECONDS,
  DEFAULT_STEK_RETENTION_SECONDS,
  MemorySessionKeyStore,
  StaticSessionKeyStore,
  isValidKid,
  stekTimes,
  type SessionKey,
  type SessionKeyStore,
  type SessionKeyJwk,
  type MemorySessionKeyStoreOptions,
  type StaticSessionKeyStoreOptions,
} from './e2ee/session-keys.js';
export {
  chooseSuite,
  acceptHandshake,
  acceptRekey,
  completeHandshake,
  completeRekey,
  type ExchangeBinding,
  type ExchangedKeys,
  type ServiceExchange,
} from './e2ee/key-exchange.js';
export { createE2eeService, hasE2eeFields, E2EE_OPTION_KEYS, type E2eeService, type OpenedE2ee, type RequestE2ee } from './e2ee/service-side.js';
export { decryptBody, decryptBodyStream, encryptBody, encryptBodyStream, E2EE_MAX_RECORD_SIZE, E2EE_MIN_RECORD_SIZE, E2EE_RECORD_SIZE, type EncryptBodyOptions, type EncryptBodyStreamOptions } from './e2ee/aes128gcm.js';
export { hkdfExpand, hkdfExtract } from './lib/crypto.js';
