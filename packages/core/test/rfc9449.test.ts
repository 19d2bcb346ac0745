import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT, importJWK, type JWK } from 'jose';
import { createDpopNonces, verifyDpopProof, type DpopVerifyOptions } from '../src/dpop';
import { MemoryReplayStore, type ReplayStore } from '../src/replay-store';
import { isOidc2Error, Oidc2Error } from '../src/errors';
import { jwkThumbprint } from '../src/lib/jwk';
import { encodeBase64Url, utf8 } from '../src/lib/base64';
import { digest } from '../src/lib/crypto';

const fixtures = join(__dirname, 'fixtures');
const vectors = JSON.parse(readFileSync(join(fixtures, 'rfc9449.json'), 'utf8'));
const keyFile = (name: string): JWK => JSON.parse(readFileSync(join(fixtures, name), 'utf8'));
const publicOf = ({ d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...rest }: JWK): JWK => rest;

const resource = vectors.resourceRequestProof;
const tokenRequest = vectors.tokenRequestProof;

function resourceOptions(overrides: Partial<DpopVerifyOptions> = {}): DpopVerifyOptions {
  return {
    method: 'GET',
    htu: resource.htu,
    accessToken: resource.accessToken,
    expectedThumbprint: vectors.thumbprint,
    now: resource.iat,
    replayStore: new MemoryReplayStore({ maxEntries: 100 }),
    ...overrides,
  };
}

interface Failure {
  code: string;
  status: number;
  headers: Record<string, string>;
}
async function failure(promise: Promise<unknown>): Promise<Failure> {
  try {
    await promise;
  } catch (err) {
    if (!isOidc2Error(err)) throw err;
    return { code: err.code, status: err.status, headers: err.headers };
  }
  throw new Error('the proof was accepted');
}
const codeOf = async (promise: Promise<unknown>) => (await failure(promise)).code;

// Proofs made here, with the fixture caller keys.
const p256 = keyFile('caller-p256.jwk.json');
const ed25519 = keyFile('caller-ed25519.jwk.json');
const NOW = 1_800_000_000;
const ACCESS_TOKEN = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln';
const HTU = 'https://api.example/accounts';

interface ProofOptions {
  key?: JWK;
  alg?: string;
  header?: Record<string, unknown>;
  claims?: Record<string, unknown>;
  omit?: string[];
}
let jtiCounter = 0;
async function makeProof({ key = p256, alg = 'ES256', header = {}, claims = {}, omit = [] }: ProofOptions = {}): Promise<string> {
  const ath = encodeBase64Url(await digest('SHA-256', utf8(ACCESS_TOKEN)));
  const payload: Record<string, unknown> = { jti: `jti-${jtiCounter++}`, htm: 'POST', htu: HTU, iat: NOW, ath, ...claims };
  for (const name of omit) delete payload[name];
  return new SignJWT(payload).setProtectedHeader({ typ: 'dpop+jwt', alg, jwk: publicOf(key), ...header }).sign(await importJWK(key, alg));
}
const unsignedProof = (header: object, payload: object, signature = '') =>
  `${encodeBase64Url(utf8(JSON.stringify(header)))}.${encodeBase64Url(utf8(JSON.stringify(payload)))}.${signature}`;

async function ownOptions(overrides: Partial<DpopVerifyOptions> = {}): Promise<DpopVerifyOptions> {
  return {
    method: 'POST',
    htu: HTU,
    accessToken: ACCESS_TOKEN,
    expectedThumbprint: await jwkThumbprint(publicOf(p256)),
    now: NOW,
    replayStore: new MemoryReplayStore({ maxEntries: 100 }),
    ...overrides,
  };
}

