// End-to-end encrypted round trips on Express, Fastify and Koa: bodies of 0 B, 1 B and 1 MiB in both
// directions through a recording HTTP proxy (reverse and forward), which must never see a plaintext
// body; sessions continued on another instance sharing the STEK store (in process, and in Redis);
// and STEK rotation and deletion on an injected clock.
import { randomBytes } from 'node:crypto';
import { MemorySessionKeyStore, createIctVerifier, fieldLines, signRequest, type IctVerifier, type SuiteName } from '@oidc2/core';
import { RedisSessionKeyStore } from '@oidc2/redis';
import { newIssuer, newKey, type TestIssuer, type TestKey } from '../support/credentials';
import { FRAMEWORKS, startFramework, type Framework, type FrameworkService } from '../support/frameworks';
import { openE2ee, openSession, prepareE2ee, problemOf, sendE2ee, type E2eeCaller, type E2eeSession } from '../support/e2ee-caller';
import { sendViaForwardProxy, startRecordingProxy, type RecordingProxy } from '../support/recording-proxy';
import { connectRedis, describeWithRedis, freePort, startRedisServer, type RedisClient, type RedisServer } from '../support/redis-server';

const MiB = 1024 * 1024;
const PUBLIC = 'https://api.example.test'; // the audience two instances of one service share

let callers: TestIssuer;
let services: TestIssuer;
let serviceKey: TestKey;
let serviceIct: string;
let alice: E2eeCaller;
let verifier: IctVerifier;

beforeAll(async () => {
  callers = await newIssuer('https://op.example.test', 'Ed25519');
  services = await newIssuer('https://attest.example.test', 'Ed25519');
  serviceKey = await newKey('Ed25519');
  serviceIct = await services.mint(serviceKey, { subject: 'svc', lifetime: 3600 });
  verifier = createIctVerifier({ issuers: [{ issuer: services.issuer, jwks: services.jwks }] });
  const key = await newKey('Ed25519');
  alice = { key, ict: await callers.mint(key, { lifetime: 3600 }) };
});

const options = (audiences: string[], extra: Record<string, unknown> = {}) => ({
  issuers: [{ issuer: callers.issuer, jwks: callers.jwks }],
  audiences,
  credential: { ict: serviceIct, privateKey: serviceKey.privateJwk },
  maxBodyBytes: 2 * MiB,
  maxResponseBytes: 2 * MiB,
  ...extra,
});

/** A body of `size` octets; from 32 octets on, `marker` sits at its start, middle and end. */
function plaintextOf(size: number, marker: Buffer): Buffer {
  const body = size === 1 ? Buffer.from([0x5a]) : randomBytes(size);
  if (size >= 3 * marker.length) for (const at of [0, Math.floor(size / 2), size - marker.length]) marker.copy(body, at);
  else if (size >= marker.length) marker.copy(body, 0);
  return body;
}

const octets = { 'content-type': 'application/octet-stream' };

