// The one door to HPKE (RFC 9180). Everything of HPKE that the end-to-end encryption profile uses,
// and nothing else: DHKEM(X25519), DHKEM(P-256) and MLKEM768-X25519 with HKDF-SHA256 and the
// export-only AEAD, Base and PSK modes, and an exporter. No Seal/Open, no Auth modes: message keys
// come from the exporter (docs/e2ee-engineering.md). Two engines: on Node, `x25519` and `p256` run
// synchronously on node:crypto (`hpke-node.ts`, reached through lib/crypto's node path); elsewhere,
// and for `xwing` everywhere, the engine is the `hpke` package (pinned exactly) on WebCrypto, so this
// module has no Node import and bundles for browsers. The X-Wing KEM comes from the optional peer
// dependency `@panva/hpke-noble`, imported only when an `xwing` suite is first used.
import {
  AEAD_AES_128_GCM,
  AEAD_EXPORT_ONLY,
  CipherSuite,
  KDF_HKDF_SHA256,
  KEM_DHKEM_P256_HKDF_SHA256,
  KEM_DHKEM_X25519_HKDF_SHA256,
  NotSupportedError,
  type AEADFactory,
  type KEM,
  type Key,
  type KeyPair,
  type KEMFactory,
} from 'hpke';
import { Oidc2Error } from '../errors.js';
import { nodeCryptoModule } from '../lib/crypto.js';
import { argumentError } from '../lib/validate.js';
import { AEAD_EXPORT_ONLY_ID, NodeHpkeKeyError, nodeHpkeSuite, type DhkemName, type NodeHpkeExporter, type NodeHpkeKeyPair, type NodeHpkePublicKey, type NodeHpkeSuite } from './hpke-node.js';

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
  /**
   * False for a suite the profile names but this build does not run. `xwing` is implemented, but
   * its engine is an optional peer dependency loaded on first use ({@link loadHpkeSuite}).
   */
  readonly implemented: boolean;
}

/** The suites of the profile, in the default preference order. */
export const E2EE_SUITES: Readonly<Record<E2eeSuiteName, E2eeSuiteInfo>> = Object.freeze({
  x25519: Object.freeze({ name: 'x25519', kemId: 0x0020, publicKeyLength: 32, encLength: 32, implemented: true }),
  p256: Object.freeze({ name: 'p256', kemId: 0x0010, publicKeyLength: 65, encLength: 65, implemented: true }),
  // MLKEM768-X25519 (draft-ietf-hpke-pq), the X-Wing KEM. Its engine, `@panva/hpke-noble`, is an
  // optional peer dependency imported when the suite is first used; the draft's vectors for 0x647a
  // pass through this facade (packages/core/test/hpke-pq.test.ts).
  xwing: Object.freeze({ name: 'xwing', kemId: 0x647a, publicKeyLength: 1216, encLength: 1120, implemented: true }),
} satisfies Record<E2eeSuiteName, E2eeSuiteInfo>);

/** A public key of one suite, as deserialised (and validated) from its octets or generated. */
export interface HpkePublicKey {
  readonly suite: E2eeSuiteName;
  /** @internal The `hpke` engine's key (absent for a key of the node:crypto engine). */ readonly key?: Key;
  /** @internal The node:crypto engine's key. */ readonly node?: NodeHpkePublicKey;
}

/** An ephemeral key pair of one suite. The facade never exposes the private half. */
export interface HpkeKeyPair {
  readonly suite: E2eeSuiteName;
  readonly publicKey: HpkePublicKey;
  /** @internal The `hpke` engine's pair (non-extractable private key). */ readonly pair?: KeyPair;
  /** @internal The node:crypto engine's pair. */ readonly node?: NodeHpkeKeyPair;
}

/** The engines behind the facade: node:crypto (`x25519` and `p256` on Node) and the `hpke` package. */
export type HpkeEngineName = 'node' | 'hpke';

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
  /** RFC 9180 `SerializePublicKey`: 32 octets (X25519), 65 uncompressed octets (P-256) or 1216 (X-Wing). */
  serializePublicKey(key: HpkePublicKey): Promise<Uint8Array>;
  /**
   * RFC 9180 `DeserializePublicKey` with the checks of its section 7.1.4: exact length, P-256 only
   * uncompressed and on the curve, X-Wing's ML-KEM part through the FIPS 203 encapsulation key check.
   * An X25519 key (or X25519 part) whose DH result is all zero fails at setup.
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

/** The optional peer dependency that gives `hpke` the X-Wing KEM, and the version it is pinned to. */
const XWING_ENGINE = '@panva/hpke-noble';
const XWING_ENGINE_VERSION = '1.0.3';
/** X-Wing's encapsulation randomness: 32 octets of ML-KEM coins, 32 of X25519 ephemeral seed. */
const XWING_ENCAP_RANDOMNESS = 64;

