import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPair, exportJWK, type JWK } from 'jose';
import { decodeBase64 } from '../src/lib/base64';
import { importKey, useWebCrypto, type KeyHandle } from '../src/lib/crypto';
import type { Fields, HttpRequest, HttpResponse } from '../src/message';
import {
  Token,
  componentValue,
  parseComponentIdentifier,
  parseSignature,
  parseSignatureInput,
  serializeSignatureParams,
  signMessage,
  signMessageFields,
  signatureBase,
  verifyMessageSignature,
  type SignatureInputEntry,
} from '../src/rfc9421/index';
import { codeOf, syncCodeOf } from '../../../test/support/error-code';

const FIXTURES = join(__dirname, 'fixtures', 'rfc9421');
const load = <T>(file: string): T => JSON.parse(readFileSync(join(FIXTURES, file), 'utf8')) as T;

interface Vector {
  section: string;
  target: 'request' | 'response';
  key: string;
  alg: string;
  deterministic: boolean;
  signatureInput: string;
  signature: string;
  base: string[];
}
interface Vectors {
  testRequest: { method: string; url: string; scheme: string; headers: Fields; body: string };
  testResponse: { status: number; headers: Fields; body: string };
  signatures: Vector[];
  section2_4: { response: { status: number; headers: Fields; body: string }; key: string; signatureInput: string; signature: string; base: string[] };
}

const V = load<Vectors>('vectors.json');
const JWKS: Record<string, JWK> = {
  'test-key-rsa-pss': load('test-key-rsa-pss.json'),
  'test-key-ecc-p256': load('test-key-ecc-p256.json'),
  'test-key-ed25519': load('test-key-ed25519.json'),
  'test-shared-secret': load('test-shared-secret.json'),
};
const enc = new TextEncoder();

function testRequest(): HttpRequest {
  const r = V.testRequest;
  return { method: r.method, url: r.url, scheme: r.scheme, headers: structuredClone(r.headers), body: enc.encode(r.body) };
}
function testResponse(): HttpResponse {
  const r = V.testResponse;
  return { status: r.status, headers: structuredClone(r.headers), body: enc.encode(r.body) };
}
function req(url: string, headers: Fields = { host: ['www.example.com'] }, extra: Partial<HttpRequest> = {}): HttpRequest {
  return { method: 'POST', url, headers, ...extra };
}
function res(status: number, headers: Fields = {}): HttpResponse {
  return { status, headers };
}
/** The entry and signature bytes of one `label=...` pair. */
function entryOf(signatureInput: string, signature: string): { entry: SignatureInputEntry; bytes: Uint8Array } {
  const [label, entry] = [...parseSignatureInput([signatureInput])][0]!;
  return { entry, bytes: parseSignature([signature]).get(label)! };
}


