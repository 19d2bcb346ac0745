// The `xwing` suite (MLKEM768-X25519) in the exchange and at the facade: configuration, handshake,
// session requests and rekeys, the service's preference against the caller's order, a stripped
// xwing member, invalid key shares and encapsulations, and what happens without the engine. The
// draft's vectors are in ../hpke-pq.test.ts.
import { createIctVerifier, createOidc2Service, MemoryReplayStore, type ExchangeResponse, type HttpRequest, type Oidc2Options, type ReplayStore } from '../../src/index';
import { utf8 } from '../../src/lib/base64';
import { E2EE_SUITES, hpkeSuite, loadHpkeSuite, testing } from '../../src/e2ee/hpke';
import { newIssuer, newKey, type TestIssuer, type TestKey } from '../../../../test/support/credentials';
import { openE2ee, prepareE2ee, type E2eeCaller, type E2eeSession, type Prepared } from '../../../../test/support/e2ee-caller';

const T = 1_790_000_000;
let clock = T;
const now = () => clock;
const BASE = 'https://api.example.com';
const INFO = utf8('oidc2-e2ee-v1 handshake\0');
const PSK = new Uint8Array(32).fill(3);
const PSK_ID = utf8('oidc2-e2ee-v1 psk');
const invalid = { code: 'e2ee_key_share_invalid', status: 400 };

let op: TestIssuer;
let alice: E2eeCaller;
let svcKey: TestKey;
let svcIct: string;

beforeAll(async () => {
  op = await newIssuer('https://op.example.com');
  const a = await newKey('ES256');
  alice = { key: a, ict: await op.mint(a, { now: T - 10, subject: 'alice', lifetime: 3600 }) };
  svcKey = await newKey('Ed25519');
  svcIct = await op.mint(svcKey, { now: T - 10, subject: 'orders-service', lifetime: 3600 });
});
beforeEach(() => {
  clock = T;
});

function countingStore(): ReplayStore & { recorded: number } {
  const inner = new MemoryReplayStore();
  const store = {
    recorded: 0,
    async checkAndRecord(key: string, expiresAt: number, at: number) {
      store.recorded++;
      return inner.checkAndRecord(key, expiresAt, at);
    },
  };
  return store;
}

/** A service with these e2ee suites (`null`: the default suites, x25519 and p256). */
function service(suites: Array<'x25519' | 'p256' | 'xwing'> | null = ['xwing', 'x25519'], extra: Partial<Oidc2Options> = {}) {
  const replayStore = countingStore();
  const svc = createOidc2Service({
    issuers: [{ issuer: op.issuer, jwks: op.jwks }],
    audiences: [BASE],
    now,
    replayStore,
    credential: { ict: svcIct, privateKey: svcKey.privateJwk },
    ...(suites ? { e2ee: { suites } } : {}),
    ...extra,
  });
  return Object.assign(svc, { replayStore });
}

const verifier = () => createIctVerifier({ issuers: [{ issuer: op.issuer, jwks: op.jwks }], now });

function head(prepared: Prepared, headers?: Record<string, string[]>): HttpRequest {
  const r = prepared.request;
  const out = { ...r.headers, ...headers };
  if (r.body) out['content-length'] = [String(r.body.length)];
  return { method: r.method, url: new URL(r.url).pathname, headers: out };
}

interface Run {
  response: ExchangeResponse & { body?: Uint8Array };
  code: string | undefined;
  routeBody: Uint8Array | undefined;
}

async function run(svc: ReturnType<typeof service>, prepared: Prepared, headers?: Record<string, string[]>): Promise<Run> {
  const exchange = svc.exchange(head(prepared, headers));
  const admission = await exchange.admit(prepared.request.body);
  if (admission.answered) {
    const text = admission.response.body instanceof Uint8Array ? new TextDecoder().decode(admission.response.body) : '';
    return { response: admission.response as Run['response'], code: text.startsWith('{') ? (JSON.parse(text) as { code?: string }).code : undefined, routeBody: undefined };
  }
  const routeBody = admission.body instanceof Uint8Array ? admission.body : undefined;
  const response = (await exchange.respond({ status: 200, headers: { 'content-type': ['text/plain'] }, body: utf8('hello') })) as Run['response'];
  return { response, code: undefined, routeBody };
}

const open = (prepared: Prepared, response: Run['response']) => openE2ee(prepared, { status: response.status, headers: response.headers, body: response.body }, verifier(), alice, now);

async function handshake(svc: ReturnType<typeof service>, offer: Array<'x25519' | 'p256' | 'xwing'>): Promise<E2eeSession> {
  const prepared = await prepareE2ee(alice, { method: 'GET', url: `${BASE}/orders`, offer, now });
  const { response } = await run(svc, prepared);
  const opened = await open(prepared, response);
  expect(opened.mode).toBe('handshake');
  return opened.session!;
}

