// The service side of the attack list (the e2ee attack list) against real Express, Fastify and Koa
// services over loopback. Every refusal is checked for its status and problem `code`, for being a
// signed and unencrypted problem, and for having left the replay store untouched: a rejected request
// must not burn its nonce (docs/protocol.md section 7.9: the nonce is recorded last).
import { randomBytes } from 'node:crypto';
import { SignJWT, importJWK } from 'jose';
import {
  MemorySessionKeyStore,
  StaticSessionKeyStore,
  createDpopProof,
  createIctVerifier,
  createNonce,
  importKey,
  signMessageFields,
  fieldLines,
  requestBinding,
  wptBinding,
  OIDC2_PROFILE,
  signRequest,
  verifyResponse,
  wimseTokenHash,
  type HttpRequest,
  type HttpResponse,
  type IctVerifier,
} from '@oidc2/core';
import { hpkeSuite, macKeys, requestKey, serializeRequestKeyShare, sessionMacBinding } from '@oidc2/core/adapter';
import { encryptBody } from '../../packages/core/src/e2ee/aes128gcm';
import { newIssuer, newKey, type TestIssuer, type TestKey } from '../support/credentials';
import { FRAMEWORKS, RANGED_RESOURCE, startFramework, type FrameworkService } from '../support/frameworks';
import { CountingReplayStore } from '../support/counting-replay-store';
import { openE2ee, openSession, prepareE2ee, problemOf, sendE2ee, type E2eeCaller, type E2eeSession, type PrepareOptions } from '../support/e2ee-caller';
import { encodeHeader, encodeRecords, recordPlain, sealRecord, splitBody } from '../support/rfc8188';
import { mintSession, newStek, sealToken, sessionClaims, tokenHeader, type MintInput } from '../support/session-jwe';

const T = 1_790_000_400; // a multiple of 600 and of 60: STEK periods start here
const enc = new TextEncoder();
const dec = new TextDecoder();

// A JSON body of exactly `length` octets.
function jsonOfLength(length: number): string {
  return JSON.stringify({ pad: 'x'.repeat(length - 10) });
}

const RS = 1024;
const PER = RS - 17; // data octets of a full record
// Three records at rs 1024, the last one short.
const THREE_RECORDS = jsonOfLength(2 * PER + 500);
// Two full records, the final one full-size, so a record appended after it starts on a boundary.
const TWO_FULL_RECORDS = jsonOfLength(2 * PER);

type Caller = E2eeCaller & { key: TestKey; ict: string; jkt: string; sub: string };

let callers: TestIssuer;
let otherCallers: TestIssuer; // a second trusted issuer of caller ICTs
let services: TestIssuer;
let serviceKey: TestKey;
let serviceIct: string;
let alice: Caller;
let bob: Caller;
// A WIMSE workload: its trust domain's issuer key, its own key and its WIT.
const TRUST_DOMAIN = 'workloads.example.test';
let witIssuer: TestKey;
let workloadKey: TestKey;
let wit: string;

beforeAll(async () => {
  callers = await newIssuer('https://op.example.test', 'Ed25519');
  otherCallers = await newIssuer('https://op2.example.test', 'Ed25519');
  services = await newIssuer('https://attest.example.test', 'Ed25519');
  serviceKey = await newKey('Ed25519');
  serviceIct = await services.mint(serviceKey, { subject: 'svc', lifetime: 3600, now: T });
  const caller = async (sub: string): Promise<Caller> => {
    const key = await newKey('Ed25519');
    return { key, ict: await callers.mint(key, { subject: sub, lifetime: 3600, now: T }), jkt: key.thumbprint, sub };
  };
  alice = await caller('alice');
  bob = await caller('bob');
  witIssuer = await newKey('Ed25519');
  workloadKey = await newKey('Ed25519');
  wit = await new SignJWT({ sub: `spiffe://${TRUST_DOMAIN}/batch`, cnf: { jwk: { ...workloadKey.publicJwk, alg: 'EdDSA' } }, jti: 'wit-1' })
    .setProtectedHeader({ alg: 'EdDSA', kid: 'wd', typ: 'wit+jwt' })
    .setIssuedAt(T)
    .setExpirationTime(T + 3600)
    .sign(await importJWK(witIssuer.privateJwk, 'EdDSA'));
});

