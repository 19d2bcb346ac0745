// Who an access token authenticates (jwtAccessTokens, tokenIntrospection): the grant decides user
// or workload, client-credentials tokens need the clientCredentials option, and a binding the
// issuer cannot check refuses the token instead of turning it into a bearer token.
import { calculateJwkThumbprint } from 'jose';
import { normalizeFields } from '@oidc2/core';
import { jwtAccessTokens, tokenIntrospection, type AuthenticationContext, type ClientAuthenticator } from '@oidc2/issuer';
import { codeOf, syncCodeOf } from '../../../test/support/error-code';
import { authorizationServer, keyPair, lateServer, T0 } from './helpers';

const AUDIENCE = 'https://op.test';
const request = { method: 'POST', url: '/ict', headers: normalizeFields({}) };

function context(accessToken: string): AuthenticationContext {
  return { endpoint: 'ict', issuer: AUDIENCE, endpointUrl: `${AUDIENCE}/ict`, now: T0, clockTolerance: 60, params: {}, accessToken, checkReplay: async () => undefined };
}

let as: Awaited<ReturnType<typeof authorizationServer>>;
beforeAll(async () => {
  as = await authorizationServer();
});

const jwt = (options: Partial<Parameters<typeof jwtAccessTokens>[0]> = {}) => jwtAccessTokens({ issuer: as.issuer, audience: AUDIENCE, jwks: as.jwks, ...options });
const token = (claims: Record<string, unknown>) => as.accessToken({ scope: 'e2e_auth_pay', ...claims }, { now: T0 });
const run = async (authenticator: ClientAuthenticator, at: string) => authenticator(request, context(at));

describe('the grant decides user or workload', () => {
  test.each([
    ['authorization_code', { sub: 'alice', client_id: 'app', gty: 'authorization_code' }, { kind: 'user', subject: 'alice', clientId: 'app' }],
    ['a refresh chain', { sub: 'alice', client_id: 'app', gty: 'authorization_code refresh_token' }, { kind: 'user', subject: 'alice', clientId: 'app' }],
    ['no gty, sub of a user', { sub: 'alice', client_id: 'app' }, { kind: 'user', subject: 'alice', clientId: 'app' }],
    ['client_credentials', { sub: 'billing', client_id: 'billing', gty: 'client_credentials' }, { kind: 'workload', subject: 'billing', clientId: 'billing' }],
    ["Auth0's client-credentials", { sub: 'billing@clients', azp: 'billing', gty: 'client-credentials' }, { kind: 'workload', subject: 'billing', clientId: 'billing' }],
  ])('%s', async (_name, claims, expected) => {
    const auth = await run(jwt({ clientCredentials: { clients: ['billing'] } }), await token(claims));
    expect(auth).toMatchObject({ ...expected, contexts: ['pay'], expiresAt: T0 + 600 });
  });

  test.each([
    ['no clientCredentials option', {}, { sub: 'billing', client_id: 'billing', gty: 'client_credentials' }, 'access_denied'],
    ['a client not listed', { clientCredentials: { clients: ['reports'] } }, { sub: 'billing', client_id: 'billing', gty: 'client_credentials' }, 'access_denied'],
    ['a client-credentials token without client_id', { clientCredentials: { clients: ['billing'] } }, { sub: 'billing', gty: 'client_credentials' }, 'access_token_invalid'],
    ['sub equal to client_id without gty (ambiguous)', { clientCredentials: { clients: ['billing'] } }, { sub: 'billing', client_id: 'billing' }, 'access_token_invalid'],
    ['no sub and no client', {}, { gty: 'authorization_code' }, 'access_token_invalid'],
  ])('refused: %s', async (_name, options, claims, code) => {
    expect(await codeOf(async () => run(jwt(options), await token(claims)))).toBe(code);
  });

  test('an opaque token is left to the next authenticator', async () => {
    expect(await run(jwt(), 'opaque-token-value')).toBeUndefined();
  });
});