describe('RFC 9449 examples', () => {
  it('computes the example JWK thumbprint', async () => {
    expect(await jwkThumbprint(vectors.jwk)).toBe(vectors.thumbprint);
  });

  it('verifies the resource request proof (section 7.1) bound to its access token', async () => {
    const result = await verifyDpopProof(resource.proof, resourceOptions());
    expect(result).toEqual({ jwk: vectors.jwk, thumbprint: vectors.thumbprint, jti: resource.jti, iat: resource.iat });
  });

  it('verifies the token request proof (section 4.1), which has no ath, when no access token is presented', async () => {
    const options: DpopVerifyOptions = {
      method: 'POST',
      htu: tokenRequest.htu,
      accessToken: null,
      expectedThumbprint: vectors.thumbprint,
      now: tokenRequest.iat + 10,
      replayStore: new MemoryReplayStore({ maxEntries: 10 }),
    };
    expect((await verifyDpopProof(tokenRequest.proof, options)).jti).toBe(tokenRequest.jti);
    // At a token endpoint the proof introduces the key: no expected thumbprint, the result names it.
    const unbound = await verifyDpopProof(tokenRequest.proof, { ...options, expectedThumbprint: null, replayStore: new MemoryReplayStore({ maxEntries: 10 }) });
    expect(unbound.thumbprint).toBe(vectors.thumbprint);
  });

  it('rejects the token request proof where an access token is presented (no ath), and the resource proof where none is', async () => {
    const opts = resourceOptions({ method: 'POST', htu: tokenRequest.htu, now: tokenRequest.iat });
    expect(await codeOf(verifyDpopProof(tokenRequest.proof, opts))).toBe('dpop_invalid');
    expect(await codeOf(verifyDpopProof(resource.proof, resourceOptions({ accessToken: null })))).toBe('dpop_invalid');
  });

  it('accepts the proof at the edges of the iat window and rejects it outside', async () => {
    await verifyDpopProof(resource.proof, resourceOptions({ now: resource.iat + 300 + 60 }));
    await verifyDpopProof(resource.proof, resourceOptions({ now: resource.iat - 60 }));
    expect(await codeOf(verifyDpopProof(resource.proof, resourceOptions({ now: resource.iat + 300 + 61 })))).toBe('dpop_invalid');
    expect(await codeOf(verifyDpopProof(resource.proof, resourceOptions({ now: resource.iat - 61 })))).toBe('dpop_invalid');
    expect(await codeOf(verifyDpopProof(resource.proof, resourceOptions({ now: resource.iat + 100, maxAge: 30, clockTolerance: 5 })))).toBe('dpop_invalid');
  });

  it('rejects a different method (htm is case-sensitive)', async () => {
    expect(await codeOf(verifyDpopProof(resource.proof, resourceOptions({ method: 'POST' })))).toBe('dpop_invalid');
    expect(await codeOf(verifyDpopProof(resource.proof, resourceOptions({ method: 'get' })))).toBe('dpop_invalid');
  });

  it('compares htu after normalisation, ignoring query and fragment', async () => {
    for (const htu of [
      'https://resource.example.org/protectedresource?a=1#f',
      'HTTPS://Resource.EXAMPLE.org:443/protectedresource',
      'https://resource.example.org/x/../protectedresource',
    ]) {
      await verifyDpopProof(resource.proof, resourceOptions({ htu }));
    }
    for (const htu of [
      'https://resource.example.org/protectedresource/',
      'https://resource.example.org/Protectedresource',
      'http://resource.example.org/protectedresource',
      'https://resource.example.org:8443/protectedresource',
      'https://other.example.org/protectedresource',
    ]) {
      expect([htu, await codeOf(verifyDpopProof(resource.proof, resourceOptions({ htu })))]).toEqual([htu, 'dpop_invalid']);
    }
  });

  it('rejects a different access token (ath)', async () => {
    expect(await codeOf(verifyDpopProof(resource.proof, resourceOptions({ accessToken: `${resource.accessToken}x` })))).toBe('dpop_invalid');
  });

  it('rejects a key other than the one the token is bound to', async () => {
    const other = await jwkThumbprint(publicOf(p256));
    const f = await failure(verifyDpopProof(resource.proof, resourceOptions({ expectedThumbprint: other })));
    expect(f.code).toBe('dpop_invalid');
    expect(await codeOf(verifyDpopProof(resource.proof, resourceOptions({ expectedThumbprint: vectors.thumbprint.slice(0, -1) })))).toBe('dpop_invalid');
  });

  it('rejects a replayed jti, recording it only for the same key', async () => {
    const store = new MemoryReplayStore({ maxEntries: 10 });
    await verifyDpopProof(resource.proof, resourceOptions({ replayStore: store }));
    const f = await failure(verifyDpopProof(resource.proof, resourceOptions({ replayStore: store, now: resource.iat + 200 })));
    expect(f).toMatchObject({ code: 'replay_detected', status: 401 });
    expect(f.headers['www-authenticate']).toMatch(/^DPoP error="invalid_dpop_proof"/);
  });

  it('rejects a changed payload or signature', async () => {
    const [h, p, s] = resource.proof.split('.');
    const changed = `${h}.${encodeBase64Url(utf8(JSON.stringify({ jti: 'other', htm: 'GET', htu: resource.htu, iat: resource.iat, ath: resource.ath })))}.${s}`;
    expect(await codeOf(verifyDpopProof(changed, resourceOptions()))).toBe('dpop_invalid');
    const flipped = `${h}.${p}.${s.slice(0, 10)}${s[10] === 'A' ? 'B' : 'A'}${s.slice(11)}`;
    expect(await codeOf(verifyDpopProof(flipped, resourceOptions()))).toBe('dpop_invalid');
  });
});

