// RFC 9180 Appendix A through the facade on both of its engines (node:crypto, what Node runs, and
// `hpke`, what browsers run) and through `@hpke/core` with `@hpke/dhkem-x25519` (a second
// implementation, dev only). A.1.x and A.3.x use AES-128-GCM in the key schedule (the AEAD id is part
// of suite_id), A.7.x the export-only AEAD that the profile uses; the facade reaches the former only
// through its test hook.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as HPKE from 'hpke';
import { Aes128Gcm, CipherSuite as CoreSuite, DhkemP256HkdfSha256, ExportOnly, HkdfSha256 } from '@hpke/core';
import { DhkemX25519HkdfSha256 } from '@hpke/dhkem-x25519';
import { E2EE_SUITES, hpkeSuite, testing, type E2eeSuiteName, type HpkeEngineName } from '../src/e2ee/hpke';

interface Vector {
  mode: number;
  kem_id: number;
  kdf_id: number;
  aead_id: number;
  info: string;
  ikmE: string;
  pkEm: string;
  skEm: string;
  ikmR: string;
  pkRm: string;
  skRm: string;
  psk?: string;
  psk_id?: string;
  enc: string;
  shared_secret: string;
  key_schedule_context: string;
  secret: string;
  key: string;
  base_nonce: string;
  exporter_secret: string;
  exports: { exporter_context: string; L: number; exported_value: string }[];
}

const VECTORS: Record<string, Vector> = JSON.parse(readFileSync(join(__dirname, 'fixtures', 'e2ee', 'rfc9180.json'), 'utf8')).vectors;
const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array | ArrayBuffer): string => Buffer.from(b instanceof Uint8Array ? b : new Uint8Array(b)).toString('hex');
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const suiteName = (v: Vector): E2eeSuiteName => (v.kem_id === 0x20 ? 'x25519' : 'p256');
const cases = Object.entries(VECTORS).map(([id, v]) => [`${id} (${suiteName(v)}, ${v.mode === 0 ? 'Base' : 'PSK'}, aead ${v.aead_id})`, v] as const);

