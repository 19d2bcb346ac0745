import { generateKeyPair, exportJWK } from 'jose';
import { importKey, sign, signSync, verify, verifySync, useWebCrypto, digest, timingSafeEqual, randomBytes } from '../src/lib/crypto';
import { encodeBase64, decodeBase64, encodeBase64Url, decodeBase64Url, encodeBase64Portable, encodeBase64UrlPortable, utf8 } from '../src/lib/base64';

describe.each([['node:crypto', false], ['WebCrypto', true]])('crypto backend %s', (_name, web) => {
  beforeAll(() => useWebCrypto(web));
  afterAll(() => useWebCrypto(false));

  it.each(['ES256', 'ES384', 'ES512', 'Ed25519', 'PS256', 'RS256'])('%s signs and verifies, and rejects a changed message', async (alg) => {
    const { publicKey, privateKey } = await generateKeyPair(alg === 'Ed25519' ? 'EdDSA' : alg, { extractable: true, crv: alg === 'Ed25519' ? 'Ed25519' : undefined });
    const sk = await importKey(await exportJWK(privateKey), alg, 'sign');
    const pk = await importKey(await exportJWK(publicKey), alg, 'verify');
    const data = new TextEncoder().encode('hello');
    const sig = await sign(sk, data);
    expect(await verify(pk, data, sig)).toBe(true);
    expect(await verify(pk, new TextEncoder().encode('hellO'), sig)).toBe(false);
    // Shortened from its end, and one bit changed. (Not from its front: an RSA signature whose first
    // octet happens to be zero, one in 256, is the same integer without it, and OpenSSL accepts it.)
    expect(await verify(pk, data, sig.subarray(0, sig.length - 1))).toBe(false);
    expect(await verify(pk, data, Uint8Array.from(sig, (b, i) => (i === sig.length >> 1 ? b ^ 0x10 : b)))).toBe(false);
  });

  it('hashes with SHA-256', async () => {
    expect(encodeBase64(await digest('SHA-256', new Uint8Array()))).toBe('47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=');
  });
});

describe('synchronous sign and verify against the asynchronous reference', () => {
  afterEach(() => useWebCrypto(false));

  it('HMAC-SHA256: the same tags as WebCrypto, text signed as its UTF-8 octets, a changed tag refused', async () => {
    const key = await importKey(Uint8Array.from({ length: 32 }, (_, i) => i * 7), 'hmac-sha256', 'sign');
    for (const text of ['', 'a', '"@method": POST\n"@signature-params": ()', 'é ü 漢字 \u{1F600}', 'x'.repeat(6000)]) {
      const bytes = new TextEncoder().encode(text);
      const tag = signSync(key, text)!;
      expect(signSync(key, bytes)).toEqual(tag);
      useWebCrypto(true);
      expect(signSync(key, text)).toBeUndefined();
      expect(await sign(key, bytes)).toEqual(tag);
      useWebCrypto(false);
      expect(verifySync(key, text, tag)).toBe(true);
      expect(await verify(key, bytes, tag)).toBe(true);
      const changed = Uint8Array.from(tag, (b, i) => (i === 5 ? b ^ 1 : b));
      expect(verifySync(key, text, changed)).toBe(false);
      expect(verifySync(key, text, tag.subarray(0, 31))).toBe(false);
    }
  });

  it.each(['ES256', 'Ed25519'])('%s: a synchronous signature verifies on WebCrypto, and a WebCrypto one synchronously', async (alg) => {
    const { publicKey, privateKey } = await generateKeyPair(alg === 'Ed25519' ? 'EdDSA' : alg, { extractable: true, crv: alg === 'Ed25519' ? 'Ed25519' : undefined });
    const sk = await importKey(await exportJWK(privateKey), alg, 'sign');
    const pk = await importKey(await exportJWK(publicKey), alg, 'verify');
    const text = `"@method": GET\n"identity-certification-token": ${'e'.repeat(700)}`;
    const signature = signSync(sk, text)!;
    useWebCrypto(true);
    const webSk = await importKey(await exportJWK(privateKey), alg, 'sign');
    const webPk = await importKey(await exportJWK(publicKey), alg, 'verify');
    expect(await verify(webPk, new TextEncoder().encode(text), signature)).toBe(true);
    const webSignature = await sign(webSk, new TextEncoder().encode(text));
    useWebCrypto(false);
    expect(verifySync(pk, text, webSignature)).toBe(true);
    expect(verifySync(pk, `${text}x`, webSignature)).toBe(false);
  });
});

