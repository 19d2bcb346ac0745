// Streamed end-to-end encrypted bodies inside the exchange, on synthetic messages (docs/protocol.md section 7.7): the
// route option, which requests stream and that their body is never read before admission, what the
// route gets, which responses stream and what their head carries, and the signing and verifying
// options that let a head go without Content-Digest. Over real sockets: test/e2ee/streaming.test.ts.
import {
  assertRoutePolicy,
  createIctVerifier,
  createOidc2Service,
  signResponse,
  verifyResponse,
  type ExchangeResponse,
  type HttpRequest,
  type Oidc2Options,
  type RoutePolicy,
} from '../../src/index';
import { decryptBodyStream, encryptBody, E2EE_RECORD_SIZE, responseKey } from '../../src/adapter';
import { utf8 } from '../../src/lib/base64';
import { importKey } from '../../src/lib/crypto';
import { newIssuer, newKey, type TestIssuer, type TestKey } from '../../../../test/support/credentials';
import { openE2ee, prepareE2ee, type E2eeCaller, type E2eeSession, type Prepared } from '../../../../test/support/e2ee-caller';
import { prepareStreamedUpload } from '../../../../test/support/e2ee-stream';
import { CountingReplayStore } from '../../../../test/support/counting-replay-store';
import { codeOf } from '../../../../test/support/error-code';
import { chunked, collect } from '../support/e2ee';

const T = 1_790_000_000;
const now = () => T;
const BASE = 'https://api.example.com';
const STREAMS: RoutePolicy = { encryptedStreams: { requests: true } };
const PER = E2EE_RECORD_SIZE - 17;

let op: TestIssuer;
let alice: E2eeCaller;
let bob: E2eeCaller;
let svcKey: TestKey;
let svcIct: string;

beforeAll(async () => {
  op = await newIssuer('https://op.example.com');
  const a = await newKey('ES256');
  alice = { key: a, ict: await op.mint(a, { now: T - 10, subject: 'alice', lifetime: 3600 }) };
  const b = await newKey('Ed25519');
  bob = { key: b, ict: await op.mint(b, { now: T - 10, subject: 'bob', lifetime: 3600 }) };
  svcKey = await newKey('Ed25519');
  svcIct = await op.mint(svcKey, { now: T - 10, subject: 'orders-service', lifetime: 3600 });
});

function service(extra: Partial<Oidc2Options> = {}) {
  const replayStore = new CountingReplayStore();
  const svc = createOidc2Service({ issuers: [{ issuer: op.issuer, jwks: op.jwks }], audiences: [BASE], now, replayStore, credential: { ict: svcIct, privateKey: svcKey.privateJwk }, ...extra });
  return Object.assign(svc, { replayStore });
}
type Service = ReturnType<typeof service>;

const verifier = () => createIctVerifier({ issuers: [{ issuer: op.issuer, jwks: op.jwks }], now });

/** Method, origin-form target and fields of a signed request, with the framing a body would have. */
function head(prepared: Prepared, framing: Record<string, string> = {}): HttpRequest {
  const r = prepared.request;
  const headers = { ...r.headers };
  for (const [name, value] of Object.entries(framing)) headers[name] = [value];
  if (r.body) headers['content-length'] = [String(r.body.length)];
  return { method: r.method, url: new URL(r.url).pathname, headers };
}

async function handshake(svc: Service, who: E2eeCaller = alice): Promise<E2eeSession> {
  const prepared = await prepareE2ee(who, { method: 'POST', url: `${BASE}/.well-known/oidc2-session`, now });
  const admission = await svc.exchange(head(prepared)).admit(undefined);
  if (!admission.answered) throw new Error('the session endpoint answers itself');
  return (await openE2ee(prepared, admission.response as never, verifier(), who, now)).session!;
}

/** A body source that counts what was pulled from it and whether it was stopped. */
function counted(bytes: Uint8Array, size = 1000) {
  const source = {
    pulled: 0,
    stopped: false,
    async *[Symbol.asyncIterator]() {
      try {
        for await (const chunk of chunked(bytes, size)) {
          source.pulled += chunk.length;
          yield chunk;
        }
      } finally {
        source.stopped = true;
      }
    },
  };
  return source;
}

