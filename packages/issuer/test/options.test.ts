// Options are checked once, at construction: bad values and unknown keys (at any depth) throw a
// TypeError with a code, and the message names the option's path.
import { apiKeys, clientAssertions, createIssuer, hashApiKey, jwtAccessTokens, tokenIntrospection, type Issuer, type IssuerOptions } from '@oidc2/issuer';
import { clock, keyPair, T0 } from './helpers';

const ISSUER = 'https://op.example.com';
const clk = clock();
beforeEach(() => clk.set(T0));

const workload = apiKeys({ keys: [{ hash: hashApiKey('key'), subject: 'w', contexts: ['c'] }] });

async function make(extra: Partial<IssuerOptions> = {}): Promise<Issuer> {
  return createIssuer({ issuer: ISSUER, now: clk.now, authenticators: [workload], ...extra });
}

/** The thrown error's code and whether its message names `path`. */
function coded(thrown: unknown, path: string): { name: unknown; code: unknown; namesPath: boolean } {
  const err = thrown as { name?: unknown; code?: unknown; message?: unknown };
  return { name: err.name, code: err.code, namesPath: typeof err.message === 'string' && err.message.includes(path) };
}

function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('nothing was thrown');
}

describe('options are validated once, at construction', () => {
  test.each<[string, Partial<IssuerOptions>]>([
    ['plain http on a public host', { issuer: 'http://op.example.com' }],
    ['an issuer with a query', { issuer: 'https://op.example.com/?a=b' }],
    ['no authenticators', { authenticators: [] }],
    ['ictLifetime above the maximum', { ictLifetime: 7200 }],
    ['a negative clock tolerance', { clockTolerance: -1 }],
    ['an unknown signing algorithm', { signingAlgorithm: 'HS256' as never }],
    ['a signing key without kid', { signingKeys: [{ kty: 'EC', crv: 'P-256', x: 'x', y: 'y', d: 'd', alg: 'ES256' }] }],
    ['a public signing key', { signingKeys: [{ kty: 'EC', crv: 'P-256', x: 'x', y: 'y', kid: 'k', alg: 'ES256' }] }],
    ['a key that does not fit its alg', { signingKeys: [{ kty: 'EC', crv: 'P-256', x: 'x', y: 'y', d: 'd', kid: 'k', alg: 'EdDSA' }] }],
    ['a path without a slash', { paths: { ict: 'ict' } }],
    ['colliding paths', { paths: { ict: '/x', token: '/x' } }],
    ['a reserved claim in subject claims', { subjects: { s: { claims: { iss: 'x' } } } }],
    ['a bad context name', { clients: { c: { contexts: ['has space'] } } }],
    ['workloads without a trust domain', { workloads: {} as never }],
    ['an upper-case trust domain', { workloads: { trustDomain: 'Example.org' } }],
    ['a trust domain with a port', { workloads: { trustDomain: 'example.org:8443' } }],
    ['a trust domain that is a URI', { workloads: { trustDomain: 'spiffe://example.org' } }],
    ['an unknown scheme', { workloads: { trustDomain: 'example.org', scheme: 'https' as never } }],
    ['a WIT lifetime above maxIctLifetime', { workloads: { trustDomain: 'example.org', lifetime: 7200 } }],
    ['a zero WIT lifetime', { workloads: { trustDomain: 'example.org', lifetime: 0 } }],
    ['exchange that is not a boolean', { workloads: { trustDomain: 'example.org', exchange: 'yes' as never } }],
    ['a subject template in another trust domain', { workloads: { trustDomain: 'example.org', subject: 'spiffe://other.org/{subject}' } }],
    ['a subject template with the other scheme', { workloads: { trustDomain: 'example.org', subject: 'wimse://example.org/{subject}' } }],
    ['a placeholder in the authority', { workloads: { trustDomain: 'example.org', subject: 'spiffe://{subject}/x' } }],
    ['a placeholder inside a segment with a slash', { workloads: { trustDomain: 'example.org', subject: '/a/{subject}/' } }],
    ['an unknown placeholder', { workloads: { trustDomain: 'example.org', subject: '/{namespace}' } }],
    ['an unmatched brace', { workloads: { trustDomain: 'example.org', subject: '/{subject' } }],
    ['a subject rule that is neither', { workloads: { trustDomain: 'example.org', subject: 42 as never } }],
    ['a wit path without workloads', { paths: { wit: '/wit' } }],
    ['a wit path colliding with another', { paths: { wit: '/ict' }, workloads: { trustDomain: 'example.org' } }],
  ])('%s', async (_name, extra) => {
    await expect(make(extra)).rejects.toThrow(TypeError);
  });

  test('workloads: defaults and the wit path', async () => {
    const issuer = await make({ workloads: { trustDomain: 'example.org' }, paths: { wit: '/workload-token' } });
    expect(issuer.endpoints.wit).toBe(`${ISSUER}/workload-token`);
    expect(issuer.serves('/workload-token')).toBe(true);
    expect(await issuer.metadata()).toMatchObject({ wit_endpoint: `${ISSUER}/workload-token`, workload_identifier_origin: 'spiffe://example.org' });
    const short = await make({ maxIctLifetime: 600, workloads: { trustDomain: 'example.org', scheme: 'wimse', subject: 'wimse://example.org/{claims.team}/{subject}' } });
    expect(await short.metadata()).toMatchObject({ workload_identifier_origin: 'wimse://example.org' });
  });

  test('http on loopback is allowed for development', async () => {
    await expect(make({ issuer: 'http://127.0.0.1:8080/op' })).resolves.toBeDefined();
  });
});