describe('base64', () => {
  it('round-trips every length and rejects non-canonical input', () => {
    for (let n = 0; n < 40; n++) {
      const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 255);
      expect(decodeBase64(encodeBase64(bytes))).toEqual(bytes);
      expect(decodeBase64Url(encodeBase64Url(bytes))).toEqual(bytes);
      expect(encodeBase64(bytes)).toBe(Buffer.from(bytes).toString('base64'));
    }
    expect(decodeBase64('QQ=')).toBeUndefined();
    expect(decodeBase64('QR==')).toBeUndefined();
    expect(decodeBase64('a-b_')).toBeUndefined();
    expect(decodeBase64Url('a+b/')).toBeUndefined();
    expect(decodeBase64('!!!!')).toBeUndefined();
  });

  it('encodes on Buffer exactly as the portable encoder does, for views at any offset', () => {
    const backing = Uint8Array.from({ length: 300 }, (_, i) => (i * 97 + 13) & 255);
    for (let offset = 0; offset < 5; offset++) {
      for (let n = 0; n < 100; n++) {
        const bytes = backing.subarray(offset, offset + n);
        expect([n, encodeBase64(bytes)]).toEqual([n, encodeBase64Portable(bytes)]);
        expect([n, encodeBase64Url(bytes)]).toEqual([n, encodeBase64UrlPortable(bytes)]);
      }
    }
  });

  it('decodes exactly the canonical encodings Buffer writes, on generated and mutated input', () => {
    let seed = 11;
    const r = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const chars = 'AQgw+/-_=!é\u0100 ';
    const reference = (s: string, url: boolean): Uint8Array | undefined => {
      const shaped = url ? /^[A-Za-z0-9_-]*$/.test(s) && s.length % 4 !== 1 : /^[A-Za-z0-9+/]*={0,2}$/.test(s) && s.length % 4 === 0;
      if (!shaped) return undefined;
      const bytes = Buffer.from(s, url ? 'base64url' : 'base64');
      return bytes.toString(url ? 'base64url' : 'base64') === s ? new Uint8Array(bytes) : undefined;
    };
    let decoded = 0;
    for (let i = 0; i < 20000; i++) {
      const bytes = Uint8Array.from({ length: Math.floor(r() * 20) }, () => Math.floor(r() * 256));
      const url = r() < 0.5;
      let s = url ? Buffer.from(bytes).toString('base64url') : Buffer.from(bytes).toString('base64');
      if (r() < 0.5 && s.length > 0) {
        const at = Math.floor(r() * s.length);
        const edit = r();
        const c = chars[Math.floor(r() * chars.length)]!;
        s = edit < 0.4 ? s.slice(0, at) + c + s.slice(at + 1) : edit < 0.7 ? s.slice(0, at) + s.slice(at + 1) : s.slice(0, at) + c + s.slice(at);
      }
      const got = url ? decodeBase64Url(s) : decodeBase64(s);
      expect([s, got]).toEqual([s, reference(s, url)]);
      if (got) decoded++;
    }
    expect(decoded).toBeGreaterThan(10000);
  });

  it('compares in constant time by length and content', () => {
    expect(timingSafeEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2))).toBe(true);
    expect(timingSafeEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 3))).toBe(false);
    expect(timingSafeEqual(Uint8Array.of(1), Uint8Array.of(1, 3))).toBe(false);
  });
});

describe.each([['node:crypto', false], ['WebCrypto', true]])('randomBytes on %s', (_name, web) => {
  beforeAll(() => useWebCrypto(web));
  afterAll(() => useWebCrypto(false));

  it('hands out fresh octets in arrays of their own, across pool refills', () => {
    const seen = new Set<string>();
    // 16-octet draws through more than two 4 KiB refills of the Node pool.
    for (let i = 0; i < 600; i++) {
      const r = randomBytes(16);
      expect(r.buffer.byteLength).toBe(16);
      seen.add(Buffer.from(r).toString('hex'));
    }
    expect(seen.size).toBe(600);
  });

  it.each([0, 1, 12, 64, 65, 5000])('returns exactly %i octets', (n) => {
    const r = randomBytes(n);
    expect(r).toBeInstanceOf(Uint8Array);
    expect(r.length).toBe(n);
    expect(r.buffer.byteLength).toBe(n);
    // A long draw is not all zero (the chance of that is 2^-8n).
    if (n >= 12) expect(r.some((b) => b !== 0)).toBe(true);
  });
});

describe('utf8', () => {
  const encoder = new TextEncoder();
  it.each(['', 'ascii only', '"@method": POST\n', 'caf\u00e9', '\u{1F510} key', 'lone \ud800 surrogate', 'x'.repeat(10000), '\u00e9'.repeat(3000)])('agrees with TextEncoder for %j', (s) => {
    const out = utf8(s);
    expect(Buffer.from(out).equals(Buffer.from(encoder.encode(s)))).toBe(true);
    expect(out.buffer.byteLength).toBe(out.length);
  });
});