/** What the facade takes from the engine module. */
interface XwingEngine {
  readonly kem: KEMFactory;
  /** ChaCha20Poly1305, only for the draft's vectors: their key schedule names AEAD 0x0003. */
  readonly chacha20poly1305?: AEADFactory;
}

// The specifier is a variable on purpose. Bundlers resolve a literal `import('@panva/hpke-noble')`
// at build time: every browser build that has not installed the optional package would fail, and
// every build that has would carry ML-KEM whether or not it configures xwing. A computed specifier
// is left to the runtime (Node resolves it from this package; a browser needs an import map or a
// bundler alias); the comments keep webpack and Vite from trying to rewrite it.
function importEngine(): Promise<unknown> {
  const specifier: string = XWING_ENGINE;
  return import(/* webpackIgnore: true */ /* @vite-ignore */ specifier);
}

let engineImport: () => Promise<unknown> = importEngine;
let engine: Promise<XwingEngine> | undefined;

function engineUnavailable(cause?: unknown): TypeError {
  return argumentError(
    'ERR_INVALID_ARG_VALUE',
    `the e2ee suite 'xwing' needs its engine, the optional peer dependency ${XWING_ENGINE}@${XWING_ENGINE_VERSION}: install it beside @oidc2/core, or leave 'xwing' out of the suites`,
    cause === undefined ? undefined : { cause },
  );
}

/**
 * The X-Wing engine, imported once per process on first use. A failure (the package is missing, or
 * is not a KEM with the profile's code point and sizes) is kept, so every later use fails the same
 * way without importing again.
 */
function xwingEngine(): Promise<XwingEngine> {
  engine ??= engineImport().then(
    (namespace) => {
      const members = (typeof namespace === 'object' && namespace !== null ? namespace : {}) as { KEM_MLKEM768_X25519?: unknown; AEAD_ChaCha20Poly1305?: unknown };
      const factory = members.KEM_MLKEM768_X25519;
      if (typeof factory !== 'function') throw engineUnavailable();
      let kem: Readonly<KEM>;
      try {
        kem = (factory as KEMFactory)();
      } catch (cause) {
        throw engineUnavailable(cause);
      }
      const xwing = E2EE_SUITES.xwing;
      if (kem.id !== xwing.kemId || kem.Npk !== xwing.publicKeyLength || kem.Nenc !== xwing.encLength || kem.Nsecret !== 32) throw engineUnavailable();
      const aead = members.AEAD_ChaCha20Poly1305;
      return { kem: factory as KEMFactory, ...(typeof aead === 'function' ? { chacha20poly1305: aead as AEADFactory } : {}) };
    },
    (cause: unknown) => {
      throw engineUnavailable(cause);
    },
  );
  return engine;
}

/** FIPS 203: q, and the octets of ByteEncode12(t) in an ML-KEM-768 encapsulation key (384 * k, k = 3). */
const MLKEM_Q = 3329;
const MLKEM768_T_OCTETS = 1152;

/**
 * The encapsulation key check of FIPS 203 section 7.2 (`ByteEncode12(ByteDecode12(ek)) == ek`: every
 * 12-bit coefficient of t is below q) on the ML-KEM-768 part of an X-Wing public key, its first
 * 1184 octets. draft-ietf-hpke-pq makes a failure an `EncapError`. The engine's ML-KEM (noble 0.5.x)
 * compares without reducing modulo q, so its own check never fails (docs/e2ee-engineering.md, gap 7).
 */
function mlkemEncapsulationKeyOk(publicKey: Uint8Array): boolean {
  for (let i = 0; i < MLKEM768_T_OCTETS; i += 3) {
    const b0 = publicKey[i]!;
    const b1 = publicKey[i + 1]!;
    const b2 = publicKey[i + 2]!;
    if ((b0 | ((b1 & 0x0f) << 8)) >= MLKEM_Q || ((b1 >> 4) | (b2 << 4)) >= MLKEM_Q) return false;
  }
  return true;
}

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

