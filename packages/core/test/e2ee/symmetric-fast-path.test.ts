// The synchronous paths of a symmetric session exchange against their references:
//  - the prepared response MAC of signSessionMacResponse (components prepared once per shape,
//    parameters written directly, a synchronous HMAC on Node) against signMessage, the path the
//    WebCrypto side takes: for every shape of response the same Signature-Input up to the fresh
//    nonce, a MAC over the reference signature base, and a response verifySessionMacResponse
//    accepts;
//  - the message-key info written in one array against the general composition (label || 0x00 ||
//    lp(...)), and the synchronous K_req / K_rsp against HKDF-Expand on WebCrypto;
//  - the one-record RFC 8188 decoding against the WebCrypto decoder, on bodies cut and altered.
import { createHmac } from 'node:crypto';
import { importKey, useWebCrypto } from '../../src/lib/crypto';
import { signSessionMacResponse, verifySessionMacResponse } from '../../src/e2ee/symmetric';
import { lp, requestKey, requestKeyInfo, requestKeySync, responseKey, responseKeyInfo, responseKeySync } from '../../src/e2ee/transcript';
import { decryptBody, encryptBody } from '../../src/e2ee/aes128gcm';
import { parseSignatureInput, serializeSignatureParams, signatureBase } from '../../src/rfc9421';
import { isOidc2Error } from '../../src/errors';
import type { HttpRequest, HttpResponse } from '../../src/message';

const NOW = 1_800_000_000;
const s2c = new Uint8Array(32).map((_, i) => i * 7 + 1);
const request: HttpRequest = {
  method: 'POST',
  url: '/transfers?x=1',
  headers: { host: ['api.example'], 'oidc2-session': ['"tok"'], 'content-type': ['application/json'] },
};
const body = new TextEncoder().encode('{"hello":"world"}');
const base = (extra: Record<string, string[]> = {}): HttpResponse => ({ status: 200, headers: { ...extra }, body });

interface Case {
  name: string;
  response: HttpResponse;
  nonce: string;
  streamed?: boolean;
}
const CASES: Case[] = [
  { name: 'no covered field', response: base(), nonce: 'n-1' },
  { name: 'content-type', response: base({ 'content-type': ['application/json'] }), nonce: 'n-2' },
  { name: 'encrypted body with its coding', response: base({ 'content-type': ['application/json'], 'content-encoding': ['aes128gcm'] }), nonce: 'n-3' },
  { name: 'a rekey answer: key share and session', response: base({ 'content-encoding': ['aes128gcm'], 'oidc2-key-share': ['x25519=:AA==:'], 'oidc2-session': ['"t2"'] }), nonce: 'n-4' },
  { name: 'streamed body: no digest', response: base({ 'content-encoding': ['aes128gcm'] }), nonce: 'n-5', streamed: true },
  { name: 'no body', response: { status: 204, headers: {} }, nonce: 'n-6' },
  { name: 'stale signature fields are replaced', response: base({ 'signature-input': ['old=()'], signature: ['old=:AA==:'], 'content-type': ['text/plain'] }), nonce: 'n-7' },
  { name: 'nonce with characters to escape', response: base({ 'content-type': ['application/json'] }), nonce: 'a "quoted" \\ nonce' },
];

async function sign(c: Case, webCrypto: boolean) {
  useWebCrypto(webCrypto);
  try {
    return await signSessionMacResponse(c.response, request, c.nonce, s2c, { now: () => NOW, streamedEncryptedBody: c.streamed === true });
  } finally {
    useWebCrypto(false);
  }
}

/** The Signature-Input of a signed response with its nonce parameter blanked. */
const withoutNonce = (line: string) => line.replace(/;nonce="[^"]*"/, ';nonce=""');

describe('the prepared session-MAC response signature', () => {
  it.each(CASES)('matches the reference for $name', async (c) => {
    const fast = await sign(c, false);
    const reference = await sign(c, true);
    expect(withoutNonce(fast['signature-input']![0]!)).toBe(withoutNonce(reference['signature-input']![0]!));
    expect(fast['content-digest']).toEqual(reference['content-digest']);
    expect(Object.keys(fast).sort()).toEqual(Object.keys(reference).sort());

    // The MAC is HMAC-SHA256 under K_s2c over the signature base the reference builds.
    const headers = { ...c.response.headers, ...fast };
    const entry = [...parseSignatureInput(fast['signature-input']!).values()][0]!;
    expect(serializeSignatureParams(entry.components.map((x) => x.id))).toBe(entry.signatureParams.slice(0, entry.signatureParams.indexOf(')') + 1));
    const mac = createHmac('sha256', s2c).update(signatureBase({ ...c.response, headers }, entry.components, entry.signatureParams, { request })).digest('base64');
    expect(fast['signature']![0]).toBe(`sig=:${mac}:`);

    // And the caller accepts it.
    await expect(verifySessionMacResponse({ ...c.response, headers }, { request, nonce: c.nonce, key: s2c, now: () => NOW, streamedEncryptedBody: c.streamed === true })).resolves.toBeUndefined();
  });

  it('takes an HMAC handle as the raw key', async () => {
    const c = CASES[2]!;
    const handle = await importKey(s2c, 'hmac-sha256', 'sign');
    const fields = await signSessionMacResponse(c.response, request, c.nonce, handle, { now: () => NOW });
    await expect(verifySessionMacResponse({ ...c.response, headers: { ...c.response.headers, ...fields } }, { request, nonce: c.nonce, key: s2c, now: () => NOW })).resolves.toBeUndefined();
  });

  it('refuses, on both paths, a request nonce that is not printable ASCII', async () => {
    const c = { ...CASES[1]!, nonce: 'caf\u00e9' };
    await expect(sign(c, false)).rejects.toThrow(TypeError);
    await expect(sign(c, true)).rejects.toThrow(TypeError);
  });
});