describe.each<HpkeEngineName>(['node', 'hpke'])('RFC 9180 Appendix A through the facade (engine %s)', (engine) => {
  beforeAll(() => testing.engine(engine));
  afterAll(() => testing.engine(undefined));

  it.each(cases)('%s: DeriveKeyPair, shared secret, key schedule, enc and exports', async (_id, v) => {
    const name = suiteName(v);
    const suite = testing.suite(name, { ikmE: hex(v.ikmE), aead: v.aead_id === 1 ? 'aes-128-gcm' : 'export-only', engine });
    expect(suite.info.kemId).toBe(v.kem_id);

    // DeriveKeyPair (RFC 9180 7.1.3) for both parties.
    const kpR = await suite.deriveKeyPair(hex(v.ikmR));
    const kpE = await suite.deriveKeyPair(hex(v.ikmE));
    expect(toHex(await suite.serializePublicKey(kpR.publicKey))).toBe(v.pkRm);
    expect(toHex(await testing.serializePrivateKey(name, kpR))).toBe(v.skRm);
    expect(toHex(await suite.serializePublicKey(kpE.publicKey))).toBe(v.pkEm);
    expect(toHex(await testing.serializePrivateKey(name, kpE))).toBe(v.skEm);

    // The DHKEM shared secret, from the `hpke` engine's KEM itself (the node:crypto engine keeps it
    // inside its key schedule: its exports below depend on it).
    expect(engine === 'node' ? kpR.node : kpR.pair).toBeDefined();
    if (kpR.pair) {
      const kem = (name === 'x25519' ? HPKE.KEM_DHKEM_X25519_HKDF_SHA256 : HPKE.KEM_DHKEM_P256_HKDF_SHA256)();
      expect(toHex(await kem.Decap(hex(v.enc), kpR.pair.privateKey as HPKE.CryptoKey, kpR.pair.publicKey as HPKE.CryptoKey))).toBe(v.shared_secret);
    }

    // The key schedule (RFC 9180 5.1), recomputed with the engine's labelled KDF.
    const kdf = HPKE.KDF_HKDF_SHA256();
    const suiteId = HPKE.concat(utf8('HPKE'), HPKE.I2OSP(v.kem_id, 2), HPKE.I2OSP(v.kdf_id, 2), HPKE.I2OSP(v.aead_id, 2));
    const empty = new Uint8Array();
    const pskIdHash = await HPKE.LabeledExtract(kdf, suiteId, empty, utf8('psk_id_hash'), hex(v.psk_id ?? ''));
    const infoHash = await HPKE.LabeledExtract(kdf, suiteId, empty, utf8('info_hash'), hex(v.info));
    const ksc = HPKE.concat(Uint8Array.of(v.mode), pskIdHash, infoHash);
    expect(toHex(ksc)).toBe(v.key_schedule_context);
    const secret = await HPKE.LabeledExtract(kdf, suiteId, hex(v.shared_secret), utf8('secret'), hex(v.psk ?? ''));
    expect(toHex(secret)).toBe(v.secret);
    expect(toHex(await HPKE.LabeledExpand(kdf, suiteId, secret, utf8('exp'), ksc, 32))).toBe(v.exporter_secret);
    if (v.aead_id === 1) {
      expect(toHex(await HPKE.LabeledExpand(kdf, suiteId, secret, utf8('key'), ksc, 16))).toBe(v.key);
      expect(toHex(await HPKE.LabeledExpand(kdf, suiteId, secret, utf8('base_nonce'), ksc, 12))).toBe(v.base_nonce);
    }

    // SetupS with the injected ephemeral gives the vector's enc; SetupR with that enc; both export alike.
    const info = hex(v.info);
    const sender = v.psk ? await suite.setupPSKS(kpR.publicKey, info, hex(v.psk), hex(v.psk_id!)) : await suite.setupBaseS(kpR.publicKey, info);
    expect(toHex(sender.enc)).toBe(v.enc);
    const recipient = v.psk ? await suite.setupPSKR(hex(v.enc), kpR, info, hex(v.psk), hex(v.psk_id!)) : await suite.setupBaseR(hex(v.enc), kpR, info);
    for (const e of v.exports) {
      expect(toHex(await sender.exporter.export(hex(e.exporter_context), e.L))).toBe(e.exported_value);
      expect(toHex(await recipient.export(hex(e.exporter_context), e.L))).toBe(e.exported_value);
    }
  });

  it.each(cases.filter(([, v]) => v.aead_id === 0xffff))('%s: the production suite (no test hook) receives and exports alike', async (_id, v) => {
    const suite = hpkeSuite(suiteName(v));
    const kpR = await testing.suite(suiteName(v)).deriveKeyPair(hex(v.ikmR));
    expect(engine === 'node' ? kpR.node : kpR.pair).toBeDefined();
    const info = hex(v.info);
    const recipient = v.psk ? await suite.setupPSKR(hex(v.enc), kpR, info, hex(v.psk), hex(v.psk_id!)) : await suite.setupBaseR(hex(v.enc), kpR, info);
    for (const e of v.exports) expect(toHex(await recipient.export(hex(e.exporter_context), e.L))).toBe(e.exported_value);
  });
});