describe.each(FRAMEWORKS)('%s: round trips through a recording proxy', (framework) => {
  let svc: FrameworkService;
  let proxy: RecordingProxy;
  let session: E2eeSession;

  beforeAll(async () => {
    svc = await startFramework(framework, (url) => options([url]));
    proxy = await startRecordingProxy(svc.url);
    // The handshake itself goes through the proxy too.
    session = await openSession(alice, svc.url, verifier, { origin: proxy.url });
  });
  afterAll(async () => {
    await proxy?.close();
    await svc?.close();
  });

  const via = (mode: 'reverse' | 'forward', message: Parameters<typeof sendE2ee>[1]) =>
    mode === 'reverse' ? sendE2ee(proxy.url, message) : sendViaForwardProxy(proxy.url, svc.url, message);

  it('the recording sees a marker in a body sent in clear (control for the search)', async () => {
    const marker = Buffer.from(`plaintext-marker-${randomBytes(8).toString('hex')}`);
    const body = plaintextOf(4096, marker);
    const request = await signRequest({ method: 'POST', url: `${svc.url}/bytes`, headers: octets, body }, { ict: alice.ict, key: alice.key.signer });
    proxy.clear();
    const res = await sendE2ee(proxy.url, request);
    expect(res.status).toBe(200);
    expect(Buffer.from(res.body!).equals(body)).toBe(true);
    expect(proxy.saw(marker)).toEqual({ upstream: true, downstream: true });
  });

  describe.each(['reverse', 'forward'] as const)('as a %s proxy', (mode) => {
    it.each([0, 1, MiB])('%i octets each way: the caller gets them back exactly, the proxy never sees them', async (size) => {
      const marker = Buffer.from(`plaintext-marker-${randomBytes(8).toString('hex')}`);
      const body = plaintextOf(size, marker);
      const p = await prepareE2ee(alice, { method: 'POST', url: `${svc.url}/bytes`, session, body, headers: size > 0 ? octets : {} });
      proxy.clear();
      const res = await via(mode, p.request);
      expect(res.status).toBe(200);
      const opened = await openE2ee(p, res, verifier, alice);
      expect(opened.mode).toBe('session');
      // Compared as octets: jest's deep equality walks a MiB element by element.
      expect(opened.plaintext.length).toBe(size);
      expect(Buffer.from(opened.plaintext).equals(body)).toBe(true);
      // What crossed the proxy: the session token in (docs/e2ee.md: proxies see every token), a signed answer out.
      expect(proxy.saw(session.token)).toEqual({ upstream: true, downstream: false });
      expect(proxy.saw('signature-input')).toEqual({ upstream: true, downstream: true });
      if (size === 0) {
        expect(fieldLines(p.request.headers, 'content-encoding')).toBeUndefined();
        expect(fieldLines(res.headers, 'content-encoding')).toBeUndefined();
        return;
      }
      // Both directions encrypted, with a fresh salt each.
      expect(fieldLines(p.request.headers, 'content-encoding')).toEqual(['aes128gcm']);
      expect(fieldLines(res.headers, 'content-encoding')).toEqual(['aes128gcm']);
      expect(fieldLines(res.headers, 'cache-control')).toEqual(['no-store, no-transform']);
      expect(Buffer.from(res.body!.subarray(0, 16)).equals(Buffer.from(p.request.body!.subarray(0, 16)))).toBe(false);
      if (size >= marker.length) {
        expect(proxy.saw(marker)).toEqual({ upstream: false, downstream: false });
        // Nor any 16-octet window of the plaintext at its start, middle or end.
        for (const at of [0, size >> 1, size - 16]) expect(proxy.saw(body.subarray(at, at + 16))).toEqual({ upstream: false, downstream: false });
      } else {
        // One octet: what crossed is a 39-octet RFC 8188 body (header 21, record 1 + 1 + 16) each way.
        expect(p.request.body!.length).toBe(39);
        expect(res.body!.length).toBe(39);
        expect(Buffer.concat(proxy.upstream).includes(Buffer.from(p.request.body!))).toBe(true);
        expect(Buffer.concat(proxy.downstream).includes(Buffer.from(res.body!))).toBe(true);
      }
    });
  });

  it('a JSON body through the proxy with a rekey on the way', async () => {
    const marker = `json-marker-${randomBytes(8).toString('hex')}`;
    const p = await prepareE2ee(alice, { method: 'POST', url: `${svc.url}/echo`, session, offer: ['x25519'], body: JSON.stringify({ marker }), headers: { 'content-type': 'application/json' } });
    proxy.clear();
    const res = await sendE2ee(proxy.url, p.request);
    const opened = await openE2ee(p, res, verifier, alice);
    expect(opened.mode).toBe('rekey');
    expect((JSON.parse(new TextDecoder().decode(opened.plaintext)) as { echo: unknown }).echo).toEqual({ marker });
    expect(proxy.saw(marker)).toEqual({ upstream: false, downstream: false });
    session = opened.session!;
  });
});

