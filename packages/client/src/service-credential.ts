/**
 * A service's own credential, obtained from an issuer: the key pair is made once, and every call of
 * the returned function asks the issuer for a fresh ICT (or WIT) certifying it. Pass the function
 * as the adapters' `credential` (or `credentials.wit`): the service calls it at start-up and again
 * shortly before each token expires, one call at a time.
 */
import type { Oidc2EventListener } from '@oidc2/core';
import { argumentError, assertEventListener, assertOptions, createEventSink } from '@oidc2/core/adapter';
import { assertKeyPair, clientKey, type ClientAlgorithm, type ClientKey } from './lib/keys.js';
import { issueCredential, validateIssuerOptions, type IssuanceEnvironment, type IssuanceOptions } from './lib/issuance.js';

/** Options of {@link serviceCredential}. */
export interface ServiceCredentialOptions {
  /**
   * The issuer and how the service authenticates there (an API key, a client assertion such as a
   * Kubernetes service-account token, or an access token), with the service's `subject`.
   * Required; as the client's `issuer` option.
   */
  issuer: IssuanceOptions;
  /** The token to obtain: an ICT (OIDC² callers) or a WIT (WIMSE callers). Default `'ict'`. */
  token?: 'ict' | 'wit';
  /** Algorithm of the generated key pair. Default `'ES256'`. */
  algorithm?: ClientAlgorithm;
  /** The service's key pair (WebCrypto). Default: generated once, the private key non-extractable. */
  keyPair?: CryptoKeyPair;
  /** The fetch used to reach the issuer. Default `globalThis.fetch`. */
  fetch?: typeof fetch;
  /**
   * Receives an `issuer_grant` event (`side: 'client'`) for every request to the issuer: the
   * subject, client, key thumbprint and expiry of each issued token, or the failure's code, the
   * issuer's status and its own code (docs/events.md). The same events go to
   * `node:diagnostics_channel` on Node. A throwing listener changes nothing. Default none.
   */
  onEvent?: Oidc2EventListener;
}

/** What {@link serviceCredential} supplies for an ICT: the adapters' `credential` option. */
export interface ServiceIctCredential {
  ict: string;
  privateKey: CryptoKey;
}

/** What {@link serviceCredential} supplies for a WIT: the adapters' `credentials.wit` option. */
export interface ServiceWitCredential {
  wit: string;
  privateKey: CryptoKey;
}

const OPTION_KEYS = ['issuer', 'token', 'algorithm', 'keyPair', 'fetch', 'onEvent'] as const satisfies ReadonlyArray<keyof ServiceCredentialOptions>;

/**
 * Makes the provider of a service's credential. Options are checked here, once; the key pair is
 * made on the first call. Failures reject with the issuance's coded error (`issuer_unavailable`,
 * the issuer's refusal code with its `error_description`, or `credential_supplier_failed` when the
 * API key, assertion or access token function throws), which the service reports as a
 * `credential_refresh` event and, from `ready()`, at start-up.
 *
 * @example
 * ```ts
 * import { serviceCredential } from '@oidc2/client'
 * import { oidc2 } from '@oidc2/express'
 *
 * const credential = serviceCredential({
 *   issuer: { url: 'https://issuer.example.com', credential: { apiKey: process.env.OIDC2_API_KEY! }, subject: 'https://api.example.com' },
 * })
 * const auth = oidc2({ issuers: [{ issuer: 'https://op.example.com' }], audiences: ['https://api.example.com'], credential })
 * await auth.ready()
 * ```
 */
export function serviceCredential(options: ServiceCredentialOptions & { token?: 'ict' }): () => Promise<ServiceIctCredential>;
export function serviceCredential(options: ServiceCredentialOptions & { token: 'wit' }): () => Promise<ServiceWitCredential>;
export function serviceCredential(options: ServiceCredentialOptions): () => Promise<ServiceIctCredential | ServiceWitCredential> {
  assertOptions(options, OPTION_KEYS, 'options');
  const token = options.token ?? 'ict';
  if (token !== 'ict' && token !== 'wit') throw argumentError('ERR_INVALID_ARG_VALUE', "options.token must be 'ict' or 'wit'");
  const algorithm = options.algorithm ?? 'ES256';
  if (algorithm !== 'ES256' && algorithm !== 'Ed25519') throw argumentError('ERR_INVALID_ARG_VALUE', "options.algorithm must be 'ES256' or 'Ed25519'");
  if (options.keyPair !== undefined) assertKeyPair(options.keyPair, algorithm);
  if (options.fetch !== undefined && typeof options.fetch !== 'function') throw argumentError('ERR_INVALID_ARG_TYPE', 'options.fetch must be a function');
  assertEventListener(options.onEvent, 'options.onEvent');
  validateIssuerOptions(options.issuer, token);
  const issuance = options.issuer;
  const env: IssuanceEnvironment = {
    fetch: options.fetch ?? ((input, init) => globalThis.fetch(input, init)),
    now: () => Date.now() / 1000,
    discovery: {},
    events: createEventSink(options.onEvent),
  };
  let key: Promise<ClientKey> | undefined;
  return async () => {
    key ??= clientKey(algorithm, false, options.keyPair);
    const held = await key;
    const issued = await issueCredential(issuance, held, env, token);
    return token === 'ict' ? { ict: issued, privateKey: held.privateKey } : { wit: issued, privateKey: held.privateKey };
  };
}
