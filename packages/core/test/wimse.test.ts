// WIMSE workload credentials: the WIT (draft-ietf-wimse-workload-creds) and the WPT
// (draft-ietf-wimse-wpt-02), checked against the published example (A.1) and a wpt-02-form proof
// over the same keys (A.3); further WITs are minted with the A.1 issuer key.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT, importJWK, generateKeyPair, exportJWK, type JWK } from 'jose';
import { createWitVerifier, isOidc2Error, verifyWpt, wimseTokenHash, MemoryReplayStore, type VerifiedWit, type WitVerifierOptions, type WptVerifyOptions, type ReplayStore } from '../src/index';
import { sign } from '../src/lib/crypto';
import { encodeBase64Url, utf8 } from '../src/lib/base64';

interface Vectors {
  issuerKey: JWK;
  workloadKey: JWK;
  wit: string;
  wptWithAth: string;
  wpt: string;
  bearerToken: string;
  wth: string;
  ath: string;
  audience: string;
  subject: string;
  witIat: number;
  witExp: number;
  wptExp: number;
  wptJti: string;
}
const V: Vectors = JSON.parse(readFileSync(join(__dirname, 'fixtures', 'wimse', 'vectors.json'), 'utf8'));
// After the WIT's iat, within 300 s of the WPT's exp.
const T = 1745509800;
const { d: _issuerD, ...issuerPublic } = V.issuerKey;
const { d: _workloadD, ...workloadPublic } = V.workloadKey;
const ISSUER_JWKS = { keys: [issuerPublic] };

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isOidc2Error(err)).toBe(true);
  expect((err as { code: string }).code).toBe(code);
  expect((err as { status: number }).status).toBe(code === 'issuer_unavailable' || code === 'replay_store_unavailable' ? 503 : 400);
}

function verifier(extra: Partial<WitVerifierOptions> = {}, now = () => T) {
  return createWitVerifier({ trustDomains: [{ trustDomain: 'example.com', jwks: ISSUER_JWKS }], now, ...extra });
}

interface WitOptions {
  header?: Record<string, unknown>;
  claims?: Record<string, unknown>;
  drop?: string[];
  key?: JWK;
  alg?: string;
}

async function mintWit(o: WitOptions = {}): Promise<string> {
  const claims: Record<string, unknown> = {
    cnf: { jwk: { ...workloadPublic, alg: 'EdDSA' } },
    exp: T + 3600,
    iat: T - 10,
    jti: 'wit-' + Math.random().toString(36).slice(2),
    sub: 'wimse://example.com/specific-workload',
    ...o.claims,
  };
  for (const k of o.drop ?? []) delete claims[k];
  const alg = o.alg ?? 'ES256';
  return new SignJWT(claims).setProtectedHeader({ alg, kid: 'June 5', typ: 'wit+jwt', ...o.header }).sign(await importJWK(o.key ?? V.issuerKey, alg));
}

// A JWS by hand, for headers jose refuses to produce (alg none).
function unsigned(header: Record<string, unknown>, claims: Record<string, unknown>): string {
  return `${encodeBase64Url(utf8(JSON.stringify(header)))}.${encodeBase64Url(utf8(JSON.stringify(claims)))}.`;
}

interface WptOptions {
  header?: Record<string, unknown>;
  claims?: Record<string, unknown>;
  drop?: string[];
  key?: JWK;
  witToken?: string;
}

async function mintWpt(o: WptOptions = {}): Promise<string> {
  const claims: Record<string, unknown> = {
    aud: V.audience,
    exp: T + 60,
    jti: 'wpt-' + Math.random().toString(36).slice(2),
    wth: await wimseTokenHash(o.witToken ?? V.wit),
    ...o.claims,
  };
  for (const k of o.drop ?? []) delete claims[k];
  return new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', typ: 'wpt+jwt', ...o.header }).sign(await importJWK(o.key ?? V.workloadKey, 'EdDSA'));
}

