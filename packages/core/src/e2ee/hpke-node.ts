// HPKE (RFC 9180) for the two DHKEM suites of the profile, DHKEM(X25519, HKDF-SHA256) and
// DHKEM(P-256, HKDF-SHA256), with KDF HKDF-SHA256, Base and PSK modes and the exporter only, run
// synchronously on node:crypto. It is what `e2ee/hpke.ts` uses on Node; the `hpke` package stays the
// engine in browsers and for `xwing` (docs/e2ee-engineering.md, "Engines").
//
// The primitives are node:crypto's: X25519 and P-256 key generation and Diffie-Hellman
// (`generateKeyPairSync`, `diffieHellman`), key import and export as JWK, and HMAC-SHA256 for HKDF.
// What is written here is RFC 9180's composition of them, step by step as the RFC states it:
// LabeledExtract/LabeledExpand (section 4), DHKEM's Encap/Decap and ExtractAndExpand (4.1),
// DeriveKeyPair (7.1.3), KeySchedule (5.1) and Export (5.3). Checks of section 7.1.4: X25519 refuses
// an all-zero DH result; P-256 public keys must be uncompressed points on the curve (node:crypto's
// JWK import refuses points off the curve).
import type * as NodeCrypto from 'node:crypto';
import { decodeBase64Url, encodeBase64Url } from '../lib/base64.js';
import { argumentError } from '../lib/validate.js';

type NodeCryptoModule = typeof NodeCrypto;

/** The DHKEM suites this engine runs. */
export type DhkemName = 'x25519' | 'p256';

/** A public key: its serialisation (RFC 9180 `SerializePublicKey`) and node:crypto's key object. */
export interface NodeHpkePublicKey {
  readonly raw: Uint8Array;
  readonly object: NodeCrypto.KeyObject;
}

/** A key pair; the private key never leaves its KeyObject except through the test hook. */
export interface NodeHpkeKeyPair {
  readonly privateKey: NodeCrypto.KeyObject;
  readonly publicKey: NodeHpkePublicKey;
}

/** What is left of a context: `Export(exporter_context, L)` (RFC 9180 section 5.3). */
export interface NodeHpkeExporter {
  export(context: Uint8Array, length: number): Uint8Array;
}

/** The failures of RFC 9180's `DeserializePublicKey`, `Encap` and `Decap`: the key or `enc` is invalid. */
export class NodeHpkeKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NodeHpkeKeyError';
  }
}

/** One DHKEM suite with HKDF-SHA256 and the export-only AEAD (or another AEAD id, for vectors). */
export interface NodeHpkeSuite {
  readonly name: DhkemName;
  generateKeyPair(): NodeHpkeKeyPair;
  /** RFC 9180 7.1.3 `DeriveKeyPair(ikm)`. */
  deriveKeyPair(ikm: Uint8Array): NodeHpkeKeyPair;
  /** RFC 9180 `DeserializePrivateKey` (with the public key it implies). */
  keyPairFromPrivateKey(sk: Uint8Array): NodeHpkeKeyPair;
  /** RFC 9180 `SerializePrivateKey`. */
  serializePrivateKey(keyPair: NodeHpkeKeyPair): Uint8Array;
  /** RFC 9180 `DeserializePublicKey` with the checks of 7.1.4; throws {@link NodeHpkeKeyError}. */
  deserializePublicKey(bytes: Uint8Array): NodeHpkePublicKey;
  /** `SetupBaseS`, or `SetupPSKS` with `psk`; `ephemeral` fixes skE (vectors and the worked example only). */
  setupS(pkR: NodeHpkePublicKey, info: Uint8Array, psk?: { psk: Uint8Array; pskId: Uint8Array }, ephemeral?: NodeHpkeKeyPair): { enc: Uint8Array; exporter: NodeHpkeExporter };
  /** `SetupBaseR`, or `SetupPSKR` with `psk`; throws {@link NodeHpkeKeyError} for a bad `enc`. */
  setupR(enc: Uint8Array, keyPair: NodeHpkeKeyPair, info: Uint8Array, psk?: { psk: Uint8Array; pskId: Uint8Array }): NodeHpkeExporter;
}

