// The synchronous confirmation-key path (src/lib/crypto.ts importVerifyKeySync, src/lib/jwk.ts jwkThumbprintSync,
// used by confirmationKey in src/jwt-credential.ts) against its reference, lib/crypto.ts importKey
// and the promise-based jwkThumbprint: every key below, valid or hostile, must end the same way on
// both (the same key, algorithm and thumbprint, a handle that verifies exactly what the reference
// handle verifies, or the same error). Then one level up: confirmationKey and whole ICTs on
// node:crypto and with the WebCrypto hook, which takes the reference path for every key.
import { constants, generateKeyPairSync, sign as nodeSign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT, calculateJwkThumbprint, importJWK, type JWK } from 'jose';
import { importKey, importVerifyKeySync, useWebCrypto, verify, type KeyHandle } from '../src/lib/crypto';
import { jwkThumbprint, jwkThumbprintSync } from '../src/lib/jwk';
import { confirmationKey, type ConfirmationKey } from '../src/jwt-credential';
import { createIctVerifier } from '../src/ict';
import { Oidc2Error, isOidc2Error } from '../src/errors';
import { utf8 } from '../src/lib/base64';

const fixture = (name: string): JWK => JSON.parse(readFileSync(join(__dirname, 'fixtures', name), 'utf8'));
const publicOf = ({ d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...rest }: JWK): JWK => rest;
const DATA = utf8('the signature base of a request');

