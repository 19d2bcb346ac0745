// The per-request exchange on synthetic messages: admission and refusal, the request-body decision
// and its bound, the response decision (sign, stream on unsigned, signed problem), for whole and
// streamed bodies. No framework, no socket: what every adapter relies on.
import {
  createIctVerifier,
  createOidc2Service,
  signRequest,
  verifyResponse,
  type Body,
  type ExchangeResponse,
  type HttpRequest,
  type Oidc2Options,
} from '../src/index';
import { announcesBody, isBodylessResponse } from '../src/adapter';
import { utf8 } from '../src/lib/base64';
import { newIssuer, newKey, type TestIssuer, type TestKey } from '../../../test/support/credentials';

const T = 1_790_000_000;
const now = () => T;
const BASE = 'https://api.example.com';

let op: TestIssuer;
let alice: TestKey;
let aliceIct: string;
let svcKey: TestKey;
let svcIct: string;

beforeAll(async () => {
  op = await newIssuer('https://op.example.com');
  alice = await newKey('ES256');
  aliceIct = await op.mint(alice, { now: T - 10, subject: 'alice', contexts: ['mfa'] });
  svcKey = await newKey('Ed25519');
  svcIct = await op.mint(svcKey, { now: T, subject: 'orders-service' });
});

function service(extra: Partial<Oidc2Options> = {}) {
  return createOidc2Service({
    issuers: [{ issuer: op.issuer, jwks: op.jwks }],
    audiences: [BASE],
    now,
    credential: { ict: svcIct, privateKey: svcKey.privateJwk },
    ...extra,
  });
}

async function signed(init: { method?: string; body?: string; signResponse?: boolean } = {}) {
  const body = init.body === undefined ? undefined : utf8(init.body);
  const message = await signRequest(
    { method: init.method ?? 'POST', url: `${BASE}/orders`, headers: body ? { 'content-type': 'application/json' } : {}, body },
    { ict: aliceIct, key: alice.signer, now, signResponse: init.signResponse ?? true },
  );
  const head: HttpRequest = { method: message.method, url: '/orders', headers: { ...message.headers } };
  if (body) head.headers['content-length'] = [String(body.length)];
  return { message, head, body };
}

async function* chunksOf(bytes: Uint8Array, size = 7): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

async function collect(body: Body | undefined): Promise<Uint8Array> {
  if (body === undefined) return new Uint8Array(0);
  if (body instanceof Uint8Array) return body;
  const parts: number[] = [];
  for await (const chunk of body) parts.push(...chunk);
  return Uint8Array.from(parts);
}

const verifier = () => createIctVerifier({ issuers: [{ issuer: op.issuer, jwks: op.jwks }], now });
const json = (status: number, text: string): ExchangeResponse => ({ status, headers: { 'content-type': ['application/json'] }, body: utf8(text) });

describe('framing', () => {
  it('announces a body by Content-Length other than 0 or by Transfer-Encoding', () => {
    expect(announcesBody({})).toBe(false);
    expect(announcesBody({ 'content-length': ['0'] })).toBe(false);
    expect(announcesBody({ 'content-length': ['5'] })).toBe(true);
    expect(announcesBody({ 'transfer-encoding': ['chunked'] })).toBe(true);
  });

  it('knows the bodyless responses', () => {
    expect(isBodylessResponse('HEAD', 200)).toBe(true);
    for (const status of [101, 204, 304]) expect(isBodylessResponse('GET', status)).toBe(true);
    expect(isBodylessResponse('GET', 200)).toBe(false);
  });
});