const KDF_HKDF_SHA256 = 0x0001;
/** RFC 9180 section 7.3: the export-only AEAD. */
export const AEAD_EXPORT_ONLY_ID = 0xffff;
const NH = 32;
const MODE_BASE = 0x00;
const MODE_PSK = 0x01;

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);
const HPKE_V1 = ascii('HPKE-v1');
const LABEL = {
  eaePrk: ascii('eae_prk'),
  sharedSecret: ascii('shared_secret'),
  dkpPrk: ascii('dkp_prk'),
  sk: ascii('sk'),
  candidate: ascii('candidate'),
  pskIdHash: ascii('psk_id_hash'),
  infoHash: ascii('info_hash'),
  secret: ascii('secret'),
  exp: ascii('exp'),
  sec: ascii('sec'),
};
const EMPTY = new Uint8Array(0);
const ZERO_SALT = new Uint8Array(NH);

/** The order n of P-256 (SEC 2), for DeriveKeyPair's rejection sampling. */
const P256_ORDER = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');

interface Kem {
  readonly id: number;
  readonly nsk: number;
  readonly npk: number;
  /** RFC 9180 7.1.3: the mask on the first octet of a DeriveKeyPair candidate (P-256), or none (X25519). */
  readonly bitmask?: number;
}
const KEMS: Record<DhkemName, Kem> = {
  x25519: { id: 0x0020, nsk: 32, npk: 32 },
  p256: { id: 0x0010, nsk: 32, npk: 65, bitmask: 0xff },
};

function i2osp(value: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = length - 1, v = value; i >= 0; i--, v = Math.floor(v / 256)) out[i] = v & 0xff;
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

function fromBase64Url(s: string | undefined): Uint8Array {
  const bytes = typeof s === 'string' ? decodeBase64Url(s) : undefined;
  if (!bytes) throw new NodeHpkeKeyError('the key has no coordinates');
  return bytes;
}

const toBase64Url = encodeBase64Url;

/** PKCS #8 prefixes of a raw private key: X25519, and an ECPrivateKey on P-256 without its optional public key. */
const PKCS8_PREFIX: Record<DhkemName, Uint8Array> = {
  x25519: Uint8Array.of(0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20),
  p256: Uint8Array.of(
    0x30, 0x41, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
    0x04, 0x27, 0x30, 0x25, 0x02, 0x01, 0x01, 0x04, 0x20,
  ),
};

/** OS2IP of a big-endian octet string. */
function os2ip(bytes: Uint8Array): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

/**
 * The HPKE suite `name` on node:crypto module `n`. `aeadId` is the export-only AEAD except for
 * vectors of other suites (it is part of `suite_id`, so it changes every exporter value).
 */
