/**
 * `@oidc2/core/adapter`: what a framework adapter and oidc2's own packages build on, kept out of the
 * root export so that applications see only the protocol's API.
 *
 * @packageDocumentation
 */
export { argumentError, isArgumentError, assertOptions, numberOption, integerOption, type ArgumentError, type ArgumentErrorCode } from './lib/validate.js';
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
export { E2EE_SUITES, hpkeSuite, type E2eeSuiteInfo, type E2eeSuiteName, type HpkeExporter, type HpkeKeyPair, type HpkePublicKey, type HpkeSuite } from './e2ee/hpke.js';