describe.each([
  ['node:crypto', false],
  ['WebCrypto', true],
])('RFC 9421 Appendix B.2 on %s', (_backend, web) => {
  const verifyKeys: Record<string, KeyHandle> = {};
  const signKeys: Record<string, KeyHandle> = {};
  beforeAll(async () => {
    useWebCrypto(web);
    for (const v of V.signatures) {
      const jwk = JWKS[v.key]!;
      verifyKeys[v.key] = await importKey(jwk, v.alg, 'verify');
      signKeys[v.key] = await importKey(jwk, v.alg, 'sign');
    }
  });
  afterAll(() => useWebCrypto(false));

  it.each(V.signatures.map((v) => [v.section, v] as const))('%s verifies and its signature base is the one the RFC prints', async (_s, v) => {
    const message = v.target === 'request' ? testRequest() : testResponse();
    const { entry, bytes } = entryOf(v.signatureInput, v.signature);
    expect(signatureBase(message, entry.components, entry.signatureParams)).toBe(v.base.join('\n'));
    expect(await verifyMessageSignature(message, entry, bytes, verifyKeys[v.key]!)).toBe(true);
  });

  it.each(V.signatures.map((v) => [v.section, v] as const))('%s fails once a covered component or a parameter changes', async (_s, v) => {
    const { entry, bytes } = entryOf(v.signatureInput, v.signature);
    const key = verifyKeys[v.key]!;
    // Every vector covers its own parameters: changing created breaks each one.
    const moved = entryOf(v.signatureInput.replace('created=1618884473', 'created=1618884474'), v.signature);
    expect(await verifyMessageSignature(v.target === 'request' ? testRequest() : testResponse(), moved.entry, moved.bytes, key)).toBe(false);
    if (entry.components.length > 0) {
      const message = v.target === 'request' ? testRequest() : testResponse();
      if (v.target === 'request') (message as HttpRequest).headers['host'] = ['example.org'];
      else (message as HttpResponse).status = 201;
      message.headers['date'] = ['Tue, 20 Apr 2021 02:07:57 GMT'];
      message.headers['content-digest'] = ['sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:'];
      expect(await verifyMessageSignature(message, entry, bytes, key)).toBe(false);
    }
    const flipped = Uint8Array.from(bytes);
    flipped[flipped.length - 1]! ^= 1;
    expect(await verifyMessageSignature(v.target === 'request' ? testRequest() : testResponse(), entry, flipped, key)).toBe(false);
  });

  it.each(V.signatures.filter((v) => v.deterministic).map((v) => [v.section, v] as const))('%s is reproduced byte for byte', async (_s, v) => {
    const { entry } = entryOf(v.signatureInput, v.signature);
    const label = v.signatureInput.slice(0, v.signatureInput.indexOf('='));
    const signed = await signMessage(testRequest(), { label, components: entry.components, params: entry.params, key: signKeys[v.key]! });
    expect(signed.base).toBe(v.base.join('\n'));
    expect(signed.signatureInput).toBe(v.signatureInput);
    expect(signed.signature).toBe(v.signature);
  });

  it.each(V.signatures.filter((v) => !v.deterministic).map((v) => [v.section, v] as const))('%s signed again with the test key verifies', async (_s, v) => {
    const message = v.target === 'request' ? testRequest() : testResponse();
    const { entry } = entryOf(v.signatureInput, v.signature);
    const signed = await signMessage(message, { label: 'again', components: entry.components, params: entry.params, key: signKeys[v.key]! });
    expect(signed.base).toBe(v.base.join('\n'));
    const again = entryOf(signed.signatureInput, signed.signature);
    expect(await verifyMessageSignature(message, again.entry, again.bytes, verifyKeys[v.key]!)).toBe(true);
  });

  it('rsa-pss-sha512 uses a 64-byte salt: the B.2.2 signature fails as PS256 and verifies as PS512', async () => {
    const v = V.signatures.find((s) => s.section === 'B.2.2')!;
    const { entry, bytes } = entryOf(v.signatureInput, v.signature);
    expect(await verifyMessageSignature(testRequest(), entry, bytes, await importKey(JWKS[v.key]!, 'PS512', 'verify'))).toBe(true);
    expect(await verifyMessageSignature(testRequest(), entry, bytes, await importKey(JWKS[v.key]!, 'PS256', 'verify'))).toBe(false);
  });

  it('section 2.4: a response covering request components with req verifies against the related request', async () => {
    const s = V.section2_4;
    const response: HttpResponse = { status: s.response.status, headers: structuredClone(s.response.headers), body: enc.encode(s.response.body) };
    const { entry, bytes } = entryOf(s.signatureInput, s.signature);
    const key = await importKey(JWKS[s.key]!, 'ecdsa-p256-sha256', 'verify');
    expect(signatureBase(response, entry.components, entry.signatureParams, { request: testRequest() })).toBe(s.base.join('\n'));
    expect(await verifyMessageSignature(response, entry, bytes, key, { request: testRequest() })).toBe(true);
    const other = testRequest();
    other.url = '/bar';
    expect(await verifyMessageSignature(response, entry, bytes, key, { request: other })).toBe(false);
    expect(await codeOf(() => verifyMessageSignature(response, entry, bytes, key))).toBe('component_missing');
  });

  it.each([
    ['ed25519', 'OKP'],
    ['ecdsa-p256-sha256', 'P-256'],
    ['ecdsa-p384-sha384', 'P-384'],
    ['rsa-pss-sha512', 'RSA'],
    ['rsa-v1_5-sha256', 'RSA'],
    ['ES256', 'P-256'],
    ['ES512', 'P-521'],
    ['EdDSA', 'OKP'],
    ['PS256', 'RSA'],
    ['RS256', 'RSA'],
  ])('%s signs and verifies a request and a response, and rejects changes', async (alg, kind) => {
    const joseAlg = { OKP: 'EdDSA', 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512', RSA: 'PS512' }[kind]!;
    const pair = await generateKeyPair(joseAlg, { extractable: true, crv: kind === 'OKP' ? 'Ed25519' : undefined });
    const sk = await importKey(await exportJWK(pair.privateKey), alg, 'sign');
    const pk = await importKey(await exportJWK(pair.publicKey), alg, 'verify');
    const registry = !/^[A-Z]/.test(alg);
    const params = { created: 1700000000, expires: 1700000060, nonce: 'n-1', tag: 'test', ...(registry ? { alg } : {}) };
    const request = testRequest();
    const components = ['@method', '@target-uri', '@path', '@query', '"@query-param";name="Pet"', 'content-digest', 'content-type'];
    const signed = await signMessage(request, { label: 'sig1', components, params, key: sk });
    const { entry, bytes } = entryOf(signed.signatureInput, signed.signature);
    expect(await verifyMessageSignature(request, entry, bytes, pk)).toBe(true);
    for (const change of [
      (r: HttpRequest) => (r.method = 'PUT'),
      (r: HttpRequest) => (r.url = '/foo?param=Value&Pet=cat'),
      (r: HttpRequest) => (r.url = '/fo?param=Value&Pet=dog'),
      (r: HttpRequest) => (r.headers['content-type'] = ['text/plain']),
      (r: HttpRequest) => (r.headers['host'] = ['example.net']),
    ]) {
      const changed = testRequest();
      change(changed);
      expect(await verifyMessageSignature(changed, entry, bytes, pk)).toBe(false);
    }
    const response = testResponse();
    const signedResponse = await signMessage(response, { components: ['@status', 'content-digest', '"@method";req', '"@path";req'], params, key: sk, request });
    const r = entryOf(signedResponse.signatureInput, signedResponse.signature);
    expect(await verifyMessageSignature(response, r.entry, r.bytes, pk, { request })).toBe(true);
    expect(await verifyMessageSignature({ ...response, status: 500 }, r.entry, r.bytes, pk, { request })).toBe(false);
  });

  it('hmac-sha256 signs with the shared secret and rejects another secret', async () => {
    const sk = await importKey(decodeBase64('uzvJfB4u3N0Jy4T7NZ75MDVcr8zSTInedJtkgcu46YW4XByzNJjxBdtjUkdJPBtbmHhIDi6pcl8jsasjlTMtDQ==')!, 'hmac-sha256', 'sign');
    const other = await importKey(new Uint8Array(64).fill(7), 'hmac-sha256', 'verify');
    const signed = await signMessage(testRequest(), { components: ['@method'], params: { alg: 'hmac-sha256' }, key: sk });
    const { entry, bytes } = entryOf(signed.signatureInput, signed.signature);
    expect(await verifyMessageSignature(testRequest(), entry, bytes, sk)).toBe(true);
    expect(await verifyMessageSignature(testRequest(), entry, bytes, other)).toBe(false);
  });

  it('rejects a key of another type or algorithm', async () => {
    const v = V.signatures.find((s) => s.section === 'B.2.6')!;
    const { entry, bytes } = entryOf(v.signatureInput, v.signature);
    const ecKey = await importKey(JWKS['test-key-ecc-p256']!, 'ecdsa-p256-sha256', 'verify');
    expect(await verifyMessageSignature(testRequest(), entry, bytes, ecKey)).toBe(false);
    // The key type must fit the algorithm before any key is made.
    expect(await codeOf(() => importKey(JWKS['test-key-ecc-p256']!, 'ed25519', 'verify'))).toBe('TypeError');
    expect(await codeOf(() => importKey(JWKS['test-key-ed25519']!, 'rsa-pss-sha512', 'verify'))).toBe('TypeError');
    // alg must name the key's algorithm, by its RFC 9421 name.
    const withAlg = entryOf(v.signatureInput.replace(';keyid', ';alg="ed25519";keyid'), v.signature);
    expect(await codeOf(() => verifyMessageSignature(testRequest(), withAlg.entry, withAlg.bytes, ecKey))).toBe('signature_params_invalid');
    const jwaAlg = entryOf(v.signatureInput.replace(';keyid', ';alg="EdDSA";keyid'), v.signature);
    expect(await codeOf(() => verifyMessageSignature(testRequest(), jwaAlg.entry, jwaAlg.bytes, verifyKeys['test-key-ed25519']!))).toBe('signature_params_invalid');
    // A private key handle is not a verification key, and a public one cannot sign.
    expect(await codeOf(() => verifyMessageSignature(testRequest(), entry, bytes, signKeys['test-key-ed25519']!))).toBe('TypeError');
    expect(await codeOf(() => signMessage(testRequest(), { components: [], key: verifyKeys['test-key-ed25519']! }))).toBe('TypeError');
    expect(await codeOf(() => signMessage(testRequest(), { components: [], params: { alg: 'ecdsa-p256-sha256' }, key: signKeys['test-key-ed25519']! }))).toBe('TypeError');
  });
});

describe('component identifiers', () => {
  it('parses the Structured Field form and the bare shorthand, keeping parameter order', () => {
    expect(parseComponentIdentifier('"@query-param";name="Pet"')).toEqual({ name: '@query-param', params: { name: 'Pet' }, id: '"@query-param";name="Pet"' });
    expect(parseComponentIdentifier('@method')).toEqual({ name: '@method', params: {}, id: '"@method"' });
    expect(parseComponentIdentifier('content-digest')).toEqual({ name: 'content-digest', params: {}, id: '"content-digest"' });
    expect(parseComponentIdentifier('content-digest;req').id).toBe('"content-digest";req');
    expect(parseComponentIdentifier('"example-dict";req;key="a"')).toEqual({ name: 'example-dict', params: { req: true, key: 'a' }, id: '"example-dict";req;key="a"' });
    expect(parseComponentIdentifier('"example-dict";key="a";req').id).toBe('"example-dict";key="a";req');
    expect(parseComponentIdentifier('"x";sf').params).toEqual({ sf: true });
    expect(parseComponentIdentifier('"x";bs').params).toEqual({ bs: true });
  });

  it.each([
    ['Content-Type'],
    ['"Content-Type"'],
    ['@Method'],
    ['@unknown'],
    ['@signature-params'],
    ['"@query-param"'],
    ['"@method";name="x"'],
    ['"@path";sf'],
    ['"x";key=a'],
    ['"x";req=?0'],
    ['"x";foo'],
    ['"x";tr'],
    ['"x";bs;sf'],
    ['"x";bs;key="a"'],
    ['"@status";req'],
    ['"x" trailing'],
    ['a"b'],
    ['bad name'],
    [''],
  ])('rejects %j', (input) => {
    expect(syncCodeOf(() => parseComponentIdentifier(input))).toBe('TypeError');
  });
});

describe('derived components (RFC 9421 section 2.2)', () => {
  const r = req('/path?param=value');
  it.each([
    ['@method', 'POST'],
    ['@target-uri', 'https://www.example.com/path?param=value'],
    ['@authority', 'www.example.com'],
    ['@scheme', 'https'],
    ['@request-target', '/path?param=value'],
    ['@path', '/path'],
    ['@query', '?param=value'],
  ])('%s of POST /path?param=value is %j', (name, value) => {
    expect(componentValue(r, name)).toBe(value);
  });

  it('takes the method as sent, case and all', () => {
    expect(componentValue(req('/', undefined, { method: 'patch' }), '@method')).toBe('patch');
  });

  it('@scheme is lower case and follows the request scheme', () => {
    expect(componentValue(req('/path?param=value', undefined, { scheme: 'HTTP' }), '@scheme')).toBe('http');
    expect(componentValue(req('/path?param=value', undefined, { scheme: 'http' }), '@target-uri')).toBe('http://www.example.com/path?param=value');
  });

  it('@request-target has the forms of section 2.2.5; an absolute URL gives the origin-form a client sends', () => {
    expect(componentValue(req('https://www.example.com/path?param=value', {}, { method: 'GET' }), '@request-target')).toBe('/path?param=value');
    expect(componentValue(req('https://www.example.com', {}, { method: 'GET' }), '@request-target')).toBe('/');
    expect(componentValue(req('https://www.example.com?a', {}, { method: 'GET' }), '@request-target')).toBe('/?a');
    expect(componentValue(req('www.example.com:80', { host: ['www.example.com'] }, { method: 'CONNECT' }), '@request-target')).toBe('www.example.com:80');
    expect(componentValue(req('*', { host: ['www.example.com'] }, { method: 'OPTIONS' }), '@request-target')).toBe('*');
  });

  it('@query keeps percent-escapes, and is ? alone when there is no query (section 2.2.7)', () => {
    expect(componentValue(req('/path?param=value&foo=bar&baz=bat%2Dman'), '@query')).toBe('?param=value&foo=bar&baz=bat%2Dman');
    expect(componentValue(req('/path?queryString'), '@query')).toBe('?queryString');
    expect(componentValue(req('/path'), '@query')).toBe('?');
    expect(componentValue(req('/path?'), '@query')).toBe('?');
  });

  it('@path is / for an empty path and keeps percent-escapes', () => {
    expect(componentValue(req('https://example.com', {}), '@path')).toBe('/');
    expect(componentValue(req('https://example.com?a=b', {}), '@path')).toBe('/');
    expect(componentValue(req('', { host: ['example.com'] }), '@path')).toBe('/');
    expect(componentValue(req('/a%2Fb/../c'), '@path')).toBe('/a%2Fb/../c');
  });

  it('@authority is lower case without the default port (RFC 9110 section 4.2.3)', () => {
    expect(componentValue(req('/', { host: ['WWW.Example.COM:443'] }), '@authority')).toBe('www.example.com');
    expect(componentValue(req('/', { host: ['www.example.com:443'] }, { scheme: 'http' }), '@authority')).toBe('www.example.com:443');
    expect(componentValue(req('/', { host: ['www.example.com:80'] }, { scheme: 'http' }), '@authority')).toBe('www.example.com');
    expect(componentValue(req('/', { host: ['www.example.com:8443'] }), '@authority')).toBe('www.example.com:8443');
    expect(componentValue(req('/', { host: ['[::1]:443'] }), '@authority')).toBe('[::1]');
    expect(componentValue(req('/', { host: ['h:'] }), '@authority')).toBe('h');
    // The adapter's authority wins over Host; an absolute-form target wins over both.
    expect(componentValue(req('/', { host: ['internal:8080'] }, { authority: 'API.example.com' }), '@authority')).toBe('api.example.com');
    expect(componentValue(req('HTTP://Example.COM:80/x', { host: ['other'] }), '@target-uri')).toBe('http://example.com/x');
  });

  it('drops a fragment from the target', () => {
    expect(componentValue(req('/p?q=1#frag'), '@target-uri')).toBe('https://www.example.com/p?q=1');
    expect(componentValue(req('/p#frag'), '@request-target')).toBe('/p');
  });

  it('refuses a long field value that cannot be signed also right after long printable ones were accepted', () => {
    const printable = 'e'.repeat(600);
    for (let i = 0; i < 6; i++) expect(componentValue(req('/', { host: ['h'], 'x-t': [printable + i] }), 'x-t')).toBe(printable + i);
    for (const bad of [`${printable}\u0001`, `${printable}\u00e9`, `\u007f${printable}`]) {
      expect(syncCodeOf(() => componentValue(req('/', { host: ['h'], 'x-t': [bad] }), 'x-t'))).toBe('request_malformed');
    }
    expect(componentValue(req('/', { host: ['h'], 'x-t': [printable + 5] }), 'x-t')).toBe(printable + 5);
  });

  it('@status is the three-digit status of a response', () => {
    expect(componentValue(res(200), '@status')).toBe('200');
    expect(componentValue(res(503), '@status')).toBe('503');
  });

  it.each([
    ['no Host', () => componentValue(req('/', {}), '@authority'), 'component_missing'],
    ['no Host for @target-uri', () => componentValue(req('/', {}), '@target-uri'), 'component_missing'],
    ['two Host lines', () => componentValue(req('/', { host: ['a', 'b'] }), '@authority'), 'request_malformed'],
    ['userinfo in the authority', () => componentValue(req('https://u@example.com/', {}), '@authority'), 'request_malformed'],
    ['a space in the Host', () => componentValue(req('/', { host: ['a b'] }), '@authority'), 'request_malformed'],
    ['a malformed scheme', () => componentValue(req('/', undefined, { scheme: 'ht tp' }), '@scheme'), 'request_malformed'],
    ['non-ASCII in the path', () => componentValue(req('/caf\u00e9'), '@path'), 'request_malformed'],
    ['a newline in the query', () => componentValue(req('/p?a=\nb'), '@query'), 'request_malformed'],
    ['@status in a request', () => componentValue(req('/'), '@status'), 'request_malformed'],
    ['@method in a response', () => componentValue(res(200), '@method'), 'request_malformed'],
    ['@query-param in a response', () => componentValue(res(200), '"@query-param";name="a"'), 'request_malformed'],
    ['an empty method', () => componentValue(req('/', undefined, { method: '' }), '@method'), 'component_missing'],
  ])('rejects %s', (_name, fn, code) => {
    expect(syncCodeOf(fn)).toBe(code);
  });
});

describe('@query-param (RFC 9421 section 2.2.8)', () => {
  it('gives the values of the section 2.2.8 example, an empty value included', () => {
    const r = req('/path?param=value&foo=bar&baz=batman&qux=');
    const base = signatureBase(r, ['"@query-param";name="baz"', '"@query-param";name="qux"', '"@query-param";name="param"'], '()');
    expect(base).toBe('"@query-param";name="baz": batman\n"@query-param";name="qux": \n"@query-param";name="param": value\n"@signature-params": ()');
  });

  it('re-encodes names and values: %20 for spaces and +, upper-case escapes', () => {
    const r = req('/parameters?var=this%20is%20a%20big%0Amultiline%20value&bar=with+plus+whitespace&fa%C3%A7ade%22%3A%20=something', {}, { method: 'GET' });
    expect(componentValue(r, '"@query-param";name="var"')).toBe('this%20is%20a%20big%0Amultiline%20value');
    expect(componentValue(r, '"@query-param";name="bar"')).toBe('with%20plus%20whitespace');
    expect(componentValue(r, '"@query-param";name="fa%C3%A7ade%22%3A%20"')).toBe('something');
  });

  it('applies the application/x-www-form-urlencoded percent-encode set', () => {
    const r = req("/p?a=it's&b=a~b&c=*-._&d=%2B&e=%e2%82%ac&f&g==&h=%zz&i=caf\u00e9&j=%FF");
    expect(componentValue(r, '"@query-param";name="a"')).toBe('it%27s');
    expect(componentValue(r, '"@query-param";name="b"')).toBe('a%7Eb');
    expect(componentValue(r, '"@query-param";name="c"')).toBe('*-._');
    expect(componentValue(r, '"@query-param";name="d"')).toBe('%2B');
    expect(componentValue(r, '"@query-param";name="e"')).toBe('%E2%82%AC');
    expect(componentValue(r, '"@query-param";name="f"')).toBe('');
    expect(componentValue(r, '"@query-param";name="g"')).toBe('%3D');
    expect(componentValue(r, '"@query-param";name="h"')).toBe('%25zz');
    expect(componentValue(r, '"@query-param";name="i"')).toBe('caf%C3%A9');
    // An invalid UTF-8 byte becomes U+FFFD, as the URL parser does.
    expect(componentValue(r, '"@query-param";name="j"')).toBe('%EF%BF%BD');
  });

  it('skips empty sequences and matches encoded names exactly', () => {
    const r = req('/p?&&a+b=1&&');
    expect(componentValue(r, '"@query-param";name="a%20b"')).toBe('1');
    expect(syncCodeOf(() => componentValue(r, '"@query-param";name="a b"'))).toBe('component_missing');
  });

  it('refuses a parameter name that occurs more than once, and a missing one', () => {
    expect(syncCodeOf(() => componentValue(req('/p?a=1&b=2&a=3'), '"@query-param";name="a"'))).toBe('request_malformed');
    expect(syncCodeOf(() => componentValue(req('/p?a=1&a'), '"@query-param";name="a"'))).toBe('request_malformed');
    expect(syncCodeOf(() => componentValue(req('/p?a%3D=1&a%3d=2'), '"@query-param";name="a%3D"'))).toBe('request_malformed');
    expect(componentValue(req('/p?a=1&b=2&a=3'), '"@query-param";name="b"')).toBe('2');
    expect(syncCodeOf(() => componentValue(req('/p?a=1'), '"@query-param";name="b"'))).toBe('component_missing');
    expect(syncCodeOf(() => componentValue(req('/p'), '"@query-param";name="b"'))).toBe('component_missing');
  });
});

describe('field components (RFC 9421 section 2.1)', () => {
  const fields: Fields = {
    host: ['www.example.com'],
    date: ['Tue, 20 Apr 2021 02:07:56 GMT'],
    'x-ows-header': ['   Leading and trailing whitespace.   '],
    'x-obs-fold-header': ['Obsolete\r\n    line folding.'],
    'cache-control': ['max-age=60', '   must-revalidate'],
    'example-dict': [' a=1,    b=2;x=1;y=2,   c=(a   b   c)'],
    'x-empty-header': [''],
  };
  const r = req('/', fields);

  it('gives the values of the section 2.1 example', () => {
    const base = signatureBase(r, ['host', 'date', 'x-ows-header', 'x-obs-fold-header', 'cache-control', 'example-dict', 'x-empty-header'], '()');
    expect(base).toBe(
      [
        '"host": www.example.com',
        '"date": Tue, 20 Apr 2021 02:07:56 GMT',
        '"x-ows-header": Leading and trailing whitespace.',
        '"x-obs-fold-header": Obsolete line folding.',
        '"cache-control": max-age=60, must-revalidate',
        '"example-dict": a=1,    b=2;x=1;y=2,   c=(a   b   c)',
        '"x-empty-header": ',
        '"@signature-params": ()',
      ].join('\n'),
    );
  });

  it('sf re-serializes a field of known type (section 2.1.1) and refuses to guess a type', () => {
    const context = { structuredFields: { 'example-dict': 'dictionary' as const } };
    expect(componentValue(r, '"example-dict";sf', context)).toBe('a=1, b=2;x=1;y=2, c=(a b c)');
    expect(syncCodeOf(() => componentValue(r, '"example-dict";sf'))).toBe('component_unsupported');
    const lines = req('/', { 'content-digest': ['sha-256=:AAAA:  ', '  sha-512=:AAAA:'], 'accept-ch': ['a,   b'], 'client-cert': [' :AAAA:;x;y="1" '] });
    expect(componentValue(lines, '"content-digest";sf')).toBe('sha-256=:AAAA:, sha-512=:AAAA:');
    expect(componentValue(lines, '"accept-ch";sf')).toBe('a, b');
    expect(componentValue(lines, '"client-cert";sf')).toBe(':AAAA:;x;y="1"');
    // A Dictionary whose every member is a bare key is also a valid List: the declared type decides.
    const ambiguous = req('/', { 'x-d': ['a, a'] });
    expect(componentValue(ambiguous, '"x-d";sf', { structuredFields: { 'x-d': 'dictionary' } })).toBe('a');
    expect(componentValue(ambiguous, '"x-d";sf', { structuredFields: { 'x-d': 'list' } })).toBe('a, a');
    expect(syncCodeOf(() => componentValue(req('/', { 'client-cert': [':AAAA:', ':AAAA:'] }), '"client-cert";sf'))).toBe('request_malformed');
    expect(syncCodeOf(() => componentValue(req('/', { 'accept-ch': ['a,'] }), '"accept-ch";sf'))).toBe('request_malformed');
  });

  it('key selects and re-serializes one Dictionary member (section 2.1.2)', () => {
    const d = req('/', { 'example-dict': [' a=1, b=2;x=1;y=2, c=(a   b    c), d'] });
    expect(componentValue(d, '"example-dict";key="a"')).toBe('1');
    expect(componentValue(d, '"example-dict";key="d"')).toBe('?1');
    expect(componentValue(d, '"example-dict";key="b"')).toBe('2;x=1;y=2');
    expect(componentValue(d, '"example-dict";key="c"')).toBe('(a b c)');
    expect(componentValue(req('/', { 'x-d': ['a, b;c'] }), '"x-d";key="b"')).toBe('?1;c');
    expect(componentValue(req('/', { 'x-d': ['a=1', 'b=2'] }), '"x-d";key="b"')).toBe('2');
    expect(syncCodeOf(() => componentValue(d, '"example-dict";key="e"'))).toBe('component_missing');
    expect(syncCodeOf(() => componentValue(req('/', { 'x-d': ['a=(1'] }), '"x-d";key="a"'))).toBe('request_malformed');
    expect(syncCodeOf(() => componentValue(req('/', { 'client-cert': ['a=1'] }), '"client-cert";key="a"'))).toBe('request_malformed');
  });

  it('bs wraps each field line as a Byte Sequence (section 2.1.3)', () => {
    expect(componentValue(req('/', { 'example-header': ['value, with, lots', 'of, commas'] }), 'example-header')).toBe('value, with, lots, of, commas');
    expect(componentValue(req('/', { 'example-header': ['value, with, lots', 'of, commas'] }), '"example-header";bs')).toBe(':dmFsdWUsIHdpdGgsIGxvdHM=:, :b2YsIGNvbW1hcw==:');
    expect(componentValue(req('/', { 'example-header': ['value, with, lots, of, commas'] }), '"example-header";bs')).toBe(':dmFsdWUsIHdpdGgsIGxvdHMsIG9mLCBjb21tYXM=:');
    // Raw bytes: a byte 0xE9 (as Node hands it over) is encoded as that byte.
    expect(componentValue(req('/', { 'x-latin': [' caf\u00e9 '] }), '"x-latin";bs')).toBe(':Y2Fm6Q==:');
    expect(syncCodeOf(() => componentValue(req('/', { 'x-u': ['\u20ac'] }), '"x-u";bs'))).toBe('request_malformed');
  });

  it('req takes the field from the related request; it is refused in a request', () => {
    const request = req('/', { 'x-a': ['from request'] });
    const response = res(200, { 'x-a': ['from response'] });
    expect(signatureBase(response, ['x-a', '"x-a";req'], '()', { request })).toBe('"x-a": from response\n"x-a";req: from request\n"@signature-params": ()');
    expect(syncCodeOf(() => componentValue(request, '"x-a";req', { request }))).toBe('request_malformed');
    expect(syncCodeOf(() => componentValue(response, '"x-b";req', { request }))).toBe('component_missing');
  });

  it.each([
    ['a missing field', req('/', {}), 'content-type', 'component_missing'],
    ['a field without lines', req('/', { 'content-type': [] }), 'content-type', 'component_missing'],
    ['non-ASCII without bs', req('/', { 'x-a': ['caf\u00e9'] }), 'x-a', 'request_malformed'],
    ['a control character', req('/', { 'x-a': ['a\u0000b'] }), 'x-a', 'request_malformed'],
    ['a bare CR', req('/', { 'x-a': ['a\rb'] }), 'x-a', 'request_malformed'],
    ['a bare LF', req('/', { 'x-a': ['a\nb'] }), 'x-a', 'request_malformed'],
  ])('rejects %s', (_name, message, component, code) => {
    expect(syncCodeOf(() => componentValue(message, component))).toBe(code);
  });

  it('keeps an inner HTAB', () => {
    expect(componentValue(req('/', { 'x-a': ['a\tb'] }), 'x-a')).toBe('a\tb');
  });
});

describe('the signature base (RFC 9421 section 2.5)', () => {
  it('rejects a component covered twice, whatever the parameter order', () => {
    const r = req('/', { 'x-d': ['a=1'] });
    expect(syncCodeOf(() => signatureBase(r, ['@method', '@method'], '()'))).toBe('request_malformed');
    expect(syncCodeOf(() => signatureBase(res(200, { 'x-d': ['a=1'] }), ['"x-d";req;key="a"', '"x-d";key="a";req'], '()', { request: r }))).toBe('request_malformed');
    expect(signatureBase(res(200, { 'x-d': ['a=2'] }), ['"x-d";key="a"', '"x-d";req;key="a"'], '()', { request: r })).toBe('"x-d";key="a": 2\n"x-d";req;key="a": 1\n"@signature-params": ()');
  });

  it('covers many query parameters and dictionary members of one message', () => {
    const names = Array.from({ length: 200 }, (_, i) => `p${i}`);
    const r = req(`/x?${names.map((n) => `${n}=v${n}`).join('&')}&dup=1&dup=2`, { host: ['h'], 'x-d': [names.map((n, i) => `${n}=${i}`).join(', ')] });
    const base = signatureBase(r, [...names.map((n) => `"@query-param";name="${n}"`), ...names.map((n) => `"x-d";key="${n}"`)], '()');
    expect(base.split('\n')).toHaveLength(401);
    expect(base).toContain('\n"@query-param";name="p199": vp199\n');
    expect(base).toContain('\n"x-d";key="p7": 7\n');
    expect(syncCodeOf(() => signatureBase(r, ['"@query-param";name="p1"', '"@query-param";name="dup"'], '()'))).toBe('request_malformed');
    expect(syncCodeOf(() => signatureBase(r, ['"x-d";key="p1"', '"x-d";key="p200"'], '()'))).toBe('component_missing');
  });

  it('refuses a @signature-params value that is not an inner list', () => {
    expect(syncCodeOf(() => signatureBase(req('/'), [], '();a=1\n"x": y'))).toBe('TypeError');
    expect(syncCodeOf(() => signatureBase(req('/'), [], 'sig=()'))).toBe('TypeError');
  });
});

describe('Signature-Input and Signature (RFC 9421 section 4)', () => {
  it('parses members, their components and parameters, and re-serializes canonically', () => {
    const entries = parseSignatureInput([
      'sig1=( "@method"   "@path" "@query-param";name="Pet" );created=1618884473;expires=1618884773;nonce="n";tag="t";oidc2-aud="https://a.example/p";x-tok=abc;x-flag;x-no=?0;x-int=-5',
      'sig2=();keyid="k";alg="ed25519"',
    ]);
    expect([...entries.keys()]).toEqual(['sig1', 'sig2']);
    const e = entries.get('sig1')!;
    expect(e.label).toBe('sig1');
    expect(e.components.map((c) => c.id)).toEqual(['"@method"', '"@path"', '"@query-param";name="Pet"']);
    expect(e.signatureParams).toBe('("@method" "@path" "@query-param";name="Pet");created=1618884473;expires=1618884773;nonce="n";tag="t";oidc2-aud="https://a.example/p";x-tok=abc;x-flag;x-no=?0;x-int=-5');
    expect(Object.keys(e.params)).toEqual(['created', 'expires', 'nonce', 'tag', 'oidc2-aud', 'x-tok', 'x-flag', 'x-no', 'x-int']);
    expect(e.params.created).toBe(1618884473);
    expect(e.params['x-tok']).toBeInstanceOf(Token);
    expect(String(e.params['x-tok'])).toBe('abc');
    expect(e.params['x-flag']).toBe(true);
    expect(e.params['x-no']).toBe(false);
    expect(entries.get('sig2')!.params).toEqual({ keyid: 'k', alg: 'ed25519' });
    expect(parseSignatureInput(undefined).size).toBe(0);
    expect(parseSignatureInput([]).size).toBe(0);
  });

  it('parses Signature members as bytes', () => {
    const sigs = parseSignature(['a=:AQID:, b=::', 'c=:/w==:;x']);
    expect([...sigs]).toEqual([
      ['a', Uint8Array.of(1, 2, 3)],
      ['b', new Uint8Array(0)],
      ['c', Uint8Array.of(255)],
    ]);
    expect(parseSignature(undefined).size).toBe(0);
  });

  it.each([
    ['not a dictionary', 'sig1=("@method"'],
    ['a trailing comma', 'sig1=(), '],
    ['an item member', 'sig1="@method"'],
    ['a bare key member', 'sig1'],
    ['a token component', 'sig1=(method)'],
    ['an upper-case field name', 'sig1=("Content-Type")'],
    ['a repeated component', 'sig1=("@method" "@path" "@method")'],
    ['a repeated component with parameters reordered', 'sig1=("x";req;key="a" "x";key="a";req)'],
    ['@signature-params covered', 'sig1=("@signature-params")'],
    ['name on a field', 'sig1=("x";name="a")'],
    ['@query-param without name', 'sig1=("@query-param")'],
    ['bs with sf', 'sig1=("x";bs;sf)'],
    ['created as a string', 'sig1=();created="1618884473"'],
    ['created as a decimal', 'sig1=();created=1618884473.5'],
    ['expires negative', 'sig1=();expires=-1'],
    ['expires as a token', 'sig1=();expires=never'],
    ['nonce as an integer', 'sig1=();nonce=5'],
    ['tag as a token', 'sig1=();tag=oidc2-ict'],
    ['keyid as bytes', 'sig1=();keyid=:AA==:'],
    ['alg as a boolean', 'sig1=();alg'],
    ['a decimal extension parameter', 'sig1=();x=1.5'],
    ['a byte sequence extension parameter', 'sig1=();x=:AA==:'],
    ['a date extension parameter', 'sig1=();x=@1618884473'],
    ['non-ASCII', 'sig1=("caf\u00e9")'],
  ])('rejects Signature-Input with %s', (_name, value) => {
    expect(syncCodeOf(() => parseSignatureInput([value]))).toBe('request_malformed');
  });

  it.each([
    ['an unknown derived component', 'sig1=("@unknown")'],
    ['an unknown component parameter', 'sig1=("@method";foo)'],
    ['a trailer field', 'sig1=("expires";tr)'],
  ])('rejects Signature-Input with %s as unsupported', (_name, value) => {
    expect(syncCodeOf(() => parseSignatureInput([value]))).toBe('component_unsupported');
  });

  it.each([
    ['not a dictionary', 'sig1=:AA==:,'],
    ['an inner list', 'sig1=(:AA==:)'],
    ['a string', 'sig1="AA=="'],
    ['bad base64', 'sig1=:A*A=:'],
  ])('rejects Signature with %s', (_name, value) => {
    expect(syncCodeOf(() => parseSignature([value]))).toBe('request_malformed');
  });

  it('bounds the field size and the member count', () => {
    const big = `sig1=();nonce="${'a'.repeat(8192)}"`;
    expect(syncCodeOf(() => parseSignatureInput([big]))).toBe('header_too_large');
    expect(syncCodeOf(() => parseSignature([`sig1=:${'A'.repeat(8192)}:`]))).toBe('header_too_large');
    // Many small lines add up.
    expect(syncCodeOf(() => parseSignatureInput(Array.from({ length: 3000 }, () => 'a=()')))).toBe('header_too_large');
    expect(syncCodeOf(() => parseSignatureInput(['sig1=();nonce="aaaa"'], { maxBytes: 10 }))).toBe('header_too_large');
    expect(parseSignatureInput([`sig1=();nonce="${'a'.repeat(8100)}"`]).size).toBe(1);
    const nine = Array.from({ length: 9 }, (_, i) => `s${i}=()`).join(', ');
    expect(syncCodeOf(() => parseSignatureInput([nine]))).toBe('request_malformed');
    expect(syncCodeOf(() => parseSignature([Array.from({ length: 9 }, (_, i) => `s${i}=::`).join(', ')]))).toBe('request_malformed');
    expect(parseSignatureInput([nine], { maxMembers: 9 }).size).toBe(9);
    expect(parseSignatureInput(Array.from({ length: 8 }, (_, i) => `s${i}=()`)).size).toBe(8);
    expect(syncCodeOf(() => parseSignatureInput(['a=()'], { maxMembers: 0 }))).toBe('TypeError');
    expect(syncCodeOf(() => parseSignatureInput(['a=()'], { maxBytes: 1.5 }))).toBe('TypeError');
  });

  it('serializes signature parameters in insertion order', () => {
    expect(serializeSignatureParams([], {})).toBe('()');
    expect(
      serializeSignatureParams(['@method', '"@query-param";name="Pet"', 'content-digest;req'], {
        created: 1618884473,
        expires: undefined,
        keyid: 'k"\\',
        'x-flag': true,
        'x-off': false,
        'x-tok': new Token('abc'),
        'x-n': -2,
      }),
    ).toBe('("@method" "@query-param";name="Pet" "content-digest";req);created=1618884473;keyid="k\\"\\\\";x-flag;x-off=?0;x-tok=abc;x-n=-2');
  });

  it.each([
    ['a repeated component', ['@method', '"@method"'], {}],
    ['an invalid component', ['Bad'], {}],
    ['an invalid parameter name', [], { Created: 1 }],
    ['a non-integer created', [], { created: 1.5 }],
    ['a string expires', [], { expires: '5' }],
    ['a numeric nonce', [], { nonce: 5 }],
    ['a decimal extension', [], { x: 0.5 }],
    ['a non-ASCII string', [], { nonce: 'caf\u00e9' }],
    ['an integer out of range', [], { x: 1e16 }],
  ])('refuses to serialize %s', (_name, components, params) => {
    expect(syncCodeOf(() => serializeSignatureParams(components as string[], params as Record<string, number>))).toBe('TypeError');
  });
});

describe('signMessage and signMessageFields', () => {
  let key: KeyHandle;
  let pub: KeyHandle;
  beforeAll(async () => {
    key = await importKey(JWKS['test-key-ed25519']!, 'ed25519', 'sign');
    pub = await importKey(JWKS['test-key-ed25519']!, 'ed25519', 'verify');
  });

  it('appends to existing members and picks a free label', async () => {
    const request = testRequest();
    request.headers['signature-input'] = ['sig=();created=1'];
    request.headers['signature'] = ['sig=:AA==:'];
    const fields = await signMessageFields(request, { components: ['@method'], params: { created: 2 }, key });
    expect(fields['signature-input']).toEqual(['sig=();created=1', 'sig2=("@method");created=2']);
    expect(fields['signature']![0]).toBe('sig=:AA==:');
    expect(fields['signature']![1]).toMatch(/^sig2=:[A-Za-z0-9+/]+=*:$/);
    Object.assign(request.headers, fields);
    const entry = parseSignatureInput(request.headers['signature-input']).get('sig2')!;
    expect(await verifyMessageSignature(request, entry, parseSignature(request.headers['signature']).get('sig2')!, pub)).toBe(true);
    expect(await codeOf(() => signMessageFields(request, { label: 'sig2', components: [], key }))).toBe('TypeError');
    const fresh = await signMessageFields(testRequest(), { components: [], key });
    expect(fresh['signature-input']).toEqual(['sig=()']);
  });

  it.each([
    ['an invalid label', { label: 'Sig' }],
    ['components that are not an array', { components: '@method' }],
    ['an invalid component', { components: ['Content-Type'] }],
    ['a key that is not a handle', { key: {} }],
  ])('refuses %s', async (_name, override) => {
    expect(await codeOf(() => signMessage(testRequest(), { components: [], key, ...(override as object) }))).toBe('TypeError');
  });

  it('fails when a covered component is missing from the message', async () => {
    expect(await codeOf(() => signMessage(testRequest(), { components: ['authorization'], key }))).toBe('component_missing');
    expect(await codeOf(() => signMessage(testResponse(), { components: ['"@method";req'], key }))).toBe('component_missing');
  });
});
