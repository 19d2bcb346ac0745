// Forward secrecy as docs/e2ee.md states it, checked on recorded traffic of real services:
// after a rekey the old root (from the caller's memory, or from the old token opened with the STEK)
// opens none of the new bodies, and the rekey response opens with neither root; after the STEK is
// deleted, nothing the service keeps opens the token, so the recorded session bodies stay closed.
import { MemorySessionKeyStore, StaticSessionKeyStore, createIctVerifier, type IctVerifier } from '@oidc2/core';
import { decryptBody, requestKey, responseKey } from '@oidc2/core/adapter';
import { newIssuer, newKey } from '../support/credentials';
import { FRAMEWORKS, startFramework, type FrameworkService } from '../support/frameworks';
import { codeOf } from '../support/error-code';
import { openE2ee, openSession, prepareE2ee, problemOf, sendE2ee, type E2eeCaller, type E2eeSession, type Prepared } from '../support/e2ee-caller';
import { opens } from '../support/rfc8188';
import { newStek, openToken, tokenKid } from '../support/session-jwe';

const T = 1_790_000_400; // a STEK period start (600 s periods)
const json = { 'content-type': 'application/json' };

/** One recorded message: its ciphertext and the inputs of its key (all a passive recorder sees). */
interface Recorded {
  body: Uint8Array;
  direction: 'request' | 'response';
  nonce: string;
  method: string;
  audience: string;
  status: number;
}

/** Every key a holder of `rk` (with the session's sid) derives for a recorded message. */
async function keysFrom(rk: Uint8Array, sid: Uint8Array, m: Recorded): Promise<Uint8Array[]> {
  return [await requestKey({ rk, sid, nonce: m.nonce, method: m.method, audience: m.audience }), await responseKey({ rk, sid, nonce: m.nonce, status: m.status })];
}

async function opensWithRoot(rk: Uint8Array, sid: Uint8Array, m: Recorded): Promise<boolean> {
  for (const key of await keysFrom(rk, sid, m)) {
    // The core's decoder and the independent one must agree.
    const core = (await codeOf(() => decryptBody(key, m.body))) === undefined;
    expect(opens(key, m.body)).toBe(core);
    if (core) return true;
  }
  return false;
}

function b64(value: unknown): Uint8Array {
  return new Uint8Array(Buffer.from(String(value), 'base64url'));
}

