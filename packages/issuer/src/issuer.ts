// createIssuer: validates the options, loads or generates the signing keys and wires the
// endpoints to their mounts.
import type { HttpRequest } from '@oidc2/core';
import type { JWK } from 'jose';
import { discoveryDocument, handleRequest, servesPath } from './endpoints.js';
import { KeyRing } from './lib/keys.js';
import { mount } from './mount.js';
import { resolveIssuerOptions, type IssuerOptions } from './options.js';
import { ownWits } from './own-wits.js';
import { replayCheck, type IssuerState } from './state.js';
import type { Issuer } from './types.js';

/**
 * Creates an ICT issuer (and, with `workloads`, a WIT issuer). Validates every option once (bad options throw a `TypeError` with a
 * `code`: `ERR_INVALID_ARG_TYPE`, `ERR_INVALID_ARG_VALUE`, or `ERR_UNKNOWN_OPTION` for a key no
 * option has, at any depth) and loads or generates the signing keys.
 *
 * @example
 * ```ts
 * import express from 'express';
 * import { createIssuer, jwtAccessTokens } from '@oidc2/issuer';
 *
 * const issuer = await createIssuer({
 *   issuer: 'https://op.example.com/oidc2',
 *   authenticators: [
 *     jwtAccessTokens({ issuer: 'https://login.example.com', audience: 'https://op.example.com/oidc2', jwksUri: 'https://login.example.com/jwks' }),
 *   ],
 *   subjects: { 'user-123': { claims: { name: 'Ada Lovelace', email: 'ada@example.com' } } },
 * });
 * const app = express();
 * app.use('/oidc2', issuer.nodeHandler);
 * ```
 */
export async function createIssuer(options: IssuerOptions): Promise<Issuer> {
  const resolved = resolveIssuerOptions(options);
  const { algorithm, maxIctLifetime, clockTolerance, keyRotationInterval, now } = resolved;
  const keys = await KeyRing.create(
    resolved.signingKeys,
    { algorithm, retention: maxIctLifetime + clockTolerance, ...(keyRotationInterval ? { rotationInterval: keyRotationInterval } : {}), ...(resolved.signingKeyStore ? { store: resolved.signingKeyStore } : {}) },
    now(),
  );
  const state: IssuerState = { ...resolved, keys, checkReplay: replayCheck(resolved) };
  // The issuer's own WITs are tried first; WITs of other trust domains go on to the configured chain.
  if (state.workloads?.exchange) state.authenticators = [ownWits(state), ...state.authenticators];
  const handle = (request: HttpRequest) => handleRequest(state, request);
  const serves = (url: string) => servesPath(state, url);

  return {
    issuer: state.issuer,
    endpoints: { ...state.endpoints },
    handle,
    serves,
    ...mount({ issuer: state.issuer, maxBodyBytes: state.maxBodyBytes, handle, serves }),
    async rotateKeys(jwk?: JWK) {
      const key = await keys.rotate(now(), jwk);
      return { kid: key.kid };
    },
    jwks: () => keys.jwks(now()),
    metadata: () => discoveryDocument(state),
  };
}
