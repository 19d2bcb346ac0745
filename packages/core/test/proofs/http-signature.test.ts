// The HTTP-signature proof module on its own context: codes of its failures, and the nonce
// recorded last, after beforeRecord.
import { OIDC2_PROFILE, signRequest, type HttpRequest } from '@oidc2/core';
import { verifyHttpSignatureProof } from '../../src/proofs/http-signature';
import { newIssuer, newKey, type TestIssuer, type TestKey } from '../../../../test/support/credentials';
import { proofContext } from './support';
import { settledCode } from '../../../../test/support/error-code';

const T = 1_790_000_000;
let op: TestIssuer;
let key: TestKey;
let ict: string;

beforeAll(async () => {
  op = await newIssuer('https://op.example.com');
  key = await newKey('ES256');
  ict = await op.mint(key, { now: T - 10, subject: 'alice' });
});

async function signed(): Promise<HttpRequest> {
  const s = await signRequest({ method: 'GET', url: 'https://api.example.com/orders?id=7' }, { ict, key: key.signer, now: () => T });
  return { method: s.method, url: '/orders?id=7', headers: s.headers };
}

describe('verifyHttpSignatureProof', () => {
  it('returns the caller bound by the profile and records the nonce once', async () => {
    const ctx = proofContext(T, { op });
    const request = await signed();
    const identity = await verifyHttpSignatureProof(request, OIDC2_PROFILE, ctx);
    expect(identity).toMatchObject({ subject: 'alice', proof: 'http-signature', binding: { proof: 'http-signature', profile: OIDC2_PROFILE, signResponse: true, requestFields: [] } });
    expect(identity.binding.nonce).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(ctx.replayStore.recorded).toBe(1);
    expect(await settledCode(verifyHttpSignatureProof(request, OIDC2_PROFILE, ctx))).toBe('replay_detected');
  });

  it('refuses by code: no tagged signature, no token, wrong audience, changed method', async () => {
    const ctx = proofContext(T, { op });
    const request = await signed();
    const { 'signature-input': _i, ...noInput } = request.headers;
    expect(await settledCode(verifyHttpSignatureProof({ ...request, headers: noInput }, OIDC2_PROFILE, ctx))).toBe('signature_missing');
    const { [OIDC2_PROFILE.tokenHeader]: _t, ...noToken } = request.headers;
    expect(await settledCode(verifyHttpSignatureProof({ ...request, headers: noToken }, OIDC2_PROFILE, ctx))).toBe('ict_missing');
    expect(await settledCode(verifyHttpSignatureProof({ ...request, method: 'DELETE' }, OIDC2_PROFILE, ctx))).toBe('signature_invalid');
    expect(await settledCode(verifyHttpSignatureProof(request, OIDC2_PROFILE, proofContext(T, { op, audiences: ['https://other.example.com'] })))).toBe('audience_mismatch');
    expect(await settledCode(verifyHttpSignatureProof(request, OIDC2_PROFILE, proofContext(T + 3600, { op })))).toBe('ict_expired');
    expect(ctx.replayStore.recorded).toBe(0);
  });

  it('runs beforeRecord after every check and records nothing when it throws', async () => {
    const ctx = proofContext(T, { op });
    const request = await signed();
    const seen: string[] = [];
    const refused = verifyHttpSignatureProof(request, OIDC2_PROFILE, ctx, {
      beforeRecord: (identity) => {
        seen.push(identity.subject);
        throw new Error('session refused');
      },
    });
    await expect(refused).rejects.toThrow('session refused');
    expect(seen).toEqual(['alice']);
    expect(ctx.replayStore.recorded).toBe(0);
    // The nonce was not spent: the same request is accepted once.
    await expect(verifyHttpSignatureProof(request, OIDC2_PROFILE, ctx)).resolves.toMatchObject({ subject: 'alice' });
  });

  it('does not run beforeRecord for a request that fails a check', async () => {
    const hook = jest.fn();
    const request = await signed();
    expect(await settledCode(verifyHttpSignatureProof({ ...request, method: 'POST' }, OIDC2_PROFILE, proofContext(T, { op }), { beforeRecord: hook }))).toBe('signature_invalid');
    expect(hook).not.toHaveBeenCalled();
  });
});
