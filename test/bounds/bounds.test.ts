// Every bound on what a caller sends, tested at the bound and one past it (docs/security.md has
// the table). At the bound the input gets past the size check (and fails, if at all, for another
// reason); one past it is refused with the bound's own code.
import { createAuthenticator, signRequest, type HttpRequest } from '@oidc2/core';
import { parseSignature, parseSignatureInput } from '../../packages/core/src/rfc9421/index';
import { verifyContentDigest } from '../../packages/core/src/content-digest';
import { parseRequestKeyShare, parseRequestSession, serializeRequestKeyShare } from '../../packages/core/src/e2ee/fields';
import { aes128gcmEncode, decryptBody } from '../../packages/core/src/e2ee/aes128gcm';
import { StaticSessionKeyStore } from '../../packages/core/src/e2ee/session-keys';
import { createIctVerifier } from '../../packages/core/src/ict';
import { createDpopProof, verifyDpopProof } from '../../packages/core/src/dpop';
import { SignJWT, importJWK } from 'jose';
import { newTrustDomain } from '../../packages/core/test/support/wit';
import { createTxnTokenVerifier } from '../../packages/core/src/txn-token';
import { createWitVerifier } from '../../packages/core/src/wimse';
import { MemoryReplayStore } from '../../packages/core/src/replay-store';
import { LruCache } from '../../packages/core/src/lib/lru';
import { parsePublicJwk } from '../../packages/core/src/lib/jwk';
import { utf8 } from '../../packages/core/src/lib/base64';
import { FRAMEWORKS, startFramework } from '../support/frameworks';
import { newIssuer, newKey, type TestIssuer, type TestKey } from '../support/credentials';
import { codeOf, syncCodeOf } from '../support/error-code';

const T = 1_790_000_000;
const now = () => T;
const BASE = 'https://api.example.com';

let op: TestIssuer;
let alice: TestKey;
let ict: string;
beforeAll(async () => {
  op = await newIssuer('https://op.example.com');
  alice = await newKey('ES256');
  ict = await op.mint(alice, { now: T - 10 });
});

/** A string of exactly `length` characters: `prefix` then `x` padding then `suffix`. */
function exactly(length: number, prefix: string, suffix = ''): string {
  return prefix + 'x'.repeat(length - prefix.length - suffix.length) + suffix;
}

const authenticator = () => createAuthenticator({ issuers: [{ issuer: op.issuer, jwks: op.jwks }], audiences: [BASE], now, replayStore: new MemoryReplayStore({ maxEntries: 16 }) });

async function signed(): Promise<HttpRequest> {
  const s = await signRequest({ method: 'GET', url: `${BASE}/orders` }, { ict, key: alice.signer, now });
  return { method: s.method, url: '/orders', headers: s.headers };
}

describe('header bytes (maxHeaderBytes, default 8192)', () => {
  it('Identity-Certification-Token: 8192 bytes reach the token check, 8193 are header_too_large', async () => {
    const request = await signed();
    const at = { ...request, headers: { ...request.headers, 'identity-certification-token': [exactly(8192, 'e.')] } };
    const past = { ...request, headers: { ...request.headers, 'identity-certification-token': [exactly(8193, 'e.')] } };
    expect(await codeOf(() => authenticator().authenticate(at))).toBe('ict_malformed');
    expect(await codeOf(() => authenticator().authenticate(past))).toBe('header_too_large');
  });

  it('Signature-Input and Signature: 8192 bytes parse, 8193 are header_too_large, counting 2 bytes per joined line', () => {
    const member = (n: number) => exactly(n, 'sig=("@method");created=1;x="', '"');
    expect(parseSignatureInput([member(8192)]).size).toBe(1);
    expect(syncCodeOf(() => parseSignatureInput([member(8193)]))).toBe('header_too_large');
    // The same bound over many field lines: the lines and the ", " between them.
    const lines = (total: number) => [...Array.from({ length: 99 }, (_, i) => `s${i}=:AA==:`), ''].map((l, i, all) => (i === all.length - 1 ? exactly(total - sizeOf(all.slice(0, -1)) - 2, 'z=:', ':').replace(/x/g, 'A') : l));
    const sizeOf = (ls: string[]) => ls.reduce((n, l) => n + l.length, 0) + 2 * (ls.length - 1);
    const atBound = lines(8192);
    expect(sizeOf(atBound)).toBe(8192);
    expect(syncCodeOf(() => parseSignature(atBound, { maxMembers: 100 }))).toBeUndefined();
    expect(syncCodeOf(() => parseSignature(lines(8193), { maxMembers: 100 }))).toBe('header_too_large');
  });

  it('a token field sent on two lines is refused, whatever its size', async () => {
    const request = await signed();
    const twice = { ...request, headers: { ...request.headers, 'identity-certification-token': [ict, ict] } };
    expect(await codeOf(() => authenticator().authenticate(twice))).toBe('request_malformed');
  });
});