function assertExport(context: Uint8Array, length: number): void {
  assertBytes(context, 'context', 0, MAX_EXPORT_CONTEXT);
  if (!Number.isSafeInteger(length) || length < 1 || length > MAX_EXPORT_LENGTH) {
    throw argumentError('ERR_INVALID_ARG_VALUE', `length must be an integer from 1 to ${MAX_EXPORT_LENGTH}`);
  }
}

function exporterOf(ctx: { Export(context: Uint8Array, length: number): Promise<Uint8Array> }): HpkeExporter {
  return Object.freeze({
    async export(context: Uint8Array, length: number): Promise<Uint8Array> {
      assertExport(context, length);
      return ctx.Export(own(context), length);
    },
  });
}

function nodeExporterOf(ctx: NodeHpkeExporter): HpkeExporter {
  return Object.freeze({
    async export(context: Uint8Array, length: number): Promise<Uint8Array> {
      assertExport(context, length);
      return ctx.export(context, length);
    },
  });
}

/** The engine a test forces for every suite built without its own (`testing.engine`). */
let forcedEngine: HpkeEngineName | undefined;
const AEAD_AES_128_GCM_ID = 0x0001;

/** How a suite is built; the options exist only for tests (see `testing` below). */
interface Build {
  /**
   * A fixed sender ephemeral (the worked example, vectors): DHKEM derives it from this ikm; X-Wing
   * takes it as its 64 octets of encapsulation randomness.
   */
  readonly ikmE?: Uint8Array;
  /** The AEAD of the key schedule; export-only except for RFC 9180 vectors of other suites. */
  readonly aead?: AEADFactory;
  /** ChaCha20Poly1305 from the xwing engine in the key schedule (draft-ietf-hpke-pq vectors); xwing only. */
  readonly chacha20poly1305?: boolean;
  /** Derived key pairs get an extractable private key (so a test can compare it with a vector). */
  readonly extractable?: boolean;
  /** The engine of `x25519`/`p256` (tests only); default node:crypto on Node, else `hpke`. */
  readonly engine?: HpkeEngineName;
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

/**
 * Test only: an X-Wing KEM whose Encap uses `randomness` (the draft's `ikmE`, EncapsDerand's 64
 * octets) instead of fresh random octets. The engine's Encap draws them with one synchronous
 * `crypto.getRandomValues` call before its first `await`; for exactly that call the draw is answered
 * with `randomness`, so the vectors check the production Encap itself. Any other draw, or none,
 * fails rather than produce a value that is not the vector's.
 */
function derandomizedKemFactory(base: KEMFactory, randomness: Uint8Array): KEMFactory {
  const fixed = own(randomness);
  return () => {
    const kem = base();
    return {
      ...kem,
      Encap(pkR: Key) {
        const crypto = globalThis.crypto;
        const shadowed = Object.hasOwn(crypto, 'getRandomValues');
        const previous = crypto.getRandomValues;
        let draws = 0;
        const answer = <T extends ArrayBufferView | null>(array: T): T => {
          draws++;
          if (draws !== 1 || !(array instanceof Uint8Array) || array.length !== fixed.length) throw new Error('unexpected randomness draw in a derandomized Encap');
          array.set(fixed);
          return array;
        };
        Object.defineProperty(crypto, 'getRandomValues', { value: answer, configurable: true, writable: true });
        let encapsulated: ReturnType<KEM['Encap']>;
        try {
          encapsulated = kem.Encap(pkR);
        } finally {
          if (shadowed) Object.defineProperty(crypto, 'getRandomValues', { value: previous, configurable: true, writable: true });
          else delete (crypto as { getRandomValues?: unknown }).getRandomValues;
        }
        if (draws !== 1) return encapsulated.then(() => Promise.reject(new Error('the engine did not draw its encapsulation randomness once')));
        return encapsulated;
      },
    };
  };
}

/**
 * The `hpke` CipherSuite of a suite: made at once for the DHKEM suites, after the engine is loaded
 * for `xwing`. The AEAD is export-only unless a vector needs another in its `suite_id`.
 */
function cipherSuiteOf(name: E2eeSuiteName, options: Build = {}): { ready?: CipherSuite; load: () => Promise<CipherSuite> } {
  if (name === 'x25519' || name === 'p256') {
    const ready = new CipherSuite(kemFactory(KEMS[name], options.ikmE), KDF_HKDF_SHA256, options.aead ?? AEAD_EXPORT_ONLY);
    return { ready, load: async () => ready };
  }
  if (name !== 'xwing') throw argumentError('ERR_INVALID_ARG_VALUE', `unknown e2ee suite ${String(name)}`);
  let loaded: Promise<CipherSuite> | undefined;
  return {
    load: () =>
      (loaded ??= xwingEngine().then((e) => {
        if (options.chacha20poly1305 && !e.chacha20poly1305) throw engineUnavailable();
        const kem = options.ikmE ? derandomizedKemFactory(e.kem, options.ikmE) : e.kem;
        return new CipherSuite(kem, KDF_HKDF_SHA256, options.chacha20poly1305 ? e.chacha20poly1305! : (options.aead ?? AEAD_EXPORT_ONLY));
      })),
  };
}

function build(name: E2eeSuiteName, options: Build = {}): HpkeSuite {
  const { ready, load } = cipherSuiteOf(name, options);
  const info = E2EE_SUITES[name];
  // The DHKEM suites run on the CipherSuite made at once; xwing's is made when its engine has loaded
  // (once), and from then on `suite` is set and no operation waits for anything.
  let suite = ready;
  const cipherSuite = async (): Promise<CipherSuite> => (suite ??= await load());
  const extractable = options.extractable === true;
  const aeadId = options.aead === AEAD_AES_128_GCM ? AEAD_AES_128_GCM_ID : AEAD_EXPORT_ONLY_ID;
  let nodeSuite: NodeHpkeSuite | undefined;

  /**
   * The node:crypto engine when it is the one to use for a new key or operation (x25519 and p256 on
   * Node, unless a test forces the `hpke` engine or the WebCrypto path); undefined for `hpke`.
   */
  function nodeEngine(): NodeHpkeSuite | undefined {
    if (name === 'xwing') return undefined;
    const wanted = options.engine ?? forcedEngine;
    if (wanted === 'hpke') return undefined;
    const n = nodeCryptoModule();
    if (!n) {
      if (options.engine === 'node') throw argumentError('ERR_INVALID_ARG_VALUE', 'the node engine needs node:crypto (and the node:crypto path of lib/crypto)');
      return undefined;
    }
    return (nodeSuite ??= nodeHpkeSuite(name, n, aeadId));
  }
  /** The node:crypto engine of this suite for a key that engine made (even if a test has since forced WebCrypto). */
  function nodeEngineOfKey(): NodeHpkeSuite {
    return (nodeSuite ??= nodeHpkeSuite(name as DhkemName, nodeCryptoModule(true)!, aeadId));
  }

  function pairOf(pair: KeyPair): HpkeKeyPair {
    return Object.freeze({ suite: name, publicKey: Object.freeze({ suite: name, key: pair.publicKey }), pair });
  }
  function nodePairOf(pair: NodeHpkeKeyPair): HpkeKeyPair {
    return Object.freeze({ suite: name, publicKey: Object.freeze({ suite: name, node: pair.publicKey }), node: pair });
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
  // Operations on a key run on the engine that made it, so a key pair made before a switch of
  // engine (a test toggling the crypto path) still completes its exchange.
  async function send(pkR: HpkePublicKey, infoBytes: Uint8Array, psk?: Uint8Array, pskId?: Uint8Array) {
    assertOwn(pkR, 'pkR');
    assertSetupInputs(infoBytes, psk, pskId);
    if (pkR.node) {
      const engine = nodeEngineOfKey();
      try {
        const ephemeral = options.ikmE ? engine.deriveKeyPair(options.ikmE) : undefined;
        const { enc, exporter } = engine.setupS(pkR.node, infoBytes, psk && pskId ? { psk, pskId } : undefined, ephemeral);
        return { enc, exporter: nodeExporterOf(exporter) };
      } catch (cause) {
        if (cause instanceof NodeHpkeKeyError) throw keyShareInvalid(cause);
        throw cause;
      }
    }
    const engine = suite ?? (await cipherSuite());
    try {
      const { encapsulatedSecret, ctx } = await engine.SetupSender(pkR.key!, setupOptions(infoBytes, psk, pskId));
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
    if (keyPair.node) {
      try {
        return nodeExporterOf(nodeEngineOfKey().setupR(enc, keyPair.node, infoBytes, psk && pskId ? { psk, pskId } : undefined));
      } catch (cause) {
        if (cause instanceof NodeHpkeKeyError) throw keyShareInvalid(cause);
        throw cause;
      }
    }
    const engine = suite ?? (await cipherSuite());
    try {
      return exporterOf(await engine.SetupRecipient(keyPair.pair!, own(enc), setupOptions(infoBytes, psk, pskId)));
    } catch (cause) {
      if (cause instanceof NotSupportedError) throw cause;
      throw keyShareInvalid(cause);
    }
  }

  return Object.freeze({
    info,
    async generateKeyPair() {
      const node = nodeEngine();
      if (node) return nodePairOf(node.generateKeyPair());
      return pairOf(await (suite ?? (await cipherSuite())).GenerateKeyPair(false));
    },
    async deriveKeyPair(ikm: Uint8Array) {
      // RFC 9180 section 7.1.3 asks for ikm of at least Nsk (32) octets of entropy.
      assertBytes(ikm, 'ikm', 32, 1024);
      const node = nodeEngine();
      if (node) return nodePairOf(node.deriveKeyPair(own(ikm)));
      return pairOf(await (suite ?? (await cipherSuite())).DeriveKeyPair(own(ikm), extractable));
    },
    async serializePublicKey(key: HpkePublicKey) {
      assertOwn(key, 'key');
      if (key.node) return own(key.node.raw);
      return (suite ?? (await cipherSuite())).SerializePublicKey(key.key!);
    },
    async deserializePublicKey(bytes: Uint8Array) {
      if (!(bytes instanceof Uint8Array)) throw argumentError('ERR_INVALID_ARG_TYPE', 'a key share must be a Uint8Array');
      if (bytes.length !== info.publicKeyLength) throw keyShareInvalid();
      // SerializePublicKey of P-256 is the uncompressed point (SEC1 0x04 || x || y). WebCrypto's raw
      // import also takes the hybrid forms 0x06/0x07 of the same length, so the prefix is ours to check.
      if (name === 'p256' && bytes[0] !== 0x04) throw keyShareInvalid();
      // X-Wing's DeserializePublicKey is the identity: the ML-KEM key check is ours to run.
      if (name === 'xwing' && !mlkemEncapsulationKeyOk(bytes)) throw keyShareInvalid();
      const node = nodeEngine();
      if (node) {
        try {
          return Object.freeze({ suite: name, node: node.deserializePublicKey(bytes) });
        } catch (cause) {
          if (cause instanceof NodeHpkeKeyError) throw keyShareInvalid(cause);
          throw cause;
        }
      }
      const engine = suite ?? (await cipherSuite());
      try {
        return Object.freeze({ suite: name, key: await engine.DeserializePublicKey(own(bytes)) });
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
 * The HPKE suite of the profile with this name; an unknown name throws a `TypeError`
 * (`ERR_INVALID_ARG_VALUE`). For `xwing` the engine is imported on the suite's first operation, so
 * without `@panva/hpke-noble` every operation rejects with a `TypeError` (`ERR_INVALID_ARG_VALUE`)
 * that names the package; {@link loadHpkeSuite} surfaces that before any key is used.
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
 * The suite once it can run: resolves at once for `x25519` and `p256`; for `xwing` after its engine
 * is imported.
 * @throws TypeError `ERR_INVALID_ARG_VALUE` naming the package to install when the `xwing` engine
 *   cannot be imported (or is not the expected KEM).
 */
export async function loadHpkeSuite(name: E2eeSuiteName): Promise<HpkeSuite> {
  const suite = hpkeSuite(name);
  if (name === 'xwing') await xwingEngine();
  return suite;
}

/**
 * Starts importing the engines of these suites, so that the first handshake does not wait for it:
 * nothing for `x25519` and `p256`. A failure is not thrown here (nothing awaits it); the first
 * operation of the suite reports it.
 */
export function preloadHpkeSuites(names: readonly E2eeSuiteName[]): void {
  if (names.includes('xwing')) xwingEngine().catch(() => undefined);
}

/**
 * Test hooks, not part of any public entry point: a suite whose sender ephemeral is fixed (for
 * reproducible examples and vectors: derived from `ikmE` for the DHKEM suites, `ikmE` as X-Wing's
 * 64 octets of encapsulation randomness), with extractable derived keys, and, for vectors of suites
 * other than export-only, with AES-128-GCM (RFC 9180) or ChaCha20Poly1305 (draft-ietf-hpke-pq, from
 * the xwing engine) in the key schedule; and a replaceable import of the xwing engine.
 * @internal
 */
export const testing = Object.freeze({
  suite(name: E2eeSuiteName, options: { ikmE?: Uint8Array; aead?: 'export-only' | 'aes-128-gcm' | 'chacha20-poly1305'; engine?: HpkeEngineName } = {}): HpkeSuite {
    if (options.ikmE !== undefined) {
      if (name === 'xwing') assertBytes(options.ikmE, 'ikmE', XWING_ENCAP_RANDOMNESS, XWING_ENCAP_RANDOMNESS);
      else assertBytes(options.ikmE, 'ikmE', 32, 1024);
    }
    if (options.aead === 'chacha20-poly1305' && name !== 'xwing') throw argumentError('ERR_INVALID_ARG_VALUE', 'chacha20-poly1305 comes with the xwing engine');
    return build(name, {
      ikmE: options.ikmE,
      aead: options.aead === 'aes-128-gcm' ? AEAD_AES_128_GCM : AEAD_EXPORT_ONLY,
      chacha20poly1305: options.aead === 'chacha20-poly1305',
      extractable: true,
      ...(options.engine ? { engine: options.engine } : {}),
    });
  },
  /**
   * Forces the engine of `x25519` and `p256` for new keys of every suite (`undefined`: node:crypto
   * on Node's node:crypto path, else `hpke`), so a test can run the production suites on either.
   */
  engine(name: HpkeEngineName | undefined): void {
    forcedEngine = name;
  },
  /**
   * Replaces the import of the xwing engine (`undefined`: the real one) and forgets what was
   * loaded, so a test can run as if `@panva/hpke-noble` were missing, or count imports.
   */
  xwingEngineImport(load: (() => Promise<unknown>) | undefined): void {
    engineImport = load ?? importEngine;
    engine = undefined;
    cache.delete('xwing');
  },
  /**
   * A key pair from a serialised private key (RFC 9180 `DeserializePrivateKey`), for published
   * examples, on the engine named (default: the one new keys get).
   */
  async keyPairFromPrivateKey(name: E2eeSuiteName, privateKey: Uint8Array, engineName?: HpkeEngineName): Promise<HpkeKeyPair> {
    if (name !== 'x25519' && name !== 'p256') throw argumentError('ERR_INVALID_ARG_VALUE', 'keyPairFromPrivateKey takes x25519 and p256 keys');
    const n = (engineName ?? forcedEngine) === 'hpke' ? undefined : nodeCryptoModule(engineName === 'node');
    if (n) {
      const pair = nodeHpkeSuite(name, n).keyPairFromPrivateKey(own(privateKey));
      return Object.freeze({ suite: name, publicKey: Object.freeze({ suite: name, node: pair.publicKey }), node: pair });
    }
    const suite = new CipherSuite(KEMS[name], KDF_HKDF_SHA256, AEAD_EXPORT_ONLY);
    const sk = (await suite.DeserializePrivateKey(own(privateKey), true)) as CryptoKey;
    const subtle = globalThis.crypto.subtle;
    const { kty, crv, x, y } = await subtle.exportKey('jwk', sk);
    const pk = await subtle.importKey('jwk', { kty, crv, x, y }, sk.algorithm, true, []);
    return Object.freeze({ suite: name, publicKey: Object.freeze({ suite: name, key: pk }), pair: { privateKey: sk, publicKey: pk } });
  },
  /** The private key of a pair made by a `testing.suite`, serialised (RFC 9180 `SerializePrivateKey`). */
  async serializePrivateKey(name: E2eeSuiteName, keyPair: HpkeKeyPair): Promise<Uint8Array> {
    if (keyPair.node) return nodeHpkeSuite(name as DhkemName, nodeCryptoModule(true)!).serializePrivateKey(keyPair.node);
    const { ready, load } = cipherSuiteOf(name);
    return (ready ?? (await load())).SerializePrivateKey(keyPair.pair!.privateKey);
  },
});
