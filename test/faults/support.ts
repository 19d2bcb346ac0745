// What the fault suites share: a signed request sent over a real socket, and its outcome.
import { signRequest } from '@oidc2/core';
import type { TestIssuer, TestKey } from '../support/credentials';

export interface Outcome {
  status: number;
  /** The problem's `code`, for an error. */
  code: string | undefined;
  /** Milliseconds from send to the end of the answer. */
  ms: number;
}

/** Sends a GET to `url`, signed with an ICT of `issuer` for `key`. */
export async function signedGet(url: string, issuer: TestIssuer, key: TestKey, init: { signResponse?: boolean; now?: number } = {}): Promise<Outcome> {
  const now = init.now;
  const signed = await signRequest(
    { method: 'GET', url },
    { ict: await issuer.mint(key, now === undefined ? {} : { now }), key: key.signer, signResponse: init.signResponse ?? false, ...(now === undefined ? {} : { now: () => now }) },
  );
  const started = performance.now();
  const response = await fetch(signed.url, { headers: Object.entries(signed.headers).flatMap(([n, ls]) => ls.map((l) => [n, l] as [string, string])), signal: AbortSignal.timeout(20_000) });
  const text = await response.text();
  const code = response.status >= 400 ? (JSON.parse(text) as { code?: string }).code : undefined;
  return { status: response.status, code, ms: performance.now() - started };
}