describe.each(FRAMEWORKS)('%s: attacks on end-to-end encryption', (framework) => {
  let now = T;
  const clock = () => now;
  const store = new CountingReplayStore();
  const stek = newStek();
  // One operator-supplied STEK set shared by `main` and `other` (another audience).
  const sharedKeys = new StaticSessionKeyStore({ keys: [stek.jwk] });
  // STEKs kept for 60 s only, so a token outlives its key.
  const shortKeys = new MemorySessionKeyStore({ stekRotationSeconds: 60, stekRetentionSeconds: 60, now: clock });
  let main: FrameworkService;
  let other: FrameworkService;
  let short: FrameworkService;
  let verifier: IctVerifier;

  let plain: FrameworkService; // the same service without end-to-end encryption
  const options = (url: string, e2ee: object | false) => ({
    issuers: [
      { issuer: callers.issuer, jwks: callers.jwks },
      { issuer: otherCallers.issuer, jwks: otherCallers.jwks },
    ],
    audiences: [url],
    credential: { ict: serviceIct, privateKey: serviceKey.privateJwk },
    workloads: { trustDomains: [{ trustDomain: TRUST_DOMAIN, jwks: { keys: [{ ...witIssuer.publicJwk, kid: 'wd', alg: 'EdDSA' }] } }] },
    replayStore: store,
    now: clock,
    e2ee,
  });

  beforeAll(async () => {
    verifier = createIctVerifier({ issuers: [{ issuer: services.issuer, jwks: services.jwks }], now: clock });
    main = await startFramework(framework, (url) => options(url, { sessionKeys: sharedKeys }));
    other = await startFramework(framework, (url) => options(url, { sessionKeys: sharedKeys, suites: ['p256'] }));
    short = await startFramework(framework, (url) => options(url, { sessionKeys: shortKeys }));
    plain = await startFramework(framework, (url) => options(url, false));
  });
  afterAll(async () => {
    shortKeys.close();
    await Promise.all([main?.close(), other?.close(), short?.close(), plain?.close()]);
  });
  afterEach(() => {
    now = T;
  });

  const json = { 'content-type': 'application/json' };

  /** Sends, expects the refusal, and checks it is signed, unencrypted and recorded nothing. */
  async function refused(request: HttpRequest, status: number, code: string, origin = main.url): Promise<HttpResponse> {
    const before = store.snapshot();
    const res = await sendE2ee(origin, request);
    expect({ status: res.status, code: problemOf(res)?.code }).toEqual({ status, code });
    expect(store.snapshot()).toEqual(before);
    expect(fieldLines(res.headers, 'content-encoding')).toBeUndefined();
    expect([fieldLines(res.headers, 'oidc2-session'), fieldLines(res.headers, 'oidc2-key-share')]).toEqual([undefined, undefined]);
    // Bound to the request's signature when it has one the service could read (as the service does);
    // a WPT caller is answered under the OIDC² profile, because this service holds only an ICT.
    const wpt = request.headers['authorization']?.[0]?.startsWith('WPT ') === true;
    const binding = wpt ? wptBinding(OIDC2_PROFILE) : (requestBinding(request) ?? { proof: 'http-signature' as const, signResponse: false });
    await verifyResponse(res, { request, binding, ictVerifier: verifier, now: clock });
    return res;
  }

  const session = (who: Caller = alice, base = main.url) => openSession(who, base, verifier, { now: clock });
  const post = (s: E2eeSession, body: string, extra: Partial<PrepareOptions> = {}, who: Caller = alice, path = '/echo') =>
    prepareE2ee(who, { method: 'POST', url: `${main.url}${path}`, session: s, body, headers: json, now: clock, ...extra });

  /** A session request with its ciphertext rebuilt by `rebuild` (and signed over, digest and all). */
  async function rebuilt(s: E2eeSession, body: string, rebuild: (parts: { header: Buffer; records: Buffer[]; key: Uint8Array; salt: Buffer }) => Uint8Array) {
    return post(s, body, {
      mutateBody: (_ct, { plaintext, key }) => {
        const salt = randomBytes(16);
        const { header, records } = encodeRecords(key, plaintext, RS, salt);
        return rebuild({ header, records, key, salt });
      },
    });
  }

  it('accepts the honest multi-record body these cases start from (rs 1024)', async () => {
    const s = await session();
    for (const body of [THREE_RECORDS, TWO_FULL_RECORDS]) {
      const p = await rebuilt(s, body, ({ header, records }) => Buffer.concat([header, ...records]));
      const res = await sendE2ee(main.url, p.request);
      expect(res.status).toBe(200);
      const opened = await openE2ee(p, res, verifier, alice, clock);
      expect((JSON.parse(dec.decode(opened.plaintext)) as { echo: unknown }).echo).toEqual(JSON.parse(body));
    }
  });

  describe('record layer (Content-Digest recomputed and signed, so only the AEAD framing decides)', () => {
    const cases: Array<[string, string, (p: { header: Buffer; records: Buffer[]; key: Uint8Array; salt: Buffer }) => Uint8Array]> = [
      ['drop the final record', THREE_RECORDS, ({ header, records }) => Buffer.concat([header, ...records.slice(0, -1)])],
      ['cut inside a record', THREE_RECORDS, ({ header, records }) => Buffer.concat([header, records[0]!, records[1]!.subarray(0, 500)])],
      ['cut at a record boundary', THREE_RECORDS, ({ header, records }) => Buffer.concat([header, records[0]!])],
      ['cut after the header (no record at all)', THREE_RECORDS, ({ header }) => header],
      ['swap two records', THREE_RECORDS, ({ header, records: [a, b, c] }) => Buffer.concat([header, b!, a!, c!])],
      ['repeat a record', THREE_RECORDS, ({ header, records: [a, b, c] }) => Buffer.concat([header, a!, a!, b!, c!])],
      ['append a record after the final record', TWO_FULL_RECORDS, ({ header, records, key, salt }) => Buffer.concat([header, ...records, sealRecord(key, salt, 2, recordPlain(enc.encode('{"more":1}'), 2))])],
      ['append a non-final record after the final record', TWO_FULL_RECORDS, ({ header, records, key, salt }) => Buffer.concat([header, ...records, sealRecord(key, salt, 2, recordPlain(new Uint8Array(PER), 1))])],
      ['a record of zeros only', THREE_RECORDS, ({ key, salt }) => Buffer.concat([encodeHeader(salt, RS), sealRecord(key, salt, 0, new Uint8Array(100))])],
      ['a full-size record of zeros only before the final one', TWO_FULL_RECORDS, ({ header, records, key, salt }) => Buffer.concat([header, sealRecord(key, salt, 0, new Uint8Array(RS - 16)), records[1]!])],
      ['the final delimiter on a non-final record', TWO_FULL_RECORDS, ({ header, records, key, salt }) => Buffer.concat([header, sealRecord(key, salt, 0, recordPlain(new Uint8Array(PER).fill(0x20), 2)), records[1]!])],
      ['an unknown delimiter on a non-final record', TWO_FULL_RECORDS, ({ header, records, key, salt }) => Buffer.concat([header, sealRecord(key, salt, 0, recordPlain(new Uint8Array(PER).fill(0x20), 3)), records[1]!])],
      ['delimiter 0x01 on the final record', THREE_RECORDS, ({ key, salt }) => Buffer.concat([encodeHeader(salt, RS), sealRecord(key, salt, 0, recordPlain(enc.encode('{"a":1}'), 1, 5))])],
      ['a tag that does not verify', THREE_RECORDS, ({ header, records }) => {
        const last = Buffer.from(records[2]!);
        last[last.length - 1]! ^= 1;
        return Buffer.concat([header, records[0]!, records[1]!, last]);
      }],
      // The attack list puts "change rs" under e2ee_encoding_invalid; an rs within 1024..65536 is a
      // usable header (RFC 8188 authenticates no header field), so the records just fail to open.
      // Out-of-bounds rs values are in 'header tampering' below.
      ['rs changed within bounds (1024 to 2048)', THREE_RECORDS, ({ header, records }) => {
        const h = Buffer.from(header);
        h.writeUInt32BE(2048, 16);
        return Buffer.concat([h, ...records]);
      }],
    ];
    it.each(cases)('%s: 400 e2ee_decrypt_failed', async (_name, body, rebuild) => {
      const s = await session();
      await refused((await rebuilt(s, body, rebuild)).request, 400, 'e2ee_decrypt_failed');
    });
  });

  describe('header tampering', () => {
    // Each rewrites a valid encrypted body's header.
    const tamper: Array<[string, (body: Uint8Array) => Uint8Array]> = [
      ['rs below 1024', (b) => withRs(b, 1023)],
      ['rs above 65536', (b) => withRs(b, 65537)],
      ['rs 0', (b) => withRs(b, 0)],
      ['a non-empty keyid', (b) => Buffer.concat([Buffer.from(b.subarray(0, 20)), Buffer.from([1, 0x61]), Buffer.from(b.subarray(21))])],
      ['a keyid longer than the body', (b) => Buffer.concat([Buffer.from(b.subarray(0, 20)), Buffer.from([255]), Buffer.from(b.subarray(21, 40))])],
      ['a header cut to 20 octets', (b) => b.subarray(0, 20)],
      ['a header cut to 1 octet', (b) => b.subarray(0, 1)],
    ];
    function withRs(body: Uint8Array, rs: number): Uint8Array {
      const out = Buffer.from(body);
      out.writeUInt32BE(rs, 16);
      return out;
    }
    it.each(tamper)('%s, digest recomputed and signed: 400 e2ee_encoding_invalid', async (_name, change) => {
      const s = await session();
      await refused((await post(s, '{"a":1}', { mutateBody: (ct) => change(ct) })).request, 400, 'e2ee_encoding_invalid');
    });
    it.each(tamper)('%s, digest left stale: 401 digest_mismatch', async (_name, change) => {
      const s = await session();
      const p = await post(s, '{"a":1}');
      await refused({ ...p.request, body: change(p.request.body!) }, 401, 'digest_mismatch');
    });
  });

  describe('fields and codings', () => {
    const sign = (method: string, path: string, headers: Record<string, string>, body?: Uint8Array) =>
      signRequest({ method, url: `${main.url}${path}`, headers, ...(body ? { body } : {}) }, { ict: alice.ict, key: alice.key.signer, now: clock });

    it('aes128gcm with another coding: 400 e2ee_encoding_invalid', async () => {
      const s = await session();
      const p = await post(s, '{"n":1}');
      await refused(await sign('POST', '/echo', { ...json, 'oidc2-session': s.token, 'content-encoding': 'aes128gcm, gzip' }, p.request.body), 400, 'e2ee_encoding_invalid');
    });

    it('Content-Encoding on an empty body in a session: 400 e2ee_encoding_invalid', async () => {
      const s = await session();
      await refused(await sign('POST', '/echo', { 'oidc2-session': s.token, 'content-encoding': 'aes128gcm' }), 400, 'e2ee_encoding_invalid');
    });

    it('an encrypted session body without Content-Digest (no route takes streamed bodies): 401 digest_missing', async () => {
      const s = await session();
      const p = await post(s, '{"n":1}');
      const bare = await signRequest({ method: 'POST', url: `${main.url}/echo`, headers: { ...json, 'oidc2-session': s.token, 'content-encoding': 'aes128gcm' } }, { ict: alice.ict, key: alice.key.signer, now: clock, nonce: p.nonce });
      await refused({ ...bare, body: p.request.body }, 401, 'digest_missing');
    });

    it('Oidc2-Session with parameters in a request: 401 session_invalid', async () => {
      const s = await session();
      await refused(await sign('GET', '/whoami', { 'oidc2-session': `${s.token};exp=5` }), 401, 'session_invalid');
    });

    it.each([
      ['a suite twice', (x: string) => `x25519=:${x}:, x25519=:${x}:`],
      ['an unknown suite', (x: string) => `x448=:${x}:`],
      ['a member with parameters', (x: string) => `x25519=:${x}:;a=1`],
      ['four members', (x: string) => `x25519=:${x}:, p256=:${x}:, xwing=:${x}:, foo=:${x}:`],
      ['a token instead of a byte sequence', () => 'x25519=abc'],
      ['not a dictionary', () => '(x25519)'],
    ])('Oidc2-Key-Share with %s: 400 e2ee_key_share_invalid', async (_name, value) => {
      const share = Buffer.from((await hpkeSuite('x25519').serializePublicKey((await hpkeSuite('x25519').generateKeyPair()).publicKey))).toString('base64');
      await refused(await sign('GET', '/whoami', { 'oidc2-key-share': value(share) }), 400, 'e2ee_key_share_invalid');
    });
  });

  describe('key shares', () => {
    async function handshake(who: Caller = alice) {
      return prepareE2ee(who, { method: 'GET', url: `${main.url}/whoami`, now: clock });
    }

    it('a key share replaced after signing: 401 signature_invalid', async () => {
      const p = await handshake();
      const pair = await hpkeSuite('x25519').generateKeyPair();
      const swapped = serializeRequestKeyShare([{ suite: 'x25519', key: await hpkeSuite('x25519').serializePublicKey(pair.publicKey) }]);
      await refused({ ...p.request, headers: { ...p.request.headers, 'oidc2-key-share': [swapped] } }, 401, 'signature_invalid');
    });

    it('a member removed from the key share after signing: 401 signature_invalid', async () => {
      const p = await handshake();
      const x25519Only = p.keyShare!.split(',')[0]!;
      await refused({ ...p.request, headers: { ...p.request.headers, 'oidc2-key-share': [x25519Only] } }, 401, 'signature_invalid');
    });

    // The attack list names signature_invalid; the service uses the more specific code that
    // docs/http-message-signatures.md documents for a covered field that is absent.
    it('the key share stripped after signing (still listed in Signature-Input): 401 component_missing', async () => {
      const p = await handshake();
      const { 'oidc2-key-share': _gone, ...headers } = p.request.headers;
      await refused({ ...p.request, headers }, 401, 'component_missing');
    });

    // A proxy adds a field of its own to a request signed without it: a key share it holds the
    // private half of, a session token it recorded, or a coding. The signature must cover each.
    it.each(['oidc2-key-share', 'oidc2-session', 'content-encoding'] as const)('%s added by a proxy to a request signed without it: 401 component_not_covered', async (field) => {
      const s = await session();
      const share = (await handshake()).keyShare!;
      const value = { 'oidc2-key-share': share, 'oidc2-session': s.token, 'content-encoding': 'aes128gcm' }[field];
      const signed = await signRequest({ method: 'POST', url: `${main.url}/echo`, headers: json, body: enc.encode('{"n":1}') }, { ict: alice.ict, key: alice.key.signer, now: clock });
      await refused({ ...signed, headers: { ...signed.headers, [field]: [value] } }, 401, 'component_not_covered');
    });

    it('a key share or session with a DPoP proof: 400 e2ee_proof_unsupported', async () => {
      const s = await session();
      const pair = await hpkeSuite('x25519').generateKeyPair();
      const share = serializeRequestKeyShare([{ suite: 'x25519', key: await hpkeSuite('x25519').serializePublicKey(pair.publicKey) }]);
      const fields: Array<Record<string, string[]>> = [{ 'oidc2-key-share': [share] }, { 'oidc2-session': [s.token] }];
      for (const field of fields) {
        const url = `${main.url}/whoami`;
        const proof = await createDpopProof({ method: 'GET', url, key: alice.key.signer, jwk: alice.key.publicJwk, accessToken: alice.ict, now: clock });
        const request: HttpRequest = { method: 'GET', url, headers: { authorization: [`DPoP ${alice.ict}`], dpop: [proof], ...field } };
        await refused(request, 400, 'e2ee_proof_unsupported');
      }
    });

    const wptRequest = async (fields: Record<string, string[]>): Promise<HttpRequest> => {
      const url = `${main.url}/whoami`;
      const wpt = await new SignJWT({ aud: url, exp: Math.floor(now) + 60, jti: randomBytes(12).toString('base64url'), wth: await wimseTokenHash(wit) })
        .setProtectedHeader({ alg: 'EdDSA', typ: 'wpt+jwt' })
        .sign(await importJWK(workloadKey.privateJwk, 'EdDSA'));
      return { method: 'GET', url, headers: { 'workload-identity-token': [wit], authorization: [`WPT ${wpt}`], ...fields } };
    };

    it('a key share or session with a WPT: 400 e2ee_proof_unsupported', async () => {
      const s = await session();
      const share = (await handshake()).keyShare!;
      await refused(await wptRequest({ 'oidc2-key-share': [share] }), 400, 'e2ee_proof_unsupported');
      await refused(await wptRequest({ 'oidc2-session': [s.token] }), 400, 'e2ee_proof_unsupported');
    });

    it('the same WPT request without e2ee fields is accepted (control)', async () => {
      const res = await sendE2ee(main.url, await wptRequest({}));
      expect({ status: res.status, caller: (JSON.parse(dec.decode(res.body)) as { caller: string }).caller }).toEqual({ status: 200, caller: `spiffe://${TRUST_DOMAIN}/batch` });
    });

    it('the same DPoP request without e2ee fields is accepted (control)', async () => {
      const url = `${main.url}/whoami`;
      const proof = await createDpopProof({ method: 'GET', url, key: alice.key.signer, jwk: alice.key.publicJwk, accessToken: alice.ict, now: clock });
      const res = await sendE2ee(main.url, { method: 'GET', url, headers: { authorization: [`DPoP ${alice.ict}`], dpop: [proof] } });
      expect(res.status).toBe(200);
    });
  });

  describe('invalid points', () => {
    const hex = (h: string) => Buffer.from(h, 'hex');
    const P = 'ffffffff00000001000000000000000000000000ffffffffffffffffffffffff';
    // Wycheproof x25519_test.json and libsodium's blocklist: the low-order points and their
    // non-canonical encodings (u = p - 1, p, p + 1, and the same with the top bit set).
    const x25519: Array<[string, Buffer]> = [
      ['all-zero', Buffer.alloc(32)],
      ['u = 1 (order 1)', hex('0100000000000000000000000000000000000000000000000000000000000000')],
      ['order 8 (a)', hex('e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800')],
      ['order 8 (b)', hex('5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157')],
      ['u = p - 1', hex('ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f')],
      ['u = p', hex('edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f')],
      ['u = p + 1', hex('eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f')],
      // RFC 7748 masks the top bit, so these are the low-order points above once more.
      ['order 8 (a), top bit set', hex('e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880')],
      ['order 8 (b), top bit set', hex('5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f11d7')],
      ['u = p, top bit set', hex('edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff')],
      ['u = p + 1, top bit set', hex('eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff')],
      ['31 octets', Buffer.alloc(31, 9)],
      ['33 octets', Buffer.alloc(33, 9)],
      ['empty', Buffer.alloc(0)],
    ];
    const p256: Array<[string, Buffer]> = [
      ['off the curve (1, 1)', Buffer.concat([hex('04'), Buffer.alloc(31), hex('01'), Buffer.alloc(31), hex('01')])],
      ['(0, 0)', Buffer.concat([hex('04'), Buffer.alloc(64)])],
      ['the point at infinity (all zero)', Buffer.alloc(65)],
      ['the point at infinity (one octet 00)', hex('00')],
      ['x = p', Buffer.concat([hex('04'), hex(P), Buffer.alloc(31), hex('01')])],
      ['compressed', Buffer.concat([hex('02'), Buffer.alloc(31), hex('03')])],
      ['64 octets (no prefix)', Buffer.alloc(64, 7)],
      ['66 octets', Buffer.concat([hex('04'), Buffer.alloc(65, 7)])],
      ['prefix 05', Buffer.concat([hex('05'), Buffer.alloc(64, 7)])],
    ];
    const cases: Array<[string, string, Buffer]> = [...x25519.map(([n, b]) => ['x25519', n, b] as [string, string, Buffer]), ...p256.map(([n, b]) => ['p256', n, b] as [string, string, Buffer])];
    it.each(cases)('%s %s: 400 e2ee_key_share_invalid', async (suite, _name, point) => {
      const url = `${main.url}/whoami`;
      const request = await signRequest({ method: 'GET', url, headers: { 'oidc2-key-share': `${suite}=:${point.toString('base64')}:` } }, { ict: alice.ict, key: alice.key.signer, now: clock });
      await refused(request, 400, 'e2ee_key_share_invalid');
    });

    it('a valid share of the same suites is accepted (control)', async () => {
      for (const suite of ['x25519', 'p256'] as const) {
        const p = await prepareE2ee(alice, { method: 'GET', url: `${main.url}/whoami`, offer: [suite], now: clock });
        const res = await sendE2ee(main.url, p.request);
        expect(res.status).toBe(200);
        expect((await openE2ee(p, res, verifier, alice, clock)).session?.suite).toBe(suite);
      }
    });
  });

  describe('session tokens', () => {
    const aliceIdentity = () => ({ iss: callers.issuer, sub: 'alice', jkt: alice.jkt });
    const mint = (input: Partial<MintInput> = {}) => mintSession(stek, { caller: aliceIdentity(), aud: main.url, iat: T, ...input });
    const whoami = (s: E2eeSession, who: Caller = alice, base = main.url) => prepareE2ee(who, { method: 'GET', url: `${base}/whoami`, session: s, now: clock });

    it("B sends A's token with B's own ICT and signature: 401 session_binding_mismatch", async () => {
      const s = await session(alice);
      await refused((await whoami(s, bob)).request, 401, 'session_binding_mismatch');
    });

    it("B rekeys with A's token: 401 session_binding_mismatch, and no successor is issued", async () => {
      const s = await session(alice);
      await refused((await prepareE2ee(bob, { method: 'GET', url: `${main.url}/whoami`, session: s, offer: ['x25519'], now: clock })).request, 401, 'session_binding_mismatch');
    });

    it('A with a renewed ICT for the same key keeps the session (control)', async () => {
      const s = await session(alice);
      const renewed = { ...alice, ict: await callers.mint(alice.key, { subject: 'alice', lifetime: 3000, now: T + 1 }) };
      expect(renewed.ict).not.toBe(alice.ict);
      const p = await prepareE2ee(renewed, { method: 'GET', url: `${main.url}/whoami`, session: s, now: clock });
      expect((await sendE2ee(main.url, p.request)).status).toBe(200);
    });

    it.each([
      ['the same key certified for another subject', async () => ({ ...alice, ict: await callers.mint(alice.key, { subject: 'mallory', lifetime: 3000, now: T }) })],
      ['the same key and subject from another trusted issuer', async () => ({ ...alice, ict: await otherCallers.mint(alice.key, { subject: 'alice', lifetime: 3000, now: T }) })],
    ])("A's token with %s: 401 session_binding_mismatch", async (_name, make) => {
      const s = await session(alice);
      const impostor = await make();
      await refused((await prepareE2ee(impostor, { method: 'GET', url: `${main.url}/whoami`, session: s, now: clock })).request, 401, 'session_binding_mismatch');
    });

    it('an Oidc2-Session longer than 4 KiB: 401 session_invalid', async () => {
      const request = await signRequest({ method: 'GET', url: `${main.url}/whoami`, headers: { 'oidc2-session': `a.${'b'.repeat(4100)}.c.d.e` } }, { ict: alice.ict, key: alice.key.signer, now: clock });
      await refused(request, 401, 'session_invalid');
    });

    it('a token at another service that shares the STEKs: 401 session_invalid', async () => {
      const s = await session(alice);
      await refused((await whoami(s, alice, other.url)).request, 401, 'session_invalid', other.url);
    });

    it('a token after its expiry: 401 session_expired', async () => {
      const s = await session(alice);
      now = T + 600 + 60;
      await refused((await whoami(s)).request, 401, 'session_expired');
    });

    it('a token after its STEK was deleted (before it expires): 401 session_invalid', async () => {
      const s = await openSession(alice, short.url, verifier, { now: clock });
      now = T + 30;
      const ok = await prepareE2ee(alice, { method: 'GET', url: `${short.url}/whoami`, session: s, now: clock });
      expect((await sendE2ee(short.url, ok.request)).status).toBe(200);
      now = T + 120;
      expect(s.exp).toBeGreaterThan(now);
      await refused((await prepareE2ee(alice, { method: 'GET', url: `${short.url}/whoami`, session: s, now: clock })).request, 401, 'session_invalid', short.url);
    });

    it('a token minted under the known STEK with the profile shape is accepted (control)', async () => {
      const s = await mint();
      const p = await post(s, '{"minted":true}');
      const res = await sendE2ee(main.url, p.request);
      expect(res.status).toBe(200);
      expect((JSON.parse(dec.decode((await openE2ee(p, res, verifier, alice, clock)).plaintext)) as { echo: unknown }).echo).toEqual({ minted: true });
    });

    it('a token minted for A and sent by B: 401 session_binding_mismatch', async () => {
      await refused((await whoami(await mint(), bob)).request, 401, 'session_binding_mismatch');
    });

    // docs/protocol.md section 7.11 is opt-in on both sides; this service has not opted in, so an HMAC under K_c2s
    // in place of the ICT and its signature is refused before the token is opened, even a `mac: true` token
    // (test/e2ee/symmetric-attacks.test.ts has the mode's own attacks).
    it('a symmetric-mode request (HMAC under K_c2s, no ICT) with a minted mac token: 401 session_mac_unavailable', async () => {
      const s = await mint({ claims: { mac: true, ctx: [], ctyp: 'ict' } });
      const { c2s } = await macKeys(s.rk, s.sid);
      const key = await importKey(c2s, 'hmac-sha256', 'sign');
      const url = `${main.url}/whoami`;
      const message = { method: 'GET', url, headers: { 'oidc2-session': [s.token] } };
      const t = Math.floor(now);
      const fields = await signMessageFields(message, {
        components: ['@method', '@path', '@query', 'oidc2-session'],
        params: { created: t, expires: t + 60, nonce: createNonce(), tag: 'oidc2-session', 'oidc2-aud': url },
        key,
      });
      const request = { ...message, headers: { ...message.headers, ...fields } };
      const before = store.snapshot();
      const res = await sendE2ee(main.url, request);
      expect({ status: res.status, code: problemOf(res)?.code }).toEqual({ status: 401, code: 'session_mac_unavailable' });
      expect(store.snapshot()).toEqual(before);
      // Signed with the service's key, bound to the request's nonce.
      await verifyResponse(res, { request, binding: sessionMacBinding(request)!, ictVerifier: verifier, now: clock });
    });

    const flip = (token: string, part: number, at = 5) => {
      const parts = token.split('.');
      const seg = parts[part]!;
      parts[part] = seg.slice(0, at) + (seg[at] === 'A' ? 'B' : 'A') + seg.slice(at + 1);
      return parts.join('.');
    };

    const forged: Array<[string, () => Promise<string>]> = [
      ['a ciphertext character changed', async () => flip((await session()).token, 3)],
      ['a tag character changed', async () => flip((await session()).token, 4)],
      ['an IV character changed', async () => flip((await session()).token, 2)],
      ['the header changed (kid)', async () => {
        const token = (await session()).token;
        return Buffer.from(JSON.stringify({ ...tokenHeader(stek.jwk.kid), kid: `${stek.jwk.kid}x` })).toString('base64url') + token.slice(token.indexOf('.'));
      }],
      ['a key that is not the STEK (same kid)', async () => sealToken(sessionClaims({ caller: aliceIdentity(), aud: main.url, iat: T }).claims, new Uint8Array(randomBytes(32)), tokenHeader(stek.jwk.kid))],
      ['an unknown kid', async () => sealToken(sessionClaims({ caller: aliceIdentity(), aud: main.url, iat: T }).claims, stek.key, tokenHeader('no-such-kid'))],
      ['zip DEF', async () => sealToken(sessionClaims({ caller: aliceIdentity(), aud: main.url, iat: T }).claims, stek.key, { ...tokenHeader(stek.jwk.kid), zip: 'DEF' })],
      ['alg A256KW under the STEK', async () => sealToken(sessionClaims({ caller: aliceIdentity(), aud: main.url, iat: T }).claims, stek.key, { ...tokenHeader(stek.jwk.kid), alg: 'A256KW' })],
      ['alg A256GCMKW under the STEK', async () => sealToken(sessionClaims({ caller: aliceIdentity(), aud: main.url, iat: T }).claims, stek.key, { ...tokenHeader(stek.jwk.kid), alg: 'A256GCMKW' })],
      ['enc A128GCM (dir with half the STEK)', async () => sealToken(sessionClaims({ caller: aliceIdentity(), aud: main.url, iat: T }).claims, stek.key.subarray(0, 16), { ...tokenHeader(stek.jwk.kid), enc: 'A128GCM' })],
      ['another typ', async () => sealToken(sessionClaims({ caller: aliceIdentity(), aud: main.url, iat: T }).claims, stek.key, { ...tokenHeader(stek.jwk.kid), typ: 'JWT' })],
      ['an extra header member', async () => sealToken(sessionClaims({ caller: aliceIdentity(), aud: main.url, iat: T }).claims, stek.key, { ...tokenHeader(stek.jwk.kid), cty: 'JWT' })],
      ['an unknown claim', async () => (await mint({ claims: { admin: true } })).token],
      ['v 2', async () => (await mint({ claims: { v: 2 } })).token],
      ['no cnf', async () => (await mint({ claims: { cnf: undefined } })).token],
      ['a short rk', async () => (await mint({ claims: { rk: Buffer.alloc(16).toString('base64url') } })).token],
      ['another aud', async () => (await mint({ aud: other.url })).token],
      ['exp - iat beyond epochSeconds', async () => (await mint({ exp: T + 601 })).token],
      ['iat in the future', async () => (await mint({ iat: T + 120, exp: T + 720 })).token],
      ['sat after iat', async () => (await mint({ sat: T + 1 })).token],
      ['exp beyond sat + maxAgeSeconds', async () => (await mint({ sat: T - 3500 })).token],
    ];
    it.each(forged)('%s: 401 session_invalid', async (_name, make) => {
      const token = await make();
      const s: E2eeSession = { token, rk: new Uint8Array(32), sid: new Uint8Array(16), suite: 'x25519', exp: T + 600, rekey: T + 480 };
      await refused((await whoami(s)).request, 401, 'session_invalid');
    });
  });

  describe('cut-and-paste, reflection and replay within one session', () => {
    it('a ciphertext moved to another request of the session: 400 e2ee_decrypt_failed', async () => {
      const s = await session();
      const first = await post(s, '{"n":1}');
      await refused((await post(s, '{"n":2}', { mutateBody: () => first.request.body! })).request, 400, 'e2ee_decrypt_failed');
    });

    it('a ciphertext made for another method: 400 e2ee_decrypt_failed', async () => {
      const s = await session();
      const p = await post(s, '{"n":1}', {
        mutateBody: async (_ct, { plaintext, nonce, audience, session: x }) => encryptBody(await requestKey({ rk: x.rk, sid: x.sid, nonce, method: 'PUT', audience }), plaintext),
      });
      await refused(p.request, 400, 'e2ee_decrypt_failed');
    });

    it('a ciphertext made for another path: 400 e2ee_decrypt_failed', async () => {
      const s = await session();
      const p = await post(s, '{"n":1}', {
        mutateBody: async (_ct, { plaintext, nonce, session: x }) => encryptBody(await requestKey({ rk: x.rk, sid: x.sid, nonce, method: 'POST', audience: `${main.url}/secret` }), plaintext),
      });
      await refused(p.request, 400, 'e2ee_decrypt_failed');
    });

    it('a ciphertext moved with its Content-Digest but not re-signed: 401 signature_invalid', async () => {
      const s = await session();
      const first = await post(s, '{"n":1}');
      const second = await post(s, '{"n":2}');
      const moved = { ...second.request, body: first.request.body, headers: { ...second.request.headers, 'content-digest': first.request.headers['content-digest']! } };
      await refused(moved, 401, 'signature_invalid');
    });

    it('a response body sent back as a request body (reflection): 400 e2ee_decrypt_failed', async () => {
      const s = await session();
      const p = await post(s, '{"n":1}');
      const res = await sendE2ee(main.url, p.request);
      expect(res.status).toBe(200);
      expect(fieldLines(res.headers, 'content-encoding')).toEqual(['aes128gcm']);
      await refused((await post(s, '{"n":2}', { mutateBody: () => res.body! })).request, 400, 'e2ee_decrypt_failed');
    });

    it('a complete signed session request sent again: 401 replay_detected', async () => {
      const s = await session();
      const p = await post(s, '{"n":1}');
      const before = store.snapshot();
      expect((await sendE2ee(main.url, p.request)).status).toBe(200);
      expect(store.snapshot()).toEqual({ calls: before.calls + 1, recorded: before.recorded + 1 });
      const again = await sendE2ee(main.url, p.request);
      expect({ status: again.status, code: problemOf(again)?.code }).toEqual({ status: 401, code: 'replay_detected' });
      expect(store.snapshot().recorded).toBe(before.recorded + 1);
      expect(fieldLines(again.headers, 'content-encoding')).toBeUndefined();
      await verifyResponse(again, { request: p.request, binding: requestBinding(p.request)!, ictVerifier: verifier, now: clock });
    });
  });

  describe('downgrade and policy', () => {
    // As with the key share: a covered field that is absent is component_missing.
    it('Content-Encoding stripped after signing: 401 component_missing', async () => {
      const s = await session();
      const p = await post(s, '{"n":1}');
      const { 'content-encoding': _gone, ...headers } = p.request.headers;
      await refused({ ...p.request, headers }, 401, 'component_missing');
    });

    it('Content-Encoding changed after signing: 401 signature_invalid', async () => {
      const s = await session();
      const p = await post(s, '{"n":1}');
      await refused({ ...p.request, headers: { ...p.request.headers, 'content-encoding': ['identity'] } }, 401, 'signature_invalid');
    });

    it('a plaintext body in a session: 415 e2ee_body_not_encrypted with Accept-Encoding: aes128gcm', async () => {
      const s = await session();
      const res = await refused((await post(s, '{"n":1}', { plaintextBody: true })).request, 415, 'e2ee_body_not_encrypted');
      expect(fieldLines(res.headers, 'accept-encoding')).toEqual(['aes128gcm']);
    });

    it('a plaintext body in a handshake on a required route: 415 e2ee_body_not_encrypted', async () => {
      const p = await prepareE2ee(alice, { method: 'POST', url: `${main.url}/secret`, body: '{"n":1}', headers: json, now: clock });
      const res = await refused(p.request, 415, 'e2ee_body_not_encrypted');
      expect(fieldLines(res.headers, 'accept-encoding')).toEqual(['aes128gcm']);
    });

    it('no key share or session on a required route: 401 e2ee_required with its challenge', async () => {
      const request = await signRequest({ method: 'POST', url: `${main.url}/secret`, headers: json, body: enc.encode('{"n":1}') }, { ict: alice.ict, key: alice.key.signer, now: clock });
      const res = await refused(request, 401, 'e2ee_required');
      expect(fieldLines(res.headers, 'www-authenticate')).toEqual(['Oidc2 error="e2ee_required", kems="x25519 p256"']);
    });

    it('the required route in a session is served (control)', async () => {
      const s = await session();
      const p = await post(s, '{"n":1}', {}, alice, '/secret');
      const res = await sendE2ee(main.url, p.request);
      expect(res.status).toBe(200);
      expect((JSON.parse(dec.decode((await openE2ee(p, res, verifier, alice, clock)).plaintext)) as { echo: unknown }).echo).toEqual({ n: 1 });
    });

    it('e2ee fields on an off route: 400 e2ee_unavailable', async () => {
      const s = await session();
      await refused((await prepareE2ee(alice, { method: 'GET', url: `${main.url}/clear`, now: clock })).request, 400, 'e2ee_unavailable');
      await refused((await prepareE2ee(alice, { method: 'GET', url: `${main.url}/clear`, session: s, now: clock })).request, 400, 'e2ee_unavailable');
    });

    it('the off route in clear is served (control)', async () => {
      const request = await signRequest({ method: 'GET', url: `${main.url}/clear` }, { ict: alice.ict, key: alice.key.signer, now: clock });
      const res = await sendE2ee(main.url, request);
      expect(res.status).toBe(200);
      expect((JSON.parse(dec.decode(res.body)) as { caller: string }).caller).toBe('alice');
    });

    it('a required route at a service without end-to-end encryption: 401 e2ee_required', async () => {
      const request = await signRequest({ method: 'POST', url: `${plain.url}/secret`, headers: json, body: enc.encode('{"n":1}') }, { ict: alice.ict, key: alice.key.signer, now: clock });
      await refused(request, 401, 'e2ee_required', plain.url);
    });

    it('no shared suite (service p256 only, caller x25519 only): 400 e2ee_kem_unsupported naming kems', async () => {
      const p = await prepareE2ee(alice, { method: 'GET', url: `${other.url}/whoami`, offer: ['x25519'], now: clock });
      const res = await refused(p.request, 400, 'e2ee_kem_unsupported', other.url);
      expect(problemOf(res)?.kems).toEqual(['p256']);
    });

    it('only xwing offered (not enabled here): 400 e2ee_kem_unsupported naming kems', async () => {
      const url = `${main.url}/whoami`;
      const request = await signRequest({ method: 'GET', url, headers: { 'oidc2-key-share': `xwing=:${Buffer.alloc(1216, 1).toString('base64')}:` } }, { ict: alice.ict, key: alice.key.signer, now: clock });
      const res = await refused(request, 400, 'e2ee_kem_unsupported');
      expect(problemOf(res)?.kems).toEqual(['x25519', 'p256']);
    });

    it('a rekey offering no suite the service has: 400 e2ee_kem_unsupported, and no successor', async () => {
      const s = await openSession(alice, other.url, verifier, { now: clock, offer: ['p256'] });
      const p = await prepareE2ee(alice, { method: 'GET', url: `${other.url}/whoami`, session: s, offer: ['x25519'], now: clock });
      const res = await refused(p.request, 400, 'e2ee_kem_unsupported', other.url);
      expect(problemOf(res)?.kems).toEqual(['p256']);
    });

    it('a rekey with an all-zero X25519 share: 400 e2ee_key_share_invalid', async () => {
      const s = await session();
      const request = await signRequest(
        { method: 'GET', url: `${main.url}/whoami`, headers: { 'oidc2-session': s.token, 'oidc2-key-share': `x25519=:${Buffer.alloc(32).toString('base64')}:` } },
        { ict: alice.ict, key: alice.key.signer, now: clock },
      );
      await refused(request, 400, 'e2ee_key_share_invalid');
    });

    it('an encrypted body in a handshake: 400 e2ee_key_missing', async () => {
      const body = await encryptBody(new Uint8Array(32).fill(1), enc.encode('{"n":1}'));
      const url = `${main.url}/echo`;
      const share = (await prepareE2ee(alice, { method: 'POST', url, now: clock })).keyShare!;
      const handshake = await signRequest({ method: 'POST', url, headers: { ...json, 'content-encoding': 'aes128gcm', 'oidc2-key-share': share }, body }, { ict: alice.ict, key: alice.key.signer, now: clock });
      await refused(handshake, 400, 'e2ee_key_missing');
      const bare = await signRequest({ method: 'POST', url, headers: { ...json, 'content-encoding': 'aes128gcm' }, body }, { ict: alice.ict, key: alice.key.signer, now: clock });
      await refused(bare, 400, 'e2ee_key_missing');
    });
  });

  describe('caching', () => {
    it('an encrypted answer carries Cache-Control: no-store, no-transform', async () => {
      const s = await session();
      const p = await prepareE2ee(alice, { method: 'GET', url: `${main.url}/ranged`, session: s, now: clock });
      const res = await sendE2ee(main.url, p.request);
      expect(res.status).toBe(200);
      expect(fieldLines(res.headers, 'cache-control')).toEqual(['no-store, no-transform']);
      expect((await openE2ee(p, res, verifier, alice, clock)).plaintext).toEqual(RANGED_RESOURCE);
    });

    it('the range-capable route answers 206 in clear (the control for the Range case)', async () => {
      const request = await signRequest({ method: 'GET', url: `${main.url}/ranged`, headers: { range: 'bytes=0-9' } }, { ict: alice.ict, key: alice.key.signer, now: clock });
      expect((await sendE2ee(main.url, request)).status).toBe(206);
    });
  });

  it('oracle: a tag failure, a bad delimiter and a truncation answer the same status, code and body', async () => {
    const s = await session();
    const bodies: string[] = [];
    const builds: Array<(p: { header: Buffer; records: Buffer[]; key: Uint8Array; salt: Buffer }) => Uint8Array> = [
      ({ header, records }) => {
        const last = Buffer.from(records[2]!);
        last[last.length - 1]! ^= 1;
        return Buffer.concat([header, records[0]!, records[1]!, last]);
      },
      ({ header, records, key, salt }) => Buffer.concat([header, records[0]!, records[1]!, sealRecord(key, salt, 2, recordPlain(enc.encode('x'.repeat(400)), 3))]),
      ({ header, records }) => Buffer.concat([header, records[0]!, records[1]!]),
    ];
    const seen = [];
    for (const build of builds) {
      const res = await refused((await rebuilt(s, THREE_RECORDS, build)).request, 400, 'e2ee_decrypt_failed');
      bodies.push(dec.decode(res.body));
      seen.push({ status: res.status, type: fieldLines(res.headers, 'content-type'), length: res.body!.length });
    }
    expect(new Set(bodies).size).toBe(1);
    expect(seen[1]).toEqual(seen[0]);
    expect(seen[2]).toEqual(seen[0]);
    expect(Object.keys(JSON.parse(bodies[0]!) as object).sort()).toEqual(['code', 'detail', 'status', 'title', 'type']);
  });

  describe('the session endpoint', () => {
    const endpoint = () => `${main.url}/.well-known/oidc2-session`;
    it('with a body: 400 request_malformed', async () => {
      const share = (await prepareE2ee(alice, { method: 'POST', url: endpoint(), now: clock })).keyShare!;
      const request = await signRequest({ method: 'POST', url: endpoint(), headers: { 'oidc2-key-share': share, 'content-type': 'text/plain' }, body: enc.encode('hello') }, { ict: alice.ict, key: alice.key.signer, now: clock });
      await refused(request, 400, 'request_malformed');
    });
    it('without any e2ee field: 401 e2ee_required', async () => {
      const request = await signRequest({ method: 'POST', url: endpoint() }, { ict: alice.ict, key: alice.key.signer, now: clock });
      await refused(request, 401, 'e2ee_required');
    });
    it('with a session and no key share: 400 e2ee_key_missing', async () => {
      const s = await session();
      await refused((await prepareE2ee(alice, { method: 'POST', url: endpoint(), session: s, now: clock })).request, 400, 'e2ee_key_missing');
    });
  });

  it('splitBody reads back what encodeRecords wrote (the helper the cases rely on)', () => {
    const key = new Uint8Array(32).fill(3);
    const salt = randomBytes(16);
    const { header, records } = encodeRecords(key, enc.encode(THREE_RECORDS), RS, salt);
    const parsed = splitBody(Buffer.concat([header, ...records]));
    expect(parsed.rs).toBe(RS);
    expect(parsed.records).toEqual(records);
    expect(records.slice(0, -1).every((r) => r.length === RS)).toBe(true);
  });
});
