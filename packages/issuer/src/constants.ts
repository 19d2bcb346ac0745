// Protocol identifiers the issuer speaks: RFC 8693 token types, RFC 7523 assertion type, ICT typ.

/**
 * Token type URI of an ICT in RFC 8693 token exchange (`requested_token_type`,
 * `issued_token_type`). It is the value the OIDC² reference OpenID Provider uses; it is not
 * IANA-registered.
 */
export const ICT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:ic_token';
/**
 * Token type URI of a Workload Identity Token (draft-ietf-wimse-workload-creds) in RFC 8693 token
 * exchange: as `requested_token_type` to ask for a WIT, as `subject_token_type` to present one. No
 * WIMSE draft registers a token type URI yet; this is the name such a registration would take, and
 * it may change when one is registered.
 */
export const WIT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:wit';
/** RFC 8693 grant type. */
export const TOKEN_EXCHANGE_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:token-exchange';
/** RFC 8693 token type of an OAuth access token presented as `subject_token`. */
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
/** RFC 8693 token type of a JWT (here: an RFC 7523 client assertion) presented as `subject_token`. */
export const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
/** RFC 7523 client assertion type. */
export const JWT_BEARER_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** The `typ` header of every ICT this package issues. */
export const ICT_TYP = 'ict+jwt';
/** The `typ` header of every WIT this package issues (draft-ietf-wimse-workload-creds 3.1). */
export const WIT_TYP = 'wit+jwt';
/** Token type URI of an API key presented as an RFC 8693 `subject_token`. */
export const API_KEY_TOKEN_TYPE = 'urn:oidc2:params:oauth:token-type:api-key';
/** Prefix of the OAuth scopes that grant OIDC² end-to-end authentication contexts (draft 3.1). */
export const CONTEXT_SCOPE_PREFIX = 'e2e_auth_';
