// draft-ietf-hpke-pq test vectors for MLKEM768-X25519 (kem_id 0x647a, the `xwing` suite), copied
// from hpkewg/hpke-pq's test-vectors.json into fixtures/e2ee/hpke-pq-xwing.json (commit noted there).
//
// - Through the facade, on both paths of lib/crypto: DeriveKeyPair(ikmR) to pkRm and skRm, the
//   production Encap with the vector's 64 octets of randomness to enc, SetupBaseR to the exports,
//   and the key schedule recomputed from shared_secret with lib/crypto's HKDF (node:crypto or
//   WebCrypto) to exporter_secret, key, base_nonce and the exports. HPKE itself (hpke + the engine)
//   is the same on both paths; the path switch covers the profile's own HKDF over the vector.
// - At KEM level through two implementations: the engine (`@panva/hpke-noble` 1.0.3 on its
//   `@noble/post-quantum` 0.5.x), and `@noble/post-quantum` 0.7.1 directly (keygen from the seed,
//   EncapsDerand, Decaps); the AEAD vectors (Open of every ciphertext) through `hpke`'s CipherSuite.
// - The FIPS 203 encapsulation key check the facade adds agrees with noble 0.7.1's own.
import * as HPKE from 'hpke';
import { AEAD_ChaCha20Poly1305, KDF_SHAKE256, KEM_MLKEM768_X25519 } from '@panva/hpke-noble';
import { ml_kem768_x25519 } from '@noble/post-quantum/hybrid.js';
import { E2EE_SUITES, hpkeSuite, testing } from '../src/e2ee/hpke';
import { hkdfExpand, hkdfExtract } from '../src/lib/crypto';
import { bundleForBrowser } from '../../../test/support/bundle';
import { CRYPTO_PATHS, fixture, hex, onCryptoPath, toHex, utf8 } from './support/e2ee';

interface Vector {
  mode: number;
  kem_id: number;
  kdf_id: number;
  aead_id: number;
  info: string;
  ikmE: string;
  ikmR: string;
  skRm: string;
  pkRm: string;
  enc: string;
  shared_secret: string;
  suite_id: string;
  key: string;
  base_nonce: string;
  exporter_secret: string;
  encryptions: { aad: string; ct: string; nonce: string; pt: string }[];
  exports: { exporter_context: string; L: number; exported_value: string }[];
}

const FIXTURE = fixture<{ commit: string; vectors: Vector[] }>('hpke-pq-xwing.json');
const ALL = FIXTURE.vectors;
/** The entries whose key schedule is the profile's: HKDF-SHA256. */
const HKDF = ALL.filter((v) => v.kdf_id === 1);
const named = (vs: Vector[]) => vs.map((v) => [`kdf ${v.kdf_id}, aead ${v.aead_id}, mode ${v.mode}`, v] as const);

/** RFC 9180 LabeledExtract / LabeledExpand over lib/crypto's HKDF-SHA256. */
const HPKE_V1 = utf8('HPKE-v1');
const cat = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));
const i2osp2 = (n: number) => Uint8Array.of(n >> 8, n & 0xff);
const labeledExtract = (suiteId: Uint8Array, salt: Uint8Array, label: string, ikm: Uint8Array) => hkdfExtract(salt, cat(HPKE_V1, suiteId, utf8(label), ikm));
const labeledExpand = (suiteId: Uint8Array, prk: Uint8Array, label: string, info: Uint8Array, length: number) => hkdfExpand(prk, cat(i2osp2(length), HPKE_V1, suiteId, utf8(label), info), length);