/** The request's `Oidc2-Key-Share` without its xwing member. */
const withoutXwing = (keyShare: string) => keyShare.replace(/xwing=:[^:]*:(, )?/, '').replace(/, $/, '');

describe('the xwing suite', () => {
  it('is implemented, with the profile sizes; hpkeSuite is synchronous and imports nothing until used', () => {
    expect(E2EE_SUITES.xwing).toEqual({ name: 'xwing', kemId: 0x647a, publicKeyLength: 1216, encLength: 1120, implemented: true });
    expect(hpkeSuite('xwing')).toBe(hpkeSuite('xwing'));
  });

  it('a service takes it in its suites, alone or with the others, and refuses it twice', () => {
    for (const suites of [['xwing'], ['xwing', 'x25519'], ['x25519', 'p256', 'xwing']] as const) expect(() => service([...suites])).not.toThrow();
    expect(() => service(['xwing', 'xwing'])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
  });
});

describe('handshake, session and rekey with xwing', () => {
  it('a handshake chooses xwing, answers a 1120-octet enc and a session whose requests and rekeys stay on xwing', async () => {
    const svc = service();
    const prepared = await prepareE2ee(alice, { method: 'GET', url: `${BASE}/orders`, offer: ['xwing', 'x25519'], now });
    expect(prepared.request.headers['oidc2-key-share']![0]).toMatch(/^xwing=:[A-Za-z0-9+/]{1622}==:, x25519=:/);
    const { response } = await run(svc, prepared);
    expect(response.status).toBe(200);
    const share = response.headers['oidc2-key-share']![0]!;
    expect(share).toMatch(/^xwing=:/);
    expect(Buffer.from(share.slice('xwing=:'.length, -1), 'base64')).toHaveLength(1120);
    const opened = await open(prepared, response);
    expect(new TextDecoder().decode(opened.plaintext)).toBe('hello');
    const session = opened.session!;
    expect(session.suite).toBe('xwing');

    // A session request with an encrypted body, both ways.
    const post = await prepareE2ee(alice, { method: 'POST', url: `${BASE}/orders`, session, body: '{"item":"book"}', headers: { 'content-type': 'application/json' }, now });
    const posted = await run(svc, post);
    expect(new TextDecoder().decode(posted.routeBody)).toBe('{"item":"book"}');
    expect((await open(post, posted.response)).mode).toBe('session');

    // A rekey with a fresh xwing share: a new root, the same sid, still xwing.
    clock = T + 500;
    const rekey = await prepareE2ee(alice, { method: 'POST', url: `${BASE}/orders`, session, offer: ['xwing'], body: 'x', now });
    const rekeyed = await open(rekey, (await run(svc, rekey)).response);
    expect(rekeyed.mode).toBe('rekey');
    expect(rekeyed.session!.suite).toBe('xwing');
    expect(Buffer.from(rekeyed.session!.sid)).toEqual(Buffer.from(session.sid));
    expect(Buffer.from(rekeyed.session!.rk)).not.toEqual(Buffer.from(session.rk));
    const next = await prepareE2ee(alice, { method: 'GET', url: `${BASE}/orders`, session: rekeyed.session!, now });
    expect((await open(next, (await run(svc, next)).response)).mode).toBe('session');
  });

  it('a session made with x25519 moves to xwing by a rekey that offers it', async () => {
    const svc = service();
    const session = await handshake(svc, ['x25519']);
    expect(session.suite).toBe('x25519');
    const rekey = await prepareE2ee(alice, { method: 'GET', url: `${BASE}/orders`, session, offer: ['xwing'], now });
    const rekeyed = await open(rekey, (await run(svc, rekey)).response);
    expect(rekeyed.mode).toBe('rekey');
    expect(rekeyed.session!.suite).toBe('xwing');
    const next = await prepareE2ee(alice, { method: 'POST', url: `${BASE}/orders`, session: rekeyed.session!, body: 'after', now });
    const answered = await run(svc, next);
    expect(new TextDecoder().decode(answered.routeBody)).toBe('after');
    expect(new TextDecoder().decode((await open(next, answered.response)).plaintext)).toBe('hello');
  });
});

describe('suite choice and downgrade', () => {
  it("the service's preference decides, whatever order the caller offers in", async () => {
    expect((await handshake(service(['xwing', 'x25519']), ['x25519', 'xwing'])).suite).toBe('xwing');
    expect((await handshake(service(['xwing', 'x25519']), ['xwing', 'x25519'])).suite).toBe('xwing');
    expect((await handshake(service(['x25519', 'xwing']), ['xwing', 'x25519'])).suite).toBe('x25519');
    expect((await handshake(service(['xwing', 'p256']), ['x25519', 'p256'])).suite).toBe('p256');
  });

  it('a service without xwing answers a caller that offers only xwing with e2ee_kem_unsupported naming its suites', async () => {
    const prepared = await prepareE2ee(alice, { method: 'GET', url: `${BASE}/orders`, offer: ['xwing'], now });
    const { response, code } = await run(service(null), prepared);
    expect(code).toBe('e2ee_kem_unsupported');
    expect(JSON.parse(new TextDecoder().decode(response.body))).toMatchObject({ kems: ['x25519', 'p256'] });
  });

  it('removing the xwing member after signing (to force x25519) is signature_invalid, and nothing is recorded', async () => {
    const svc = service();
    const prepared = await prepareE2ee(alice, { method: 'GET', url: `${BASE}/orders`, offer: ['xwing', 'x25519'], now });
    const stripped = withoutXwing(prepared.keyShare!);
    expect(stripped).toMatch(/^x25519=:[^:]+:$/);
    const { response, code } = await run(svc, prepared, { 'oidc2-key-share': [stripped] });
    expect(code).toBe('signature_invalid');
    expect(response.status).toBe(401);
    expect(svc.replayStore.recorded).toBe(0);
    // The same request as signed goes through, on xwing.
    const intact = await run(svc, prepared);
    expect(intact.response.headers['oidc2-key-share']![0]).toMatch(/^xwing=:/);
  });

  it('a rekey stripped of its xwing member is signature_invalid too', async () => {
    const svc = service();
    const session = await handshake(svc, ['x25519']);
    const rekey = await prepareE2ee(alice, { method: 'GET', url: `${BASE}/orders`, session, offer: ['xwing', 'x25519'], now });
    const before = svc.replayStore.recorded;
    const { code } = await run(svc, rekey, { 'oidc2-key-share': [withoutXwing(rekey.keyShare!)] });
    expect(code).toBe('signature_invalid');
    expect(svc.replayStore.recorded).toBe(before);
  });
});

describe('invalid xwing key shares and encapsulations', () => {
  const suite = hpkeSuite('xwing');
  let valid: Uint8Array;
  beforeAll(async () => {
    valid = await suite.serializePublicKey((await suite.generateKeyPair()).publicKey);
  });
  /** A valid key whose X25519 part (the last 32 octets) is replaced. */
  const withX25519 = (key: Uint8Array, x: Uint8Array) => {
    const out = key.slice();
    out.set(x, out.length - 32);
    return out;
  };
  const LOW_ORDER = [new Uint8Array(32), Uint8Array.of(1, ...new Uint8Array(31))];

  it.each([0, 32, 1184, 1215, 1217, 2432])('a public key of %i octets is refused, and so is an enc of that length', async (length) => {
    await expect(suite.deserializePublicKey(new Uint8Array(length).fill(1))).rejects.toMatchObject(invalid);
    const kp = await suite.generateKeyPair();
    await expect(suite.setupBaseR(new Uint8Array(length).fill(1), kp, INFO)).rejects.toMatchObject(invalid);
    await expect(suite.setupPSKR(new Uint8Array(length).fill(1), kp, INFO, PSK, PSK_ID)).rejects.toMatchObject(invalid);
  });

  it('an ML-KEM part that fails the FIPS 203 modulus check is refused at deserialisation', async () => {
    const bad = valid.slice();
    bad.fill(0xff, 0, 3);
    await expect(suite.deserializePublicKey(bad)).rejects.toMatchObject(invalid);
    await expect(suite.deserializePublicKey(new Uint8Array(1216).fill(0xff))).rejects.toMatchObject(invalid);
  });

  it.each(LOW_ORDER.map((x, i) => [i, x] as const))('an X25519 part of small order (%i) fails at setup, Base and PSK', async (_i, x) => {
    const pk = await suite.deserializePublicKey(withX25519(valid, x));
    await expect(suite.setupBaseS(pk, INFO)).rejects.toMatchObject(invalid);
    await expect(suite.setupPSKS(pk, INFO, PSK, PSK_ID)).rejects.toMatchObject(invalid);
  });

  it.each(LOW_ORDER.map((x, i) => [i, x] as const))('an enc whose X25519 part is of small order (%i) is refused by the recipient', async (_i, x) => {
    const kp = await suite.generateKeyPair();
    const { enc } = await suite.setupBaseS(kp.publicKey, INFO);
    await expect(suite.setupBaseR(withX25519(enc, x), kp, INFO)).rejects.toMatchObject(invalid);
    await expect(suite.setupPSKR(withX25519(enc, x), kp, INFO, PSK, PSK_ID)).rejects.toMatchObject(invalid);
  });

  it('a changed ML-KEM ciphertext decapsulates (implicit rejection) to other keys, not to an error', async () => {
    const kp = await suite.generateKeyPair();
    const { enc, exporter } = await suite.setupBaseS(kp.publicKey, INFO);
    const changed = enc.slice();
    changed[7]! ^= 0x01;
    const context = utf8('oidc2-e2ee-v1 response');
    const received = await suite.setupBaseR(changed, kp, INFO);
    expect(Buffer.from(await received.export(context, 32))).not.toEqual(Buffer.from(await exporter.export(context, 32)));
  });

  it('through the exchange: a bad modulus, a small-order X25519 part and a short key are e2ee_key_share_invalid, nothing recorded', async () => {
    const svc = service();
    const bad = valid.slice();
    bad.fill(0xff, 0, 3);
    const shares = [bad, withX25519(valid, LOW_ORDER[0]!), valid.subarray(0, 1215)];
    for (const key of shares) {
      const prepared = await prepareE2ee(alice, { method: 'GET', url: `${BASE}/orders`, offer: [], headers: { 'oidc2-key-share': `xwing=:${Buffer.from(key).toString('base64')}:` }, now });
      const { response, code } = await run(svc, prepared);
      expect([key.length, code, response.status]).toEqual([key.length, 'e2ee_key_share_invalid', 400]);
    }
    expect(svc.replayStore.recorded).toBe(0);
  });
});

describe('the engine as an optional dependency', () => {
  afterEach(() => testing.xwingEngineImport(undefined));

  const missing = () => Promise.reject(Object.assign(new Error("Cannot find package '@panva/hpke-noble'"), { code: 'ERR_MODULE_NOT_FOUND' }));
  const named = { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining('@panva/hpke-noble@1.0.3') };

  it('is not imported for x25519 and p256: neither by a service without xwing nor by their handshakes', async () => {
    const load = jest.fn(missing);
    testing.xwingEngineImport(load);
    const svc = service(null);
    await handshake(svc, ['x25519', 'p256']);
    await handshake(service(['p256']), ['x25519', 'p256']);
    expect(load).not.toHaveBeenCalled();
  });

  it('is imported once, when a service that lists xwing is created', async () => {
    const load = jest.fn(() => import('@panva/hpke-noble'));
    testing.xwingEngineImport(load);
    service(['xwing', 'x25519']);
    expect(load).toHaveBeenCalledTimes(1);
    await handshake(service(['xwing', 'x25519']), ['xwing']);
    expect(load).toHaveBeenCalledTimes(1);
  });

  it('missing: every xwing operation fails with a TypeError naming the package; the failure is kept, not retried', async () => {
    const load = jest.fn(missing);
    testing.xwingEngineImport(load);
    await expect(loadHpkeSuite('xwing')).rejects.toMatchObject(named);
    const suite = hpkeSuite('xwing');
    await expect(suite.generateKeyPair()).rejects.toMatchObject(named);
    await expect(suite.deserializePublicKey(new Uint8Array(1216))).rejects.toMatchObject(named);
    await expect(loadHpkeSuite('x25519')).resolves.toBe(hpkeSuite('x25519'));
    expect(load).toHaveBeenCalledTimes(1);
    const error = await loadHpkeSuite('xwing').then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect((error?.cause as { code?: string } | undefined)?.code).toBe('ERR_MODULE_NOT_FOUND');
  });

  it('missing: the service is created, a handshake that would choose xwing throws (a server error), x25519 still works', async () => {
    testing.xwingEngineImport(missing);
    const svc = service(['xwing', 'x25519']);
    const prepared = await prepareE2ee(alice, { method: 'GET', url: `${BASE}/orders`, offer: ['x25519'], now });
    // The caller cannot offer xwing without the engine either; the share is made while it is present.
    testing.xwingEngineImport(undefined);
    const xwingShare = `xwing=:${Buffer.from(await hpkeSuite('xwing').serializePublicKey((await hpkeSuite('xwing').generateKeyPair()).publicKey)).toString('base64')}:`;
    testing.xwingEngineImport(missing);
    const offered = await prepareE2ee(alice, { method: 'GET', url: `${BASE}/orders`, offer: [], headers: { 'oidc2-key-share': xwingShare }, now });
    await expect(svc.exchange(head(offered)).admit(undefined)).rejects.toMatchObject(named);
    expect(svc.replayStore.recorded).toBe(0);
    expect((await open(prepared, (await run(svc, prepared)).response)).session!.suite).toBe('x25519');
  });

  it('a module without the X-Wing KEM (another package or version) is refused the same way', async () => {
    testing.xwingEngineImport(async () => ({ KEM_DHKEM_X25519_HKDF_SHA256: () => ({}) }));
    await expect(loadHpkeSuite('xwing')).rejects.toMatchObject(named);
    testing.xwingEngineImport(async () => ({ KEM_MLKEM768_X25519: () => ({ id: 0x0041, Npk: 1184, Nenc: 1088, Nsecret: 32 }) }));
    await expect(loadHpkeSuite('xwing')).rejects.toMatchObject(named);
  });
});
