// The one door to HPKE (RFC 9180). Everything of HPKE that the end-to-end encryption profile uses,
// and nothing else: DHKEM(X25519) and DHKEM(P-256) with HKDF-SHA256 and the export-only AEAD, Base
// and PSK modes, and an exporter. No Seal/Open, no Auth modes: message keys come from the exporter
// (docs/e2ee-engineering.md). The engine is the `hpke` package (pinned exactly); it runs on
// WebCrypto, so this module has no Node import and bundles for browsers.
import {
  AEAD_AES_128_GCM,
  AEAD_EXPORT_ONLY,
  CipherSuite,
  KDF_HKDF_SHA256,
  KEM_DHKEM_P256_HKDF_SHA256,
  KEM_DHKEM_X25519_HKDF_SHA256,
  NotSupportedError,
  type AEADFactory,
  type Key,
  type KeyPair,
  type KEMFactory,
} from 'hpke';
import { Oidc2Error } from '../errors.js';
import { argumentError } from '../lib/validate.js';

/** A suite name as it appears in `Oidc2-Key-Share` (docs/e2ee-engineering.md). */
export type E2eeSuiteName = 'x25519' | 'p256' | 'xwing';

/** What the profile fixes about one suite. */
export interface E2eeSuiteInfo {
  readonly name: E2eeSuiteName;
  /** The HPKE KEM identifier. */
  readonly kemId: number;
  /** Octets of a serialised public key (the request's key share). */
  readonly publicKeyLength: number;
  /** Octets of the encapsulation (the response's key share). */
  readonly encLength: number;
  /** False for a suite the profile names but this build does not run. */
  readonly implemented: boolean;
}

/** The suites of the profile, in the default preference order. */
export const E2EE_SUITES: Readonly<Record<E2eeSuiteName, E2eeSuiteInfo>> = Object.freeze({
  x25519: Object.freeze({ name: 'x25519', kemId: 0x0020, publicKeyLength: 32, encLength: 32, implemented: true }),
  p256: Object.freeze({ name: 'p256', kemId: 0x0010, publicKeyLength: 65, encLength: 65, implemented: true }),
  // MLKEM768-X25519 (draft-ietf-hpke-pq). Kept in the table so that parsing and policy know its
  // sizes; selecting it fails until an engine for it is configured and its vectors pass.
  xwing: Object.freeze({ name: 'xwing', kemId: 0x647a, publicKeyLength: 1216, encLength: 1120, implemented: false }),
} satisfies Record<E2eeSuiteName, E2eeSuiteInfo>);

/** A public key of one suite, as deserialised (and validated) from its octets or generated. */
export interface HpkePublicKey {
  readonly suite: E2eeSuiteName;
  /** @internal */ readonly key: Key;
}

/** An ephemeral key pair of one suite. The private half is not extractable. */
export interface HpkeKeyPair {
  readonly suite: E2eeSuiteName;
  readonly publicKey: HpkePublicKey;
  /** @internal */ readonly pair: KeyPair;
}

/** What is left of an HPKE context here: its exporter (RFC 9180 section 5.3). */
export interface HpkeExporter {
  /** `Export(exporter_context, L)`; `length` from 1 to 8160 octets. */
  export(context: Uint8Array, length: number): Promise<Uint8Array>;
}