describe('RFC 9180 Appendix A through @hpke/core (second engine)', () => {
  function coreSuite(v: Vector): CoreSuite {
    return new CoreSuite({
      kem: v.kem_id === 0x20 ? new DhkemX25519HkdfSha256() : new DhkemP256HkdfSha256(),
      kdf: new HkdfSha256(),
      aead: v.aead_id === 1 ? new Aes128Gcm() : new ExportOnly(),
    });
  }

  it.each(cases)('%s: DeriveKeyPair, shared secret, enc and exports', async (_id, v) => {
    const suite = coreSuite(v);
    const kpR = await suite.kem.deriveKeyPair(hex(v.ikmR));
    const kpE = await suite.kem.deriveKeyPair(hex(v.ikmE));
    expect(toHex(await suite.kem.serializePublicKey(kpR.publicKey))).toBe(v.pkRm);
    expect(toHex(await suite.kem.serializePrivateKey(kpR.privateKey))).toBe(v.skRm);
    expect(toHex(await suite.kem.serializePublicKey(kpE.publicKey))).toBe(v.pkEm);
    expect(toHex(await suite.kem.decap({ enc: hex(v.enc), recipientKey: kpR }))).toBe(v.shared_secret);

    const info = hex(v.info);
    const psk = v.psk ? { psk: { key: hex(v.psk), id: hex(v.psk_id!) } } : {};
    const sender = await suite.createSenderContext({ recipientPublicKey: kpR.publicKey, info, ekm: hex(v.ikmE), ...psk });
    expect(toHex(sender.enc)).toBe(v.enc);
    const recipient = await suite.createRecipientContext({ recipientKey: kpR, enc: hex(v.enc), info, ...psk });
    for (const e of v.exports) {
      expect(toHex(await sender.export(hex(e.exporter_context), e.L))).toBe(e.exported_value);
      expect(toHex(await recipient.export(hex(e.exporter_context), e.L))).toBe(e.exported_value);
    }
  });

  it.each(['x25519', 'p256'] as const)('%s: a facade sender and a @hpke/core recipient agree, and the other way round', async (name) => {
    const facade = hpkeSuite(name);
    const core = new CoreSuite({ kem: name === 'x25519' ? new DhkemX25519HkdfSha256() : new DhkemP256HkdfSha256(), kdf: new HkdfSha256(), aead: new ExportOnly() });
    const info = utf8('oidc2-e2ee-v1 handshake\0 cross-engine');
    const psk = new Uint8Array(32).fill(7);
    const pskId = utf8('oidc2-e2ee-v1 psk 0123456789abcdef');
    const context = utf8('oidc2-e2ee-v1 session');

    const coreKp = await core.kem.generateKeyPair();
    const coreKpBytes = new Uint8Array(await core.kem.serializePublicKey(coreKp.publicKey));
    const sent = await facade.setupPSKS(await facade.deserializePublicKey(coreKpBytes), info, psk, pskId);
    const coreRecipient = await core.createRecipientContext({ recipientKey: coreKp, enc: sent.enc, info, psk: { key: psk, id: pskId } });
    expect(toHex(await coreRecipient.export(context, 32))).toBe(toHex(await sent.exporter.export(context, 32)));

    const facadeKp = await facade.generateKeyPair();
    const pk = await core.kem.deserializePublicKey(await facade.serializePublicKey(facadeKp.publicKey));
    const coreSender = await core.createSenderContext({ recipientPublicKey: pk, info });
    const received = await facade.setupBaseR(new Uint8Array(coreSender.enc), facadeKp, info);
    expect(toHex(await received.export(context, 16))).toBe(toHex(await coreSender.export(context, 16)));
  });
});