describe('admission', () => {
  it('admits a signed request with a whole or a streamed body and hands the same bytes back', async () => {
    for (const stream of [false, true]) {
      const { head, body } = await signed({ body: '{"amount":12,"currency":"EUR"}' });
      const exchange = service().exchange(head);
      expect(exchange.expectsBody).toBe(true);
      const admission = await exchange.admit(stream ? chunksOf(body!) : body);
      expect(admission.answered).toBe(false);
      if (admission.answered) return;
      expect(admission.identity?.subject).toBe('alice');
      expect(admission.bodyReplaced).toBe(false);
      expect(admission.headerChanges).toEqual({});
      expect(new TextDecoder().decode(await collect(admission.body))).toBe('{"amount":12,"currency":"EUR"}');
    }
  });

  it('refuses with a signed problem the caller can verify, and the route never sees it', async () => {
    const { message, head } = await signed({ method: 'GET' });
    const exchange = service().exchange({ ...head, method: 'DELETE' });
    const admission = await exchange.admit(undefined);
    expect(admission.answered).toBe(true);
    if (!admission.answered) return;
    expect(admission.error?.code).toBe('signature_invalid');
    expect(admission.response.status).toBe(401);
    expect(admission.response.headers['www-authenticate']?.[0]).toContain('signature_invalid');
    const response = { ...admission.response, body: await collect(admission.response.body) };
    expect(JSON.parse(new TextDecoder().decode(response.body))).toMatchObject({ code: 'signature_invalid' });
    await expect(
      verifyResponse(response, { request: { ...message, method: 'DELETE' }, binding: message.binding, ictVerifier: verifier(), now }),
    ).resolves.toMatchObject({ subject: 'orders-service' });
    // After a refusal the response passes unchanged: it is the signed refusal itself.
    expect(await exchange.respond(admission.response)).toBe(admission.response);
  });

  it('refuses a body over maxBodyBytes by its declared length and by the bytes received, and stops reading', async () => {
    const { head, body } = await signed({ body: JSON.stringify({ pad: 'x'.repeat(200) }) });
    let pulled = 0;
    async function* counting(): AsyncGenerator<Uint8Array> {
      for await (const chunk of chunksOf(body!, 16)) {
        pulled++;
        yield chunk;
      }
    }
    const declared = await service({ maxBodyBytes: 64 }).exchange(head).admit(counting());
    expect(declared.answered && declared.error?.code).toBe('body_too_large');
    expect(pulled).toBe(1);
    pulled = 0;
    const { 'content-length': _declared, ...unframed } = head.headers;
    const chunked: HttpRequest = { ...head, headers: { ...unframed, 'transfer-encoding': ['chunked'] } };
    const received = await service({ maxBodyBytes: 64 }).exchange(chunked).admit(counting());
    expect(received.answered && received.error?.code).toBe('body_too_large');
    expect(received.answered && received.response.status).toBe(413);
    expect(pulled).toBe(5);
  });

  it('refuses a body that breaks off as request_malformed', async () => {
    const { head, body } = await signed({ body: '{"a":1}' });
    async function* broken(): AsyncGenerator<Uint8Array> {
      yield body!.subarray(0, 3);
      throw new Error('socket closed');
    }
    const admission = await service().exchange(head).admit(broken());
    expect(admission.answered && admission.error?.code).toBe('request_malformed');
  });

  it('checks the body against the signed digest: a changed body is refused', async () => {
    const { head } = await signed({ body: '{"amount":12}' });
    const admission = await service().exchange(head).admit(utf8('{"amount":99}'));
    expect(admission.answered && admission.error?.code).toBe('digest_mismatch');
  });

  it('applies the route policy and lets optional routes through with the reason', async () => {
    const denied = await service().exchange((await signed({ method: 'GET' })).head, { contexts: ['hardware-key'] }).admit(undefined);
    expect(denied.answered && denied.response.status).toBe(403);
    const anonymous = await service().exchange({ method: 'GET', url: '/orders', headers: {} }, { optional: true }).admit(undefined);
    expect(anonymous.answered).toBe(false);
    if (anonymous.answered) return;
    expect(anonymous.identity).toBeNull();
    expect(anonymous.error?.code).toBe('ict_missing');
  });

  it('refuses, before the route runs, a caller asking for a signature from a service without a credential', async () => {
    const admission = await service({ credential: undefined }).exchange((await signed({ method: 'GET' })).head).admit(undefined);
    expect(admission.answered && admission.error?.code).toBe('response_signing_unavailable');
    expect(admission.answered && admission.response.headers['signature']).toBeUndefined();
  });
});

