import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { SignJWT, calculateJwkThumbprint, exportSPKI, importJWK, type JWK } from 'jose';
import { createIctVerifier, type IctVerifierOptions } from '../src/ict';
import { jwkAlgorithm, jwkThumbprint, parsePublicJwk } from '../src/lib/jwk';
import { isOidc2Error } from '../src/errors';
import * as crypto from '../src/lib/crypto';
import * as jws from '../src/lib/jws';
import { encodeBase64Url, utf8 } from '../src/lib/base64';

// Real implementations, wrapped so tests can count signature checks and key imports.
jest.mock('../src/lib/jws', () => {
  const actual = jest.requireActual('../src/lib/jws');
  return { ...actual, verifyJwsSignature: jest.fn(actual.verifyJwsSignature) };
});
// On Node a confirmation key is imported without a promise (importVerifyKeySync); elsewhere by importKey.
jest.mock('../src/lib/crypto', () => {
  const actual = jest.requireActual('../src/lib/crypto');
  return { ...actual, importKey: jest.fn(actual.importKey), importVerifyKeySync: jest.fn(actual.importVerifyKeySync) };
});
const compactVerify = jws.verifyJwsSignature as jest.MockedFunction<typeof jws.verifyJwsSignature>;
const importKey = crypto.importKey as jest.MockedFunction<typeof crypto.importKey>;
const importVerifyKeySync = crypto.importVerifyKeySync as jest.MockedFunction<typeof crypto.importVerifyKeySync>;
/** Confirmation keys imported, on either path. */
const imports = () => importKey.mock.calls.length + importVerifyKeySync.mock.results.filter((r) => r.type === 'return' && r.value !== undefined).length;

const fixture = (name: string): JWK => JSON.parse(readFileSync(join(__dirname, 'fixtures', name), 'utf8'));
const publicOf = ({ d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...rest }: JWK): JWK => rest;

const ISSUER = 'https://issuer.test';
const NOW = 1_800_000_000;
const issuerKey = fixture('issuer-es256.jwk.json');
const issuerEd = fixture('issuer-ed25519.jwk.json');
const issuerRsa = fixture('issuer-rs256.jwk.json');
const callerP256 = publicOf(fixture('caller-p256.jwk.json'));
const callerEd = publicOf(fixture('caller-ed25519.jwk.json'));
const callerRsa = publicOf(fixture('caller-rsa.jwk.json'));
const jwks = { keys: [publicOf(issuerKey), publicOf(issuerEd), publicOf(issuerRsa)] };

let clock = NOW;
function verifier(options: Partial<IctVerifierOptions> = {}) {
  return createIctVerifier({ issuers: [{ issuer: ISSUER, jwks }], now: () => clock, ...options });
}

interface MintOptions {
  header?: Record<string, unknown>;
  claims?: Record<string, unknown>;
  omit?: string[];
  key?: JWK;
}
async function mint({ header = {}, claims = {}, omit = [], key = issuerKey }: MintOptions = {}): Promise<string> {
  const payload: Record<string, unknown> = { iss: ISSUER, sub: 'alice', iat: NOW, exp: NOW + 600, ctx: ['mfa'], cnf: { jwk: callerP256 }, ...claims };
  for (const name of omit) delete payload[name];
  const alg = (header.alg as string) ?? key.alg!;
  return new SignJWT(payload).setProtectedHeader({ alg, typ: 'ict+jwt', kid: key.kid, ...header }).sign(await importJWK(key, alg));
}
const unsigned = (header: object, payload: object, signature = '') =>
  `${encodeBase64Url(utf8(JSON.stringify(header)))}.${encodeBase64Url(utf8(JSON.stringify(payload)))}.${signature}`;

/** The error code of a rejected verification; also checks that the message quotes no part of the token. */
async function rejection(promise: Promise<unknown>, token?: string): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (!isOidc2Error(err)) throw err;
    for (const part of token?.split('.') ?? []) if (part.length > 8) expect(err.message).not.toContain(part);
    expect(err.status).toBe(err.code === 'issuer_unavailable' ? 503 : 401);
    return err.code;
  }
  return 'accepted';
}

beforeEach(() => {
  clock = NOW;
  compactVerify.mockClear();
  importKey.mockClear();
  importVerifyKeySync.mockClear();
});