describe('sender-constrained tokens', () => {
  test('cnf.jkt becomes the key the certified key must match', async () => {
    const jkt = await calculateJwkThumbprint((await keyPair()).publicJwk);
    expect(await run(jwt(), await token({ sub: 'alice', cnf: { jkt } }))).toMatchObject({ subject: 'alice', keyThumbprint: jkt });
  });

  test.each([
    ['an mTLS binding', { 'x5t#S256': 'A'.repeat(43) }],
    ['a jkt beside another method', { jkt: 'A'.repeat(43), 'x5t#S256': 'A'.repeat(43) }],
    ['a malformed jkt', { jkt: 'not-a-thumbprint' }],
    ['a cnf.jwk', { jwk: { kty: 'EC' } }],
    ['a cnf that is no object', 'bound'],
  ])('refused, not taken as a bearer token: %s', async (_name, cnf) => {
    expect(await codeOf(async () => run(jwt(), await token({ sub: 'alice', cnf })))).toBe('access_token_invalid');
  });
});

describe('introspection answers', () => {
  let op: Awaited<ReturnType<typeof lateServer>>;
  const answers: Record<string, object> = {
    cc: { active: true, client_id: 'reports', scope: 'e2e_auth_pay', exp: T0 + 60, token_type: 'Bearer' },
    user: { active: true, sub: 'alice', client_id: 'app', scope: 'e2e_auth_pay', token_type: 'Bearer' },
    dpop: { active: true, sub: 'alice', client_id: 'app', scope: 'e2e_auth_pay', token_type: 'DPoP', cnf: { jkt: 'B'.repeat(43) } },
    dpopUnbound: { active: true, sub: 'alice', client_id: 'app', scope: 'e2e_auth_pay', token_type: 'DPoP' },
    mtls: { active: true, sub: 'alice', client_id: 'app', scope: 'e2e_auth_pay', cnf: { 'x5t#S256': 'C'.repeat(43) } },
  };
  beforeAll(async () => {
    op = await lateServer();
    op.use((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => res.end(JSON.stringify(answers[new URLSearchParams(body).get('token') ?? ''] ?? { active: false })));
    });
  });
  afterAll(() => op.close());
  const introspection = (options: Partial<Parameters<typeof tokenIntrospection>[0]> = {}) =>
    tokenIntrospection({ endpoint: `${op.url}/introspect`, clientId: 'ict', clientSecret: 's3cret', ...options });

  test('a client-credentials answer without sub is the listed client, as workload', async () => {
    expect(await run(introspection({ clientCredentials: { clients: ['reports'] } }), 'cc')).toMatchObject({ kind: 'workload', subject: 'reports', clientId: 'reports', contexts: ['pay'], expiresAt: T0 + 60 });
  });

  test.each([
    ['without the option', {}, 'cc', 'access_denied'],
    ['for a client not listed', { clientCredentials: { clients: ['billing'] } }, 'cc', 'access_denied'],
    ['a DPoP token_type without cnf.jkt', {}, 'dpopUnbound', 'access_token_invalid'],
    ['an mTLS-bound token', {}, 'mtls', 'access_token_invalid'],
  ])('refused: %s', async (_name, options, at, code) => {
    expect(await codeOf(() => run(introspection(options), at))).toBe(code);
  });

  test('users keep their sub, and a DPoP-bound token its jkt', async () => {
    expect(await run(introspection(), 'user')).toMatchObject({ kind: 'user', subject: 'alice', clientId: 'app' });
    expect(await run(introspection(), 'dpop')).toMatchObject({ kind: 'user', subject: 'alice', keyThumbprint: 'B'.repeat(43) });
  });
});

describe('the clientCredentials option is checked at construction', () => {
  const endpoint = 'https://login.example.com/introspect';
  test.each([
    ['an unknown key', { clients: ['billing'], subject: 'x' }, 'ERR_UNKNOWN_OPTION'],
    ['no clients', { clients: [] }, 'ERR_INVALID_ARG_VALUE'],
    ['a client that is no string', { clients: [42] }, 'ERR_INVALID_ARG_VALUE'],
  ])('%s', (_name, clientCredentials, code) => {
    const bad = clientCredentials as unknown as { clients: string[] };
    for (const make of [() => jwt({ clientCredentials: bad }), () => tokenIntrospection({ endpoint, clientId: 'ict', clientSecret: 's', clientCredentials: bad })]) {
      let thrown: unknown;
      try {
        make();
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toMatchObject({ name: 'TypeError', code });
    }
    expect(syncCodeOf(() => jwt({ clientCredentials: { clients: ['billing'] } }))).toBeUndefined();
  });
});