interface Pair {
  name: string;
  priv: JWK;
  pub: JWK;
}
const pairs: Pair[] = [];
for (const [name, priv] of [
  ['P-256 fixture', fixture('caller-p256.jwk.json')],
  ['Ed25519 fixture', fixture('caller-ed25519.jwk.json')],
  ['RSA fixture', fixture('caller-rsa.jwk.json')],
  ['P-384', generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ format: 'jwk' }) as JWK],
  ['P-521', generateKeyPairSync('ec', { namedCurve: 'P-521' }).privateKey.export({ format: 'jwk' }) as JWK],
  ['RSA 3072', generateKeyPairSync('rsa', { modulusLength: 3072 }).privateKey.export({ format: 'jwk' }) as JWK],
] as const) {
  pairs.push({ name, priv, pub: publicOf(priv) });
}
const by = (name: string) => pairs.find((p) => p.name === name)!;
const ALGS_OF: Record<string, string[]> = { EC: ['ES256', 'ES384', 'ES512'], OKP: ['Ed25519', 'EdDSA'], RSA: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'] };
const EVERY_ALG = ['ES256', 'ES384', 'ES512', 'Ed25519', 'EdDSA', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'HS256', 'none', 'ecdsa-p256-sha256', 'rsa-pss-sha512'];

/** A signature over DATA by `priv` for `alg`, made with node:crypto directly (undefined where they do not fit). */
function signature(priv: JWK, alg: string): Uint8Array | undefined {
  const digest = alg.startsWith('Ed') ? null : `sha${alg.slice(2)}`;
  const options =
    alg === 'ES256' || alg === 'ES384' || alg === 'ES512'
      ? { dsaEncoding: 'ieee-p1363' }
      : alg.startsWith('PS')
        ? { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: Number(alg.slice(2)) / 8 }
        : alg.startsWith('RS') || alg.startsWith('Ed')
          ? {}
          : undefined;
  if (!options) return undefined;
  try {
    return nodeSign(digest, DATA, { key: priv, format: 'jwk', ...options } as never);
  } catch {
    return undefined;
  }
}

type Outcome = { ok: true; alg: string; usage: string; verifies: boolean[] } | { ok: false; error: string };
const failure = (error: unknown): Outcome => ({ ok: false, error: `${(error as Error)?.constructor?.name}:${String((error as { code?: unknown }).code ?? (error as Error).message)}` });

/** What a handle does: its algorithm, and which of the probe signatures it accepts. */
async function judged(handle: KeyHandle): Promise<Outcome> {
  const probes = pairs.flatMap((p) => [signature(p.priv, handle.spec.name)]).filter((s): s is Uint8Array => s !== undefined);
  const verifies: boolean[] = [];
  for (const s of probes) verifies.push(await verify(handle, DATA, s));
  verifies.push(await verify(handle, utf8('another message'), probes[0] ?? new Uint8Array(64)));
  return { ok: true, alg: handle.spec.name, usage: handle.usage, verifies };
}
async function reference(jwk: JWK, alg: string): Promise<Outcome> {
  try {
    return await judged(await importKey(jwk, alg, 'verify'));
  } catch (error) {
    return failure(error);
  }
}
/** The fast path as callers use it: importVerifyKeySync, or importKey where it hands back nothing. */
async function fast(jwk: JWK, alg: string): Promise<{ outcome: Outcome; synchronous: boolean }> {
  let handle: KeyHandle | undefined;
  try {
    handle = importVerifyKeySync(jwk, alg);
  } catch (error) {
    return { outcome: failure(error), synchronous: true };
  }
  if (handle) return { outcome: await judged(handle), synchronous: true };
  return { outcome: await reference(jwk, alg), synchronous: false };
}

const P256 = () => by('P-256 fixture').pub;
const ED = () => by('Ed25519 fixture').pub;
const RSA = () => by('RSA fixture').pub;
const b64 = (bytes: number[]) => Buffer.from(bytes).toString('base64url');
const HOSTILE: Array<[string, () => JWK]> = [
  ['a private P-256 key', () => by('P-256 fixture').priv],
  ['a private RSA key', () => by('RSA fixture').priv],
  ['a private Ed25519 key', () => by('Ed25519 fixture').priv],
  ['a point off the curve', () => ({ ...P256(), y: P256().x })],
  ['a short x coordinate', () => ({ ...P256(), x: P256().x!.slice(0, 20) })],
  ['a long y coordinate', () => ({ ...P256(), y: `${P256().y}AAAA` })],
  ['coordinates of zeros', () => ({ ...P256(), x: b64(new Array(32).fill(0)), y: b64(new Array(32).fill(0)) })],
  ['coordinates not base64url', () => ({ ...P256(), x: '!!!!', y: '????' })],
  ['no y', () => ({ kty: 'EC', crv: 'P-256', x: P256().x })],
  ['a numeric x', () => ({ ...P256(), x: 5 as unknown as string })],
  ['secp256k1', () => ({ ...P256(), crv: 'secp256k1' })],
  ['an unknown curve', () => ({ ...P256(), crv: 'P-1' })],
  ['kty OKP on a P-256 key', () => ({ ...P256(), kty: 'OKP' })],
  ['X25519', () => ({ ...ED(), crv: 'X25519' })],
  ['an Ed25519 key with y', () => ({ ...ED(), y: ED().x })],
  ['a short Ed25519 key', () => ({ ...ED(), x: ED().x!.slice(0, 30) })],
  ['a 1024-bit RSA key', () => ({ ...RSA(), n: RSA().n!.slice(0, 171) })],
  ['an RSA key without e', () => ({ kty: 'RSA', n: RSA().n })],
  ['an RSA exponent of zero', () => ({ ...RSA(), e: 'AA' })],
  ['an oct key', () => ({ kty: 'oct', k: 'c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0' })],
  ['no kty', () => ({ crv: 'P-256', x: P256().x, y: P256().y })],
  ['extra members', () => ({ ...P256(), alg: 'ES256', kid: 'k', use: 'sig', key_ops: ['verify'], ext: true })],
  ['key_ops sign only', () => ({ ...P256(), key_ops: ['sign'] })],
  ['use enc', () => ({ ...P256(), use: 'enc' })],
];

describe('importVerifyKeySync against importKey(jwk, alg, "verify")', () => {
  const valid = pairs.flatMap((p) => EVERY_ALG.map((alg) => [`${p.name} as ${alg}`, () => p.pub, alg] as const));
  const hostile = HOSTILE.flatMap(([name, jwk]) => EVERY_ALG.map((alg) => [`${name} as ${alg}`, jwk, alg] as const));
  it.each([...valid, ...hostile])('%s: the same outcome on both paths', async (_name, jwk, alg) => {
    const expected = await reference(jwk(), alg);
    const got = await fast(jwk(), alg);
    expect(got.outcome).toEqual(expected);
    // Every asymmetric algorithm is decided without a promise on Node.
    if (expected.ok && !['HS256', 'none'].includes(alg)) expect(got.synchronous).toBe(true);
  });

  it('accepts exactly the keys each algorithm fits, and rejects the rest', async () => {
    for (const p of pairs) {
      for (const alg of Object.values(ALGS_OF).flat()) {
        const { outcome } = await fast(p.pub, alg);
        expect(outcome.ok).toBe(ALGS_OF[String(p.pub.kty)]!.includes(alg) && (p.pub.kty !== 'EC' || { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' }[p.pub.crv!] === alg));
        if (outcome.ok) expect(outcome.verifies.filter(Boolean)).toHaveLength(1);
      }
    }
  });

  it('hands back nothing when node:crypto is off, so that callers take importKey', () => {
    useWebCrypto(true);
    try {
      for (const p of pairs) for (const alg of ALGS_OF[String(p.pub.kty)]!) expect(importVerifyKeySync(p.pub, alg)).toBeUndefined();
    } finally {
      useWebCrypto(false);
    }
  });
});

describe('jwkThumbprintSync against jwkThumbprint', () => {
  const keys: Array<[string, JWK]> = [
    ...pairs.map((p): [string, JWK] => [p.name, p.pub]),
    ...pairs.map((p): [string, JWK] => [`${p.name} (private)`, p.priv]),
    ...HOSTILE.map(([name, jwk]): [string, JWK] => [name, jwk()]),
    ['RFC 7638 section 3.1', { kty: 'RSA', n: '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw', e: 'AQAB', alg: 'RS256', kid: '2011-04-29' }],
    ['members with quotes', { kty: 'EC', crv: 'P-256"', x: 'a\\b', y: '\u00e9' }],
    ['an empty object', {}],
  ];
  it.each(keys)('%s: the same thumbprint or the same error', async (_name, jwk) => {
    const settle = async (run: () => string | undefined | Promise<string>) => {
      try {
        return { ok: true, value: await run() };
      } catch (error) {
        return failure(error);
      }
    };
    const expected = await settle(() => jwkThumbprint(jwk));
    expect(await settle(() => jwkThumbprintSync(jwk))).toEqual(expected);
  });

  it('is the RFC 7638 thumbprint jose computes, and nothing without node:crypto', async () => {
    for (const p of pairs) expect(jwkThumbprintSync(p.pub)).toBe(await calculateJwkThumbprint(p.pub));
    useWebCrypto(true);
    try {
      expect(jwkThumbprintSync(P256())).toBeUndefined();
    } finally {
      useWebCrypto(false);
    }
  });
});

describe('confirmationKey on node:crypto and on the reference path', () => {
  const invalid = (message: string) => new Oidc2Error('ict_cnf_invalid', message);
  async function settle(member: unknown, requireAlg: boolean, webCrypto: boolean) {
    useWebCrypto(webCrypto);
    try {
      let result: ConfirmationKey | Promise<ConfirmationKey>;
      try {
        result = confirmationKey(member, requireAlg, invalid);
      } catch (error) {
        return { synchronous: true, outcome: isOidc2Error(error) ? `${error.code}:${error.message}` : `thrown:${String(error)}` };
      }
      const synchronous = !(result instanceof Promise);
      try {
        const c = await result;
        const own = pairs.find((p) => p.pub.x === (c.jwk as JWK).x && p.pub.n === (c.jwk as JWK).n);
        const s = own && signature(own.priv, c.alg);
        return { synchronous, outcome: { jwk: c.jwk, alg: c.alg, thumbprint: c.thumbprint, spec: c.key.spec.name, verifies: s ? await verify(c.key, DATA, s) : undefined } };
      } catch (error) {
        return { synchronous, outcome: isOidc2Error(error) ? `${error.code}:${error.message}` : `rejected:${String(error)}` };
      }
    } finally {
      useWebCrypto(false);
    }
  }
  const members: Array<[string, () => unknown]> = [
    ...pairs.map((p): [string, () => unknown] => [p.name, () => p.pub]),
    ...pairs.flatMap((p) => ALGS_OF[String(p.pub.kty)]!.map((alg): [string, () => unknown] => [`${p.name} with alg ${alg}`, () => ({ ...p.pub, alg })])),
    ...HOSTILE.map(([name, jwk]): [string, () => unknown] => [name, jwk]),
    ...HOSTILE.map(([name, jwk]): [string, () => unknown] => [`${name} with alg ES256`, () => ({ ...jwk(), alg: 'ES256' })]),
    ['null', () => null],
    ['a string', () => 'jwk'],
    ['an array', () => [P256()]],
  ];
  it.each(members.flatMap(([name, member]) => [[name, member, false] as const, [`${name} (alg required)`, member, true] as const]))('%s: the same result', async (_name, member, requireAlg) => {
    const expected = await settle(member(), requireAlg, true);
    const got = await settle(member(), requireAlg, false);
    expect(got.outcome).toEqual(expected.outcome);
    // On Node a key is confirmed without a promise.
    expect(got.synchronous).toBe(true);
  });
});

describe('ICTs with every confirmation key, on node:crypto and on the reference path', () => {
  const issuer = fixture('issuer-es256.jwk.json');
  const ISSUER = 'https://issuer.test';
  const NOW = 1_800_000_100;
  async function code(token: string, webCrypto: boolean): Promise<string> {
    useWebCrypto(webCrypto);
    try {
      const v = createIctVerifier({ issuers: [{ issuer: ISSUER, jwks: { keys: [publicOf(issuer)] } }], now: () => NOW });
      const r = await v.verify(token);
      return `ok:${r.alg}:${r.thumbprint}:${JSON.stringify(r.jwk)}:${Object.isFrozen(r) && Object.isFrozen(r.jwk) && Object.isFrozen(r.payload)}`;
    } catch (error) {
      if (!isOidc2Error(error)) throw error;
      return error.code;
    } finally {
      useWebCrypto(false);
    }
  }
  const cnfs: Array<[string, () => unknown]> = [
    ...pairs.map((p): [string, () => unknown] => [p.name, () => ({ jwk: p.pub })]),
    ...pairs.map((p): [string, () => unknown] => [`${p.name} with alg`, () => ({ jwk: { ...p.pub, alg: ALGS_OF[String(p.pub.kty)]!.at(-1) } })]),
    ...HOSTILE.map(([name, jwk]): [string, () => unknown] => [name, () => ({ jwk: jwk() })]),
    ['jkt', () => ({ jkt: 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs' })],
  ];
  it.each(cnfs)('%s', async (_name, cnf) => {
    const token = await new SignJWT({ iss: ISSUER, sub: 'alice', iat: NOW, exp: NOW + 600, cnf: cnf() })
      .setProtectedHeader({ alg: 'ES256', typ: 'ict+jwt', kid: issuer.kid })
      .sign(await importJWK(issuer, 'ES256'));
    expect(await code(token, false)).toBe(await code(token, true));
  });
});