/** One HPKE suite of the profile: KEM of the suite, KDF HKDF-SHA256, export-only AEAD. */
export interface HpkeSuite {
  readonly info: E2eeSuiteInfo;
  /** A fresh ephemeral key pair (non-extractable private key). */
  generateKeyPair(): Promise<HpkeKeyPair>;
  /** RFC 9180 `DeriveKeyPair(ikm)`: for vectors and the worked example, never for live keys. */
  deriveKeyPair(ikm: Uint8Array): Promise<HpkeKeyPair>;
  /** RFC 9180 `SerializePublicKey`: 32 octets (X25519) or 65 uncompressed octets (P-256). */
  serializePublicKey(key: HpkePublicKey): Promise<Uint8Array>;
  /**
   * RFC 9180 `DeserializePublicKey` with the checks of its section 7.1.4: exact length, P-256 only
   * uncompressed and on the curve. An X25519 key whose DH result is all zero fails at setup.
   * Failure: `e2ee_key_share_invalid`.
   */
  deserializePublicKey(bytes: Uint8Array): Promise<HpkePublicKey>;
  /** `SetupBaseS(pkR, info)`: the encapsulation and the sender's exporter. */
  setupBaseS(pkR: HpkePublicKey, info: Uint8Array): Promise<{ enc: Uint8Array; exporter: HpkeExporter }>;
  /** `SetupBaseR(enc, skR, info)`: the recipient's exporter. Bad `enc`: `e2ee_key_share_invalid`. */
  setupBaseR(enc: Uint8Array, keyPair: HpkeKeyPair, info: Uint8Array): Promise<HpkeExporter>;
  /** `SetupPSKS(pkR, info, psk, psk_id)`; `psk` at least 32 octets. */
  setupPSKS(pkR: HpkePublicKey, info: Uint8Array, psk: Uint8Array, pskId: Uint8Array): Promise<{ enc: Uint8Array; exporter: HpkeExporter }>;
  /** `SetupPSKR(enc, skR, info, psk, psk_id)`. */
  setupPSKR(enc: Uint8Array, keyPair: HpkeKeyPair, info: Uint8Array, psk: Uint8Array, pskId: Uint8Array): Promise<HpkeExporter>;
}

/** Bounds on caller-supplied octets; the profile's own values are far below them. */
const MAX_INFO = 1024;
const MAX_PSK = 1024;
const MAX_PSK_ID = 1024;
const MAX_EXPORT_CONTEXT = 1024;
/** RFC 9180 section 5.3: L <= 255 * Nh. */
const MAX_EXPORT_LENGTH = 255 * 32;
/** RFC 9180 section 5.1: a PSK has at least 32 octets of entropy. */
const MIN_PSK = 32;

const KEMS: Record<'x25519' | 'p256', KEMFactory> = {
  x25519: KEM_DHKEM_X25519_HKDF_SHA256,
  p256: KEM_DHKEM_P256_HKDF_SHA256,
};

function keyShareInvalid(cause?: unknown): Oidc2Error {
  return new Oidc2Error('e2ee_key_share_invalid', 'the key share is not a valid public key of its suite', cause === undefined ? undefined : { cause });
}

function assertBytes(value: unknown, name: string, min: number, max: number): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw argumentError('ERR_INVALID_ARG_TYPE', `${name} must be a Uint8Array`);
  if (value.length < min || value.length > max) throw argumentError('ERR_INVALID_ARG_VALUE', `${name} must be ${min} to ${max} octets`);
}

/** A plain Uint8Array copy: Node Buffers and subarray views never reach the engine. */
function own(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}

function exporterOf(ctx: { Export(context: Uint8Array, length: number): Promise<Uint8Array> }): HpkeExporter {
  return Object.freeze({
    async export(context: Uint8Array, length: number): Promise<Uint8Array> {
      assertBytes(context, 'context', 0, MAX_EXPORT_CONTEXT);
      if (!Number.isSafeInteger(length) || length < 1 || length > MAX_EXPORT_LENGTH) {
        throw argumentError('ERR_INVALID_ARG_VALUE', `length must be an integer from 1 to ${MAX_EXPORT_LENGTH}`);
      }
      return ctx.Export(own(context), length);
    },
  });
}

/** How a suite is built; the options exist only for tests (see `testing` below). */
interface Build {
  /** Sender ephemeral derived from this ikm instead of generated (the worked example, RFC 9180 vectors). */
  readonly ikmE?: Uint8Array;
  /** The AEAD of the key schedule; export-only except for RFC 9180 vectors of other suites. */
  readonly aead?: AEADFactory;
  /** Derived key pairs get an extractable private key (so a test can compare it with a vector). */
  readonly extractable?: boolean;
}

function kemFactory(base: KEMFactory, ikmE: Uint8Array | undefined): KEMFactory {
  if (!ikmE) return base;
  const fixed = own(ikmE);
  // The engine's Encap takes its ephemeral from `this.GenerateKeyPair`; deriving it from a fixed
  // ikm instead reproduces RFC 9180's `ikmE` without any crypto of our own.
  return () => {
    const kem = base();
    return { ...kem, GenerateKeyPair: (extractable: boolean) => kem.DeriveKeyPair(fixed, extractable) };
  };
}