describe('DPoP proof checks', () => {
  it('accepts a fresh proof and reports its key', async () => {
    const proof = await makeProof();
    const result = await verifyDpopProof(proof, await ownOptions());
    expect(result.jwk).toEqual({ kty: 'EC', crv: 'P-256', x: p256.x, y: p256.y });
    expect(result.iat).toBe(NOW);
  });

  it('accepts an Ed25519 proof (alg EdDSA or Ed25519)', async () => {
    const expectedThumbprint = await jwkThumbprint(publicOf(ed25519));
    for (const alg of ['EdDSA', 'Ed25519']) {
      expect((await verifyDpopProof(await makeProof({ key: ed25519, alg }), await ownOptions({ expectedThumbprint }))).thumbprint).toBe(expectedThumbprint);
    }
  });

  it('sends the DPoP challenge with the accepted algorithms', async () => {
    const f = await failure(verifyDpopProof(await makeProof({ header: { typ: 'jwt' } }), await ownOptions({ algorithms: ['ES256', 'EdDSA'] })));
    expect(f).toMatchObject({ code: 'dpop_invalid', status: 401 });
    expect(f.headers['www-authenticate']).toMatch(/^DPoP error="invalid_dpop_proof", error_description="[^"]+", algs="ES256 EdDSA"$/);
  });

  it.each([
    ['typ JWT', { header: { typ: 'JWT' } }],
    ['typ in upper case', { header: { typ: 'DPOP+JWT' } }],
    ['typ missing', { header: { typ: undefined } }],
    ['a private key in the jwk header', { header: { jwk: p256 } }],
    ['an RSA private member in the jwk header', { header: { jwk: { ...publicOf(p256), p: 'AAAA' } } }],
    ['a symmetric jwk header', { header: { jwk: { kty: 'oct', k: 'c2VjcmV0' } } }],
    ['no jwk header', { header: { jwk: undefined } }],
    ['a jwk whose alg differs from the header alg', { header: { jwk: { ...publicOf(p256), alg: 'ES384' } } }],
    ['a crit header', { header: { crit: ['b64'], b64: true } }],
    ['no jti', { omit: ['jti'] }],
    ['a numeric jti', { claims: { jti: 7 } }],
    ['an empty jti', { claims: { jti: '' } }],
    ['a jti longer than 256 characters', { claims: { jti: 'j'.repeat(257) } }],
    ['no htm', { omit: ['htm'] }],
    ['no htu', { omit: ['htu'] }],
    ['an htu that is not a URL', { claims: { htu: 'accounts' } }],
    ['an htu with userinfo', { claims: { htu: 'https://user@api.example/accounts' } }],
    ['no iat', { omit: ['iat'] }],
    ['a string iat', { claims: { iat: String(NOW) } }],
    ['iat too old', { claims: { iat: NOW - 361 } }],
    ['iat in the future', { claims: { iat: NOW + 61 } }],
    ['no ath', { omit: ['ath'] }],
    ['an ath of another token', { claims: { ath: encodeBase64Url(new Uint8Array(32)) } }],
  ])('rejects %s', async (_name, options) => {
    const proof = await makeProof(options as ProofOptions);
    expect(await codeOf(verifyDpopProof(proof, await ownOptions()))).toBe('dpop_invalid');
  });

  it('normalises percent-encodings of unreserved characters in htu', async () => {
    const proof = await makeProof({ claims: { htu: 'https://api.example/%61ccounts%7e' } });
    await verifyDpopProof(proof, await ownOptions({ htu: 'https://api.example/accounts~' }));
  });

  it('does not decode an encoded slash in htu', async () => {
    const proof = await makeProof({ claims: { htu: 'https://api.example/accounts%2Fx' } });
    expect(await codeOf(verifyDpopProof(proof, await ownOptions({ htu: 'https://api.example/accounts/x' })))).toBe('dpop_invalid');
    await verifyDpopProof(proof, await ownOptions({ htu: 'https://api.example/accounts%2fx' }));
  });

  it('rejects a proof key whose curve does not fit alg', async () => {
    const proof = unsignedProof({ typ: 'dpop+jwt', alg: 'ES384', jwk: publicOf(p256) }, { jti: 'x', htm: 'POST', htu: HTU, iat: NOW }, 'c2ln');
    expect(await codeOf(verifyDpopProof(proof, await ownOptions()))).toBe('dpop_invalid');
  });

  it.each([
    ['alg none', { typ: 'dpop+jwt', alg: 'none', jwk: publicOf(p256) }, ''],
    ['alg HS256', { typ: 'dpop+jwt', alg: 'HS256', jwk: publicOf(p256) }, 'c2ln'],
    ['alg RS256 when only ES256 is accepted', { typ: 'dpop+jwt', alg: 'RS256', jwk: publicOf(p256) }, 'c2ln'],
  ])('rejects %s', async (_name, header, signature) => {
    const proof = unsignedProof(header, { jti: 'x', htm: 'POST', htu: HTU, iat: NOW }, signature);
    expect(await codeOf(verifyDpopProof(proof, await ownOptions({ algorithms: ['ES256'] })))).toBe('dpop_invalid');
  });

  it('rejects an HS256 proof MACed with the public key bytes', async () => {
    const proof = await new SignJWT({ jti: 'x', htm: 'POST', htu: HTU, iat: NOW })
      .setProtectedHeader({ typ: 'dpop+jwt', alg: 'HS256', jwk: publicOf(p256) })
      .sign(utf8(JSON.stringify(publicOf(p256))));
    expect(await codeOf(verifyDpopProof(proof, await ownOptions()))).toBe('dpop_invalid');
  });

  it('rejects malformed and oversized proofs', async () => {
    const good = await makeProof();
    const [h, p, s] = good.split('.');
    for (const proof of [
      '',
      'x',
      `${h}.${p}`,
      `${h}.${p}.${s}.`,
      `${h}.${p}.`,
      `${h}.${p}.${s}=`,
      `${encodeBase64Url(utf8('{'))}.${p}.${s}`,
      `${encodeBase64Url(utf8('[]'))}.${p}.${s}`,
      `${h}.${encodeBase64Url(utf8('null'))}.${s}`,
      `${h}.${p}.${s}x`,
      undefined as unknown as string,
    ]) {
      expect([proof, await codeOf(verifyDpopProof(proof, await ownOptions()))]).toEqual([proof, 'dpop_invalid']);
    }
    const big = await makeProof({ claims: { pad: 'x'.repeat(9000) } });
    expect(await codeOf(verifyDpopProof(big, await ownOptions()))).toBe('dpop_invalid');
    expect(await codeOf(verifyDpopProof(good, await ownOptions({ maxProofBytes: 200 })))).toBe('dpop_invalid');
  });

  it('records the jti until the proof can no longer be accepted, and only after every other check', async () => {
    const calls: Array<[string, number, number]> = [];
    const store: ReplayStore = {
      checkAndRecord(key, expiresAt, now) {
        calls.push([key, expiresAt, now]);
        return true;
      },
    };
    const thumbprint = await jwkThumbprint(publicOf(p256));
    await verifyDpopProof(await makeProof({ claims: { jti: 'abc' } }), await ownOptions({ replayStore: store, now: NOW + 5 }));
    expect(calls).toEqual([[`dpop:${thumbprint}:abc`, NOW + 300 + 60, NOW + 5]]);
    await codeOf(verifyDpopProof(await makeProof({ claims: { htm: 'GET' } }), await ownOptions({ replayStore: store })));
    await codeOf(verifyDpopProof(await makeProof({ claims: { iat: NOW - 1000 } }), await ownOptions({ replayStore: store })));
    expect(calls).toHaveLength(1);
  });

  it('keeps jtis of different keys apart', async () => {
    const store = new MemoryReplayStore({ maxEntries: 10 });
    await verifyDpopProof(await makeProof({ claims: { jti: 'same' } }), await ownOptions({ replayStore: store }));
    const expectedThumbprint = await jwkThumbprint(publicOf(ed25519));
    await verifyDpopProof(await makeProof({ key: ed25519, alg: 'EdDSA', claims: { jti: 'same' } }), await ownOptions({ replayStore: store, expectedThumbprint }));
    expect(await codeOf(verifyDpopProof(await makeProof({ claims: { jti: 'same' } }), await ownOptions({ replayStore: store })))).toBe('replay_detected');
  });

  it('passes on a replay store failure (fail closed)', async () => {
    const store: ReplayStore = {
      checkAndRecord() {
        throw new Oidc2Error('replay_store_unavailable', 'full');
      },
    };
    const f = await failure(verifyDpopProof(await makeProof(), await ownOptions({ replayStore: store })));
    expect(f).toMatchObject({ code: 'replay_store_unavailable', status: 503 });
  });

  it.each([
    ['a relative htu', { htu: '/accounts' }],
    ['an ftp htu', { htu: 'ftp://api.example/accounts' }],
    ['an empty method', { method: '' }],
    ['an empty access token', { accessToken: '' }],
    ['an empty expected thumbprint', { expectedThumbprint: '' }],
    ['no expected thumbprint', { expectedThumbprint: undefined }],
    ['no replay store', { replayStore: undefined }],
    ['a NaN clock', { now: Number.NaN }],
    ['a symmetric algorithm', { algorithms: ['HS256'] }],
    ['no algorithms', { algorithms: [] }],
    ['a negative maxAge', { maxAge: -1 }],
  ])('rejects %s with TypeError', async (_name, overrides) => {
    await expect(verifyDpopProof(await makeProof(), await ownOptions(overrides as Partial<DpopVerifyOptions>))).rejects.toThrow(TypeError);
  });
});