describe('signature members and covered components', () => {
  const member = (label: string) => `${label}=("@method");created=1`;
  it('8 members parse, 9 are request_malformed', () => {
    const labels = (n: number) => Array.from({ length: n }, (_, i) => member(`s${i}`)).join(', ');
    expect(parseSignatureInput([labels(8)]).size).toBe(8);
    expect(syncCodeOf(() => parseSignatureInput([labels(9)]))).toBe('request_malformed');
    const sigs = (n: number) => Array.from({ length: n }, (_, i) => `s${i}=:AA==:`).join(', ');
    expect(parseSignature([sigs(8)]).size).toBe(8);
    expect(syncCodeOf(() => parseSignature([sigs(9)]))).toBe('request_malformed');
  });

  it('64 covered components parse, 65 are request_malformed', () => {
    const covering = (n: number) => `sig=(${Array.from({ length: n }, (_, i) => `"x-${i}"`).join(' ')});created=1`;
    expect(parseSignatureInput([covering(64)]).get('sig')!.components).toHaveLength(64);
    expect(syncCodeOf(() => parseSignatureInput([covering(65)]))).toBe('request_malformed');
  });
});

describe('token sizes', () => {
  it('ICT: a token of exactly maxTokenBytes is verified, one byte over is refused before it is decoded (default 8192)', async () => {
    const small = createIctVerifier({ issuers: [{ issuer: op.issuer, jwks: op.jwks }], now, maxTokenBytes: ict.length });
    await expect(small.verify(ict)).resolves.toMatchObject({ subject: 'alice' });
    const smaller = createIctVerifier({ issuers: [{ issuer: op.issuer, jwks: op.jwks }], now, maxTokenBytes: ict.length - 1 });
    expect(await codeOf(() => smaller.verify(ict))).toBe('ict_malformed');
  });

  it('DPoP proof: a proof of exactly maxProofBytes is verified, one byte over is dpop_invalid (default 8192)', async () => {
    const proof = await createDpopProof({ method: 'GET', url: `${BASE}/x`, key: alice.signer, jwk: alice.publicJwk, accessToken: ict, now });
    const options = (maxProofBytes?: number) => ({ method: 'GET', htu: `${BASE}/x`, accessToken: ict, expectedThumbprint: alice.thumbprint, now: T, replayStore: new MemoryReplayStore({ maxEntries: 16 }), maxProofBytes });
    await expect(verifyDpopProof(proof, options(proof.length))).resolves.toMatchObject({ thumbprint: alice.thumbprint });
    expect(await codeOf(() => verifyDpopProof(proof, options(proof.length - 1)))).toBe('dpop_invalid');
    expect(await codeOf(() => verifyDpopProof(exactly(8193, 'eyJ.', '.AA'), options()))).toBe('dpop_invalid');
  });

  /** A real token padded by a claim to the largest length <= `max` (base64url skips some lengths), and one just over 8192. */
  async function padded(mint: (pad: string) => Promise<string>, max: number): Promise<string> {
    const base = (await mint('')).length;
    for (let pad = Math.floor(((max - base) * 3) / 4) + 3; pad >= 0; pad--) {
      const token = await mint('p'.repeat(pad));
      if (token.length <= max) return token;
    }
    throw new Error('unreachable');
  }

  it('WIT and Txn-Token: a real token of at most 8192 bytes is verified, one just over is refused', async () => {
    const domain = await newTrustDomain('w.example');
    const wits = createWitVerifier({ trustDomains: [{ trustDomain: domain.trustDomain, jwks: domain.jwks }], now });
    const witAt = await padded((pad) => domain.mint(alice, { now: T, claims: { pad } }), 8192);
    const witPast = await padded((pad) => domain.mint(alice, { now: T, claims: { pad } }), 8196);
    expect(witAt.length).toBeGreaterThan(8188);
    expect(witPast.length).toBeGreaterThan(8192);
    await expect(wits.verify(witAt)).resolves.toMatchObject({ trustDomain: 'w.example' });
    expect(await codeOf(() => wits.verify(witPast))).toBe('wit_invalid');

    const tts = await newKey('ES256');
    const signing = await importJWK(tts.privateJwk, 'ES256');
    const txn = (pad: string) => new SignJWT({ pad }).setProtectedHeader({ alg: 'ES256', typ: 'txntoken+jwt', kid: 't' }).setAudience('example.com').setSubject('alice').setIssuedAt(T).setExpirationTime(T + 60).sign(signing);
    const txns = createTxnTokenVerifier({ trustDomain: 'example.com', jwks: { keys: [{ ...tts.publicJwk, kid: 't', alg: 'ES256' }] } }, { now, clockTolerance: 60 });
    const txnAt = await padded(txn, 8192);
    const txnPast = await padded(txn, 8196);
    expect(txnPast.length).toBeGreaterThan(8192);
    await expect(txns.verify(txnAt)).resolves.toMatchObject({ subject: 'alice' });
    expect(await codeOf(() => txns.verify(txnPast))).toBe('header_too_large');
  });

  it('Oidc2-Session and Oidc2-Key-Share: 4096 bytes', () => {
    const session = (n: number) => exactly(n, 'eyJ.a.b.c.');
    expect(parseRequestSession([session(4096)]).token).toHaveLength(4096);
    expect(syncCodeOf(() => parseRequestSession([session(4097)]))).toBe('session_invalid');
    const share = serializeRequestKeyShare([{ suite: 'x25519', key: new Uint8Array(32).fill(9) }]);
    const padded = (n: number) => [share, ' '.repeat(n - share.length - 2)];
    expect(syncCodeOf(() => parseRequestKeyShare(padded(4096)))).toBe('e2ee_key_share_invalid'); // an empty line: past the size check
    expect(syncCodeOf(() => parseRequestKeyShare([`${share}${' '.repeat(4096 - share.length)}`]))).toBeUndefined();
    expect(syncCodeOf(() => parseRequestKeyShare([`${share}${' '.repeat(4097 - share.length)}`]))).toBe('e2ee_key_share_invalid');
  });

  it('Oidc2-Key-Share: 3 shares parse, a 4th is refused', () => {
    const shares = [
      { suite: 'x25519' as const, key: new Uint8Array(32).fill(1) },
      { suite: 'p256' as const, key: new Uint8Array(65).fill(4) },
      { suite: 'xwing' as const, key: new Uint8Array(1216).fill(2) },
    ];
    expect(parseRequestKeyShare([serializeRequestKeyShare(shares)]).shares).toHaveLength(3);
    expect(syncCodeOf(() => parseRequestKeyShare([`${serializeRequestKeyShare(shares)}, other=:AA==:`]))).toBe('e2ee_key_share_invalid');
  });

  it('Content-Digest: 4096 bytes (maxBytes)', async () => {
    const body = utf8('x');
    const field = (n: number) => exactly(n, 'sha-256=:LWv6k4Qqt27Df8RHbalxsHCT5aMGF7GR0RJRVJ+AVNE=:, x="', '"');
    expect(await codeOf(() => verifyContentDigest([field(4096)], body))).toBe('digest_mismatch');
    expect(await codeOf(() => verifyContentDigest([field(4097)], body))).toBe('header_too_large');
  });
});

