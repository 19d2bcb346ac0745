/**
 * The key exchanges of end-to-end encryption (docs/protocol.md section 7), both sides, as pure
 * functions of their inputs: the handshake (HPKE Base mode) and the rekey (PSK mode with the current
 * root), each bound to the signed request by its transcript hash. No HTTP here: the exchange of a
 * request calls them through `service-side.ts`.
 */
import { Oidc2Error } from '../errors.js';
import { E2EE_SUITES, hpkeSuite, type HpkeExporter, type HpkeKeyPair } from './hpke.js';
import type { KeyShare, RequestKeyShare, SuiteName } from './fields.js';
import {
  E2EE_LABELS,
  SESSION_KEY_LENGTH,
  SID_LENGTH,
  handshakeInfo,
  handshakeTranscript,
  rekeyInfo,
  rekeyPskId,
  rekeyTranscript,
  type PartyIdentity,
} from './transcript.js';
import { utf8 } from '../lib/base64.js';

/** What a key exchange is bound to, besides the chosen suite. */
export interface ExchangeBinding {
  /** `KS`: the request's `Oidc2-Key-Share` re-serialised canonically. */
  readonly keyShare: string;
  /** `N`: the request signature's nonce as sent. */
  readonly nonce: string;
  /** `AUD`: the request signature's audience parameter. */
  readonly audience: string;
  readonly caller: PartyIdentity;
  readonly service: PartyIdentity;
}

/** The secrets a handshake or rekey yields: the new root, the session id, the response body key. */
export interface ExchangedKeys {
  readonly suite: SuiteName;
  /** `rk`: the root of the new epoch. */
  readonly rk: Uint8Array;
  /** `sid`: new after a handshake, unchanged by a rekey. */
  readonly sid: Uint8Array;
  /** `K_hs` / `K_rk`: the IKM of this response's body. */
  readonly responseKey: Uint8Array;
}

/** The service's side: the keys and the `enc` its response carries in `Oidc2-Key-Share`. */
export interface ServiceExchange extends ExchangedKeys {
  readonly enc: Uint8Array;
}

/**
 * Picks the first suite in the service's preference order that the caller offered.
 * @throws `e2ee_kem_unsupported` (400) when none is shared; its problem member `kems` lists the service's suites.
 */
export function chooseSuite(offered: RequestKeyShare, preference: readonly SuiteName[]): KeyShare {
  for (const suite of preference) {
    if (!E2EE_SUITES[suite].implemented) continue;
    const share = offered.shares.find((s) => s.suite === suite);
    if (share) return share;
  }
  throw new Oidc2Error('e2ee_kem_unsupported', `none of the offered suites is supported; this service supports: ${preference.join(' ')}`, {
    extensions: { kems: [...preference] },
  });
}

async function exported(exporter: HpkeExporter, sid: Uint8Array | undefined): Promise<{ rk: Uint8Array; sid: Uint8Array; responseKey: Uint8Array }> {
  const [rk, responseKey] = await Promise.all([
    exporter.export(utf8(E2EE_LABELS.exportSession), SESSION_KEY_LENGTH),
    exporter.export(utf8(E2EE_LABELS.exportResponse), SESSION_KEY_LENGTH),
  ]);
  return { rk, responseKey, sid: sid ?? (await exporter.export(utf8(E2EE_LABELS.exportSid), SID_LENGTH)) };
}

/**
 * The service's side of a handshake: validates the caller's share (`e2ee_key_share_invalid`), runs
 * `SetupBaseS` with the transcript-bound `info`, and derives `rk`, `sid` and `K_hs`.
 */
export async function acceptHandshake(share: KeyShare, binding: ExchangeBinding): Promise<ServiceExchange> {
  const suite = hpkeSuite(share.suite);
  const pkC = await suite.deserializePublicKey(share.key);
  const info = handshakeInfo(await handshakeTranscript({ suite: share.suite, ...binding }));
  const { enc, exporter } = await suite.setupBaseS(pkC, info);
  return { suite: share.suite, enc, ...(await exported(exporter, undefined)) };
}

/**
 * The service's side of a rekey: `SetupPSKS` with the current root as PSK and
 * `"oidc2-e2ee-v1 psk" || sid` as its identity; derives `rk'` and `K_rk`, keeps `sid`.
 */
export async function acceptRekey(share: KeyShare, binding: ExchangeBinding, session: { rk: Uint8Array; sid: Uint8Array }): Promise<ServiceExchange> {
  const suite = hpkeSuite(share.suite);
  const pkC = await suite.deserializePublicKey(share.key);
  const info = rekeyInfo(await rekeyTranscript({ suite: share.suite, ...binding, sid: session.sid }));
  const { enc, exporter } = await suite.setupPSKS(pkC, info, session.rk, rekeyPskId(session.sid));
  return { suite: share.suite, enc, ...(await exported(exporter, session.sid)) };
}

/**
 * The caller's side of a handshake, once the response's signature and service are verified: runs
 * `SetupBaseR` with the key pair of the suite the service chose (which the caller must have offered)
 * and derives the same keys. A substituted `enc` or transcript yields other keys, so the response
 * body does not decrypt.
 */
export async function completeHandshake(chosen: KeyShare, keyPairs: ReadonlyMap<SuiteName, HpkeKeyPair>, binding: ExchangeBinding): Promise<ExchangedKeys> {
  const keyPair = keyPairs.get(chosen.suite);
  if (!keyPair) throw new Oidc2Error('e2ee_response_suite_mismatch', 'the service chose a suite the caller did not offer');
  const info = handshakeInfo(await handshakeTranscript({ suite: chosen.suite, ...binding }));
  const exporter = await hpkeSuite(chosen.suite).setupBaseR(chosen.key, keyPair, info);
  return { suite: chosen.suite, ...(await exported(exporter, undefined)) };
}

/** The caller's side of a rekey: `SetupPSKR` with the root and session id it holds. */
export async function completeRekey(
  chosen: KeyShare,
  keyPairs: ReadonlyMap<SuiteName, HpkeKeyPair>,
  binding: ExchangeBinding,
  session: { rk: Uint8Array; sid: Uint8Array },
): Promise<ExchangedKeys> {
  const keyPair = keyPairs.get(chosen.suite);
  if (!keyPair) throw new Oidc2Error('e2ee_response_suite_mismatch', 'the service chose a suite the caller did not offer');
  const info = rekeyInfo(await rekeyTranscript({ suite: chosen.suite, ...binding, sid: session.sid }));
  const exporter = await hpkeSuite(chosen.suite).setupPSKR(chosen.key, keyPair, info, session.rk, rekeyPskId(session.sid));
  return { suite: chosen.suite, ...(await exported(exporter, session.sid)) };
}