describe('the fixture', () => {
  it('holds the 0x647a entries of hpke-pq at a named commit, one of them with HKDF-SHA256', () => {
    expect(FIXTURE.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(ALL.length).toBeGreaterThanOrEqual(1);
    for (const v of ALL) {
      expect(v.kem_id).toBe(E2EE_SUITES.xwing.kemId);
      expect(hex(v.pkRm)).toHaveLength(E2EE_SUITES.xwing.publicKeyLength);
      expect(hex(v.enc)).toHaveLength(E2EE_SUITES.xwing.encLength);
      expect(hex(v.ikmE)).toHaveLength(64);
    }
    expect(HKDF).toHaveLength(1);
  });
});

describe.each(CRYPTO_PATHS)('draft-ietf-hpke-pq 0x647a through the facade (%s)', (_path, web) => {
  onCryptoPath(web);

  it.each(named(HKDF))('%s: DeriveKeyPair, enc, exports, key schedule', async (_id, v) => {
    const suite = testing.suite('xwing', { ikmE: hex(v.ikmE), aead: 'chacha20-poly1305' });
    expect(suite.info.kemId).toBe(v.kem_id);

    const kpR = await suite.deriveKeyPair(hex(v.ikmR));
    expect(toHex(await suite.serializePublicKey(kpR.publicKey))).toBe(v.pkRm);
    expect(toHex(await testing.serializePrivateKey('xwing', kpR))).toBe(v.skRm);

    // The production Encap, fed the vector's randomness, gives the vector's enc.
    const info = hex(v.info);
    const pkR = await suite.deserializePublicKey(hex(v.pkRm));
    const sender = await suite.setupBaseS(pkR, info);
    expect(toHex(sender.enc)).toBe(v.enc);
    const recipient = await suite.setupBaseR(hex(v.enc), kpR, info);
    for (const x of v.exports) {
      expect(toHex(await sender.exporter.export(hex(x.exporter_context), x.L))).toBe(x.exported_value);
      expect(toHex(await recipient.export(hex(x.exporter_context), x.L))).toBe(x.exported_value);
    }

    // RFC 9180 5.1 from the vector's shared_secret, on this lib/crypto path.
    const suiteId = hex(v.suite_id);
    expect(toHex(suiteId)).toBe(toHex(cat(utf8('HPKE'), i2osp2(v.kem_id), i2osp2(v.kdf_id), i2osp2(v.aead_id))));
    const empty = new Uint8Array(0);
    const ksc = cat(Uint8Array.of(v.mode), await labeledExtract(suiteId, empty, 'psk_id_hash', empty), await labeledExtract(suiteId, empty, 'info_hash', info));
    const secret = await labeledExtract(suiteId, hex(v.shared_secret), 'secret', empty);
    const exporterSecret = await labeledExpand(suiteId, secret, 'exp', ksc, 32);
    expect(toHex(exporterSecret)).toBe(v.exporter_secret);
    expect(toHex(await labeledExpand(suiteId, secret, 'key', ksc, 32))).toBe(v.key);
    expect(toHex(await labeledExpand(suiteId, secret, 'base_nonce', ksc, 12))).toBe(v.base_nonce);
    for (const x of v.exports) expect(toHex(await labeledExpand(suiteId, exporterSecret, 'sec', hex(x.exporter_context), x.L))).toBe(x.exported_value);
  });

  it('the production suite (random encapsulation) agrees with itself and not with the vector', async () => {
    const v = HKDF[0]!;
    const suite = hpkeSuite('xwing');
    const kpR = await testing.suite('xwing').deriveKeyPair(hex(v.ikmR));
    const { enc, exporter } = await suite.setupBaseS(await suite.deserializePublicKey(hex(v.pkRm)), hex(v.info));
    expect(toHex(enc)).not.toBe(v.enc);
    const context = hex(v.exports[0]!.exporter_context);
    const received = await suite.setupBaseR(enc, kpR, hex(v.info));
    expect(toHex(await received.export(context, 32))).toBe(toHex(await exporter.export(context, 32)));
  });
});

describe('draft-ietf-hpke-pq 0x647a at KEM level', () => {
  it.each(named(ALL))('%s: the engine derives pkRm and skRm and decapsulates enc to shared_secret', async (_id, v) => {
    const kem = KEM_MLKEM768_X25519();
    const kpR = await kem.DeriveKeyPair(hex(v.ikmR), true);
    expect(toHex(await kem.SerializePublicKey(kpR.publicKey))).toBe(v.pkRm);
    expect(toHex(await kem.SerializePrivateKey(kpR.privateKey))).toBe(v.skRm);
    expect(toHex(await kem.Decap(hex(v.enc), kpR.privateKey, kpR.publicKey))).toBe(v.shared_secret);
  });

  it.each(named(ALL))('%s: @noble/post-quantum 0.7.1 keygen, EncapsDerand and Decaps', (_id, v) => {
    const { publicKey } = ml_kem768_x25519.keygen(hex(v.skRm));
    expect(toHex(publicKey)).toBe(v.pkRm);
    const { cipherText, sharedSecret } = ml_kem768_x25519.encapsulate(hex(v.pkRm), hex(v.ikmE));
    expect(toHex(cipherText)).toBe(v.enc);
    expect(toHex(sharedSecret)).toBe(v.shared_secret);
    expect(toHex(ml_kem768_x25519.decapsulate(hex(v.enc), hex(v.skRm)))).toBe(v.shared_secret);
  });

  it.each(named(ALL))('%s: every ciphertext opens and every export matches through hpke with the engine', async (_id, v) => {
    const kdf = v.kdf_id === 1 ? HPKE.KDF_HKDF_SHA256 : KDF_SHAKE256;
    expect(v.aead_id).toBe(3);
    const suite = new HPKE.CipherSuite(KEM_MLKEM768_X25519, kdf, AEAD_ChaCha20Poly1305);
    const kpR = await suite.DeriveKeyPair(hex(v.ikmR), false);
    const ctx = await suite.SetupRecipient(kpR, hex(v.enc), { info: hex(v.info) });
    for (const e of v.encryptions) expect(toHex(await ctx.Open(hex(e.ct), hex(e.aad)))).toBe(e.pt);
    for (const x of v.exports) expect(toHex(await ctx.Export(hex(x.exporter_context), x.L))).toBe(x.exported_value);
  });
});

describe('the FIPS 203 encapsulation key check', () => {
  const invalid = { code: 'e2ee_key_share_invalid', status: 400 };
  /** Sets the 12-bit coefficient `index` of t in an ML-KEM-768 encapsulation key (ByteEncode12). */
  function withCoefficient(publicKey: Uint8Array, index: number, value: number): Uint8Array {
    const out = publicKey.slice();
    const at = Math.floor(index / 2) * 3;
    if (index % 2 === 0) {
      out[at] = value & 0xff;
      out[at + 1] = (out[at + 1]! & 0xf0) | (value >> 8);
    } else {
      out[at + 1] = (out[at + 1]! & 0x0f) | ((value & 0x0f) << 4);
      out[at + 2] = value >> 4;
    }
    return out;
  }
  const nobleAccepts = (pk: Uint8Array): boolean => {
    try {
      ml_kem768_x25519.encapsulate(pk);
      return true;
    } catch {
      return false;
    }
  };

  it.each([
    [0, 3328, true],
    [0, 3329, false],
    [1, 3329, false],
    [1, 3328, true],
    [767, 4095, false],
    [767, 3328, true],
    [500, 3330, false],
  ])('coefficient %i = %i: accepted %s, as noble 0.7.1 decides', async (index, value, ok) => {
    const pk = withCoefficient(hex(HKDF[0]!.pkRm), index, value);
    expect(nobleAccepts(pk)).toBe(ok);
    const suite = hpkeSuite('xwing');
    if (ok) await expect(suite.deserializePublicKey(pk)).resolves.toMatchObject({ suite: 'xwing' });
    else await expect(suite.deserializePublicKey(pk)).rejects.toMatchObject(invalid);
  });

  it('random keys of the suite pass it', async () => {
    const suite = hpkeSuite('xwing');
    for (let i = 0; i < 8; i++) {
      const pk = await suite.serializePublicKey((await suite.generateKeyPair()).publicKey);
      expect(nobleAccepts(pk)).toBe(true);
      await expect(suite.deserializePublicKey(pk)).resolves.toMatchObject({ suite: 'xwing' });
    }
  });
});

describe('the xwing engine and browser bundles', () => {
  it('the facade bundles without the engine: it is imported at run time, by a computed specifier', async () => {
    const bundle = await bundleForBrowser('packages/core/src/e2ee/hpke.ts');
    expect(bundle.errors).toEqual([]);
    expect(bundle.warnings).toEqual([]);
    const inputs = Object.keys(bundle.metafile.inputs);
    expect(inputs.filter((i) => /hpke-noble|post-quantum|@noble/.test(i))).toEqual([]);
    expect(bundle.code).toMatch(/import\(\s*(\/\*[^*]*\*\/\s*)*specifier\s*\)/);
  });
});