describe('message keys written in one array', () => {
  const rk = new Uint8Array(32).map((_, i) => 255 - i);
  const sid = new Uint8Array(16).map((_, i) => i);
  const label0 = (label: string) => new TextEncoder().encode(`oidc2-e2ee-v1 ${label}\0`);
  const compose = (label: string, parts: (string | Uint8Array)[]) => Buffer.concat([label0(label), lp(sid), ...parts.map((p) => lp(p))]);
  const strings = ['n-1', '', 'x'.repeat(300), 'caf\u00e9', '\u{1f600}\u{1f600}', 'lone \ud800 surrogate', '\u0000nul'];

  it.each(strings)('composes K_req and K_rsp info exactly for %j', async (s) => {
    const req = { rk, sid, nonce: s, method: s === '' ? 'GET' : 'POST', audience: `https://api.example/${s}` };
    expect(Buffer.from(requestKeyInfo(req))).toEqual(compose('request', [req.nonce, req.method, req.audience]));
    expect(Buffer.from(responseKeyInfo({ sid, nonce: s, status: 200 }))).toEqual(compose('reply', [s, '200']));
    useWebCrypto(true);
    let web: Uint8Array[];
    try {
      expect(requestKeySync(req)).toBeUndefined();
      web = [await requestKey(req), await responseKey({ rk, sid, nonce: s, status: 404 })];
    } finally {
      useWebCrypto(false);
    }
    expect(requestKeySync(req)).toEqual(web[0]);
    expect(responseKeySync({ rk, sid, nonce: s, status: 404 })).toEqual(web[1]);
    expect(await requestKey(req)).toEqual(web[0]);
  });

  it('takes a nonce given as octets through the general composition', () => {
    const nonce = new Uint8Array([1, 2, 3]) as unknown as string;
    expect(Buffer.from(requestKeyInfo({ sid, nonce, method: 'POST', audience: 'a' }))).toEqual(compose('request', [new Uint8Array([1, 2, 3]), 'POST', 'a']));
  });

  it('refuses a part longer than 65,535 octets', () => {
    expect(() => requestKeyInfo({ sid, nonce: 'n', method: 'POST', audience: 'a'.repeat(70_000) })).toThrow(TypeError);
    expect(() => requestKeyInfo({ sid, nonce: '\u00e9'.repeat(40_000), method: 'POST', audience: 'a' })).toThrow(TypeError);
  });
});

describe('one-record bodies', () => {
  const ikm = new Uint8Array(32).map((_, i) => i + 100);
  const decodeBoth = async (encrypted: Uint8Array) => {
    const outcome = async () => {
      try {
        return Buffer.from(await decryptBody(ikm, encrypted)).toString('hex');
      } catch (error) {
        return isOidc2Error(error) ? error.code : String(error);
      }
    };
    const fast = await outcome();
    useWebCrypto(true);
    try {
      return { fast, web: await outcome() };
    } finally {
      useWebCrypto(false);
    }
  };

  it('decode as the WebCrypto decoder does, whole, cut and altered', async () => {
    for (const size of [0, 1, 17, 1000, 16_366]) {
      const plaintext = new Uint8Array(size).map((_, i) => (i * 31) & 0xff);
      const encrypted = await encryptBody(ikm, plaintext);
      const whole = await decodeBoth(encrypted);
      expect(whole.fast).toBe(Buffer.from(plaintext).toString('hex'));
      expect(whole.web).toBe(whole.fast);
      for (const cut of [encrypted.length - 1, encrypted.length - 16, 22, 21]) {
        const r = await decodeBoth(encrypted.subarray(0, cut));
        expect(r.fast).toBe(r.web);
        expect(r.fast).toMatch(/^e2ee_/);
      }
      for (const at of [21, encrypted.length - 17, encrypted.length - 1]) {
        const altered = encrypted.slice();
        altered[at]! ^= 1;
        const r = await decodeBoth(altered);
        expect(r.fast).toBe('e2ee_decrypt_failed');
        expect(r.web).toBe('e2ee_decrypt_failed');
      }
    }
  });

  it('zero the delimiter behind the plaintext they return', async () => {
    const plaintext = new TextEncoder().encode('secret');
    const opened = await decryptBody(ikm, await encryptBody(ikm, plaintext));
    expect(Buffer.from(opened).toString()).toBe('secret');
    expect([...new Uint8Array(opened.buffer, opened.byteOffset + opened.length, opened.buffer.byteLength - opened.byteOffset - opened.length)].every((b) => b === 0)).toBe(true);
  });
});
