// The DPoP proof module on its own context: codes of its failures, and the jti recorded last,
// after beforeRecord.
import { createDpopProof, dpopBinding, type HttpRequest } from '@oidc2/core';
import { verifyDpopRequest } from '../../src/proofs/dpop';
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

async function dpopRequest(): Promise<HttpRequest> {
  const proof = await createDpopProof({ method: 'GET', url: 'https://api.example.com/orders', key: key.signer, jwk: key.publicJwk, accessToken: ict, now: () => T });
  return { method: 'GET', url: '/orders?id=7', headers: { authorization: [`DPoP ${ict}`], dpop: [proof] } };
}

describe('verifyDpopRequest', () => {
  it('returns the caller with the DPoP binding and records the jti once', async () => {
    const ctx = proofContext(T, { op });
    const request = await dpopRequest();
    await expect(verifyDpopRequest(request, ict, ctx)).resolves.toMatchObject({ subject: 'alice', proof: 'dpop', binding: dpopBinding() });
    expect(ctx.replayStore.recorded).toBe(1);
    expect(await settledCode(verifyDpopRequest(request, ict, ctx))).toBe('replay_detected');
  });

  it('refuses by code: no token, no proof field, another method, another token', async () => {
    const ctx = proofContext(T, { op });
    const request = await dpopRequest();
    expect(await settledCode(verifyDpopRequest(request, '', ctx))).toBe('ict_missing');
    expect(await settledCode(verifyDpopRequest({ ...request, headers: { authorization: request.headers.authorization! } }, ict, ctx))).toBe('dpop_invalid');
    expect(await settledCode(verifyDpopRequest({ ...request, method: 'POST' }, ict, ctx))).toBe('dpop_invalid');
    expect(await settledCode(verifyDpopRequest(request, 'a.b.c', ctx))).toBe('ict_malformed');
    expect(ctx.replayStore.recorded).toBe(0);
  });

  it('runs beforeRecord after every check and records nothing when it throws', async () => {
    const ctx = proofContext(T, { op });
    const request = await dpopRequest();
    const hook = jest.fn(() => Promise.reject(new Error('session refused')));
    await expect(verifyDpopRequest(request, ict, ctx, { beforeRecord: hook })).rejects.toThrow('session refused');
    expect(hook).toHaveBeenCalledWith(expect.objectContaining({ subject: 'alice', proof: 'dpop' }));
    expect(ctx.replayStore.recorded).toBe(0);
    await expect(verifyDpopRequest(request, ict, ctx, { beforeRecord: () => undefined })).resolves.toMatchObject({ subject: 'alice' });
    expect(ctx.replayStore.recorded).toBe(1);
  });
});
