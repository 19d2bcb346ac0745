/**
 * `@oidc2/issuer`: the Identity Certification Token endpoint of an OpenID Provider or workload
 * attestation server. It certifies a caller's public key in a short-lived ICT (OIDC² draft
 * section 4, docs/protocol.md section 1) and serves the discovery document and JWKS that verifiers need.
 *
 * Two request forms are served:
 * - the OIDC² draft form: `POST <ict_endpoint>` with `Authorization: Bearer <access token>` and a
 *   PoP token (`typ` `jwt+pop`) as the body; answered 201 with `identity_certification_token`;
 * - RFC 8693 token exchange at `token_endpoint`, the key proven by an RFC 9449 DPoP proof;
 *   answered 200 with the ICT as `access_token` of type {@link ICT_TOKEN_TYPE}.
 *
 * With the `workloads` option it also issues Workload Identity Tokens (WITs,
 * draft-ietf-wimse-workload-creds) to attested workloads: at `wit_endpoint` (the ICT request
 * form, answered with `workload_identity_token`) and by token exchange with `requested_token_type`
 * {@link WIT_TOKEN_TYPE}; and it exchanges its own WITs, proven with their key, for ICTs.
 *
 * @packageDocumentation
 */
export { createIssuer } from './issuer.js';
export type { ClientPolicy, IssuerOptions, IssuerPaths, SubjectPolicy } from './options.js';
export type { WorkloadIdentifierRule, WorkloadIdentityOptions } from './workloads.js';
export type { WorkloadScheme } from './lib/identifier.js';
export type {
  Authentication,
  AuthenticationContext,
  Authenticator,
  CallerKind,
  ClientAuthenticator,
  FastifyInstanceLike,
  IssuanceEndpoint,
  Issuer,
  KoaContextLike,
  ListeningIssuer,
} from './types.js';
export {
  ACCESS_TOKEN_TYPE,
  API_KEY_TOKEN_TYPE,
  CONTEXT_SCOPE_PREFIX,
  ICT_TOKEN_TYPE,
  ICT_TYP,
  JWT_BEARER_ASSERTION_TYPE,
  JWT_TOKEN_TYPE,
  TOKEN_EXCHANGE_GRANT_TYPE,
  WIT_TOKEN_TYPE,
  WIT_TYP,
} from './constants.js';
export { contextsFromScopes, type ClientCredentialsOptions } from './authenticators/claims.js';
export { jwtAccessTokens, type JwtAccessTokenOptions } from './authenticators/jwt-access-tokens.js';
export { tokenIntrospection, type IntrospectionOptions } from './authenticators/introspection.js';
export { apiKeys, hashApiKey, type ApiKeyEntry, type ApiKeyOptions } from './authenticators/api-keys.js';
export { clientAssertions, type AssertionClient, type ClientAssertionOptions } from './authenticators/client-assertions.js';
export {
  kubernetesServiceAccounts,
  type KubernetesServiceAccount,
  type KubernetesServiceAccountOptions,
} from './authenticators/kubernetes.js';
export type { RemoteKeyOptions } from './authenticators/keys.js';
export { SIGNING_ALGORITHMS, type SigningAlgorithm } from './lib/keys.js';
export { fileSigningKeyStore, type SigningKeyStore, type StoredSigningKey, type StoredSigningKeys } from './signing-key-store.js';
