// A ProofContext for the proof modules, built from plain parts (no authenticator), with a
// replay store that counts what is recorded.
import { createIctVerifier } from '../../src/ict';
import { createWitVerifier } from '../../src/wimse';
import { MemoryReplayStore } from '../../src/replay-store';
import { audienceMatcher } from '../../src/lib/audience';
import { verifyContentDigest } from '../../src/content-digest';
import { fieldLines } from '../../src/message';
import type { ProofContext } from '../../src/proofs/context';
import type { TestIssuer } from '../../../../test/support/credentials';

export class CountingStore extends MemoryReplayStore {
  recorded = 0;
  override async checkAndRecord(key: string, expiresAt: number, now: number): Promise<boolean> {
    this.recorded++;
    return super.checkAndRecord(key, expiresAt, now);
  }
}

export function proofContext(
  at: number,
  init: { op?: TestIssuer; audiences?: string[]; wit?: { trustDomain: string; jwks: { keys: object[] } } } = {},
): ProofContext & { replayStore: CountingStore } {
  const now = () => at;
  return {
    ictVerifier: createIctVerifier({ issuers: init.op ? [{ issuer: init.op.issuer, jwks: init.op.jwks }] : [{ issuer: 'https://unused.example', jwks: { keys: [{ kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' }] } }], now }),
    ...(init.wit ? { witVerifier: createWitVerifier({ trustDomains: [init.wit as never], now }) } : {}),
    replayStore: new CountingStore(),
    now,
    clockTolerance: 60,
    maxSignatureAge: 300,
    maxHeaderBytes: 8192,
    audiences: audienceMatcher(init.audiences ?? ['https://api.example.com'], 'audiences'),
    requiredComponents: [],
    async checkDigest(request, requiredForBody) {
      const lines = fieldLines(request.headers, 'content-digest');
      const body = request.body !== undefined && request.body.length > 0;
      if (!lines && !(body && requiredForBody)) return;
      await verifyContentDigest(lines, request.body ?? new Uint8Array(0), { required: body && requiredForBody });
    },
    async transaction() {
      return undefined;
    },
  };
}
