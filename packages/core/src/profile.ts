/** Names fixed by the wire profile (PROFILE.md sections 2 and 3). */

/** The signature tag of OIDC² request and response signatures. */
export const ICT_SIGNATURE_TAG = 'oidc2-ict';
/** Header carrying the ICT alongside HTTP Message Signatures. */
export const ICT_HEADER = 'identity-certification-token';
/** Components every OIDC² request signature covers. */
export const REQUIRED_REQUEST_COMPONENTS = ['@method', '@path', '@query', ICT_HEADER] as const;
/** Fields a request signature must cover whenever they are present. */
export const COVERED_WHEN_PRESENT = ['content-type', 'content-digest', 'authorization', 'txn-token', 'oidc2-key-share', 'oidc2-session'] as const;
/** Response fields the response signature covers whenever they are present. */
export const RESPONSE_COVERED_WHEN_PRESENT = ['content-type', 'oidc2-key-share', 'oidc2-session'] as const;
