// RFC 8188 section 3 examples through the aes128gcm codec, on both paths of lib/crypto.ts.
import { aes128gcmDecode, aes128gcmDecodeStream, aes128gcmEncode, aes128gcmEncodeStream, decryptBody } from '../src/e2ee/aes128gcm';
import { hkdfExpand, hkdfExtract } from '../src/lib/crypto';
import { codeOf } from '../../../test/support/error-code';
import { CRYPTO_PATHS, asSubarray, b64u, chunked, collect, fixture, onCryptoPath, toB64u, utf8 } from './support/e2ee';

const vectors = fixture('rfc8188.json');
const single = vectors.encryptionOfASingleRecord;
const multi = vectors.encryptionWithMultipleRecords;

describe.each(CRYPTO_PATHS)('RFC 8188 on %s', (_path, web) => {
  onCryptoPath(web);

  it('3.1: PRK, CEK and NONCE of the single-record example', async () => {
    const prk = await hkdfExtract(b64u(single.salt), b64u(single.ikm));
    expect(toB64u(prk)).toBe(single.prk);
    expect(toB64u(await hkdfExpand(prk, utf8('Content-Encoding: aes128gcm\0'), 16))).toBe(single.cek);
    expect(toB64u(await hkdfExpand(prk, utf8('Content-Encoding: nonce\0'), 12))).toBe(single.nonce);
  });

  it('3.1: decodes the 53-octet body (21 header, 16 record, 16 tag), and re-encodes it byte for byte with the salt injected', async () => {
    const body = b64u(single.body);
    expect(body.length).toBe(53);
    const { plaintext, header } = await aes128gcmDecode(b64u(single.ikm), body);
    expect(new TextDecoder().decode(plaintext)).toBe(single.plaintext);
    expect(header.rs).toBe(single.rs);
    expect(header.keyid.length).toBe(0);
    expect(toB64u(header.salt)).toBe(single.salt);
    const again = await aes128gcmEncode(b64u(single.ikm), utf8(single.plaintext), { salt: b64u(single.salt), rs: single.rs });
    expect(toB64u(again)).toBe(single.body);
    const streamed = await collect(aes128gcmEncodeStream(b64u(single.ikm), chunked(utf8(single.plaintext), 4), { salt: b64u(single.salt), rs: single.rs }));
    expect(toB64u(streamed)).toBe(single.body);
  });

  it('3.1: decodes from Buffers, subarrays and a stream of one-octet chunks', async () => {
    const ikm = b64u(single.ikm);
    for (const body of [Buffer.from(single.body, 'base64url'), asSubarray(b64u(single.body))]) {
      expect(new TextDecoder().decode((await aes128gcmDecode(Buffer.from(ikm), body)).plaintext)).toBe(single.plaintext);
    }
    const out = await collect(aes128gcmDecodeStream(asSubarray(ikm), chunked(b64u(single.body), 1)));
    expect(new TextDecoder().decode(out)).toBe(single.plaintext);
  });

  it('3.2: decodes the 73-octet body with rs 25, keyid "a1" and one padding octet (codec level)', async () => {
    const body = b64u(multi.body);
    expect(body.length).toBe(73);
    const { plaintext, header } = await aes128gcmDecode(b64u(multi.ikm), body);
    expect(new TextDecoder().decode(plaintext)).toBe(multi.plaintext);
    expect(header.rs).toBe(25);
    expect(new TextDecoder().decode(header.keyid)).toBe(multi.keyid);
    expect(toB64u(header.salt)).toBe(multi.salt);
    for (const size of [1, 7, 23, 24, 25, 48, 73]) {
      const out = await collect(aes128gcmDecodeStream(b64u(multi.ikm), chunked(body, size)));
      expect(new TextDecoder().decode(out)).toBe(multi.plaintext);
    }
  });

  it('3.2: the same inputs re-encode to a body that decodes, with the same header', async () => {
    const again = await aes128gcmEncode(b64u(multi.ikm), utf8(multi.plaintext), { salt: b64u(multi.salt), rs: 25, keyid: utf8('a1') });
    // The RFC pads the first record; this encoder pads the final one: same header, same length.
    expect(toB64u(again.subarray(0, 23))).toBe(toB64u(b64u(multi.body).subarray(0, 23)));
    expect(new TextDecoder().decode((await aes128gcmDecode(b64u(multi.ikm), again)).plaintext)).toBe(multi.plaintext);
  });

  it('3.2 at profile level: the keyid and rs 25 are refused as encoding errors', async () => {
    const ikm32 = new Uint8Array(32);
    expect(await codeOf(() => decryptBody(ikm32, b64u(multi.body)))).toBe('e2ee_encoding_invalid');
    expect(await codeOf(() => aes128gcmDecode(b64u(multi.ikm), b64u(multi.body), { allowKeyid: false }))).toBe('e2ee_encoding_invalid');
  });

  it('a wrong key fails with the one decryption code', async () => {
    const ikm = b64u(single.ikm);
    ikm[0] ^= 1;
    expect(await codeOf(() => aes128gcmDecode(ikm, b64u(single.body)))).toBe('e2ee_decrypt_failed');
    expect(await codeOf(() => collect(aes128gcmDecodeStream(ikm, chunked(b64u(multi.body), 5))))).toBe('e2ee_decrypt_failed');
  });
});
