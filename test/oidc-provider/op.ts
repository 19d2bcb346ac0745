// panva's oidc-provider as the OpenID Provider in front of @oidc2/issuer, on 127.0.0.1: the OP
// and the ICT issuer share one node:http server, one issuer identifier and one key set (the OP
// signs its own tokens with its RSA key, the issuer its ICTs and WITs with an EC key that the
// OP publishes too), as docs/oidc-provider.md describes. Also: a user's authorization code flow
// driven over HTTP with a scripted login, client-credentials tokens, DPoP proofs and revocation.
//
// oidc-provider is ESM-only; jest.config.cjs lets ts-jest transform it (it uses neither
// `import.meta` nor top-level await), so it runs in the test process like every other package.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import Provider, { errors, type Configuration } from 'oidc-provider';
import { createIssuer, jwtAccessTokens, tokenIntrospection, type Issuer, type SigningKeyStore } from '@oidc2/issuer';

/** The user the scripted login signs in. */
export const USER = 'alice';
/** The context the ICT resource grants, as the OAuth scope `e2e_auth_payments`. */
export const CONTEXT = 'payments';
/** The WIMSE trust domain of the workloads' WITs. */
export const TRUST_DOMAIN = 'bank.test';
export const REDIRECT_URI = 'http://127.0.0.1/callback';

/** OAuth clients of the OP and their secrets. */
export const CLIENTS = {
  /** A web app signing users in; its access tokens for the ICT resource are JWTs. */
  bankApp: { id: 'bank-app', secret: 'bank-app-secret-'.padEnd(40, 'b') },
  /** A web app whose access tokens are opaque, checked by introspection. */
  mailApp: { id: 'mail-app', secret: 'mail-app-secret-'.padEnd(40, 'm') },
  /** Workloads: client-credentials only. `billing` and `orders-api` get JWTs, `reports` and `audit` opaque tokens. */
  billing: { id: 'billing', secret: 'billing-secret-'.padEnd(40, 'i') },
  ordersApi: { id: 'orders-api', secret: 'orders-api-secret-'.padEnd(40, 'o') },
  reports: { id: 'reports', secret: 'reports-secret-'.padEnd(40, 'r') },
  audit: { id: 'audit', secret: 'audit-secret-'.padEnd(40, 'a') },
  /** The ICT issuer itself, as introspection client. */
  issuer: { id: 'oidc2-issuer', secret: 'oidc2-issuer-secret-'.padEnd(40, 'x') },
} as const;
type ClientName = keyof typeof CLIENTS;
const OPAQUE = new Set<string>([CLIENTS.mailApp.id, CLIENTS.reports.id, CLIENTS.audit.id]);

/** A signing key pair for DPoP proofs and as the client's ICT key. */
export interface DpopKey {
  keyPair: CryptoKeyPair;
  publicJwk: JWK;
}

export async function dpopKey(): Promise<DpopKey> {
  const keyPair = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify'])) as CryptoKeyPair;
  return { keyPair, publicJwk: await exportJWK(keyPair.publicKey) };
}

/** An RFC 9449 DPoP proof for a request to the OP's token endpoint. */
export function dpopProof(key: DpopKey, url: string): Promise<string> {
  return new SignJWT({ htm: 'POST', htu: url, jti: randomUUID(), iat: Math.floor(Date.now() / 1000) })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.publicJwk })
    .sign(key.keyPair.privateKey);
}

export interface RunningOp {
  /** The OP's issuer identifier, also the `iss` of every ICT and WIT. */
  url: string;
  /** The resource indicator (RFC 8707) of the ICT issuer: the `aud` of access tokens for it. */
  ictResource: string;
  /** Another resource server's indicator, for tokens the ICT issuer must refuse. */
  otherResource: string;
  provider: Provider;
  issuer: Issuer;
  /** The kid of the EC key the issuer signs with, published in the OP's JWKS. */
  ictKid: string;
  /** A client-credentials access token of `client` (for `resource`, by default the ICT issuer), bound to `dpop` when given. */
  clientCredentials(client: ClientName, options?: { resource?: string; dpop?: DpopKey }): Promise<string>;
  /** A user's access token by the authorization code flow (scripted login of {@link USER}), bound to `dpop` when given. */
  userToken(client: 'bankApp' | 'mailApp', options?: { resource?: string; dpop?: DpopKey }): Promise<{ accessToken: string; refreshToken?: string }>;
  /** A new access token for a refresh token. */
  refresh(client: 'bankApp' | 'mailApp', refreshToken: string): Promise<string>;
  /** Revokes a token at the OP's revocation endpoint. */
  revoke(client: ClientName, token: string): Promise<void>;
  close(): Promise<void>;
}

