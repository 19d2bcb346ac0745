// RFC 8291 (Message Encryption for Web Push) section 5 and Appendix A, end to end: P-256 ECDH, HKDF
// with both public keys in info, and the 144-octet RFC 8188 body (21 + 65 keyid + 41 + 1 + 16). The ECDH runs on WebCrypto and on
// node:crypto here; HKDF and the records run on both paths of lib/crypto.ts.
import { createECDH } from 'node:crypto';
import { aes128gcmDecode, aes128gcmDecodeStream, aes128gcmEncode } from '../src/e2ee/aes128gcm';
import { hkdfExpand, hkdfExtract } from '../src/lib/crypto';
import { CRYPTO_PATHS, b64u, chunked, collect, fixture, onCryptoPath, toB64u, utf8 } from './support/e2ee';

const v = fixture('rfc8291.json');

/** ECDH(P-256) with WebCrypto, from a raw private scalar and the peer's uncompressed point. */
async function webEcdh(privateScalar: Uint8Array, ownPublic: Uint8Array, peerPublic: Uint8Array): Promise<Uint8Array> {
  const subtle = globalThis.crypto.subtle;
  const jwk = { kty: 'EC', crv: 'P-256', d: toB64u(privateScalar), x: toB64u(ownPublic.subarray(1, 33)), y: toB64u(ownPublic.subarray(33, 65)) };
  const sk = await subtle.importKey('jwk', jwk, { name: 'ECDH', namedCurve: 'P-256' }, false, ['deriveBits']);
  const pk = await subtle.importKey('raw', peerPublic as BufferSource, { name: 'ECDH', namedCurve: 'P-256' }, false, []);
  return new Uint8Array(await subtle.deriveBits({ name: 'ECDH', public: pk }, sk, 256));
}

describe('RFC 8291 ECDH (P-256)', () => {
  it('both sides reach the published ecdh_secret, on WebCrypto and on node:crypto', async () => {
    expect(toB64u(await webEcdh(b64u(v.asPrivate), b64u(v.asPublic), b64u(v.uaPublic)))).toBe(v.ecdhSecret);
    expect(toB64u(await webEcdh(b64u(v.uaPrivate), b64u(v.uaPublic), b64u(v.asPublic)))).toBe(v.ecdhSecret);
    const ecdh = createECDH('prime256v1');
    ecdh.setPrivateKey(Buffer.from(b64u(v.uaPrivate)));
    expect(toB64u(ecdh.getPublicKey())).toBe(v.uaPublic);
    expect(toB64u(ecdh.computeSecret(Buffer.from(b64u(v.asPublic))))).toBe(v.ecdhSecret);
  });
});

describe.each(CRYPTO_PATHS)('RFC 8291 key derivation and body on %s', (_path, web) => {
  onCryptoPath(web);

  it('PRK_key, key_info, IKM, PRK, CEK and NONCE match Appendix A', async () => {
    const prkKey = await hkdfExtract(b64u(v.authSecret), b64u(v.ecdhSecret));
    expect(toB64u(prkKey)).toBe(v.prkKey);
    const keyInfo = new Uint8Array(Buffer.concat([utf8('WebPush: info\0'), b64u(v.uaPublic), b64u(v.asPublic)]));
    expect(toB64u(keyInfo)).toBe(v.keyInfo);
    const ikm = await hkdfExpand(prkKey, keyInfo, 32);
    expect(toB64u(ikm)).toBe(v.ikm);
    const prk = await hkdfExtract(b64u(v.salt), ikm);
    expect(toB64u(prk)).toBe(v.prk);
    expect(toB64u(await hkdfExpand(prk, utf8('Content-Encoding: aes128gcm\0'), 16))).toBe(v.cek);
    expect(toB64u(await hkdfExpand(prk, utf8('Content-Encoding: nonce\0'), 12))).toBe(v.nonce);
  });

  it('encodes the 144-octet body byte for byte (keyid = the sender public key) and decodes it, whole and streamed', async () => {
    const body = b64u(v.body);
    expect(body.length).toBe(144);
    const again = await aes128gcmEncode(b64u(v.ikm), utf8(v.plaintext), { salt: b64u(v.salt), rs: v.rs, keyid: b64u(v.asPublic) });
    expect(toB64u(again)).toBe(v.body);
    const { plaintext, header } = await aes128gcmDecode(b64u(v.ikm), body);
    expect(new TextDecoder().decode(plaintext)).toBe(v.plaintext);
    expect(toB64u(header.keyid)).toBe(v.asPublic);
    expect(header.rs).toBe(4096);
    expect(new TextDecoder().decode(await collect(aes128gcmDecodeStream(b64u(v.ikm), chunked(body, 10))))).toBe(v.plaintext);
  });

  it('the receiver side, from its own private key and the keyid, recovers the plaintext', async () => {
    const body = b64u(v.body);
    const asPublic = body.subarray(21, 21 + body[20]!);
    const ecdh = await webEcdh(b64u(v.uaPrivate), b64u(v.uaPublic), asPublic);
    const ikm = await hkdfExpand(await hkdfExtract(b64u(v.authSecret), ecdh), new Uint8Array(Buffer.concat([utf8('WebPush: info\0'), b64u(v.uaPublic), asPublic])), 32);
    expect(new TextDecoder().decode((await aes128gcmDecode(ikm, body)).plaintext)).toBe(v.plaintext);
  });
});