describe('the HPKE facade', () => {
  it('lists the profile suites with their sizes (xwing: hpke-pq.test.ts)', () => {
    expect(E2EE_SUITES.x25519).toMatchObject({ kemId: 0x0020, publicKeyLength: 32, encLength: 32, implemented: true });
    expect(E2EE_SUITES.p256).toMatchObject({ kemId: 0x0010, publicKeyLength: 65, encLength: 65, implemented: true });
    expect(E2EE_SUITES.xwing).toMatchObject({ kemId: 0x647a, publicKeyLength: 1216, encLength: 1120, implemented: true });
    expect(hpkeSuite('xwing').info).toBe(E2EE_SUITES.xwing);
    expect(() => hpkeSuite('x448' as E2eeSuiteName)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(hpkeSuite('x25519')).toBe(hpkeSuite('x25519'));
  });

  it.each(['x25519', 'p256'] as const)('%s: Base and PSK round trips; a different info, psk or psk_id exports differently', async (name) => {
    const suite = hpkeSuite(name);
    const kp = await suite.generateKeyPair();
    const pk = await suite.deserializePublicKey(await suite.serializePublicKey(kp.publicKey));
    const info = utf8('info');
    const ctx = utf8('oidc2-e2ee-v1 response');
    const base = await suite.setupBaseS(pk, info);
    expect(base.enc).toHaveLength(E2EE_SUITES[name].encLength);
    const r = await suite.setupBaseR(base.enc, kp, info);
    expect(await r.export(ctx, 32)).toEqual(await base.exporter.export(ctx, 32));
    expect(await (await suite.setupBaseR(base.enc, kp, utf8('infO'))).export(ctx, 32)).not.toEqual(await base.exporter.export(ctx, 32));

    const psk = new Uint8Array(32).fill(1);
    const pskId = utf8('id');
    const sent = await suite.setupPSKS(pk, info, psk, pskId);
    const ok = await suite.setupPSKR(sent.enc, kp, info, psk, pskId);
    expect(await ok.export(ctx, 32)).toEqual(await sent.exporter.export(ctx, 32));
    const otherPsk = new Uint8Array(32).fill(2);
    expect(await (await suite.setupPSKR(sent.enc, kp, info, otherPsk, pskId)).export(ctx, 32)).not.toEqual(await sent.exporter.export(ctx, 32));
    expect(await (await suite.setupPSKR(sent.enc, kp, info, psk, utf8('iD'))).export(ctx, 32)).not.toEqual(await sent.exporter.export(ctx, 32));
    // Base and PSK modes never agree.
    expect(await (await suite.setupBaseR(sent.enc, kp, info)).export(ctx, 32)).not.toEqual(await sent.exporter.export(ctx, 32));
  });

  it('takes Node Buffers and subarray views as input', async () => {
    const v = VECTORS['A.7.1']!;
    const suite = testing.suite('x25519');
    const kpR = await suite.deriveKeyPair(Buffer.from(v.ikmR, 'hex'));
    const backing = new Uint8Array(64 + 32).fill(0xee);
    backing.set(hex(v.enc), 5);
    const enc = backing.subarray(5, 5 + 32);
    const recipient = await hpkeSuite('x25519').setupBaseR(enc, kpR, Buffer.from(v.info, 'hex'));
    expect(toHex(await recipient.export(Buffer.alloc(0), 32))).toBe(v.exports[0]!.exported_value);
    const pk = await hpkeSuite('x25519').deserializePublicKey(Buffer.from(v.pkRm, 'hex'));
    expect(toHex(await hpkeSuite('x25519').serializePublicKey(pk))).toBe(v.pkRm);
  });

  it('bounds its arguments with coded TypeErrors', async () => {
    const suite = hpkeSuite('x25519');
    const kp = await suite.generateKeyPair();
    const p256 = await hpkeSuite('p256').generateKeyPair();
    const { exporter } = await suite.setupBaseS(kp.publicKey, new Uint8Array());
    await expect(exporter.export(new Uint8Array(), 0)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(exporter.export(new Uint8Array(), 255 * 32 + 1)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(exporter.export(new Uint8Array(1025), 32)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(exporter.export('ctx' as unknown as Uint8Array, 32)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    await expect(suite.setupBaseS(kp.publicKey, new Uint8Array(1025))).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(suite.setupPSKS(kp.publicKey, new Uint8Array(), new Uint8Array(31), utf8('id'))).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(suite.setupPSKS(kp.publicKey, new Uint8Array(), new Uint8Array(32), new Uint8Array())).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(suite.setupBaseS(p256.publicKey, new Uint8Array())).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(suite.setupBaseR(new Uint8Array(32), p256, new Uint8Array())).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(suite.deriveKeyPair(new Uint8Array(31))).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(suite.deserializePublicKey([1, 2] as unknown as Uint8Array)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
  });
});
