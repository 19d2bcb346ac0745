import { generateKeyPair, exportJWK } from 'jose';
import { importKey, sign, verify, useWebCrypto, digest, timingSafeEqual } from '../src/lib/crypto';
import { encodeBase64, decodeBase64, encodeBase64Url, decodeBase64Url } from '../src/lib/base64';

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
    expect(await verify(pk, data, sig.subarray(1))).toBe(false);
  });

  it('hashes with SHA-256', async () => {
    expect(encodeBase64(await digest('SHA-256', new Uint8Array()))).toBe('47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=');
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

  it('compares in constant time by length and content', () => {
    expect(timingSafeEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2))).toBe(true);
    expect(timingSafeEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 3))).toBe(false);
    expect(timingSafeEqual(Uint8Array.of(1), Uint8Array.of(1, 3))).toBe(false);
  });
});
