/**
 * The WIMSE proof (docs/protocol.md section 3a): a Workload Identity Token with a Workload Proof Token. Failures
 * are 400, as the WIMSE drafts say.
 */
import { Oidc2Error } from '../errors.js';
import { fieldLines, type HttpRequest } from '../message.js';
import { WIT_HEADER } from '../profile.js';
import { verifyWpt } from '../wimse.js';
import { TXN_TOKEN_HEADER } from '../txn-token.js';
import { wptBinding } from '../binding.js';
import type { Identity } from '../authenticator.js';
import { singleField, witIdentity, type ProofContext, type ProofHooks } from './context.js';

/**
 * Verifies the WPT `wpt` of `request` with the WIT in its {@link WIT_HEADER} field and returns the
 * workload. `bearer` is the access token the WPT binds through `ath` (legacy header only). Order:
 * WPT size; the WIT; Txn-Token; Content-Digest when sent; the WPT, whose `jti` is recorded last,
 * right after `hooks.beforeRecord`. Throws `Oidc2Error` (`wit_*`, `wpt_invalid`, `digest_*`, ...).
 *
 * @example
 * ```ts
 * const identity = await verifyWptRequest(request, wpt, undefined, context)
 * ```
 */
export async function verifyWptRequest(request: HttpRequest, wpt: string, bearer: string | undefined, ctx: ProofContext, hooks: ProofHooks = {}): Promise<Identity> {
  if (!ctx.witVerifier) throw new Oidc2Error('proof_not_accepted', 'Workload Proof Tokens are not accepted by this service');
  if (wpt.length > ctx.maxHeaderBytes) throw new Oidc2Error('header_too_large', `the Workload Proof Token exceeds ${ctx.maxHeaderBytes} bytes`);
  const witToken = singleField(request, WIT_HEADER, ctx.maxHeaderBytes, () => new Oidc2Error('wit_missing', 'the Workload-Identity-Token header is missing'));
  const wit = ctx.witVerifier.verifyCached?.(witToken) ?? (await ctx.witVerifier.verify(witToken));
  const transaction = await ctx.transaction(request);
  await ctx.checkDigest(request, false);
  const txn = fieldLines(request.headers, TXN_TOKEN_HEADER);
  const identity = witIdentity(wit, 'wpt', wptBinding(), transaction);
  await verifyWpt(wpt, {
    wit,
    witToken,
    method: request.method,
    audience: ctx.audiences.candidates(request.url),
    now: ctx.now(),
    clockTolerance: ctx.clockTolerance,
    maxAge: ctx.maxSignatureAge,
    replayStore: ctx.replayStore,
    ...(bearer !== undefined ? { accessToken: bearer } : {}),
    ...(txn?.length === 1 ? { transactionToken: txn[0]!.trim() } : {}),
    ...(hooks.beforeRecord ? { beforeRecord: () => hooks.beforeRecord!(identity) } : {}),
  });
  return identity;
}