describe('ICT verification: accepted tokens', () => {
  it('returns identity, contexts and the confirmation key imported once', async () => {
    const token = await mint();
    const ict = await verifier().verify(token);
    expect(ict.issuer).toBe(ISSUER);
    expect(ict.subject).toBe('alice');
    expect(ict.contexts).toEqual(['mfa']);
    expect(ict.expiresAt).toBe(NOW + 600);
    expect(ict.jwk).toEqual({ kty: 'EC', crv: 'P-256', x: callerP256.x, y: callerP256.y });
    expect(ict.alg).toBe('ES256');
    expect(ict.thumbprint).toBe(await calculateJwkThumbprint(callerP256));
    expect(ict.key?.spec.name).toBe('ES256');
    expect(ict.header.kid).toBe('issuer-es256');
    expect(Object.isFrozen(ict) && Object.isFrozen(ict.payload) && Object.isFrozen(ict.contexts)).toBe(true);
  });

  it.each([
    ['Ed25519 issuer key, alg Ed25519', issuerEd, 'Ed25519'],
    ['Ed25519 issuer key, alg EdDSA', { ...issuerEd, alg: undefined }, 'EdDSA'],
    ['RSA issuer key, RS256', issuerRsa, 'RS256'],
  ])('accepts %s', async (_name, key, alg) => {
    const keys = { keys: [{ ...publicOf(key as JWK), alg: undefined }] };
    const token = await mint({ key: key as JWK, header: { alg } });
    expect((await verifier({ issuers: [{ issuer: ISSUER, jwks: keys }] }).verify(token)).subject).toBe('alice');
  });

  it.each(['ict+jwt', 'application/ict+jwt', 'jwt+ict', 'ICT+JWT', 'Application/ICT+JWT'])('accepts typ %s', async (typ) => {
    expect((await verifier().verify(await mint({ header: { typ } }))).subject).toBe('alice');
  });

  it.each([
    ['Ed25519 without alg', callerEd, 'Ed25519'],
    ['P-256 with alg ES256', { ...callerP256, alg: 'ES256' }, 'ES256'],
    ['Ed25519 with alg EdDSA', { ...callerEd, alg: 'EdDSA' }, 'EdDSA'],
    ['RSA with alg PS256', { ...callerRsa, alg: 'PS256' }, 'PS256'],
    ['RSA with alg RS256', { ...callerRsa, alg: 'RS256' }, 'RS256'],
  ])('resolves the confirmation algorithm for %s', async (_name, jwk, alg) => {
    const ict = await verifier().verify(await mint({ claims: { cnf: { jwk } } }));
    expect(ict.alg).toBe(alg);
    expect(ict.key?.spec.name).toBe(alg);
  });

  it('accepts an expired token within the clock tolerance, and iat/nbf slightly in the future', async () => {
    clock = NOW + 600 + 59;
    expect((await verifier().verify(await mint())).subject).toBe('alice');
    clock = NOW - 59;
    expect((await verifier().verify(await mint({ claims: { nbf: NOW } }))).subject).toBe('alice');
  });

  it('accepts a token whose aud names a configured audience, and any aud when none is configured', async () => {
    const token = await mint({ claims: { aud: ['https://other.example', 'https://api.example'] } });
    expect((await verifier({ tokenAudiences: ['https://api.example'] }).verify(token)).subject).toBe('alice');
    expect((await verifier().verify(token)).subject).toBe('alice');
    expect((await verifier({ tokenAudiences: ['https://api.example'] }).verify(await mint())).subject).toBe('alice');
  });
});