describe('DPoP server nonces', () => {
  const secret = new Uint8Array(32).fill(7);

  it('issues nonces that check within their lifetime only, under the same secret only', async () => {
    const nonces = createDpopNonces({ secret, lifetime: 300 });
    const nonce = await nonces.issue(NOW);
    expect(nonce).toMatch(/^[A-Za-z0-9_-]{27}$/);
    expect(await nonces.check(nonce, NOW)).toBe(true);
    expect(await nonces.check(nonce, NOW + 300)).toBe(true);
    expect(await nonces.check(nonce, NOW + 301)).toBe(false);
    expect(await nonces.check(nonce, NOW - 5)).toBe(true);
    expect(await nonces.check(nonce, NOW - 6)).toBe(false);
    expect(await createDpopNonces({ secret }).check(nonce, NOW)).toBe(true);
    expect(await createDpopNonces({ secret: new Uint8Array(32).fill(8) }).check(nonce, NOW)).toBe(false);
    expect(await createDpopNonces().check(nonce, NOW)).toBe(false);
  });

  it('rejects altered and malformed nonces', async () => {
    const nonces = createDpopNonces({ secret });
    const nonce = await nonces.issue(NOW);
    // Moving the issue time forward without the secret breaks the MAC.
    const bytes = Buffer.from(nonce, 'base64url');
    bytes.writeUInt32BE(NOW + 100, 0);
    expect(await nonces.check(bytes.toString('base64url'), NOW + 350)).toBe(false);
    const last = nonce.at(-1) === 'A' ? 'Q' : 'A';
    for (const bad of [nonce.slice(0, -1) + last, nonce.slice(1), `${nonce}A`, '', 'x'.repeat(27), 42 as unknown as string]) {
      expect(await nonces.check(bad, NOW)).toBe(false);
    }
  });

  it('validates its options', () => {
    expect(() => createDpopNonces({ secret: new Uint8Array(31) })).toThrow(TypeError);
    expect(() => createDpopNonces({ lifetime: 0 })).toThrow(TypeError);
  });

  it('requires a valid nonce in the proof and answers use_dpop_nonce with a fresh one', async () => {
    const nonces = createDpopNonces({ secret });
    const store = new MemoryReplayStore({ maxEntries: 10 });
    const f = await failure(verifyDpopProof(resource.proof, resourceOptions({ nonces, replayStore: store })));
    expect(f).toMatchObject({ code: 'dpop_nonce_required', status: 401 });
    expect(f.headers['www-authenticate']).toMatch(/^DPoP error="use_dpop_nonce", error_description="[^"]+", algs="[^"]+"$/);
    expect(await nonces.check(f.headers['dpop-nonce']!, resource.iat)).toBe(true);
    // The refused proof did not spend its jti.
    expect(store.size).toBe(0);
    await verifyDpopProof(resource.proof, resourceOptions({ replayStore: store }));

    const own = await ownOptions({ nonces });
    const withNonce = await makeProof({ claims: { nonce: await nonces.issue(NOW) } });
    expect((await verifyDpopProof(withNonce, own)).iat).toBe(NOW);
  });

  it('rejects an invalid or expired nonce with a fresh one', async () => {
    const nonces = createDpopNonces({ secret, lifetime: 60 });
    const forged = await makeProof({ claims: { nonce: await createDpopNonces().issue(NOW) } });
    const f = await failure(verifyDpopProof(forged, await ownOptions({ nonces })));
    expect(f.code).toBe('dpop_nonce_required');
    expect(await nonces.check(f.headers['dpop-nonce']!, NOW)).toBe(true);

    const old = await nonces.issue(NOW - 61);
    expect(await codeOf(verifyDpopProof(await makeProof({ claims: { nonce: old } }), await ownOptions({ nonces })))).toBe('dpop_nonce_required');
    expect(await codeOf(verifyDpopProof(await makeProof({ claims: { nonce: 12 } }), await ownOptions({ nonces })))).toBe('dpop_nonce_required');
  });
});
