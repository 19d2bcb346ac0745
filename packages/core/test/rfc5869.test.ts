// RFC 5869 Appendix A (HKDF-SHA256) on both paths of lib/crypto.ts: Extract, and Expand of the given PRK.
import { hkdfExpand, hkdfExtract } from '../src/lib/crypto';
import { codeOf } from '../../../test/support/error-code';
import { CRYPTO_PATHS, fixture, hex, onCryptoPath, toHex, asSubarray } from './support/e2ee';

const vectors = fixture('rfc5869.json').cases as { name: string; ikm: string; salt: string; info: string; L: number; prk: string; okm: string }[];

describe.each(CRYPTO_PATHS)('RFC 5869 HKDF-SHA256 on %s', (_path, web) => {
  onCryptoPath(web);

  it.each(vectors.map((v) => [v.name, v] as const))('%s: PRK and OKM', async (_name, v) => {
    const prk = await hkdfExtract(hex(v.salt), hex(v.ikm));
    expect(toHex(prk)).toBe(v.prk);
    expect(toHex(await hkdfExpand(hex(v.prk), hex(v.info), v.L))).toBe(v.okm);
    // Subarray views and Buffers are read at their offsets.
    expect(toHex(await hkdfExtract(asSubarray(hex(v.salt)), Buffer.from(v.ikm, 'hex')))).toBe(v.prk);
    expect(toHex(await hkdfExpand(asSubarray(hex(v.prk)), asSubarray(hex(v.info)), v.L))).toBe(v.okm);
  });

  it('Expand is the RFC construction: every prefix length agrees, up to 255 * HashLen', async () => {
    const v = vectors[1]!;
    const full = await hkdfExpand(hex(v.prk), hex(v.info), 255 * 32);
    for (const L of [1, 31, 32, 33, 64, 82, 255 * 32]) {
      expect(toHex(await hkdfExpand(hex(v.prk), hex(v.info), L))).toBe(toHex(full.subarray(0, L)));
    }
    expect(toHex(full.subarray(0, 82))).toBe(v.okm);
  });

  it('refuses lengths and PRKs outside RFC 5869 bounds', async () => {
    const prk = new Uint8Array(32);
    expect(await codeOf(() => hkdfExpand(prk, new Uint8Array(), 0))).toBe('TypeError');
    expect(await codeOf(() => hkdfExpand(prk, new Uint8Array(), 255 * 32 + 1))).toBe('TypeError');
    expect(await codeOf(() => hkdfExpand(prk, new Uint8Array(), 1.5))).toBe('TypeError');
    expect(await codeOf(() => hkdfExpand(new Uint8Array(31), new Uint8Array(), 32))).toBe('TypeError');
    expect(await codeOf(() => hkdfExtract('salt' as unknown as Uint8Array, prk))).toBe('TypeError');
  });
});
