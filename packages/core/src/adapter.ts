/**
 * `@oidc2/core/adapter`: what a framework adapter and oidc2's own packages build on, kept out of the
 * root export so that applications see only the protocol's API.
 *
 * @packageDocumentation
 */
export { argumentError, isArgumentError, assertOptions, numberOption, integerOption, type ArgumentError, type ArgumentErrorCode } from './lib/validate.js';
export { announcesBody, createExchange, isBodylessResponse, type ExchangeHost } from './exchange.js';
export { concatBytes, readBounded, readBoundedOrThrow, type Overflow } from './lib/body.js';
export { CredentialRefresher, renewalTime, type Renewable } from './lib/credential-refresh.js';
export { E2EE_SUITES, hpkeSuite, type E2eeSuiteInfo, type E2eeSuiteName, type HpkeExporter, type HpkeKeyPair, type HpkePublicKey, type HpkeSuite } from './e2ee/hpke.js';
export { decryptBody, decryptBodyStream, encryptBody, encryptBodyStream, E2EE_MAX_RECORD_SIZE, E2EE_MIN_RECORD_SIZE, E2EE_RECORD_SIZE, type EncryptBodyOptions } from './e2ee/aes128gcm.js';
export { hkdfExpand, hkdfExtract } from './lib/crypto.js';