describe('ICT verification: rejections, before any key is touched', () => {
  it('rejects alg none', async () => {
    const token = unsigned({ alg: 'none', typ: 'ict+jwt' }, { iss: ISSUER, sub: 'alice', iat: NOW, exp: NOW + 60, cnf: { jwk: callerP256 } });
    expect(await rejection(verifier().verify(token), token)).toBe('ict_alg_not_allowed');
    expect(compactVerify).not.toHaveBeenCalled();
  });

  it.each([
    ['the JWK JSON', () => utf8(JSON.stringify(publicOf(issuerKey)))],
    ['the SPKI PEM', async () => utf8(await exportSPKI((await importJWK(publicOf(issuerKey), 'ES256', { extractable: true })) as CryptoKey))],
  ])('rejects HS256 signed with the issuer public key bytes (%s) as the HMAC secret', async (_name, secret) => {
    const token = await new SignJWT({ iss: ISSUER, sub: 'mallory', iat: NOW, exp: NOW + 60, cnf: { jwk: callerP256 } })
      .setProtectedHeader({ alg: 'HS256', typ: 'ict+jwt', kid: 'issuer-es256' })
      .sign(await secret());
    expect(await rejection(verifier().verify(token), token)).toBe('ict_alg_not_allowed');
    expect(compactVerify).not.toHaveBeenCalled();
  });

  it.each(['HS384', 'HS512', 'RSA-OAEP', 'ES256K', ''])('rejects alg %j', async (alg) => {
    const token = unsigned({ alg, typ: 'ict+jwt' }, { iss: ISSUER }, 'c2ln');
    expect(await rejection(verifier().verify(token))).toBe('ict_alg_not_allowed');
  });

  it.each([['JWT'], ['dpop+jwt'], ['wit+jwt'], [undefined], [['ict+jwt']]])('rejects typ %j', async (typ) => {
    const token = await mint({ header: { typ } });
    expect(await rejection(verifier().verify(token), token)).toBe('ict_typ_invalid');
    expect(compactVerify).not.toHaveBeenCalled();
  });

  it('rejects a token that is not a compact JWS, or too large', async () => {
    const good = await mint();
    const [h, p, s] = good.split('.');
    const bad = [
      '',
      'abc',
      `${h}.${p}`,
      `${h}.${p}.${s}.x`,
      `${h}.${p}.${s}=`,
      `.${p}.${s}`,
      `${h}..${s}`,
      `${encodeBase64Url(utf8('not json'))}.${p}.${s}`,
      `${encodeBase64Url(utf8('[1]'))}.${p}.${s}`,
      `${h}.${encodeBase64Url(utf8('"string"'))}.${s}`,
      `${h}.${p}A.${s}`,
    ];
    for (const token of bad) expect([token, await rejection(verifier().verify(token))]).toEqual([token, 'ict_malformed']);
    const huge = await mint({ claims: { pad: 'x'.repeat(9000) } });
    expect(await rejection(verifier().verify(huge))).toBe('ict_malformed');
    expect(await rejection(verifier({ maxTokenBytes: 100 }).verify(good))).toBe('ict_malformed');
    expect(compactVerify).not.toHaveBeenCalled();
  });

  it('rejects an untrusted issuer without contacting it, even when the token points at a live server', async () => {
    let requests = 0;
    const server: Server = createServer((_req, res) => {
      requests++;
      res.end(JSON.stringify(jwks));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const token = await mint({ claims: { iss: origin }, header: { jku: `${origin}/jwks`, x5u: `${origin}/cert` } });
      const v = createIctVerifier({ issuers: [{ issuer: `${origin}/other` }], now: () => clock });
      expect(await rejection(v.verify(token), token)).toBe('ict_untrusted_issuer');
      expect(await rejection(verifier().verify(token), token)).toBe('ict_untrusted_issuer');
      expect(requests).toBe(0);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('compares iss exactly', async () => {
    for (const iss of [`${ISSUER}/`, 'HTTPS://issuer.test', ' https://issuer.test']) {
      expect(await rejection(verifier().verify(await mint({ claims: { iss } })))).toBe('ict_untrusted_issuer');
    }
    expect(await rejection(verifier().verify(await mint({ omit: ['iss'] })))).toBe('ict_claim_missing');
  });
});

describe('ICT verification: signature', () => {
  it('rejects an unknown kid', async () => {
    const token = await mint({ header: { kid: 'rotated-away' } });
    expect(await rejection(verifier().verify(token), token)).toBe('ict_unknown_key');
  });

  it('rejects a signature by another key under the issuer kid', async () => {
    const other = { ...fixture('caller-p256.jwk.json'), kid: 'issuer-es256', alg: 'ES256' };
    const token = await mint({ key: other });
    expect(await rejection(verifier().verify(token), token)).toBe('ict_invalid');
  });

  it('rejects a changed payload or signature', async () => {
    const [h, , s] = (await mint()).split('.');
    const forged = `${h}.${(await mint({ claims: { sub: 'mallory' } })).split('.')[1]}.${s}`;
    expect(await rejection(verifier().verify(forged), forged)).toBe('ict_invalid');
    const token = await mint();
    const flipped = token.slice(0, -2) + (token.at(-2) === 'A' ? 'B' : 'A') + token.at(-1);
    expect(await rejection(verifier().verify(flipped), flipped)).toBe('ict_invalid');
  });

  it('rejects an ES256 token when the only issuer key is marked for another alg', async () => {
    const keys = { keys: [{ ...publicOf(issuerKey), alg: 'ES384' }] };
    const token = await mint();
    expect(await rejection(verifier({ issuers: [{ issuer: ISSUER, jwks: keys }] }).verify(token), token)).toBe('ict_unknown_key');
  });

  it('rejects a critical header extension', async () => {
    // jose refuses to sign an unknown crit, so these tokens are signed directly.
    const signDirect = async (header: object) => {
      const input = unsigned(header, { iss: ISSUER, sub: 'alice', iat: NOW, exp: NOW + 600, cnf: { jwk: callerP256 } }).slice(0, -1);
      return `${input}.${encodeBase64Url(await crypto.sign(await crypto.importKey(issuerKey, 'ES256', 'sign'), utf8(input)))}`;
    };
    const header = { alg: 'ES256', typ: 'ict+jwt', kid: 'issuer-es256' };
    expect((await verifier().verify(await signDirect(header))).subject).toBe('alice');
    const token = await signDirect({ ...header, crit: ['exp-ext'], 'exp-ext': 1 });
    expect(await rejection(verifier().verify(token), token)).toBe('ict_invalid');
  });
});

describe('ICT verification: claims', () => {
  it.each(['sub', 'iat', 'exp'])('rejects a token without %s', async (claim) => {
    const token = await mint({ omit: [claim] });
    expect(await rejection(verifier().verify(token), token)).toBe('ict_claim_missing');
  });

  it.each([
    ['sub not a string', { sub: 42 }],
    ['sub empty', { sub: '' }],
    ['exp not a number', { exp: String(NOW + 600) }],
    ['nbf not a number', { nbf: 'soon' }],
    ['ctx not an array', { ctx: 'mfa' }],
    ['ctx with a non-string', { ctx: ['mfa', 2] }],
    ['aud not a string or list', { aud: { a: 1 } }],
  ])('rejects %s', async (_name, claims) => {
    const token = await mint({ claims });
    expect(await rejection(verifier().verify(token), token)).toBe('ict_invalid');
  });

  it('rejects an expired token', async () => {
    clock = NOW + 600 + 60;
    expect(await rejection(verifier().verify(await mint()))).toBe('ict_expired');
  });

  it('rejects nbf or iat in the future', async () => {
    expect(await rejection(verifier().verify(await mint({ claims: { nbf: NOW + 61 } })))).toBe('ict_not_yet_valid');
    expect(await rejection(verifier().verify(await mint({ claims: { iat: NOW + 61, exp: NOW + 700 } })))).toBe('ict_not_yet_valid');
  });

  it('rejects a token living longer than the maximum, per verifier and per issuer', async () => {
    const long = await mint({ claims: { exp: NOW + 3601 } });
    expect(await rejection(verifier().verify(long))).toBe('ict_lifetime_exceeded');
    expect((await verifier({ maxTokenAge: 7200 }).verify(long)).subject).toBe('alice');
    const short = await mint({ claims: { exp: NOW + 301 } });
    expect(await rejection(verifier({ issuers: [{ issuer: ISSUER, jwks, maxTokenAge: 300 }] }).verify(short))).toBe('ict_lifetime_exceeded');
  });

  it('rejects an audience mismatch, per verifier and per issuer', async () => {
    const token = await mint({ claims: { aud: 'https://elsewhere.example' } });
    expect(await rejection(verifier({ tokenAudiences: ['https://api.example'] }).verify(token), token)).toBe('ict_audience_mismatch');
    const perIssuer = verifier({ tokenAudiences: ['https://elsewhere.example'], issuers: [{ issuer: ISSUER, jwks, tokenAudiences: ['https://api.example'] }] });
    expect(await rejection(perIssuer.verify(token), token)).toBe('ict_audience_mismatch');
  });

  it('refuses the former name audiences, per verifier and per issuer, with ERR_UNKNOWN_OPTION naming tokenAudiences', () => {
    const renamed = (path: string) => expect.objectContaining({ code: 'ERR_UNKNOWN_OPTION', message: `${path}.audiences is now ${path}.tokenAudiences` });
    expect(() => verifier({ audiences: ['https://api.example'] } as Partial<IctVerifierOptions>)).toThrow(renamed('options'));
    expect(() => verifier({ issuers: [{ issuer: ISSUER, jwks, audiences: ['https://api.example'] } as IctVerifierOptions['issuers'][number]] })).toThrow(renamed('options.issuers[0]'));
  });

  it('refuses the former name jwks for key fetching with ERR_UNKNOWN_OPTION naming keyFetch', () => {
    expect(() => verifier({ jwks: { timeout: 1 } } as Partial<IctVerifierOptions>)).toThrow(
      expect.objectContaining({ code: 'ERR_UNKNOWN_OPTION', message: 'options.jwks is now options.keyFetch' }),
    );
  });
});

describe('ICT verification: confirmation key', () => {
  const rsaPrivate = fixture('caller-rsa.jwk.json');
  const p256Private = fixture('caller-p256.jwk.json');
  const cases: Array<[string, unknown]> = [
    ['no cnf', undefined],
    ['cnf not an object', 'key'],
    ['empty cnf', {}],
    ['both jwk and jkt', { jwk: callerP256, jkt: 'x'.repeat(43) }],
    ['cnf.jwk with d', { jwk: p256Private }],
    ...['p', 'q', 'dp', 'dq', 'qi', 'd'].map((m): [string, unknown] => [`RSA cnf.jwk with ${m}`, { jwk: { ...callerRsa, alg: 'PS256', [m]: rsaPrivate[m as 'p'] } }]),
    ['RSA cnf.jwk with oth', { jwk: { ...callerRsa, alg: 'PS256', oth: [] } }],
    ['an oct key', { jwk: { kty: 'oct', k: 'c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0' } }],
    ['an oct member on an EC key', { jwk: { ...callerP256, k: 'AAAA' } }],
    ['RSA without alg', { jwk: callerRsa }],
    ['alg HS256', { jwk: { ...callerP256, alg: 'HS256' } }],
    ['alg none', { jwk: { ...callerP256, alg: 'none' } }],
    ['alg of another curve', { jwk: { ...callerP256, alg: 'ES384' } }],
    ['alg RS256 on an EC key', { jwk: { ...callerP256, alg: 'RS256' } }],
    ['secp256k1', { jwk: { ...callerP256, crv: 'secp256k1' } }],
    ['X25519', { jwk: { ...callerEd, crv: 'X25519' } }],
    ['a short coordinate', { jwk: { ...callerP256, x: callerP256.x!.slice(0, 20) } }],
    ['a point off the curve', { jwk: { ...callerP256, y: callerP256.x } }],
    ['a 1024-bit RSA key', { jwk: { ...callerRsa, alg: 'PS256', n: callerRsa.n!.slice(0, 171) } }],
    ['a jkt that is not a SHA-256 thumbprint', { jkt: 'abc' }],
  ];
  it.each(cases)('rejects %s', async (_name, cnf) => {
    const token = await mint({ claims: { cnf } });
    expect(await rejection(verifier().verify(token, { allowJkt: true }), token)).toBe('ict_cnf_invalid');
  });

  it('accepts cnf.jkt only when allowJkt is set (DPoP)', async () => {
    const jkt = await calculateJwkThumbprint(callerP256);
    const token = await mint({ claims: { cnf: { jkt } } });
    const v = verifier();
    expect(await rejection(v.verify(token), token)).toBe('ict_cnf_invalid');
    const ict = await v.verify(token, { allowJkt: true });
    expect(ict.thumbprint).toBe(jkt);
    expect(ict.jwk).toBeUndefined();
    expect(ict.key).toBeUndefined();
    // The cached result is checked again on every call.
    expect(await rejection(v.verify(token), token)).toBe('ict_cnf_invalid');
  });
});

describe('ICT verification: cache', () => {
  it('verifies a returning token without a signature check or key import', async () => {
    const v = verifier();
    const token = await mint();
    const first = await v.verify(token);
    expect(compactVerify).toHaveBeenCalledTimes(1);
    expect(imports()).toBe(1);
    clock = NOW + 300;
    const second = await v.verify(token);
    expect(second).toBe(first);
    expect(compactVerify).toHaveBeenCalledTimes(1);
    expect(imports()).toBe(1);
  });

  it('shares one verification between concurrent first presentations', async () => {
    const v = verifier();
    const token = await mint();
    const results = await Promise.all(Array.from({ length: 50 }, () => v.verify(token)));
    expect(new Set(results).size).toBe(1);
    expect(compactVerify).toHaveBeenCalledTimes(1);
  });

  it('rejects a cached token once it expires (or before its nbf on a clock going back)', async () => {
    const v = verifier();
    const token = await mint({ claims: { nbf: NOW } });
    await v.verify(token);
    clock = NOW + 600 + 60;
    expect(await rejection(v.verify(token), token)).toBe('ict_expired');
    clock = NOW - 61;
    expect(await rejection(v.verify(token), token)).toBe('ict_not_yet_valid');
    expect(compactVerify).toHaveBeenCalledTimes(2);
  });

  it('never answers for a different token', async () => {
    const v = verifier();
    const token = await mint();
    await v.verify(token);
    const [h, p, s] = token.split('.');
    const altered = `${h}.${p}.${s!.slice(0, -1)}${s!.endsWith('A') ? 'Q' : 'A'}`;
    expect(await rejection(v.verify(altered), altered)).toBe('ict_invalid');
    const other = await mint({ claims: { sub: 'bob' } });
    expect((await v.verify(other)).subject).toBe('bob');
  });

  it('is bounded: the least recently used token is verified again', async () => {
    const v = verifier({ cacheSize: 2 });
    const [a, b, c] = await Promise.all([mint({ claims: { sub: 'a' } }), mint({ claims: { sub: 'b' } }), mint({ claims: { sub: 'c' } })]);
    await v.verify(a);
    await v.verify(b);
    await v.verify(a);
    await v.verify(c); // evicts b
    expect(compactVerify).toHaveBeenCalledTimes(3);
    await v.verify(a);
    await v.verify(c);
    expect(compactVerify).toHaveBeenCalledTimes(3);
    await v.verify(b);
    expect(compactVerify).toHaveBeenCalledTimes(4);
  });

  it('does not cache with cacheSize 0', async () => {
    const v = verifier({ cacheSize: 0 });
    const token = await mint();
    await v.verify(token);
    await v.verify(token);
    expect(compactVerify).toHaveBeenCalledTimes(2);
  });
});

describe('confirmation key helpers', () => {
  it('computes RFC 7638 thumbprints (RFC 7638 section 3.1 example and jose for each key type)', async () => {
    const rfc7638: JWK = {
      kty: 'RSA',
      n: '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw',
      e: 'AQAB',
      alg: 'RS256',
      kid: '2011-04-29',
    };
    expect(await jwkThumbprint(rfc7638)).toBe('NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs');
    for (const jwk of [callerP256, callerEd, callerRsa]) expect(await jwkThumbprint(jwk)).toBe(await calculateJwkThumbprint(jwk));
  });

  it('keeps only the public members of a confirmation key', () => {
    expect(parsePublicJwk({ ...callerP256, alg: 'ES256', kid: 'k', use: 'sig' })).toEqual({ kty: 'EC', crv: 'P-256', x: callerP256.x, y: callerP256.y });
    expect(parsePublicJwk({ ...callerEd, y: callerEd.x })).toBeUndefined();
    expect(parsePublicJwk(null)).toBeUndefined();
    expect(jwkAlgorithm({ kty: 'EC', crv: 'P-384' })).toBe('ES384');
    expect(jwkAlgorithm({ kty: 'EC', crv: 'P-521' })).toBe('ES512');
  });
});

describe('createIctVerifier options', () => {
  it.each([
    ['no issuers', { issuers: [] }],
    ['repeated issuers', { issuers: [{ issuer: ISSUER, jwks }, { issuer: ISSUER, jwks }] }],
    ['a private issuer key', { issuers: [{ issuer: ISSUER, jwks: { keys: [issuerKey] } }] }],
    ['an HMAC issuer key', { issuers: [{ issuer: ISSUER, jwks: { keys: [{ kty: 'oct', k: 'AAAA' }] } }] }],
    ['an issuer key with alg HS256', { issuers: [{ issuer: ISSUER, jwks: { keys: [{ ...publicOf(issuerKey), alg: 'HS256' }] } }] }],
    ['an http jwksUri off loopback', { issuers: [{ issuer: ISSUER, jwksUri: 'http://keys.example/jwks' }] }],
    ['both jwks and jwksUri', { issuers: [{ issuer: ISSUER, jwks, jwksUri: 'https://keys.example/jwks' }] }],
    ['discovery for an issuer that is not an https URL', { issuers: [{ issuer: 'urn:example:issuer' }] }],
    ['a negative clock tolerance', { clockTolerance: -1 }],
    ['a fractional cache size', { cacheSize: 1.5 }],
    ['a zero maxTokenAge', { maxTokenAge: 0 }],
    ['a non-function now', { now: 5 }],
    ['a zero JWKS timeout', { keyFetch: { timeout: 0 } }],
  ])('rejects %s with TypeError', (_name, options) => {
    expect(() => createIctVerifier({ issuers: [{ issuer: ISSUER, jwks }], ...(options as object) } as IctVerifierOptions)).toThrow(TypeError);
  });
});
