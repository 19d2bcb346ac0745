// RFC 7748 X25519 (sections 5.2 and 6.1) on the two platforms the HPKE engines stand on: node:crypto
// and WebCrypto. The facade has no raw Diffie-Hellman; it is checked on the public keys it derives.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as nodeCrypto from 'node:crypto';
import { testing } from '../src/e2ee/hpke';

const V = JSON.parse(readFileSync(join(__dirname, 'fixtures', 'e2ee', 'rfc7748.json'), 'utf8'));
const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array | ArrayBuffer): string => Buffer.from(b instanceof Uint8Array ? b : new Uint8Array(b)).toString('hex');
/** RFC 8410 PKCS#8 wrapping of a raw X25519 private key (the scalar as printed in RFC 7748). */
const PKCS8_X25519 = hex('302e020100300506032b656e04220420');
/** RFC 8410 SPKI wrapping of a raw X25519 public key. */
const SPKI_X25519 = hex('302a300506032b656e032100');

const nodePath = (scalar: string, u: string): string => {
  const privateKey = nodeCrypto.createPrivateKey({ key: Buffer.concat([PKCS8_X25519, hex(scalar)]), format: 'der', type: 'pkcs8' });
  const publicKey = nodeCrypto.createPublicKey({ key: Buffer.concat([SPKI_X25519, hex(u)]), format: 'der', type: 'spki' });
  return toHex(nodeCrypto.diffieHellman({ privateKey, publicKey }));
};
const webPath = async (scalar: string, u: string): Promise<string> => {
  const subtle = globalThis.crypto.subtle;
  const privateKey = await subtle.importKey('pkcs8', new Uint8Array(Buffer.concat([PKCS8_X25519, hex(scalar)])), { name: 'X25519' }, false, ['deriveBits']);
  const publicKey = await subtle.importKey('raw', hex(u) as BufferSource, { name: 'X25519' }, false, []);
  return toHex(await subtle.deriveBits({ name: 'X25519', public: publicKey }, privateKey, 256));
};

describe.each([
  ['node:crypto', async (k: string, u: string) => nodePath(k, u)],
  ['WebCrypto', webPath],
])('RFC 7748 on %s', (_path, x25519) => {
  const vectors: [number, { scalar: string; u: string; out: string }][] = V.scalarMult.map((t: { scalar: string; u: string; out: string }, i: number) => [i + 1, t]);
  it.each(vectors)('5.2 vector %i', async (_i, t) => {
    expect(await x25519(t.scalar, t.u)).toBe(t.out);
  });

  it('6.1: public keys X25519(k, 9) and the shared secret in both directions', async () => {
    const nine = '09' + '00'.repeat(31);
    expect(await x25519(V.dh.alicePrivate, nine)).toBe(V.dh.alicePublic);
    expect(await x25519(V.dh.bobPrivate, nine)).toBe(V.dh.bobPublic);
    expect(await x25519(V.dh.alicePrivate, V.dh.bobPublic)).toBe(V.dh.shared);
    expect(await x25519(V.dh.bobPrivate, V.dh.alicePublic)).toBe(V.dh.shared);
  });
});

describe('RFC 7748 6.1 through the HPKE facade', () => {
  it('derives the public keys of the example private keys', async () => {
    const suite = testing.suite('x25519');
    const alice = await testing.keyPairFromPrivateKey('x25519', hex(V.dh.alicePrivate));
    const bob = await testing.keyPairFromPrivateKey('x25519', hex(V.dh.bobPrivate));
    expect(toHex(await suite.serializePublicKey(alice.publicKey))).toBe(V.dh.alicePublic);
    expect(toHex(await suite.serializePublicKey(bob.publicKey))).toBe(V.dh.bobPublic);
  });
});