/** A streamed upload of `plaintext`: the signed head (chunked framing, no Content-Digest) and its ciphertext. */
async function streamedUpload(who: E2eeCaller, session: E2eeSession, plaintext: Uint8Array, url = `${BASE}/orders`) {
  const { prepared, body } = await prepareStreamedUpload(who, session, { url, headers: { 'content-type': 'application/octet-stream' }, plaintext: chunked(plaintext, 5000), now });
  return { prepared, request: head(prepared, { 'transfer-encoding': 'chunked' }), ciphertext: await collect(body) };
}

const plain = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 13 + 5) & 0xff);
const problemCode = (response: ExchangeResponse) => (JSON.parse(new TextDecoder().decode(response.body as Uint8Array)) as { code: string }).code;

describe('the route option', () => {
  it('is an object of two booleans, checked where it is declared', () => {
    expect(() => assertRoutePolicy({ encryptedStreams: { requests: true, responses: false } })).not.toThrow();
    expect(() => assertRoutePolicy({ encryptedStreams: { request: true } as never })).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_OPTION' }));
    expect(() => assertRoutePolicy({ encryptedStreams: { requests: 'yes' } as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => assertRoutePolicy({ encryptedStreams: true as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => service({ policy: { encryptedStreams: { responses: 1 } as never } })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });
});

describe('streamed requests', () => {
  it('stream only in a session, aes128gcm without Content-Digest, on a route that allows it', async () => {
    const svc = service();
    const session = await handshake(svc);
    const { request } = await streamedUpload(alice, session, plain(10));
    expect(svc.exchange(request, STREAMS).streamsBody).toBe(true);
    expect(service({ policy: STREAMS }).exchange(request).streamsBody).toBe(true); // the service's default policy
    expect(svc.exchange(request).streamsBody).toBe(false);
    expect(svc.exchange(request, { encryptedStreams: { responses: true } }).streamsBody).toBe(false);
    const without = (name: string) => ({ ...request, headers: Object.fromEntries(Object.entries(request.headers).filter(([n]) => n !== name)) });
    expect(svc.exchange(without('oidc2-session'), STREAMS).streamsBody).toBe(false);
    expect(svc.exchange(without('transfer-encoding'), STREAMS).streamsBody).toBe(false);
    expect(svc.exchange({ ...request, headers: { ...request.headers, 'content-digest': ['sha-256=:AAAA:'] } }, STREAMS).streamsBody).toBe(false);
    expect(svc.exchange({ ...request, headers: { ...request.headers, 'content-encoding': ['aes128gcm, gzip'] } }, STREAMS).streamsBody).toBe(false);
    expect(svc.exchange({ ...request, url: '/.well-known/oidc2-session' }, STREAMS).streamsBody).toBe(false);
    expect(service({ e2ee: false }).exchange(request, STREAMS).streamsBody).toBe(false);
  });

  it('are not read before admission; the route reads the plaintext record by record; the nonce is recorded once', async () => {
    const svc = service();
    const session = await handshake(svc);
    const recordedBefore = svc.replayStore.recorded;
    const body = plain(3 * PER + 100);
    const { request, ciphertext } = await streamedUpload(alice, session, body);
    const source = counted(ciphertext);
    const admission = await svc.exchange(request, STREAMS).admit(source);
    if (admission.answered) throw new Error(`refused: ${admission.error?.code}`);
    expect(source.pulled).toBe(0);
    expect(svc.replayStore.recorded).toBe(recordedBefore + 1);
    expect(admission.bodyReplaced).toBe(true);
    expect(admission.headerChanges).toEqual({ 'content-length': undefined, 'content-encoding': undefined, 'content-digest': undefined, 'transfer-encoding': 'chunked' });
    expect(admission.body).not.toBeInstanceOf(Uint8Array);
    expect(await collect(admission.body as AsyncIterable<Uint8Array>)).toEqual(body);
    expect(source.pulled).toBe(ciphertext.length);
  });

  it('fail in the route when changed or cut, after the records that opened, never as a shorter body', async () => {
    const svc = service();
    const session = await handshake(svc);
    const changeThird = (c: Uint8Array) => {
      const changed = c.slice();
      changed[21 + 2 * E2EE_RECORD_SIZE + 7]! ^= 1;
      return changed;
    };
    const cutAfterSecond = (c: Uint8Array) => c.subarray(0, 21 + 2 * E2EE_RECORD_SIZE);
    for (const spoil of [changeThird, cutAfterSecond]) {
      const { request, ciphertext } = await streamedUpload(alice, session, plain(3 * PER + 100));
      const admission = await svc.exchange(request, STREAMS).admit(counted(spoil(ciphertext)));
      if (admission.answered) throw new Error(`refused: ${admission.error?.code}`);
      const yielded: number[] = [];
      const code = await codeOf(async () => {
        for await (const chunk of admission.body as AsyncIterable<Uint8Array>) yielded.push(chunk.length);
      });
      expect([code, yielded]).toEqual(['e2ee_decrypt_failed', [PER, PER]]);
    }
  });

  it('offered whole, are decrypted before the route runs, and a changed one is refused with nothing recorded', async () => {
    const svc = service();
    const session = await handshake(svc);
    const body = plain(PER + 1);
    const { request, ciphertext } = await streamedUpload(alice, session, body);
    const admission = await svc.exchange(request, STREAMS).admit(ciphertext);
    expect(!admission.answered && admission.body).toEqual(body);
    const second = await streamedUpload(alice, session, body);
    const changed = second.ciphertext.slice();
    changed[30]! ^= 1;
    const recorded = svc.replayStore.recorded;
    const refused = await svc.exchange(second.request, STREAMS).admit(changed);
    expect(refused.answered && refused.error?.code).toBe('e2ee_decrypt_failed');
    expect(svc.replayStore.recorded).toBe(recorded);
  });

  it('refused, are never read but stopped, so the adapter discards the rest', async () => {
    const svc = service();
    const session = await handshake(svc);
    const { request, ciphertext } = await streamedUpload(bob, session, plain(100)); // alice's session, bob's signature
    const source = counted(ciphertext, 10);
    const recorded = svc.replayStore.recorded;
    const admission = await svc.exchange(request, STREAMS).admit(source);
    expect(admission.answered && admission.error?.code).toBe('session_binding_mismatch');
    await new Promise((resolve) => setImmediate(resolve));
    expect(source.stopped).toBe(true);
    expect(source.pulled).toBeLessThanOrEqual(10);
    expect(svc.replayStore.recorded).toBe(recorded);
  });

  it('on a route without the option keep the digest rule: digest_missing', async () => {
    const svc = service();
    const session = await handshake(svc);
    const { request, ciphertext } = await streamedUpload(alice, session, plain(100));
    const admission = await svc.exchange(request).admit(counted(ciphertext));
    expect(admission.answered && admission.error?.code).toBe('digest_missing');
  });
});

describe('streamed responses', () => {
  async function respond(svc: Service, session: E2eeSession, answer: ExchangeResponse, policy?: RoutePolicy) {
    const prepared = await prepareE2ee(alice, { method: 'GET', url: `${BASE}/orders`, session, now });
    const exchange = svc.exchange(head(prepared), policy);
    const admission = await exchange.admit(undefined);
    if (admission.answered) throw new Error(`refused: ${admission.error?.code}`);
    return { prepared, response: await exchange.respond(answer) };
  }
  const octets = { 'content-type': ['application/octet-stream'], 'content-length': ['999'] };

  async function expectStreamed(prepared: Prepared, session: E2eeSession, response: ExchangeResponse, body: Uint8Array) {
    expect(response.added).toBeUndefined(); // every field is set: the route's Content-Length goes
    expect(response.headers['content-encoding']).toEqual(['aes128gcm']);
    expect(response.headers['cache-control']).toEqual(['no-store, no-transform']);
    expect(response.headers['content-digest']).toBeUndefined();
    expect(response.headers['content-length']).toBeUndefined();
    const signedHead = { status: response.status, headers: response.headers };
    const options = { request: prepared.request, binding: prepared.request.binding, ictVerifier: verifier(), now };
    expect(await codeOf(() => verifyResponse(signedHead, options))).toBe('response_signature_invalid');
    expect((await verifyResponse(signedHead, { ...options, streamedEncryptedBody: true })).subject).toBe('orders-service');
    const key = await responseKey({ rk: session.rk, sid: session.sid, nonce: prepared.nonce, status: response.status });
    expect(await collect(decryptBodyStream(key, response.body as AsyncIterable<Uint8Array>))).toEqual(body);
  }

  it('stream when larger than maxResponseBytes (a 501 before), with a signed head and no digest', async () => {
    const svc = service({ maxResponseBytes: 4096 });
    const session = await handshake(svc);
    const body = plain(3 * PER);
    const { prepared, response } = await respond(svc, session, { status: 200, headers: octets, body: chunked(body, 1000) });
    expect(response.status).toBe(200);
    await expectStreamed(prepared, session, response, body);
  });

  it('stream from the first byte when text/event-stream or when the route says so; others stay whole with a digest', async () => {
    const svc = service();
    const session = await handshake(svc);
    const events = utf8('data: hello\n\n');
    const sse = await respond(svc, session, { status: 200, headers: { 'content-type': ['text/event-stream; charset=utf-8'] }, body: chunked(events, 4) });
    await expectStreamed(sse.prepared, session, sse.response, events);
    const whole = await respond(svc, session, { status: 201, headers: octets, body: utf8('small') }, { encryptedStreams: { responses: true } });
    await expectStreamed(whole.prepared, session, whole.response, utf8('small'));
    const buffered = await respond(svc, session, { status: 200, headers: octets, body: chunked(utf8('small'), 2) });
    expect(buffered.response.headers['content-digest']).toBeDefined();
    expect((await openE2ee(buffered.prepared, buffered.response as never, verifier(), alice, now)).plaintext).toEqual(utf8('small'));
  });

  it('are refused, and the route body stopped, when content-coded or partial', async () => {
    const svc = service();
    const session = await handshake(svc);
    const answers: ExchangeResponse[] = [
      { status: 200, headers: { 'content-type': ['text/event-stream'], 'content-encoding': ['gzip'] } },
      { status: 206, headers: { 'content-type': ['text/event-stream'], 'content-range': ['bytes 0-3/10'] } },
    ];
    for (const answer of answers) {
      const source = counted(utf8('data: x\n\n'.repeat(100)), 9);
      const { response } = await respond(svc, session, { ...answer, body: source });
      expect([response.status, problemCode(response)]).toEqual([501, 'response_signing_unavailable']);
      expect(source.stopped).toBe(true);
    }
  });
});

describe('signing and verifying a head without Content-Digest', () => {
  it('is allowed only for an aes128gcm body that follows the head, and accepted only when the caller says so', async () => {
    const svc = service();
    const session = await handshake(svc);
    const prepared = await prepareE2ee(alice, { method: 'GET', url: `${BASE}/orders`, session, now });
    const credential = { ict: svcIct, key: await importKey(svcKey.privateJwk, 'Ed25519', 'sign') };
    const binding = prepared.request.binding;
    const sign = (headers: Record<string, string[]>, extra: object = {}) => signResponse({ status: 200, headers, ...extra }, prepared.request, binding, credential, { now, streamedEncryptedBody: true });
    expect(await codeOf(() => sign({ 'content-type': ['text/plain'] }))).toBe('TypeError');
    expect(await codeOf(() => sign({ 'content-encoding': ['aes128gcm'] }, { body: utf8('x') }))).toBe('TypeError');
    expect(await codeOf(() => sign({ 'content-encoding': ['gzip, aes128gcm'] }))).toBe('TypeError');
    expect(await codeOf(() => sign({ 'content-encoding': ['aes128gcm'], 'content-digest': ['sha-256=:AAAA:'] }))).toBe('TypeError');
    const headers = { 'content-encoding': ['aes128gcm'] };
    const added = await sign(headers);
    expect(added['content-digest']).toBeUndefined();
    expect(added['signature-input']![0]).not.toContain('"content-digest"');
    const options = { request: prepared.request, binding, ictVerifier: verifier(), now, streamedEncryptedBody: true };
    const sent = { ...headers, ...added };
    expect((await verifyResponse({ status: 200, headers: sent }, options)).subject).toBe('orders-service');
    // A changed coding breaks the signature; a digest present is checked as usual.
    expect(await codeOf(() => verifyResponse({ status: 200, headers: { ...sent, 'content-encoding': ['identity'] } }, options))).toBe('response_signature_invalid');
    const digested = await signResponse({ status: 200, headers: { 'content-encoding': ['aes128gcm'] }, body: await encryptBody(new Uint8Array(32), utf8('x')) }, prepared.request, binding, credential, { now });
    const withDigest = { status: 200, headers: { 'content-encoding': ['aes128gcm'], ...digested } };
    expect(await codeOf(() => verifyResponse({ ...withDigest, body: utf8('changed') }, options))).toBe('response_signature_invalid');
  });
});