function basic(client: ClientName): string {
  const { id, secret } = CLIENTS[client];
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

/**
 * Starts the OP with the ICT issuer mounted into its server, on `port` (default: any free one).
 * The issuer takes JWT access tokens for its resource and, for opaque ones, introspection, with
 * the workloads `billing`, `orders-api` (JWTs) and `reports` (opaque) accepted by their
 * client-credentials tokens. With `signingKeyStore`, the issuer's keys are those of the store and
 * the OP publishes them (docs/oidc-provider.md section 7).
 */
export async function startOp(options: { port?: number; signingKeyStore?: SigningKeyStore } = {}): Promise<RunningOp> {
  // The URL must be known before the OP and the issuer are made: listen first, route later.
  let route: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.end();
  const server: Server = createServer((req, res) => route(req, res));
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const ictResource = `${url}/oidc2`;
  const otherResource = `${url}/reports-api`;

  const opKey = await generateKeyPair('RS256', { extractable: true });
  const ictKey = await generateKeyPair('ES256', { extractable: true });
  const ictJwk: JWK = { ...(await exportJWK(ictKey.privateKey)), kid: 'ict-1', alg: 'ES256', use: 'sig' };
  const opJwk: JWK = { ...(await exportJWK(opKey.privateKey)), kid: 'op-1', alg: 'RS256', use: 'sig' };

  const issuer = await createIssuer({
    issuer: url,
    signingKeys: [ictJwk],
    ...(options.signingKeyStore ? { signingKeyStore: options.signingKeyStore } : {}),
    paths: { discovery: '/oidc2/.well-known/openid-configuration', jwks: '/oidc2/jwks', ict: '/oidc2/ict', token: '/oidc2/token', wit: '/oidc2/wit' },
    workloads: { trustDomain: TRUST_DOMAIN },
    authenticators: [
      jwtAccessTokens({ issuer: url, audience: ictResource, clientCredentials: { clients: [CLIENTS.billing.id, CLIENTS.ordersApi.id] } }),
      tokenIntrospection({
        endpoint: `${url}/token/introspection`,
        clientId: CLIENTS.issuer.id,
        clientSecret: CLIENTS.issuer.secret,
        issuer: url,
        audience: ictResource,
        clientCredentials: { clients: [CLIENTS.reports.id] },
      }),
    ],
  });

  // What the OP publishes for the issuer: the signing key and the retired keys it still publishes.
  const published = new Set((await issuer.jwks()).keys.map((k) => k.kid));
  const ictKeys = options.signingKeyStore ? (await options.signingKeyStore.load())!.keys.map((k) => k.jwk).filter((jwk) => published.has(jwk.kid)) : [ictJwk];

  const configuration: Configuration = {
    clients: [
      ...(['bankApp', 'mailApp'] as const).map((c) => ({
        client_id: CLIENTS[c].id,
        client_secret: CLIENTS[c].secret,
        redirect_uris: [REDIRECT_URI],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code' as const],
      })),
      ...(['billing', 'ordersApi', 'reports', 'audit', 'issuer'] as const).map((c) => ({
        client_id: CLIENTS[c].id,
        client_secret: CLIENTS[c].secret,
        redirect_uris: [],
        grant_types: c === 'issuer' ? [] : ['client_credentials'],
        response_types: [],
      })),
    ],
    jwks: { keys: [opJwk, ...ictKeys] },
    // The OP signs only with its RSA key: the EC key is published for the ICTs and WITs alone.
    enabledJWA: { idTokenSigningAlgValues: ['RS256'], userinfoSigningAlgValues: ['RS256'], introspectionSigningAlgValues: ['RS256'], authorizationSigningAlgValues: ['RS256'] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    ttl: { AccessToken: 600, ClientCredentials: 600, Grant: 3600, IdToken: 600, Interaction: 600, RefreshToken: 3600, Session: 3600 },
    scopes: ['openid', 'offline_access'],
    findAccount: async (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
    // The grant in every access token, so the ICT issuer can tell users from workloads.
    extraTokenClaims: async (_ctx, token) => ({ gty: token.kind === 'ClientCredentials' ? 'client_credentials' : token.gty }),
    // Where the ICT issuer's endpoints are, for clients that discover them.
    discovery: { ict_endpoint: `${url}/oidc2/ict`, wit_endpoint: `${url}/oidc2/wit` },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      // Only the ICT issuer introspects; a client revokes only its own tokens.
      introspection: { enabled: true, allowedPolicy: async (_ctx, client) => client.clientId === CLIENTS.issuer.id },
      revocation: { enabled: true, allowedPolicy: async (_ctx, client, token) => client.clientId === token.clientId },
      dPoP: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => ictResource,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, resource, client) => {
          if (resource !== ictResource && resource !== otherResource) throw new errors.InvalidTarget();
          return {
            scope: `e2e_auth_${CONTEXT}`,
            accessTokenTTL: 600,
            ...(OPAQUE.has(client.clientId) ? { accessTokenFormat: 'opaque' as const } : { accessTokenFormat: 'jwt' as const, jwt: { sign: { alg: 'RS256' as const, kid: 'op-1' } } }),
          };
        },
      },
    },
  };
  const provider = new Provider(url, configuration);

  // The scripted login: whoever reaches the interaction is USER, who consents to what was asked.
  async function interaction(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const details = await provider.interactionDetails(req, res);
    const clientId = String(details.params.client_id);
    const grant = new provider.Grant({ accountId: USER, clientId });
    grant.addOIDCScope(String(details.params.scope).split(' ').filter((s) => s === 'openid' || s === 'offline_access'));
    grant.addResourceScope(String(details.params.resource ?? ictResource), `e2e_auth_${CONTEXT}`);
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { login: { accountId: USER }, consent: { grantId } }, { mergeWithLastSubmission: false });
  }
  const opCallback = provider.callback();
  route = (req, res) => {
    if (req.url?.startsWith('/interaction/')) {
      interaction(req, res).catch(() => {
        res.statusCode = 500;
        res.end();
      });
      return;
    }
    issuer.nodeHandler(req, res, () => opCallback(req, res));
  };

  async function token(client: ClientName, params: Record<string, string>, dpop?: DpopKey): Promise<Record<string, unknown>> {
    const endpoint = `${url}/token`;
    const res = await fetch(endpoint, {
      method: 'POST',
      headers: { authorization: basic(client), 'content-type': 'application/x-www-form-urlencoded', ...(dpop ? { dpop: await dpopProof(dpop, endpoint) } : {}) },
      body: new URLSearchParams(params).toString(),
    });
    const body = (await res.json()) as Record<string, unknown>;
    if (res.status !== 200) throw new Error(`the OP refused the token request: ${res.status} ${JSON.stringify(body)}`);
    return body;
  }

  return {
    url,
    ictResource,
    otherResource,
    provider,
    issuer,
    ictKid: 'ict-1',
    async clientCredentials(client, options = {}) {
      const body = await token(client, { grant_type: 'client_credentials', resource: options.resource ?? ictResource, scope: `e2e_auth_${CONTEXT}` }, options.dpop);
      return body.access_token as string;
    },
    async userToken(client, options = {}) {
      const resource = options.resource ?? ictResource;
      const verifier = randomBytes(32).toString('base64url');
      const state = randomBytes(16).toString('base64url');
      const authorize = new URL(`${url}/auth`);
      authorize.search = new URLSearchParams({
        client_id: CLIENTS[client].id,
        response_type: 'code',
        redirect_uri: REDIRECT_URI,
        scope: `openid offline_access e2e_auth_${CONTEXT}`,
        prompt: 'consent',
        resource,
        state,
        code_challenge: createHash('sha256').update(verifier).digest('base64url'),
        code_challenge_method: 'S256',
      }).toString();
      // Follow the redirects like a browser with a cookie jar, until the OP redirects back to the app.
      const cookies = new Map<string, string>();
      let next = authorize.href;
      for (let hop = 0; hop < 10 && !next.startsWith(REDIRECT_URI); hop++) {
        const res = await fetch(next, { redirect: 'manual', headers: { cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; ') } });
        for (const line of res.headers.getSetCookie()) {
          const [pair] = line.split(';');
          const eq = pair!.indexOf('=');
          cookies.set(pair!.slice(0, eq), pair!.slice(eq + 1));
        }
        const location = res.headers.get('location');
        if (location === null) throw new Error(`the authorization flow stopped at ${res.status}: ${await res.text()}`);
        next = new URL(location, next).href;
      }
      const callback = new URL(next);
      if (callback.searchParams.get('state') !== state || !callback.searchParams.get('code')) throw new Error(`no code: ${next}`);
      const body = await token(
        client,
        { grant_type: 'authorization_code', code: callback.searchParams.get('code')!, redirect_uri: REDIRECT_URI, code_verifier: verifier, resource },
        options.dpop,
      );
      return { accessToken: body.access_token as string, ...(typeof body.refresh_token === 'string' ? { refreshToken: body.refresh_token } : {}) };
    },
    async refresh(client, refreshToken) {
      const body = await token(client, { grant_type: 'refresh_token', refresh_token: refreshToken, resource: ictResource });
      return body.access_token as string;
    },
    async revoke(client, value) {
      const res = await fetch(`${url}/token/revocation`, {
        method: 'POST',
        headers: { authorization: basic(client), 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token: value, token_type_hint: 'access_token' }).toString(),
      });
      if (res.status !== 200) throw new Error(`the OP refused the revocation: ${res.status}`);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