let wit: VerifiedWit;
beforeAll(async () => {
  wit = await verifier().verify(V.wit);
});

function wptOptions(extra: Partial<WptVerifyOptions> = {}): WptVerifyOptions {
  return { wit, witToken: V.wit, audience: [V.audience], now: T, replayStore: new MemoryReplayStore(), ...extra };
}

describe('WIT vectors (A.1)', () => {
  it('verifies the published WIT with the inline issuer key', async () => {
    expect(wit.subject).toBe(V.subject);
    expect(wit.trustDomain).toBe('example.com');
    expect(wit.alg).toBe('EdDSA');
    expect(wit.jwk).toEqual({ ...workloadPublic, alg: 'EdDSA' });
    expect(wit.expiresAt).toBe(V.witExp);
    expect(wit.token).toBe(V.wit);
    expect(wit.claims.jti).toBe('x-_1CTL2cca3CSE4cwb_l');
    expect(wit.thumbprint).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Object.isFrozen(wit) && Object.isFrozen(wit.claims) && Object.isFrozen(wit.jwk)).toBe(true);
  });

  it('hashes tokens as the vectors do', async () => {
    expect(await wimseTokenHash(V.wit)).toBe(V.wth);
    expect(await wimseTokenHash(V.bearerToken)).toBe(V.ath);
  });

  it('accepts the WIT from its iat up to exp plus the tolerance, and no later', async () => {
    await expect(verifier({}, () => V.witIat).verify(V.wit)).resolves.toMatchObject({ subject: V.subject });
    await expect(verifier({}, () => V.witExp + 59).verify(V.wit)).resolves.toMatchObject({ subject: V.subject });
    await expectCode(verifier({}, () => V.witExp + 60).verify(V.wit), 'wit_expired');
  });

  it('returns the cached result for the same token, and still enforces exp on it', async () => {
    let now = T;
    const v = verifier({}, () => now);
    const first = await v.verify(V.wit);
    expect(await v.verify(V.wit)).toBe(first);
    now = V.witExp + 61;
    await expectCode(v.verify(V.wit), 'wit_expired');
  });

  it('answers a WIT verified before without a promise, with the same result and the same time checks', async () => {
    let now = T;
    const v = verifier({}, () => now);
    expect(v.verifyCached!(V.wit)).toBeUndefined();
    expect(v.verifyCached!('')).toBeUndefined();
    const first = await v.verify(V.wit);
    expect(v.verifyCached!(V.wit)).toBe(first);
    now = V.witExp + 61;
    let thrown: unknown;
    try {
      v.verifyCached!(V.wit);
    } catch (error) {
      thrown = error;
    }
    expect(isOidc2Error(thrown) && thrown.code).toBe('wit_expired');
    // A token never verified is not answered from the cache, however it looks.
    expect(v.verifyCached!(`${V.wit}x`)).toBeUndefined();
  });

  it('shares one verification between concurrent first presentations', async () => {
    const v = verifier();
    const [a, b] = await Promise.all([v.verify(V.wit), v.verify(V.wit)]);
    expect(a).toBe(b);
  });
});

