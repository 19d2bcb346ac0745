// RFC 8188 against an independent implementation: `http_ece` 1.2.1 (the web-push-libs encoder, on
// node:crypto). With the same IKM, salt and rs and no padding, both write the same records (a body
// that fills its records exactly ends with a full-size final record in both), so the bodies must be
// byte-identical, and each must decode the other's, on both crypto paths of lib/crypto.ts. http_ece
// takes only a 16-octet explicit key, so the cross-check runs at codec level with a 16-octet IKM; the
// profile's 32-octet message keys go through the same code.
import { aes128gcmDecode, aes128gcmEncode } from '../src/e2ee/aes128gcm';
import { useWebCrypto } from '../src/lib/crypto';
const ece: { encrypt(b: Buffer, p: object): Buffer; decrypt(b: Buffer, p: object): Buffer } = require('http_ece');

const bytes = (n: number, seed = 1): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 255);
const IKM = bytes(16, 7);
const SALT = bytes(16, 3);

describe.each([
  ['node:crypto', false],
  ['WebCrypto', true],
])('RFC 8188 cross-check with http_ece on %s', (_path, web) => {
  beforeAll(() => useWebCrypto(web));
  afterAll(() => useWebCrypto(false));

  // rs 18 is the smallest RFC 8188 allows (one data octet per record); the rest cover the profile's
  // bounds and sender size, and lengths either side of a record boundary.
  const cases: [number, number][] = [];
  for (const rs of [18, 25, 1024, 16384]) {
    const per = rs - 17;
    for (const n of new Set([0, 1, per - 1, per, per + 1, 2 * per, 2 * per + 1, 3 * per + 5])) cases.push([rs, n]);
  }

  it.each(cases)('rs %i, %i octets: byte-identical bodies, each decodes the other', async (rs, n) => {
    const plaintext = bytes(n);
    const ours = await aes128gcmEncode(IKM, plaintext, { salt: SALT, rs });
    const theirs = ece.encrypt(Buffer.from(plaintext), { version: 'aes128gcm', key: Buffer.from(IKM), salt: Buffer.from(SALT), rs });
    expect(Buffer.from(ours).equals(theirs)).toBe(true);
    expect(ece.decrypt(Buffer.from(ours), { version: 'aes128gcm', key: Buffer.from(IKM) }).equals(Buffer.from(plaintext))).toBe(true);
    expect((await aes128gcmDecode(IKM, new Uint8Array(theirs))).plaintext).toEqual(plaintext);
  });

  it('with a keyid (codec level)', async () => {
    const plaintext = bytes(100);
    const keyid = new TextEncoder().encode('a1');
    const ours = await aes128gcmEncode(IKM, plaintext, { salt: SALT, rs: 25, keyid });
    const theirs = ece.encrypt(Buffer.from(plaintext), { version: 'aes128gcm', key: Buffer.from(IKM), salt: Buffer.from(SALT), rs: 25, keyid: Buffer.from(keyid) });
    expect(Buffer.from(ours).equals(theirs)).toBe(true);
  });
});
