// The WPT proof module on its own context, with the WIMSE draft vectors: codes of its failures
// (400), and the jti recorded last, after beforeRecord.
import { isOidc2Error, normalizeFields, wptBinding, WIT_HEADER, type HttpRequest } from '@oidc2/core';
import { verifyWptRequest } from '../../src/proofs/wpt';
import { utf8 } from '../../src/lib/base64';
import vectors from '../fixtures/wimse/vectors.json';
import { proofContext } from './support';

const NOW = 1745509800;
const { d: _d, ...issuerPublic } = vectors.issuerKey as Record<string, string>;
const wit = { trustDomain: 'example.com', jwks: { keys: [issuerPublic] } };
const context = () => proofContext(NOW, { audiences: ['https://workload.example.com'], wit });

function wptRequest(headers: Record<string, string> = { [WIT_HEADER]: vectors.wit }): HttpRequest {
  return { method: 'POST', url: '/path', headers: normalizeFields({ 'content-type': 'application/json', authorization: `WPT ${vectors.wpt}`, ...headers }), body: utf8('{"do stuff":"please"}') };
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (error) {
    if (isOidc2Error(error)) return `${error.code}/${error.status}`;
    throw error;
  }
  return 'accepted';
}

describe('verifyWptRequest', () => {
  it('returns the workload with the WPT binding and records the jti once', async () => {
    const ctx = context();
    await expect(verifyWptRequest(wptRequest(), vectors.wpt, undefined, ctx)).resolves.toMatchObject({ subject: vectors.subject, proof: 'wpt', binding: wptBinding() });
    expect(ctx.replayStore.recorded).toBe(1);
    expect(await code(verifyWptRequest(wptRequest(), vectors.wpt, undefined, ctx))).toBe('wpt_invalid/400');
  });

  it('refuses by code: no WIT, a changed WPT, an unexpected access token, no workloads configured', async () => {
    const ctx = context();
    expect(await code(verifyWptRequest(wptRequest({}), vectors.wpt, undefined, ctx))).toBe('wit_missing/400');
    expect(await code(verifyWptRequest(wptRequest(), `${vectors.wpt}x`, undefined, ctx))).toBe('wpt_invalid/400');
    expect(await code(verifyWptRequest(wptRequest(), vectors.wpt, 'bearer-token', ctx))).toBe('wpt_invalid/400');
    expect(await code(verifyWptRequest(wptRequest(), vectors.wpt, undefined, proofContext(NOW, { audiences: ['https://workload.example.com'] })))).toBe('proof_not_accepted/401');
    expect(ctx.replayStore.recorded).toBe(0);
  });

  it('runs beforeRecord after every check and records nothing when it throws', async () => {
    const ctx = context();
    const hook = jest.fn(() => {
      throw new Error('session refused');
    });
    await expect(verifyWptRequest(wptRequest(), vectors.wpt, undefined, ctx, { beforeRecord: hook })).rejects.toThrow('session refused');
    expect(hook).toHaveBeenCalledWith(expect.objectContaining({ subject: vectors.subject, proof: 'wpt' }));
    expect(ctx.replayStore.recorded).toBe(0);
    await expect(verifyWptRequest(wptRequest(), vectors.wpt, undefined, ctx)).resolves.toMatchObject({ proof: 'wpt' });
  });
});