export function nodeHpkeSuite(name: DhkemName, n: NodeCryptoModule, aeadId: number = AEAD_EXPORT_ONLY_ID): NodeHpkeSuite {
  const kem = KEMS[name];
  if (!kem) throw argumentError('ERR_INVALID_ARG_VALUE', `the node:crypto HPKE engine runs x25519 and p256, not ${String(name)}`);
  const kemSuiteId = concat(ascii('KEM'), i2osp(kem.id, 2));
  const hpkeSuiteId = concat(ascii('HPKE'), i2osp(kem.id, 2), i2osp(KDF_HKDF_SHA256, 2), i2osp(aeadId, 2));

  // RFC 5869 over node:crypto's HMAC-SHA256; every output here is at most Nh octets except exports.
  const hmac = (key: Uint8Array, ...parts: Uint8Array[]): Uint8Array => {
    const h = n.createHmac('sha256', key);
    for (const p of parts) h.update(p);
    return h.digest();
  };
  const extract = (salt: Uint8Array, ikm: Uint8Array[]): Uint8Array => hmac(salt.length === 0 ? ZERO_SALT : salt, ...ikm);
  const expand = (prk: Uint8Array, info: Uint8Array[], length: number): Uint8Array => {
    const out = new Uint8Array(length);
    let t: Uint8Array = EMPTY;
    for (let i = 1, offset = 0; offset < length; i++) {
      t = hmac(prk, t, ...info, Uint8Array.of(i));
      out.set(t.subarray(0, Math.min(NH, length - offset)), offset);
      offset += NH;
    }
    return out;
  };
  // RFC 9180 section 4: LabeledExtract and LabeledExpand.
  const labeledExtract = (suiteId: Uint8Array, salt: Uint8Array, label: Uint8Array, ikm: Uint8Array): Uint8Array => extract(salt, [HPKE_V1, suiteId, label, ikm]);
  const labeledExpand = (suiteId: Uint8Array, prk: Uint8Array, label: Uint8Array, info: Uint8Array, length: number): Uint8Array =>
    expand(prk, [i2osp(length, 2), HPKE_V1, suiteId, label, info], length);

  function publicKeyOf(object: NodeCrypto.KeyObject): NodeHpkePublicKey {
    const jwk = object.export({ format: 'jwk' });
    const raw = name === 'x25519' ? fromBase64Url(jwk.x) : concat(Uint8Array.of(0x04), fromBase64Url(jwk.x), fromBase64Url(jwk.y));
    return { raw, object };
  }
  function pairOf(privateKey: NodeCrypto.KeyObject): NodeHpkeKeyPair {
    return { privateKey, publicKey: publicKeyOf(n.createPublicKey(privateKey)) };
  }

  function deserializePublicKey(bytes: Uint8Array): NodeHpkePublicKey {
    if (bytes.length !== kem.npk) throw new NodeHpkeKeyError('the public key has the wrong length');
    let jwk: NodeCrypto.JsonWebKey;
    if (name === 'x25519') jwk = { kty: 'OKP', crv: 'X25519', x: toBase64Url(bytes) };
    else {
      // SerializePublicKey of P-256 is the uncompressed point; the hybrid forms 0x06/0x07 have the same length.
      if (bytes[0] !== 0x04) throw new NodeHpkeKeyError('the public key is not an uncompressed point');
      jwk = { kty: 'EC', crv: 'P-256', x: toBase64Url(bytes.subarray(1, 33)), y: toBase64Url(bytes.subarray(33, 65)) };
    }
    let object: NodeCrypto.KeyObject;
    try {
      object = n.createPublicKey({ key: jwk, format: 'jwk' });
    } catch {
      throw new NodeHpkeKeyError('the public key is not a point of the curve');
    }
    return { raw: new Uint8Array(bytes), object };
  }

  function dh(privateKey: NodeCrypto.KeyObject, publicKey: NodeCrypto.KeyObject): Uint8Array {
    let secret: Uint8Array;
    try {
      secret = n.diffieHellman({ privateKey, publicKey });
    } catch {
      // OpenSSL refuses an X25519 result of all zeros itself; either way the peer's key is bad.
      throw new NodeHpkeKeyError('the Diffie-Hellman exchange failed');
    }
    // RFC 9180 7.1.4: an all-zero X25519 result means a small-order key (checked here too, so the
    // refusal does not rest on the OpenSSL build alone). Every octet is read: no early exit.
    let acc = 0;
    for (let i = 0; i < secret.length; i++) acc |= secret[i]!;
    if (acc === 0) throw new NodeHpkeKeyError('the Diffie-Hellman result is all zero');
    return secret;
  }

  // RFC 9180 section 4.1: ExtractAndExpand of the DH result, bound to kem_context = enc || pkRm.
  function sharedSecret(dhResult: Uint8Array, enc: Uint8Array, pkRm: Uint8Array): Uint8Array {
    const eaePrk = labeledExtract(kemSuiteId, EMPTY, LABEL.eaePrk, dhResult);
    return labeledExpand(kemSuiteId, eaePrk, LABEL.sharedSecret, concat(enc, pkRm), NH);
  }

  // RFC 9180 section 5.1, export-only: the exporter secret is all the context keeps.
  function keySchedule(mode: number, secret: Uint8Array, info: Uint8Array, psk: Uint8Array, pskId: Uint8Array): NodeHpkeExporter {
    const pskIdHash = labeledExtract(hpkeSuiteId, EMPTY, LABEL.pskIdHash, pskId);
    const infoHash = labeledExtract(hpkeSuiteId, EMPTY, LABEL.infoHash, info);
    const context = concat(Uint8Array.of(mode), pskIdHash, infoHash);
    const keyScheduleSecret = labeledExtract(hpkeSuiteId, secret, LABEL.secret, psk);
    const exporterSecret = labeledExpand(hpkeSuiteId, keyScheduleSecret, LABEL.exp, context, NH);
    return { export: (exporterContext, length) => labeledExpand(hpkeSuiteId, exporterSecret, LABEL.sec, exporterContext, length) };
  }

  function schedule(shared: Uint8Array, info: Uint8Array, psk: { psk: Uint8Array; pskId: Uint8Array } | undefined): NodeHpkeExporter {
    return psk ? keySchedule(MODE_PSK, shared, info, psk.psk, psk.pskId) : keySchedule(MODE_BASE, shared, info, EMPTY, EMPTY);
  }

  function keyPairFromPrivateKey(sk: Uint8Array): NodeHpkeKeyPair {
    if (sk.length !== kem.nsk) throw argumentError('ERR_INVALID_ARG_VALUE', `a ${name} private key is ${kem.nsk} octets`);
    // node:crypto computes the public key from the private one.
    return pairOf(n.createPrivateKey({ key: concat(PKCS8_PREFIX[name], sk) as unknown as Buffer, format: 'der', type: 'pkcs8' }));
  }

  function generateKeyPair(): NodeHpkeKeyPair {
    const { privateKey, publicKey } = name === 'x25519' ? n.generateKeyPairSync('x25519') : n.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    return { privateKey, publicKey: publicKeyOf(publicKey) };
  }

  return Object.freeze({
    name,
    generateKeyPair,
    deriveKeyPair(ikm: Uint8Array): NodeHpkeKeyPair {
      const dkpPrk = labeledExtract(kemSuiteId, EMPTY, LABEL.dkpPrk, ikm);
      if (kem.bitmask === undefined) return keyPairFromPrivateKey(labeledExpand(kemSuiteId, dkpPrk, LABEL.sk, EMPTY, kem.nsk));
      // P-256: rejection sampling until a candidate is a valid scalar (0 < sk < n).
      for (let counter = 0; counter < 256; counter++) {
        const bytes = labeledExpand(kemSuiteId, dkpPrk, LABEL.candidate, i2osp(counter, 1), kem.nsk);
        bytes[0]! &= kem.bitmask;
        const sk = os2ip(bytes);
        if (sk !== 0n && sk < P256_ORDER) return keyPairFromPrivateKey(bytes);
      }
      throw new NodeHpkeKeyError('DeriveKeyPair found no valid key');
    },
    keyPairFromPrivateKey,
    serializePrivateKey(keyPair: NodeHpkeKeyPair): Uint8Array {
      return fromBase64Url(keyPair.privateKey.export({ format: 'jwk' }).d);
    },
    deserializePublicKey,
    setupS(pkR, info, psk, ephemeral) {
      const e = ephemeral ?? generateKeyPair();
      const enc = e.publicKey.raw;
      const shared = sharedSecret(dh(e.privateKey, pkR.object), enc, pkR.raw);
      return { enc: new Uint8Array(enc), exporter: schedule(shared, info, psk) };
    },
    setupR(enc, keyPair, info, psk) {
      const pkE = deserializePublicKey(enc);
      const shared = sharedSecret(dh(keyPair.privateKey, pkE.object), pkE.raw, keyPair.publicKey.raw);
      return schedule(shared, info, psk);
    },
  } satisfies NodeHpkeSuite);
}