describe('JWK sizes', () => {
  const b64 = (n: number, first = 0xc1) => Buffer.concat([Buffer.from([first]), Buffer.alloc(n - 1, 7)]).toString('base64url');
  it('RSA: a 2048-bit modulus is accepted, 2040 bits are not; a public exponent of 8 octets is, of 9 is not', () => {
    expect(parsePublicJwk({ kty: 'RSA', n: b64(256), e: 'AQAB' })).toBeDefined();
    expect(parsePublicJwk({ kty: 'RSA', n: b64(255), e: 'AQAB' })).toBeUndefined();
    expect(parsePublicJwk({ kty: 'RSA', n: b64(256), e: b64(8, 1) })).toBeDefined();
    expect(parsePublicJwk({ kty: 'RSA', n: b64(256), e: b64(9, 1) })).toBeUndefined();
  });
  it('EC and OKP coordinates have exactly the curve length', () => {
    expect(parsePublicJwk({ kty: 'OKP', crv: 'Ed25519', x: b64(32) })).toBeDefined();
    expect(parsePublicJwk({ kty: 'OKP', crv: 'Ed25519', x: b64(33) })).toBeUndefined();
    expect(parsePublicJwk({ kty: 'EC', crv: 'P-256', x: b64(32), y: b64(32) })).toBeDefined();
    expect(parsePublicJwk({ kty: 'EC', crv: 'P-256', x: b64(32), y: b64(33) })).toBeUndefined();
  });
});

