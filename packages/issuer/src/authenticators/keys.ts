// Verification keys of an authorization server or a client, through the core's issuer key
// resolver: inline keys, a configured jwksUri, or OIDC discovery from a configured issuer. Keys
// are never fetched from a URL that only a token names.
import {
  assertIssuerKeyOptions,
  assertOptions,
  assertTrustedIssuer,
  createIssuerKeyResolver,
  ISSUER_KEY_OPTIONS,
  type IssuerKeyOptions,
  type IssuerKeyResolver,
  type TrustedIssuer,
} from '@oidc2/core/adapter';
import { errors as joseErrors, type JSONWebKeySet, type JWK } from 'jose';

/**
 * How remote keys are fetched and cached (all durations in seconds): `cacheMaxAge` (default 600),
 * `cooldown` (30), `timeout` (5), `staleIfError` (3600), `maxResponseBytes` (131072).
 */
export type RemoteKeyOptions = Omit<IssuerKeyOptions, 'fetch'>;

const REMOTE_KEY_OPTIONS = ISSUER_KEY_OPTIONS.filter((k) => k !== 'fetch');

/** Checks `remoteKeys` (named `where`) and returns the resolver options. */
export function remoteKeyOptions(remoteKeys: RemoteKeyOptions | undefined, fetchImpl: typeof fetch | undefined, where: string): IssuerKeyOptions {
  if (remoteKeys !== undefined) {
    assertOptions(remoteKeys, REMOTE_KEY_OPTIONS, where);
    assertIssuerKeyOptions(remoteKeys, where);
  }
  return { ...remoteKeys, ...(fetchImpl ? { fetch: fetchImpl } : {}) };
}

/** Where one party's keys come from. */
export interface KeySource {
  /** The party: an authorization server's issuer (a URL when keys are discovered) or a client id. */
  issuer: string;
  jwks?: JSONWebKeySet;
  jwksUri?: string;
}

/**
 * The key lookup for `source`, checked now (`where` names it in errors): `jwks` or `jwksUri`
 * (https, or http on loopback), else discovery from `source.issuer`.
 */
export function keyResolver(source: KeySource, options: IssuerKeyOptions, where: string): IssuerKeyResolver {
  const config: TrustedIssuer = {
    issuer: source.issuer,
    ...(source.jwks !== undefined ? { jwks: source.jwks as { keys: JWK[] } } : {}),
    ...(source.jwksUri !== undefined ? { jwksUri: source.jwksUri } : {}),
  };
  assertTrustedIssuer(config, where);
  return createIssuerKeyResolver(config, options);
}

/**
 * Whether a failed verification means the keys could not be had (the resolver's
 * `issuer_unavailable`, a timeout, an unusable key set), not a verdict about the token itself (a
 * JOSE error). Not instanceof Error: fetch errors may come from another realm.
 */
export function isKeySourceFailure(err: unknown): boolean {
  return err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid || !(err instanceof joseErrors.JOSEError);
}