describe.each(FRAMEWORKS)('%s: forward secrecy of recorded traffic', (framework) => {
  let now = T;
  const clock = () => now;
  let verifier: IctVerifier;
  let who: E2eeCaller;
  const stek = newStek();
  let leaky: FrameworkService; // STEKs an operator supplied, here known to the test (a leaked STEK)
  let memory: FrameworkService; // STEKs in memory, deleted after their retention
  const memoryKeys = new MemorySessionKeyStore({ now: clock });

  beforeAll(async () => {
    const callers = await newIssuer('https://op.example.test', 'Ed25519');
    const services = await newIssuer('https://attest.example.test', 'Ed25519');
    const serviceKey = await newKey('Ed25519');
    const serviceIct = await services.mint(serviceKey, { subject: 'svc', lifetime: 3600, now: T });
    verifier = createIctVerifier({ issuers: [{ issuer: services.issuer, jwks: services.jwks }], now: clock });
    const key = await newKey('Ed25519');
    who = { key, ict: await callers.mint(key, { lifetime: 3600, now: T }) };
    const options = (url: string, sessionKeys: unknown) => ({
      issuers: [{ issuer: callers.issuer, jwks: callers.jwks }],
      audiences: [url],
      credential: { ict: serviceIct, privateKey: serviceKey.privateJwk },
      now: clock,
      e2ee: { sessionKeys: sessionKeys as MemorySessionKeyStore },
    });
    leaky = await startFramework(framework, (url) => options(url, new StaticSessionKeyStore({ keys: [stek.jwk] })));
    memory = await startFramework(framework, (url) => options(url, memoryKeys));
  });
  afterAll(async () => {
    memoryKeys.close();
    await Promise.all([leaky?.close(), memory?.close()]);
  });
  afterEach(() => {
    now = T;
  });

  /** A session request; returns what a recorder keeps and the session after the response. */
  async function exchange(base: string, session: E2eeSession, body: string, rekey = false): Promise<{ recorded: Recorded[]; after: E2eeSession; prepared: Prepared }> {
    const prepared = await prepareE2ee(who, { method: 'POST', url: `${base}/echo`, session, body, headers: json, now: clock, ...(rekey ? { offer: ['x25519' as const] } : {}) });
    const res = await sendE2ee(base, prepared.request);
    expect(res.status).toBe(200);
    const opened = await openE2ee(prepared, res, verifier, who, clock);
    expect(JSON.parse(new TextDecoder().decode(opened.plaintext))).toMatchObject({ echo: JSON.parse(body) });
    const common = { nonce: prepared.nonce, method: 'POST', audience: prepared.audience, status: res.status };
    return {
      recorded: [
        { ...common, direction: 'request', body: prepared.request.body! },
        { ...common, direction: 'response', body: res.body! },
      ],
      after: opened.session!,
      prepared,
    };
  }

  it('after a rekey, the old root and the old token open none of the new traffic', async () => {
    const s0 = await openSession(who, leaky.url, verifier, { now: clock });
    const before = await exchange(leaky.url, s0, '{"epoch":0}');
    const rekey = await exchange(leaky.url, s0, '{"rekey":true}', true);
    const s1 = rekey.after;
    expect(Buffer.from(s1.rk).equals(Buffer.from(s0.rk))).toBe(false);
    const after = [...(await exchange(leaky.url, s1, '{"epoch":1,"n":1}')).recorded, ...(await exchange(leaky.url, s1, '{"epoch":1,"n":2}')).recorded];

    // What the old token yields to whoever holds the STEK: exactly the old root.
    const old = await openToken(s0.token, stek.key);
    expect(Buffer.from(b64(old!.rk)).equals(Buffer.from(s0.rk))).toBe(true);
    for (const rk of [s0.rk, b64(old!.rk)]) {
      // Control: the old root does open the traffic of its own epoch.
      for (const m of before.recorded) expect(await opensWithRoot(rk, s0.sid, m)).toBe(true);
      for (const m of after) expect(await opensWithRoot(rk, s0.sid, m)).toBe(false);
    }
    // Control: the new root opens the new traffic.
    for (const m of after) expect(await opensWithRoot(s1.rk, s1.sid, m)).toBe(true);

    // The rekey response comes from a fresh ephemeral exchange: neither root opens it, so even a
    // STEK holder who opens both tokens cannot read it (docs/e2ee.md, forward secrecy). Its request body was
    // sent under the old root, as the profile says (5.6).
    const [rekeyRequest, rekeyResponse] = rekey.recorded;
    const newToken = await openToken(s1.token, stek.key);
    expect(Buffer.from(b64(newToken!.rk)).equals(Buffer.from(s1.rk))).toBe(true);
    for (const rk of [s0.rk, s1.rk]) expect(await opensWithRoot(rk, s0.sid, rekeyResponse!)).toBe(false);
    expect(await opensWithRoot(s0.rk, s0.sid, rekeyRequest!)).toBe(true);
  });

  it('after the STEK is deleted, nothing the service keeps opens the token or the recorded bodies', async () => {
    const s = await openSession(who, memory.url, verifier, { now: clock });
    const { recorded } = await exchange(memory.url, s, '{"secret":"recorded by a proxy"}');
    const kid = tokenKid(s.token);
    const held = await memoryKeys.get(kid);
    expect(held).toBeDefined();
    // While the STEK is kept it opens the token, and the token's root opens the bodies: the window.
    const claims = await openToken(s.token, held!.key);
    for (const m of recorded) expect(await opensWithRoot(b64(claims!.rk), b64(claims!.sid), m)).toBe(true);

    now = T + 1260; // the end of the retention of the period the token was made in
    expect(await memoryKeys.get(kid)).toBeUndefined();
    // Deleted for real: the store's own octets are overwritten.
    expect(held!.key.every((b) => b === 0)).toBe(true);
    // Nothing the store hands out now opens the token.
    const current = await memoryKeys.current();
    expect(current.kid).not.toBe(kid);
    for (const key of [current.key, held!.key]) expect(await openToken(s.token, key)).toBeUndefined();
    expect(memoryKeys.size).toBe(1);
    // And the service refuses the token itself.
    const p = await prepareE2ee(who, { method: 'GET', url: `${memory.url}/whoami`, session: s, now: clock });
    const res = await sendE2ee(memory.url, p.request);
    expect({ status: res.status, code: problemOf(res)?.code }).toEqual({ status: 401, code: 'session_invalid' });
  });
});