describe('RFC 8188 record size (1024 to 65536 received)', () => {
  const ikm = new Uint8Array(32).fill(3);
  it.each([
    [1024, undefined],
    [1023, 'e2ee_encoding_invalid'],
    [65536, undefined],
    [65537, 'e2ee_encoding_invalid'],
  ])('rs %i: %s', async (rs, code) => {
    const body = await aes128gcmEncode(ikm, utf8('hello'), { rs });
    expect(await codeOf(() => decryptBody(ikm, body))).toBe(code);
  });
});

describe('caches and stores', () => {
  it('the verified-token cache (cacheSize) holds exactly its bound: the oldest entry goes at one past it', () => {
    const cache = new LruCache<string, number>(3);
    for (const k of ['a', 'b', 'c']) cache.set(k, 1);
    expect([cache.size, cache.get('a')]).toEqual([3, 1]);
    cache.set('d', 1); // one past: b, the least recently used, goes
    expect([cache.size, cache.get('b'), cache.get('a')]).toEqual([3, undefined, 1]);
  });

  it('the replay store holds maxEntries live nonces and refuses one more with replay_store_unavailable', async () => {
    const store = new MemoryReplayStore({ maxEntries: 4 });
    const results: (string | undefined)[] = [];
    for (let i = 0; i < store.maxEntries; i++) results.push(await codeOf(() => store.checkAndRecord(`n${i}`, T + 300, T)));
    expect(results.every((r) => r === undefined)).toBe(true);
    expect(await codeOf(() => store.checkAndRecord('one-more', T + 300, T))).toBe('replay_store_unavailable');
    // Expired entries make room again.
    expect(await store.checkAndRecord('later', T + 900, T + 301)).toBe(true);
  });

  it('a static session-key set takes 64 keys, not 65', () => {
    const keys = (n: number) => Array.from({ length: n }, (_, i) => ({ kty: 'oct' as const, kid: `k${i}`, k: Buffer.alloc(32, i).toString('base64url') }));
    expect(syncCodeOf(() => new StaticSessionKeyStore({ keys: keys(64) }))).toBeUndefined();
    expect(syncCodeOf(() => new StaticSessionKeyStore({ keys: keys(65) }))).toBe('TypeError');
  });
});

describe.each(FRAMEWORKS)('request body (maxBodyBytes) on %s', (framework) => {
  it('a body of maxBodyBytes is read and verified; one byte more is 413 body_too_large', async () => {
    const service = await startFramework(framework, (url) => ({ issuers: [{ issuer: op.issuer, jwks: op.jwks }], audiences: [url], maxBodyBytes: 2048 }));
    try {
      const send = async (size: number) => {
        const s = await signRequest({ method: 'POST', url: `${service.url}/bytes`, headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(size).fill(65) }, { ict: await op.mint(alice), key: alice.signer, signResponse: false });
        const response = await fetch(s.url, { method: 'POST', headers: Object.entries(s.headers).flatMap(([n, ls]) => ls.map((l) => [n, l] as [string, string])), body: s.body as BodyInit });
        const text = await response.text();
        return { status: response.status, code: response.status >= 400 ? (JSON.parse(text) as { code: string }).code : undefined, length: text.length };
      };
      expect(await send(2048)).toEqual({ status: 200, code: undefined, length: 2048 });
      expect(await send(2049)).toMatchObject({ status: 413, code: 'body_too_large' });
      expect(await send(10)).toMatchObject({ status: 200 }); // still serving
    } finally {
      await service.close();
    }
  });
});
