// The issuer's signing keys: one active key signs; retired keys stay published until every ICT
// they signed has expired (retention = longest ICT lifetime + clock tolerance), then drop out.
import { ASYMMETRIC_JWA, jwkAlgorithm, publicJwk } from '@oidc2/core';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK, type KeyObject } from 'jose';
import { argumentError } from '@oidc2/core/adapter';
import type { SigningKeyStore } from '../signing-key-store.js';

/** JWS algorithms the issuer signs with: the asymmetric allow-list of the core. */
export const SIGNING_ALGORITHMS = ASYMMETRIC_JWA;
/** A JWS algorithm the issuer signs with (and accepts for PoP tokens and DPoP proofs). */
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];

/** Whether the JWK's type and curve fit the JWS algorithm (RSA at least 2048 bits). */
export function keyFitsAlgorithm(jwk: JWK, alg: string): boolean {
  return jwkAlgorithm({ ...publicJwk(jwk), alg }) === alg;
}

export interface SigningKey {
  kid: string;
  alg: SigningAlgorithm;
  key: CryptoKey | KeyObject;
  /** Published form: public members, `kid`, `alg`, `use`. */
  jwk: JWK;
  /** Unix seconds when the key stopped signing; undefined while active. */
  retiredAt?: number;
  /** The private JWK, kept only when a store persists the keys. */
  privateJwk?: JWK;
}

async function fromPrivateJwk(jwk: JWK, index: number, where = `options.signingKeys[${index}]`): Promise<SigningKey> {
  if (typeof jwk !== 'object' || jwk === null) throw argumentError('ERR_INVALID_ARG_TYPE', `${where} must be a JWK object`);
  if (typeof jwk.kid !== 'string' || jwk.kid.length === 0) throw argumentError('ERR_INVALID_ARG_VALUE', `${where} needs a kid`);
  const alg = jwk.alg as SigningAlgorithm;
  if (!SIGNING_ALGORITHMS.includes(alg)) throw argumentError('ERR_INVALID_ARG_VALUE', `${where}.alg must be one of ${SIGNING_ALGORITHMS.join(', ')}`);
  if (jwk.d === undefined) throw argumentError('ERR_INVALID_ARG_VALUE', `${where} must be a private key`);
  if (!keyFitsAlgorithm(jwk, alg)) throw argumentError('ERR_INVALID_ARG_VALUE', `${where} does not fit alg ${alg}`);
  let key: CryptoKey | KeyObject | Uint8Array;
  try {
    key = await importJWK(jwk, alg);
  } catch (cause) {
    throw argumentError('ERR_INVALID_ARG_VALUE', `${where} cannot be imported`, { cause });
  }
  return { kid: jwk.kid, alg, key: key as CryptoKey, jwk: { ...publicJwk(jwk), kid: jwk.kid, alg, use: 'sig' }, privateJwk: jwk };
}

async function generate(alg: SigningAlgorithm): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...(alg.startsWith('RS') || alg.startsWith('PS') ? { modulusLength: 2048 } : {}) });
  const pub = publicJwk(await exportJWK(publicKey));
  const kid = await calculateJwkThumbprint(pub, 'sha256');
  return { kid, alg, key: privateKey, jwk: { ...pub, kid, alg, use: 'sig' }, privateJwk: { ...(await exportJWK(privateKey)), kid, alg } };
}

export interface KeyRingOptions {
  /** Seconds a retired key stays published. */
  retention: number;
  /** Algorithm of generated keys. */
  algorithm: SigningAlgorithm;
  /** Seconds after which the active key is replaced; undefined: never. */
  rotationInterval?: number;
  /** Where the keys persist across restarts. */
  store?: SigningKeyStore;
}

export class KeyRing {
  private keys: SigningKey[] = [];
  private activatedAt = 0;
  private rotating: Promise<void> | undefined;

  private constructor(private readonly options: KeyRingOptions) {}

  /** The first configured key signs; the others are published as retired keys from `now`. */
  static async create(configured: JWK[] | undefined, options: KeyRingOptions, now: number): Promise<KeyRing> {
    const ring = new KeyRing(options);
    if (options.store) {
      const stored = await options.store.load();
      if (stored !== undefined) {
        ring.keys = await Promise.all(
          stored.keys.map(async (entry, i) => ({ ...(await fromPrivateJwk(entry.jwk, i, `the stored signing key ${i}`)), ...(entry.retiredAt !== undefined ? { retiredAt: entry.retiredAt } : {}) })),
        );
        if (ring.keys.length === 0 || ring.keys[0]!.retiredAt !== undefined) throw argumentError('ERR_INVALID_ARG_VALUE', 'the stored signing keys have no signing key');
        ring.activatedAt = stored.activatedAt;
        ring.prune(now);
        return ring;
      }
    }
    if (configured !== undefined && configured.length > 0) {
      const keys = await Promise.all(configured.map((jwk, i) => fromPrivateJwk(jwk, i)));
      const kids = new Set(keys.map((k) => k.kid));
      if (kids.size !== keys.length) throw argumentError('ERR_INVALID_ARG_VALUE', 'options.signingKeys have duplicate kids');
      keys.slice(1).forEach((k) => (k.retiredAt = now));
      ring.keys = keys;
    } else {
      ring.keys = [await generate(options.algorithm)];
    }
    ring.activatedAt = now;
    await ring.save();
    return ring;
  }

  private async save(): Promise<void> {
    const store = this.options.store;
    if (!store) return;
    await store.save({
      activatedAt: this.activatedAt,
      keys: this.keys.map((k) => ({ jwk: k.privateJwk!, ...(k.retiredAt !== undefined ? { retiredAt: k.retiredAt } : {}) })),
    });
  }

  /** Makes `jwk` (or a fresh key of the configured algorithm) the signing key; the old one retires. */
  async rotate(now: number, jwk?: JWK): Promise<SigningKey> {
    const next = jwk === undefined ? await generate(this.options.algorithm) : await fromPrivateJwk(jwk, this.keys.length);
    if (this.keys.some((k) => k.kid === next.kid)) throw argumentError('ERR_INVALID_ARG_VALUE', 'a key with this kid is already published');
    const before = { keys: this.keys.map((k) => ({ ...k })), activatedAt: this.activatedAt };
    for (const k of this.keys) k.retiredAt ??= now;
    this.keys.unshift(next);
    this.activatedAt = now;
    this.prune(now);
    try {
      await this.save();
    } catch (error) {
      // Never sign with a key the store does not hold: the old key goes on signing.
      this.keys = before.keys;
      this.activatedAt = before.activatedAt;
      throw error;
    }
    return next;
  }

  /** The signing key, rotating first when the interval has passed. */
  async active(now: number): Promise<SigningKey> {
    const interval = this.options.rotationInterval;
    if (interval !== undefined && now - this.activatedAt >= interval) {
      // Single-flight: concurrent requests share one rotation.
      this.rotating ??= this.rotate(now).then(
        () => undefined,
        () => undefined,
      ).finally(() => (this.rotating = undefined));
      await this.rotating;
    }
    return this.keys[0]!;
  }

  /** Published keys (public members only), after dropping those past retention. */
  async jwks(now: number): Promise<{ keys: JWK[] }> {
    await this.active(now);
    this.prune(now);
    return { keys: this.keys.map((k) => ({ ...k.jwk })) };
  }

  /** Algorithms of the published keys. */
  algorithms(): string[] {
    return [...new Set(this.keys.map((k) => k.alg))];
  }

  private prune(now: number): void {
    this.keys = this.keys.filter((k) => k.retiredAt === undefined || now < k.retiredAt + this.options.retention);
  }
}