describe('unknown option keys are refused with their path (ERR_UNKNOWN_OPTION)', () => {
  const unknown = { name: 'TypeError', code: 'ERR_UNKNOWN_OPTION', namesPath: true };

  test.each<[string, Record<string, unknown>]>([
    ['options.ictLifetme', { ictLifetme: 60 }],
    ['options.paths.jwksPath', { paths: { jwksPath: '/keys' } }],
    ['options.clients.app.context', { clients: { app: { context: ['email'] } } }],
    ['options.subjects.alice.claim', { subjects: { alice: { claim: { name: 'Alice' } } } }],
    ['options.dpopNonces.lifeTime', { dpopNonces: { lifeTime: 60 } }],
    ['options.workloads.trustdomain', { workloads: { trustDomain: 'example.org', trustdomain: 'example.org' } }],
    ['options.workloads.lifeTime', { workloads: { trustDomain: 'example.org', lifeTime: 60 } }],
    ['options.paths.witPath', { paths: { witPath: '/wit' }, workloads: { trustDomain: 'example.org' } }],
  ])('%s', async (path, extra) => {
    const err = await make(extra as Partial<IssuerOptions>).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(coded(err, path)).toEqual(unknown);
  });

  test('options.signingKeys[0].kidd', async () => {
    const kp = await keyPair();
    const err = await make({ signingKeys: [{ ...kp.privateJwk, kid: 'k', alg: 'ES256', kidd: 'typo' } as never] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(coded(err, 'options.signingKeys[0].kidd')).toEqual(unknown);
  });

  const jwks = { keys: [{ kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0' }] };
  test.each<[string, () => unknown]>([
    ['jwtAccessTokens options.jwks_uri', () => jwtAccessTokens({ issuer: 'https://as.example', audience: 'a', jwks, jwks_uri: 'https://as.example/jwks' } as never)],
    ['jwtAccessTokens options.remoteKeys.maxBytes', () => jwtAccessTokens({ issuer: 'https://as.example', audience: 'a', jwks, remoteKeys: { maxBytes: 1 } } as never)],
    ['jwtAccessTokens options.remoteKeys.fetch', () => jwtAccessTokens({ issuer: 'https://as.example', audience: 'a', jwks, remoteKeys: { fetch } } as never)],
    ['tokenIntrospection options.secret', () => tokenIntrospection({ endpoint: 'https://as.example/introspect', clientId: 'c', clientSecret: 's', secret: 's' } as never)],
    ['apiKeys options.key', () => apiKeys({ keys: [{ hash: hashApiKey('k'), subject: 'w' }], key: 'k' } as never)],
    ['apiKeys options.keys[0].context', () => apiKeys({ keys: [{ hash: hashApiKey('k'), subject: 'w', context: ['c'] }] } as never)],
    ['clientAssertions options.maxLifeTime', () => clientAssertions({ clients: { billing: { jwks } }, maxLifeTime: 60 } as never)],
    ['clientAssertions options.clients.billing.jwks_uri', () => clientAssertions({ clients: { billing: { jwks, jwks_uri: 'https://b.example/jwks' } } } as never)],
    ['clientAssertions options.remoteKeys.cooldownSeconds', () => clientAssertions({ clients: { billing: { jwks } }, remoteKeys: { cooldownSeconds: 1 } } as never)],
  ])('%s', (path, construct) => {
    expect(coded(thrownBy(construct), path)).toEqual(unknown);
  });

  test('known keys of every authenticator are accepted', () => {
    expect(() => jwtAccessTokens({ issuer: 'https://as.example', audience: 'a', jwks, algorithms: ['ES256'], typ: 'at+jwt', claims: ['name'], fetch, remoteKeys: { cacheMaxAge: 60, cooldown: 5, timeout: 2, staleIfError: 0, maxResponseBytes: 4096 } })).not.toThrow();
    expect(() => tokenIntrospection({ endpoint: 'https://as.example/i', clientId: 'c', clientSecret: 's', issuer: 'https://as.example', audience: 'a', claims: [], timeout: 100, fetch })).not.toThrow();
    expect(() => clientAssertions({ clients: { b: { jwks, subject: 's', contexts: ['c'], claims: {} } }, algorithms: ['ES256'], maxLifetime: 60, fetch, remoteKeys: {} })).not.toThrow();
  });

  test('a bad remoteKeys value names its path (ERR_INVALID_ARG_VALUE)', () => {
    const err = thrownBy(() => jwtAccessTokens({ issuer: 'https://as.example', audience: 'a', jwks, remoteKeys: { maxResponseBytes: 10 } }));
    expect(coded(err, 'jwtAccessTokens options.remoteKeys.maxResponseBytes')).toEqual({ name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', namesPath: true });
  });
});