describe('response', () => {
  it('signs a whole or a streamed response, any status, bound to the request', async () => {
    for (const [status, stream] of [
      [200, false],
      [201, true],
      [409, false],
    ] as const) {
      const { message, head } = await signed({ method: 'GET' });
      const exchange = service().exchange(head);
      await exchange.admit(undefined);
      const route = json(status, '{"ok":true}');
      const out = await exchange.respond(stream ? { ...route, body: chunksOf(route.body as Uint8Array, 3) } : route);
      expect(out.status).toBe(status);
      expect(out.body).toBeInstanceOf(Uint8Array);
      // The route's own response with fields added: adapters may add just those.
      expect(Object.keys(out.added ?? {}).sort()).toEqual(['content-digest', 'identity-certification-token', 'signature', 'signature-input']);
      expect(out.headers).toEqual({ ...route.headers, ...out.added });
      await expect(
        verifyResponse({ ...out, body: out.body as Uint8Array }, { request: message, binding: message.binding, ictVerifier: verifier(), now }),
      ).resolves.toMatchObject({ subject: 'orders-service' });
    }
  });

  it('signs bodyless responses without a body', async () => {
    const { message, head } = await signed({ method: 'GET' });
    const exchange = service().exchange(head);
    await exchange.admit(undefined);
    const out = await exchange.respond({ status: 204, headers: {} });
    expect(out.headers['signature']).toHaveLength(1);
    await expect(verifyResponse({ ...out, body: undefined }, { request: message, binding: message.binding, ictVerifier: verifier(), now })).resolves.toBeDefined();
  });

  it('replaces a response too large to sign by a signed 501 when the caller asked, and stops reading it', async () => {
    const { message, head } = await signed({ method: 'GET', signResponse: true });
    const exchange = service({ maxResponseBytes: 32 }).exchange(head);
    await exchange.admit(undefined);
    let pulled = 0;
    async function* big(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 100; i++) {
        pulled++;
        yield utf8('0123456789');
      }
    }
    const out = await exchange.respond({ status: 200, headers: { 'content-type': ['text/plain'] }, body: big() });
    expect(pulled).toBe(4);
    expect(out.status).toBe(501);
    expect(out.added).toBeUndefined(); // a replacement: every field is the exchange's
    const body = await collect(out.body);
    expect(JSON.parse(new TextDecoder().decode(body))).toMatchObject({ code: 'response_signing_unavailable' });
    await expect(verifyResponse({ ...out, body }, { request: message, binding: message.binding, ictVerifier: verifier(), now })).resolves.toBeDefined();
  });

  it('streams a response too large to sign on unsigned, whole and in order, when nobody asked', async () => {
    const { head } = await signed({ method: 'GET', signResponse: false });
    const exchange = service({ maxResponseBytes: 32 }).exchange(head);
    await exchange.admit(undefined);
    const bytes = utf8('abcdefghij'.repeat(20));
    const out = await exchange.respond({ status: 200, headers: { 'content-type': ['text/plain'] }, body: chunksOf(bytes, 9) });
    expect(out.headers['signature']).toBeUndefined();
    expect(out.body).not.toBeInstanceOf(Uint8Array);
    expect(await collect(out.body)).toEqual(bytes);
  });

  it('refuses before the route, with the cause, a caller who asked for a signature the broken credential cannot make', async () => {
    const down = service({ credential: () => Promise.reject(new Error('credential store down')) });
    const asked = down.exchange((await signed({ method: 'POST', signResponse: true, body: '{}' })).head);
    const admission = await asked.admit(utf8('{}'));
    expect(admission.answered).toBe(true);
    if (!admission.answered) throw new Error('admitted');
    expect(admission.error?.code).toBe('response_signing_unavailable');
    expect(admission.response.status).toBe(501);
    expect(admission.error?.message).toContain('ICT credential is unavailable');
    const unsigned = down.exchange((await signed({ method: 'GET', signResponse: false })).head);
    const admitted = await unsigned.admit(undefined);
    expect(admitted.answered).toBe(false);
    const passed = await unsigned.respond(json(200, '{"x":1}'));
    expect(passed.status).toBe(200);
    expect(passed.headers['signature']).toBeUndefined();
  });

  it('passes responses through unchanged when the service has no credential', async () => {
    const exchange = service({ credential: undefined }).exchange((await signed({ method: 'GET', signResponse: false })).head);
    await exchange.admit(undefined);
    const route = json(200, '{}');
    expect(await exchange.respond(route)).toBe(route);
  });
});