function build(name: E2eeSuiteName, options: Build = {}): HpkeSuite {
  if (name !== 'x25519' && name !== 'p256') {
    if (name === 'xwing') throw new Oidc2Error('e2ee_kem_unsupported', 'the xwing suite is not enabled in this build');
    throw argumentError('ERR_INVALID_ARG_VALUE', `unknown e2ee suite ${String(name)}`);
  }
  const info = E2EE_SUITES[name];
  const suite = new CipherSuite(kemFactory(KEMS[name], options.ikmE), KDF_HKDF_SHA256, options.aead ?? AEAD_EXPORT_ONLY);
  const extractable = options.extractable === true;

  function pairOf(pair: KeyPair): HpkeKeyPair {
    return Object.freeze({ suite: name, publicKey: Object.freeze({ suite: name, key: pair.publicKey }), pair });
  }
  function assertOwn<T extends { suite: E2eeSuiteName }>(value: T | undefined, what: string): T {
    if (typeof value !== 'object' || value === null || value.suite !== name) {
      throw argumentError('ERR_INVALID_ARG_VALUE', `${what} is not a ${name} key`);
    }
    return value;
  }
  function assertSetupInputs(infoBytes: Uint8Array, psk?: Uint8Array, pskId?: Uint8Array): void {
    assertBytes(infoBytes, 'info', 0, MAX_INFO);
    if (psk !== undefined || pskId !== undefined) {
      assertBytes(psk, 'psk', MIN_PSK, MAX_PSK);
      assertBytes(pskId, 'pskId', 1, MAX_PSK_ID);
    }
  }
  function setupOptions(infoBytes: Uint8Array, psk?: Uint8Array, pskId?: Uint8Array) {
    return psk && pskId ? { info: own(infoBytes), psk: own(psk), pskId: own(pskId) } : { info: own(infoBytes) };
  }
  async function send(pkR: HpkePublicKey, infoBytes: Uint8Array, psk?: Uint8Array, pskId?: Uint8Array) {
    assertOwn(pkR, 'pkR');
    assertSetupInputs(infoBytes, psk, pskId);
    try {
      const { encapsulatedSecret, ctx } = await suite.SetupSender(pkR.key, setupOptions(infoBytes, psk, pskId));
      return { enc: encapsulatedSecret, exporter: exporterOf(ctx) };
    } catch (cause) {
      // EncapError: the DH with the peer's key failed, i.e. its result was all zero (RFC 9180 7.1.4).
      if (cause instanceof NotSupportedError) throw cause;
      throw keyShareInvalid(cause);
    }
  }
  async function receive(enc: Uint8Array, keyPair: HpkeKeyPair, infoBytes: Uint8Array, psk?: Uint8Array, pskId?: Uint8Array) {
    if (!(enc instanceof Uint8Array)) throw argumentError('ERR_INVALID_ARG_TYPE', 'enc must be a Uint8Array');
    assertOwn(keyPair, 'keyPair');
    assertSetupInputs(infoBytes, psk, pskId);
    if (enc.length !== info.encLength) throw keyShareInvalid();
    if (name === 'p256' && enc[0] !== 0x04) throw keyShareInvalid();
    try {
      return exporterOf(await suite.SetupRecipient(keyPair.pair, own(enc), setupOptions(infoBytes, psk, pskId)));
    } catch (cause) {
      if (cause instanceof NotSupportedError) throw cause;
      throw keyShareInvalid(cause);
    }
  }

  return Object.freeze({
    info,
    async generateKeyPair() {
      return pairOf(await suite.GenerateKeyPair(false));
    },
    async deriveKeyPair(ikm: Uint8Array) {
      // RFC 9180 section 7.1.3 asks for ikm of at least Nsk (32) octets of entropy.
      assertBytes(ikm, 'ikm', 32, 1024);
      return pairOf(await suite.DeriveKeyPair(own(ikm), extractable));
    },
    async serializePublicKey(key: HpkePublicKey) {
      return suite.SerializePublicKey(assertOwn(key, 'key').key);
    },
    async deserializePublicKey(bytes: Uint8Array) {
      if (!(bytes instanceof Uint8Array)) throw argumentError('ERR_INVALID_ARG_TYPE', 'a key share must be a Uint8Array');
      if (bytes.length !== info.publicKeyLength) throw keyShareInvalid();
      // SerializePublicKey of P-256 is the uncompressed point (SEC1 0x04 || x || y). WebCrypto's raw
      // import also takes the hybrid forms 0x06/0x07 of the same length, so the prefix is ours to check.
      if (name === 'p256' && bytes[0] !== 0x04) throw keyShareInvalid();
      try {
        return Object.freeze({ suite: name, key: await suite.DeserializePublicKey(own(bytes)) });
      } catch (cause) {
        if (cause instanceof NotSupportedError) throw cause;
        throw keyShareInvalid(cause);
      }
    },
    setupBaseS: (pkR: HpkePublicKey, infoBytes: Uint8Array) => send(pkR, infoBytes),
    setupBaseR: (enc: Uint8Array, keyPair: HpkeKeyPair, infoBytes: Uint8Array) => receive(enc, keyPair, infoBytes),
    setupPSKS(pkR: HpkePublicKey, infoBytes: Uint8Array, psk: Uint8Array, pskId: Uint8Array) {
      if (psk === undefined || pskId === undefined) throw argumentError('ERR_INVALID_ARG_VALUE', 'PSK mode needs psk and pskId');
      return send(pkR, infoBytes, psk, pskId);
    },
    setupPSKR(enc: Uint8Array, keyPair: HpkeKeyPair, infoBytes: Uint8Array, psk: Uint8Array, pskId: Uint8Array) {
      if (psk === undefined || pskId === undefined) throw argumentError('ERR_INVALID_ARG_VALUE', 'PSK mode needs psk and pskId');
      return receive(enc, keyPair, infoBytes, psk, pskId);
    },
  });
}

