// Property (nonce/key reuse): across many requests of one session, in both
// directions, with rekeys, other suites, routes, methods and body sizes drawn from a seeded
// generator, no two encrypted messages share (IKM, salt) — in fact no two share either. A request
// sent again (its nonce seen before) is refused with replay_detected and recorded nothing new.
import { createIctVerifier, fieldLines, type IctVerifier, type SuiteName } from '@oidc2/core';
import { newIssuer, newKey } from '../support/credentials';
import { FRAMEWORKS, startFramework, type FrameworkService } from '../support/frameworks';
import { CountingReplayStore } from '../support/counting-replay-store';
import { openE2ee, openSession, prepareE2ee, problemOf, sendE2ee, type E2eeCaller, type E2eeSession, type Prepared } from '../support/e2ee-caller';

const ITERATIONS = 120; // per framework
const SEED = 0x0d1c2e2e;

/** mulberry32: a small seeded generator, so a failure replays exactly. */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe.each(FRAMEWORKS)('%s: no two messages of a session share a key or a salt', (framework) => {
  let svc: FrameworkService;
  let verifier: IctVerifier;
  let who: E2eeCaller;
  const store = new CountingReplayStore();

  beforeAll(async () => {
    const callers = await newIssuer('https://op.example.test', 'Ed25519');
    const services = await newIssuer('https://attest.example.test', 'Ed25519');
    const serviceKey = await newKey('Ed25519');
    const serviceIct = await services.mint(serviceKey, { subject: 'svc', lifetime: 3600 });
    verifier = createIctVerifier({ issuers: [{ issuer: services.issuer, jwks: services.jwks }] });
    const key = await newKey('Ed25519');
    who = { key, ict: await callers.mint(key, { lifetime: 3600 }) };
    svc = await startFramework(framework, (url) => ({
      issuers: [{ issuer: callers.issuer, jwks: callers.jwks }],
      audiences: [url],
      credential: { ict: serviceIct, privateKey: serviceKey.privateJwk },
      replayStore: store,
    }));
  });
  afterAll(() => svc.close());

  it(`holds over ${ITERATIONS} seeded exchanges (seed ${SEED.toString(16)})`, async () => {
    const random = generator(SEED + framework.length);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    const sizeOf = () => pick([1, 2, 15, 16, 17, 100, 1000, 16366, 16367, 16368, 40_000]);

    const pairs = new Map<string, string>(); // ikm || salt -> where
    const ikms = new Map<string, string>();
    const salts = new Map<string, string>();
    const nonces = new Set<string>();
    const sent: Prepared[] = [];
    let messages = 0;
    let rekeys = 0;
    let replays = 0;

    const note = (ikm: Uint8Array, body: Uint8Array, where: string) => {
      expect(body.length).toBeGreaterThan(21);
      const k = Buffer.from(ikm).toString('hex');
      const salt = Buffer.from(body.subarray(0, 16)).toString('hex');
      expect([pairs.get(`${k}|${salt}`), ikms.get(k), salts.get(salt)]).toEqual([undefined, undefined, undefined]);
      pairs.set(`${k}|${salt}`, where);
      ikms.set(k, where);
      salts.set(salt, where);
      messages++;
    };

    let session: E2eeSession = await openSession(who, svc.url, verifier);
    for (let i = 0; i < ITERATIONS; i++) {
      const roll = random();
      if (roll < 0.08 && sent.length > 0) {
        // A request sent again: its nonce is refused, and nothing new is recorded.
        const again = pick(sent);
        const before = store.snapshot();
        const res = await sendE2ee(svc.url, again.request);
        expect({ status: res.status, code: problemOf(res)?.code }).toEqual({ status: 401, code: 'replay_detected' });
        expect(store.snapshot().recorded).toBe(before.recorded);
        replays++;
        continue;
      }
      const rekey = roll > 0.8;
      const route = pick(['echo', 'bytes', 'whoami', 'secret'] as const);
      const method = route === 'whoami' ? 'GET' : 'POST';
      const size = method === 'GET' ? 0 : route === 'echo' || route === 'secret' ? Math.min(sizeOf(), 60_000) : sizeOf();
      const body = route === 'bytes' ? new Uint8Array(size).map(() => Math.floor(random() * 256)) : size > 0 ? JSON.stringify({ i, pad: 'p'.repeat(Math.max(0, size - 20)) }) : undefined;
      const headers: Record<string, string> = body === undefined ? {} : { 'content-type': route === 'bytes' ? 'application/octet-stream' : 'application/json' };
      const offer: SuiteName[] = rekey ? [pick(['x25519', 'p256'] as const)] : [];
      const prepared = await prepareE2ee(who, { method, url: `${svc.url}/${route}`, session, offer, ...(body === undefined ? {} : { body }), headers });
      expect(nonces.has(prepared.nonce)).toBe(false);
      nonces.add(prepared.nonce);
      const res = await sendE2ee(svc.url, prepared.request);
      expect(res.status).toBe(200);
      const opened = await openE2ee(prepared, res, verifier, who);
      sent.push(prepared);
      if (prepared.bodyKey) note(prepared.bodyKey, prepared.request.body!, `request ${i}`);
      if (opened.bodyKey) note(opened.bodyKey, res.body!, `response ${i}`);
      else expect(fieldLines(res.headers, 'content-encoding')).toBeUndefined();
      if (rekey) {
        expect(opened.mode).toBe('rekey');
        session = opened.session!;
        rekeys++;
      }
    }
    // The generator exercised what it should.
    expect(rekeys).toBeGreaterThan(5);
    expect(replays).toBeGreaterThan(2);
    expect(messages).toBeGreaterThan(ITERATIONS);
  }, 60_000);
});