describe('WIT rejections', () => {
  it('wit_missing for an empty header', async () => {
    await expectCode(verifier().verify(''), 'wit_missing');
  });

  it('wit_invalid for anything that is not a compact JWS, or too large', async () => {
    await expectCode(verifier().verify('a.b'), 'wit_invalid');
    await expectCode(verifier().verify('a.b.c$'), 'wit_invalid');
    await expectCode(verifier().verify(`${V.wit.split('.')[0]}.bm90IGpzb24.sig`), 'wit_invalid');
    await expectCode(verifier().verify('a'.repeat(9000)), 'wit_invalid');
  });

  it('wit_invalid for a sub that is not exactly one spelling of a Workload Identifier', async () => {
    const bad = [
      'spiffe://example.com',
      'spiffe://example.com/',
      'spiffe://example.com/x/',
      'spiffe://example.com//x',
      'spiffe://example.com/a/../admin',
      'spiffe://example.com/./x',
      'spiffe://example.com/%2e%2e',
      'spiffe://example.com:8443/x',
      'spiffe://EXAMPLE.com/x',
      'SPIFFE://example.com/x',
      'spiffe://user@example.com/x',
      'spiffe://example.com/x?y',
      'https://example.com/x',
    ];
    for (const sub of bad) await expectCode(verifier().verify(await mintWit({ claims: { sub } })), 'wit_invalid');
    await expect(verifier().verify(await mintWit({ claims: { sub: 'spiffe://example.com/ns/a.b_c-d/sa/x' } }))).resolves.toMatchObject({ subject: 'spiffe://example.com/ns/a.b_c-d/sa/x' });
    expect(() => createWitVerifier({ trustDomains: [{ trustDomain: 'example.com:8443', jwks: ISSUER_JWKS }] })).toThrow(TypeError);
  });

  it('checks typ case-insensitively and refuses any other typ', async () => {
    await expect(verifier().verify(await mintWit({ header: { typ: 'WIT+JWT' } }))).resolves.toMatchObject({ subject: V.subject });
    await expectCode(verifier().verify(await mintWit({ header: { typ: 'jwt' } })), 'wit_invalid');
    await expectCode(verifier().verify(await mintWit({ header: { typ: 'wpt+jwt' } })), 'wit_invalid');
    await expectCode(verifier().verify(await mintWit({ header: { typ: undefined } })), 'wit_invalid');
  });

  it('refuses alg none and HS256 before any key is fetched', async () => {
    const fetchSpy = jest.fn();
    const v = verifier({ trustDomains: [{ trustDomain: 'example.com', jwksUri: 'https://keys.example.com/jwks' }], fetch: fetchSpy as unknown as typeof fetch });
    const claims = { sub: V.subject, exp: T + 60, cnf: { jwk: { ...workloadPublic, alg: 'EdDSA' } } };
    await expectCode(v.verify(unsigned({ alg: 'none', typ: 'wit+jwt' }, claims)), 'wit_invalid');
    const hs = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'wit+jwt' }).sign(new Uint8Array(32).fill(7));
    await expectCode(v.verify(hs), 'wit_invalid');
    expect(fetchSpy).not.toHaveBeenCalled();
  });

  it('wit_untrusted for a trust domain not configured, with no network at all', async () => {
    const fetchSpy = jest.fn();
    const v = verifier({ trustDomains: [{ trustDomain: 'example.com', jwksUri: 'https://keys.example.com/jwks' }], fetch: fetchSpy as unknown as typeof fetch });
    await expectCode(v.verify(await mintWit({ claims: { sub: 'wimse://other.example/specific-workload' } })), 'wit_untrusted');
    await expectCode(v.verify(await mintWit({ claims: { sub: 'spiffe://example.com.evil.example/w' } })), 'wit_untrusted');
    expect(fetchSpy).not.toHaveBeenCalled();
  });

  it('fetches the configured jwksUri of a trusted domain', async () => {
    const fetchSpy = jest.fn(async () => new Response(JSON.stringify(ISSUER_JWKS), { status: 200, headers: { 'content-type': 'application/json' } }));
    const v = verifier({ trustDomains: [{ trustDomain: 'example.com', jwksUri: 'https://keys.example.com/jwks' }], fetch: fetchSpy as unknown as typeof fetch });
    await expect(v.verify(V.wit)).resolves.toMatchObject({ subject: V.subject });
    expect(fetchSpy).toHaveBeenCalledTimes(1);
  });

  it('issuer_unavailable (503) when the trust domain keys cannot be fetched', async () => {
    const fetchSpy = jest.fn(async () => new Response('down', { status: 500 }));
    const v = verifier({ trustDomains: [{ trustDomain: 'example.com', jwksUri: 'https://keys.example.com/jwks' }], fetch: fetchSpy as unknown as typeof fetch });
    await expectCode(v.verify(V.wit), 'issuer_unavailable');
  });

  it('accepts spiffe and wimse Workload Identifiers only', async () => {
    await expect(verifier().verify(await mintWit({ claims: { sub: 'spiffe://example.com/ns/prod/sa/api' } }))).resolves.toMatchObject({ trustDomain: 'example.com' });
    await expect(verifier().verify(await mintWit({ claims: { sub: 'wimse://example.com/w' } }))).resolves.toMatchObject({ trustDomain: 'example.com' });
    await expectCode(verifier().verify(await mintWit({ claims: { sub: 'WIMSE://Example.COM/w' } })), 'wit_invalid');
    for (const sub of ['https://example.com/w', 'spiffe:example.com/w', 'wimse://user@example.com/w', 'spiffe://example.com/w?x=1', 'spiffe://example.com/w#f', '', 42]) {
      await expectCode(verifier().verify(await mintWit({ claims: { sub } })), 'wit_invalid');
    }
    await expectCode(verifier().verify(await mintWit({ drop: ['sub'] })), 'wit_invalid');
  });

  it('wit_invalid for a WIT signed by another key', async () => {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    await expectCode(verifier().verify(await mintWit({ key: await exportJWK(privateKey) })), 'wit_invalid');
    await expectCode(verifier().verify(await mintWit({ header: { kid: 'June 6' } })), 'wit_invalid');
  });

  it('checks iss against a configured issuer', async () => {
    const v = verifier({ trustDomains: [{ trustDomain: 'example.com', jwks: ISSUER_JWKS, issuer: 'https://wit.example.com' }] });
    await expect(v.verify(await mintWit({ claims: { iss: 'https://wit.example.com' } }))).resolves.toMatchObject({ subject: V.subject });
    await expect(v.verify(V.wit)).resolves.toMatchObject({ subject: V.subject });
    await expectCode(v.verify(await mintWit({ claims: { iss: 'https://other.example.com' } })), 'wit_untrusted');
  });

  it('wit_expired past exp; wit_invalid without exp, for iat or nbf in the future, non-numeric times, or a lifetime over maxTokenAge', async () => {
    await expectCode(verifier().verify(await mintWit({ claims: { exp: T - 61 } })), 'wit_expired');
    await expectCode(verifier().verify(await mintWit({ drop: ['exp'] })), 'wit_invalid');
    await expectCode(verifier().verify(await mintWit({ claims: { exp: String(T + 60) } })), 'wit_invalid');
    await expectCode(verifier().verify(await mintWit({ claims: { iat: T + 61 } })), 'wit_invalid');
    await expectCode(verifier().verify(await mintWit({ claims: { nbf: T + 61 } })), 'wit_invalid');
    await expect(verifier().verify(await mintWit({ drop: ['iat'] }))).resolves.toMatchObject({ subject: V.subject });
    await expectCode(verifier({ maxTokenAge: 600 }).verify(await mintWit()), 'wit_invalid');
    await expectCode(verifier({ maxTokenAge: 600 }).verify(await mintWit({ drop: ['iat'] })), 'wit_invalid');
  });

  it('requires cnf.jwk: public, with an allowed alg that fits the key', async () => {
    const bad: unknown[] = [
      undefined,
      { jkt: 'x' },
      { jwk: { ...workloadPublic } },
      { jwk: V.workloadKey },
      { jwk: { ...V.workloadKey, alg: 'EdDSA' } },
      { jwk: { ...workloadPublic, alg: 'ES256' } },
      { jwk: { ...workloadPublic, alg: 'HS256' } },
      { jwk: { ...workloadPublic, alg: 'none' } },
      { jwk: { kty: 'oct', k: 'c2VjcmV0', alg: 'HS256' } },
    ];
    for (const cnf of bad) {
      await expectCode(verifier().verify(await mintWit(cnf === undefined ? { drop: ['cnf'] } : { claims: { cnf } })), 'wit_invalid');
    }
  });

  it('validates its options', () => {
    expect(() => createWitVerifier({ trustDomains: [] })).toThrow(TypeError);
    expect(() => createWitVerifier({ trustDomains: [{ trustDomain: 'example.com' }] })).toThrow(TypeError);
    expect(() => createWitVerifier({ trustDomains: [{ trustDomain: 'wimse://example.com', jwks: ISSUER_JWKS }] })).toThrow(TypeError);
    expect(() => createWitVerifier({ trustDomains: [{ trustDomain: 'example.com', jwks: ISSUER_JWKS }, { trustDomain: 'EXAMPLE.com', jwks: ISSUER_JWKS }] })).toThrow(TypeError);
    expect(() => createWitVerifier({ trustDomains: [{ trustDomain: 'example.com', jwks: { keys: [V.issuerKey] } }] })).toThrow(TypeError);
    expect(() => verifier({ clockTolerance: -1 })).toThrow(TypeError);
  });
});