describe.each(FRAMEWORKS)("%s: what the framework answers itself is end-to-end too", (framework) => {
  let svc: FrameworkService;
  let session: E2eeSession;
  beforeAll(async () => {
    svc = await startFramework(framework, (url) => options([url]));
    session = await openSession(alice, svc.url, verifier);
  });
  afterAll(() => svc?.close());

  const roundTrip = async (method: string, path: string, extra: { body?: string; headers?: Record<string, string>; offer?: SuiteName[] } = {}) => {
    const p = await prepareE2ee(alice, { method, url: `${svc.url}${path}`, session, ...extra });
    const res = await sendE2ee(svc.url, p.request);
    return { res, opened: await openE2ee(p, res, verifier, alice) };
  };

  it("the framework's own 404 is encrypted and signed (docs/protocol.md section 7.7: whatever its status)", async () => {
    const { res, opened } = await roundTrip('GET', '/no-such-route');
    expect(res.status).toBe(404);
    expect(fieldLines(res.headers, 'content-encoding')).toEqual(['aes128gcm']);
    expect(opened.plaintext.length).toBeGreaterThan(0);
  });

  it("the body parser's own 400 on a decrypted body that is not JSON is encrypted and signed", async () => {
    const { res, opened } = await roundTrip('POST', '/echo', { body: '{not json', headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(400);
    expect(fieldLines(res.headers, 'content-encoding')).toEqual(['aes128gcm']);
    expect(opened.plaintext.length).toBeGreaterThan(0);
  });

  it('HEAD in a session: no body and no coding, signed', async () => {
    const { res, opened } = await roundTrip('HEAD', '/whoami');
    expect(res.status).toBe(200);
    expect(fieldLines(res.headers, 'content-encoding')).toBeUndefined();
    expect(opened.plaintext.length).toBe(0);
  });

  it('a rekey at the session endpoint: a signed 204 with the successor', async () => {
    const { res, opened } = await roundTrip('POST', '/.well-known/oidc2-session', { offer: ['p256'] });
    expect(res.status).toBe(204);
    expect(opened.mode).toBe('rekey');
    expect(opened.session!.suite).toBe('p256');
    session = opened.session!;
    expect((await roundTrip('GET', '/whoami')).res.status).toBe(200);
  });
});

// The instance a session continues on: the next framework, so every adapter pair is exercised.
const nextOf = (fw: Framework): Framework => FRAMEWORKS[(FRAMEWORKS.indexOf(fw) + 1) % FRAMEWORKS.length]!;

/** Handshake on `a`, a request on `b`, a rekey on `b`, the successor on `a`. */
async function continuedAcross(a: FrameworkService, b: FrameworkService): Promise<void> {
  const first = await openSession(alice, PUBLIC, verifier, { origin: a.url });
  const on = async (at: FrameworkService, s: E2eeSession, rekey: boolean) => {
    const offer: SuiteName[] = rekey ? ['p256'] : [];
    const p = await prepareE2ee(alice, { method: 'POST', url: `${PUBLIC}/echo`, session: s, offer, body: JSON.stringify({ at: at.framework }), headers: { 'content-type': 'application/json' } });
    const res = await sendE2ee(at.url, p.request);
    expect(res.status).toBe(200);
    const opened = await openE2ee(p, res, verifier, alice);
    const answer = JSON.parse(new TextDecoder().decode(opened.plaintext)) as { framework: string; echo: unknown };
    expect(answer).toMatchObject({ framework: at.framework, echo: { at: at.framework } });
    return opened.session!;
  };
  await on(b, first, false);
  const rekeyed = await on(b, first, true);
  expect(rekeyed.token).not.toBe(first.token);
  expect(rekeyed.suite).toBe('p256');
  await on(a, rekeyed, false);
  await on(a, first, false); // the fork's other branch stays valid until its exp
}

describe.each(FRAMEWORKS)('%s: a session continued on another instance', (framework) => {
  it('sharing one MemorySessionKeyStore in process', async () => {
    const keys = new MemorySessionKeyStore();
    const a = await startFramework(framework, () => options([PUBLIC], { e2ee: { sessionKeys: keys } }));
    const b = await startFramework(nextOf(framework), () => options([PUBLIC], { e2ee: { sessionKeys: keys } }));
    try {
      await continuedAcross(a, b);
    } finally {
      keys.close();
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('without a shared store the other instance refuses the token: 401 session_invalid', async () => {
    const a = await startFramework(framework, () => options([PUBLIC]));
    const b = await startFramework(nextOf(framework), () => options([PUBLIC]));
    try {
      const s = await openSession(alice, PUBLIC, verifier, { origin: a.url });
      const p = await prepareE2ee(alice, { method: 'GET', url: `${PUBLIC}/whoami`, session: s });
      const res = await sendE2ee(b.url, p.request);
      expect({ status: res.status, code: problemOf(res)?.code }).toEqual({ status: 401, code: 'session_invalid' });
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

describeWithRedis('e2ee round trips with a Redis STEK store')('a session continued on another instance sharing a RedisSessionKeyStore', () => {
  let server: RedisServer;
  const clients: RedisClient[] = [];
  beforeAll(async () => {
    server = await startRedisServer({ host: '127.0.0.1', port: await freePort() });
  });
  afterAll(async () => {
    for (const c of clients) if (c.isOpen) c.destroy();
    await server?.stop();
  });

  it.each(FRAMEWORKS)('%s and the next framework', async (framework) => {
    const [ca, cb] = await Promise.all([connectRedis(server.address), connectRedis(server.address)]);
    clients.push(ca!, cb!);
    const prefix = `oidc2:stek:${framework}:`;
    const a = await startFramework(framework, () => options([PUBLIC], { e2ee: { sessionKeys: new RedisSessionKeyStore({ client: ca!, prefix }) } }));
    const b = await startFramework(nextOf(framework), () => options([PUBLIC], { e2ee: { sessionKeys: new RedisSessionKeyStore({ client: cb!, prefix }) } }));
    try {
      await continuedAcross(a, b);
      expect((await ca!.keys(`${prefix}*`)).length).toBe(1);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

describe.each(FRAMEWORKS)('%s: STEK rotation on an injected clock', (framework) => {
  const T = 1_790_000_400; // a period start for 600-second periods
  let now = T;
  const clock = () => now;
  let svc: FrameworkService;
  let keys: MemorySessionKeyStore;
  let who: E2eeCaller;
  let clocked: IctVerifier;

  beforeAll(async () => {
    keys = new MemorySessionKeyStore({ now: clock }); // rotation 600, retention 1260
    const ict = await services.mint(serviceKey, { subject: 'svc', lifetime: 3600, now: T });
    const key = await newKey('Ed25519');
    who = { key, ict: await callers.mint(key, { lifetime: 3600, now: T }) };
    clocked = createIctVerifier({ issuers: [{ issuer: services.issuer, jwks: services.jwks }], now: clock });
    svc = await startFramework(framework, (url) => ({ ...options([url], { now: clock, e2ee: { sessionKeys: keys } }), credential: { ict, privateKey: serviceKey.privateJwk } }));
  });
  afterAll(async () => {
    keys.close();
    await svc.close();
  });

  const call = async (s: E2eeSession, rekey = false) => {
    const offer: SuiteName[] = rekey ? ['x25519'] : [];
    const p = await prepareE2ee(who, { method: 'GET', url: `${svc.url}/whoami`, session: s, offer, now: clock });
    const res = await sendE2ee(svc.url, p.request);
    return { res, p };
  };

  it('a token from just before the rotation works just after; after the retention it is session_invalid', async () => {
    now = T + 599;
    const s = await openSession(who, svc.url, clocked, { now: clock });
    const kidBefore = (await keys.current()).kid;
    now = T + 601;
    expect((await keys.current()).kid).not.toBe(kidBefore); // rotated
    expect((await call(s)).res.status).toBe(200);
    // A rekey after the rotation moves the session onto the new STEK.
    const { res, p } = await call(s, true);
    expect(res.status).toBe(200);
    const successor = (await openE2ee(p, res, clocked, who, clock)).session!;
    // The token's last second (exp T + 1199, leeway 60); its STEK is kept until T + 1260.
    now = T + 1258;
    expect((await call(s)).res.status).toBe(200);
    now = T + 1260; // period start + 1260: the STEK of the first period is deleted
    expect(await keys.get(kidBefore)).toBeUndefined();
    const late = (await call(s)).res;
    expect({ status: late.status, code: problemOf(late)?.code }).toEqual({ status: 401, code: 'session_invalid' });
    expect((await call(successor)).res.status).toBe(200);
  });
});