const cache = new Map<E2eeSuiteName, HpkeSuite>();

/**
 * The HPKE suite of the profile with this name. `xwing` throws `e2ee_kem_unsupported` (it is not
 * enabled in this build); an unknown name throws a `TypeError` (`ERR_INVALID_ARG_VALUE`).
 */
export function hpkeSuite(name: E2eeSuiteName): HpkeSuite {
  let suite = cache.get(name);
  if (!suite) {
    suite = build(name);
    cache.set(name, suite);
  }
  return suite;
}

/**
 * Test hooks, not part of any public entry point: a suite whose sender ephemeral is derived from a
 * fixed `ikmE` (for reproducible examples), with extractable derived keys, and, for
 * the RFC 9180 vectors of suites other than export-only, with AES-128-GCM in the key schedule.
 * @internal
 */
export const testing = Object.freeze({
  suite(name: E2eeSuiteName, options: { ikmE?: Uint8Array; aead?: 'export-only' | 'aes-128-gcm' } = {}): HpkeSuite {
    if (options.ikmE !== undefined) assertBytes(options.ikmE, 'ikmE', 32, 1024);
    return build(name, { ikmE: options.ikmE, aead: options.aead === 'aes-128-gcm' ? AEAD_AES_128_GCM : AEAD_EXPORT_ONLY, extractable: true });
  },
  /** A key pair from a serialised private key (RFC 9180 `DeserializePrivateKey`), for published examples. */
  async keyPairFromPrivateKey(name: E2eeSuiteName, privateKey: Uint8Array): Promise<HpkeKeyPair> {
    const suite = new CipherSuite(KEMS[name as 'x25519' | 'p256'], KDF_HKDF_SHA256, AEAD_EXPORT_ONLY);
    const sk = (await suite.DeserializePrivateKey(own(privateKey), true)) as CryptoKey;
    const subtle = globalThis.crypto.subtle;
    const { kty, crv, x, y } = await subtle.exportKey('jwk', sk);
    const pk = await subtle.importKey('jwk', { kty, crv, x, y }, sk.algorithm, true, []);
    return Object.freeze({ suite: name, publicKey: Object.freeze({ suite: name, key: pk }), pair: { privateKey: sk, publicKey: pk } });
  },
  /** The private key of a pair made by a `testing.suite`, serialised (RFC 9180 `SerializePrivateKey`). */
  async serializePrivateKey(name: E2eeSuiteName, keyPair: HpkeKeyPair): Promise<Uint8Array> {
    const suite = new CipherSuite(KEMS[name as 'x25519' | 'p256'], KDF_HKDF_SHA256, AEAD_EXPORT_ONLY);
    return suite.SerializePrivateKey(keyPair.pair.privateKey);
  },
});