describe('WPT vectors', () => {
  it('verifies the wpt-01 example (A.1) bound to its bearer token', async () => {
    await expect(verifyWpt(V.wptWithAth, wptOptions({ accessToken: V.bearerToken }))).resolves.toEqual({ jti: V.wptJti, exp: V.wptExp });
  });

  it('verifies the wpt-02-form proof (A.3) with no token bound', async () => {
    await expect(verifyWpt(V.wpt, wptOptions())).resolves.toEqual({ jti: V.wptJti, exp: V.wptExp });
  });

  it('records the jti under the WIT key thumbprint, until exp plus the tolerance', async () => {
    const calls: unknown[][] = [];
    const replayStore: ReplayStore = { checkAndRecord: (...args) => (calls.push(args), true) };
    await verifyWpt(V.wpt, wptOptions({ replayStore }));
    expect(calls).toEqual([[`wpt:${wit.thumbprint}:${V.wptJti}`, V.wptExp + 60, T]]);
  });
});

describe('WPT rejections', () => {
  it('refuses a replayed jti; a proof that failed another check does not consume it', async () => {
    const store = new MemoryReplayStore();
    await expectCode(verifyWpt(V.wpt, wptOptions({ replayStore: store, audience: ['https://other.example.com/'] })), 'wpt_invalid');
    await expect(verifyWpt(V.wpt, wptOptions({ replayStore: store }))).resolves.toMatchObject({ jti: V.wptJti });
    await expectCode(verifyWpt(V.wpt, wptOptions({ replayStore: store })), 'wpt_invalid');
  });

  it('passes on what the replay store throws', async () => {
    const { Oidc2Error } = await import('../src/index');
    const replayStore: ReplayStore = {
      checkAndRecord: () => {
        throw new Oidc2Error('replay_store_unavailable', 'down');
      },
    };
    await expectCode(verifyWpt(V.wpt, wptOptions({ replayStore })), 'replay_store_unavailable');
  });

  it('checks typ', async () => {
    await expect(verifyWpt(await mintWpt({ header: { typ: 'WPT+JWT' } }), wptOptions())).resolves.toBeDefined();
    await expectCode(verifyWpt(await mintWpt({ header: { typ: 'jwt' } }), wptOptions()), 'wpt_invalid');
    await expectCode(verifyWpt(await mintWpt({ header: { typ: 'wit+jwt' } }), wptOptions()), 'wpt_invalid');
  });

  it('requires the alg of the WIT confirmation key, and refuses none and HS256', async () => {
    await expectCode(verifyWpt(unsigned({ alg: 'none', typ: 'wpt+jwt' }, { aud: V.audience, exp: T + 60, jti: 'x', wth: V.wth }), wptOptions()), 'wpt_invalid');
    const hs = await new SignJWT({ aud: V.audience, exp: T + 60, jti: 'x', wth: V.wth }).setProtectedHeader({ alg: 'HS256', typ: 'wpt+jwt' }).sign(new Uint8Array(32));
    await expectCode(verifyWpt(hs, wptOptions()), 'wpt_invalid');
    // Same key, but the WIT fixes the alg as Ed25519 (RFC 9864) while the proof says EdDSA.
    const witToken = await mintWit({ claims: { cnf: { jwk: { ...workloadPublic, alg: 'Ed25519' } } } });
    const ed = await verifier().verify(witToken);
    expect(ed.alg).toBe('Ed25519');
    await expectCode(verifyWpt(await mintWpt({ witToken }), wptOptions({ wit: ed, witToken })), 'wpt_invalid');
  });

  it('refuses a proof signed by another key, or with a damaged signature', async () => {
    const { privateKey } = await generateKeyPair('Ed25519', { extractable: true });
    await expectCode(verifyWpt(await mintWpt({ key: await exportJWK(privateKey) }), wptOptions()), 'wpt_invalid');
    const [h, p, s] = V.wpt.split('.');
    await expectCode(verifyWpt(`${h}.${p}.${s!.slice(0, -2)}AA`, wptOptions()), 'wpt_invalid');
    await expectCode(verifyWpt(`${h}.${p}.`, wptOptions()), 'wpt_invalid');
  });

  it('refuses a crit header even when signed', async () => {
    const header = encodeBase64Url(utf8(JSON.stringify({ alg: 'EdDSA', typ: 'wpt+jwt', crit: ['x'], x: 1 })));
    const payload = encodeBase64Url(utf8(JSON.stringify({ aud: V.audience, exp: T + 60, jti: 'crit', wth: V.wth })));
    const signer = await (await import('../src/lib/crypto')).importKey(V.workloadKey, 'EdDSA', 'sign');
    const token = `${header}.${payload}.${encodeBase64Url(await sign(signer, utf8(`${header}.${payload}`)))}`;
    await expectCode(verifyWpt(token, wptOptions()), 'wpt_invalid');
  });

  it('refuses malformed and missing proofs', async () => {
    await expectCode(verifyWpt('', wptOptions()), 'wpt_invalid');
    await expectCode(verifyWpt('a.b', wptOptions()), 'wpt_invalid');
    await expectCode(verifyWpt('a'.repeat(9000), wptOptions()), 'wpt_invalid');
  });

  it('checks aud against the accepted target URIs', async () => {
    await expectCode(verifyWpt(V.wpt, wptOptions({ audience: ['https://workload.example.com/other'] })), 'wpt_invalid');
    await expect(verifyWpt(await mintWpt({ claims: { aud: ['https://x.example', V.audience] } }), wptOptions())).resolves.toBeDefined();
    await expectCode(verifyWpt(await mintWpt({ drop: ['aud'] }), wptOptions()), 'wpt_invalid');
    await expectCode(verifyWpt(await mintWpt({ claims: { aud: 7 } }), wptOptions()), 'wpt_invalid');
  });

  it('checks exp: required, not past, at most maxAge ahead', async () => {
    await expectCode(verifyWpt(V.wpt, wptOptions({ now: V.wptExp + 60 })), 'wpt_invalid');
    await expect(verifyWpt(V.wpt, wptOptions({ now: V.wptExp + 59 }))).resolves.toBeDefined();
    await expectCode(verifyWpt(V.wpt, wptOptions({ now: V.wptExp - 361 })), 'wpt_invalid');
    await expectCode(verifyWpt(V.wpt, wptOptions({ maxAge: 60 })), 'wpt_invalid');
    await expectCode(verifyWpt(await mintWpt({ drop: ['exp'] }), wptOptions()), 'wpt_invalid');
    await expectCode(verifyWpt(await mintWpt({ claims: { exp: 'soon' } }), wptOptions()), 'wpt_invalid');
    await expectCode(verifyWpt(await mintWpt({ claims: { iat: T + 61 } }), wptOptions()), 'wpt_invalid');
  });

  it('requires a bounded jti', async () => {
    await expectCode(verifyWpt(await mintWpt({ drop: ['jti'] }), wptOptions()), 'wpt_invalid');
    await expectCode(verifyWpt(await mintWpt({ claims: { jti: '' } }), wptOptions()), 'wpt_invalid');
    await expectCode(verifyWpt(await mintWpt({ claims: { jti: 'j'.repeat(257) } }), wptOptions()), 'wpt_invalid');
  });

  it('checks htm when the proof carries it', async () => {
    const token = await mintWpt({ claims: { htm: 'POST' } });
    await expectCode(verifyWpt(token, wptOptions({ method: 'GET' })), 'wpt_invalid');
    await expect(verifyWpt(token, wptOptions({ method: 'POST' }))).resolves.toBeDefined();
  });

  it('refuses a proof made for another WIT (wth)', async () => {
    const otherWit = await mintWit();
    await expectCode(verifyWpt(await mintWpt({ witToken: otherWit }), wptOptions()), 'wpt_invalid');
    await expectCode(verifyWpt(await mintWpt({ drop: ['wth'] }), wptOptions()), 'wpt_invalid');
    await expectCode(verifyWpt(V.wpt, wptOptions({ witToken: otherWit })), 'wpt_invalid');
  });

  it('binds the access token with ath', async () => {
    await expectCode(verifyWpt(V.wptWithAth, wptOptions({ accessToken: 'another-token' })), 'wpt_invalid');
    await expectCode(verifyWpt(V.wpt, wptOptions({ accessToken: V.bearerToken })), 'wpt_invalid');
    await expectCode(verifyWpt(V.wptWithAth, wptOptions()), 'wpt_invalid');
  });

  it('binds the Txn-Token with tth', async () => {
    const txn = 'eyJhbGciOiJFUzI1NiJ9.eyJ0eG4iOiIxIn0.c2ln';
    const token = await mintWpt({ claims: { tth: await wimseTokenHash(txn) } });
    await expectCode(verifyWpt(token, wptOptions({ transactionToken: txn + 'x' })), 'wpt_invalid');
    await expectCode(verifyWpt(token, wptOptions()), 'wpt_invalid');
    await expectCode(verifyWpt(V.wpt, wptOptions({ transactionToken: txn })), 'wpt_invalid');
    await expect(verifyWpt(token, wptOptions({ transactionToken: txn }))).resolves.toBeDefined();
  });

  it('binds other tokens with oth, exactly the ones sent', async () => {
    const others = { 'x-custom-token': 'abc', 'x-other': 'def' };
    const oth = { 'x-custom-token': await wimseTokenHash('abc'), 'x-other': await wimseTokenHash('def') };
    const token = await mintWpt({ claims: { oth } });
    await expect(verifyWpt(token, wptOptions({ otherTokens: others }))).resolves.toBeDefined();
    await expectCode(verifyWpt(await mintWpt({ claims: { oth } }), wptOptions({ otherTokens: { ...others, 'x-other': 'zzz' } })), 'wpt_invalid');
    await expectCode(verifyWpt(await mintWpt({ claims: { oth } }), wptOptions({ otherTokens: { 'x-custom-token': 'abc' } })), 'wpt_invalid');
    await expectCode(verifyWpt(await mintWpt({ claims: { oth } }), wptOptions()), 'wpt_invalid');
    await expectCode(verifyWpt(await mintWpt({ claims: { oth: 'nope' } }), wptOptions({ otherTokens: others })), 'wpt_invalid');
    await expectCode(verifyWpt(V.wpt, wptOptions({ otherTokens: others })), 'wpt_invalid');
  });

  it('validates its options', async () => {
    await expect(verifyWpt(V.wpt, wptOptions({ audience: [] }))).rejects.toThrow(TypeError);
    await expect(verifyWpt(V.wpt, { ...wptOptions(), replayStore: undefined as unknown as ReplayStore })).rejects.toThrow(TypeError);
    await expect(verifyWpt(V.wpt, { ...wptOptions(), wit: {} as VerifiedWit })).rejects.toThrow(TypeError);
  });
});
