// Interoperability with the `http-message-signatures` npm package (v1.x), both ways, and the
// package's defects that docs/http-message-signatures.md describes, each pinned by a test.
import { constants, createPrivateKey, createPublicKey, generateKeyPairSync, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { createSigner, createVerifier, httpbis, type Request as HmsRequest, type Response as HmsResponse, type VerifyingKey } from 'http-message-signatures';
import { importKey, type KeyHandle } from '../../packages/core/src/lib/crypto';
import type { Fields, HttpRequest, HttpResponse } from '../../packages/core/src/message';
import { createContentDigest } from '../../packages/core/src/content-digest';
import { componentValue, parseSignature, parseSignatureInput, signMessage, signatureBase, verifyMessageSignature } from '../../packages/core/src/rfc9421/index';
import { codeOf } from '../support/error-code';

const NOW = 1_700_000_000;
const enc = new TextEncoder();
const BODY = enc.encode('{"order": 42}');

type Flat = Record<string, string>;


function flat(fields: Fields): Flat {
  const out: Flat = {};
  for (const [name, lines] of Object.entries(fields)) out[name] = lines.join(', ');
  return out;
}
function fields(headers: Record<string, string | string[]>): Fields {
  const out: Fields = {};
  for (const [name, value] of Object.entries(headers)) out[name.toLowerCase()] = Array.isArray(value) ? value : [value];
  return out;
}

/** Verifies every signature in `message` with our code; the label is taken from Signature-Input. */
async function oursVerify(message: HttpRequest | HttpResponse, key: KeyHandle, request?: HttpRequest): Promise<boolean> {
  const inputs = parseSignatureInput(message.headers['signature-input']);
  const signatures = parseSignature(message.headers['signature']);
  expect(inputs.size).toBe(1);
  const [label, entry] = [...inputs][0]!;
  return verifyMessageSignature(message, entry, signatures.get(label)!, key, { request });
}

function theirKey(id: string, alg: string, publicKey: KeyObject): VerifyingKey {
  return { id, algs: [alg], verify: createVerifier(publicKey, alg) };
}

async function theirsVerify(message: HmsRequest | HmsResponse, key: VerifyingKey, request?: HmsRequest): Promise<boolean | null> {
  return (httpbis.verifyMessage as (c: unknown, m: unknown, r?: unknown) => Promise<boolean | null>)({ keyLookup: async () => key }, message, request);
}

let dateNow: jest.SpyInstance;
beforeAll(() => {
  // The package reads the clock through Date.now(); freeze it.
  dateNow = jest.spyOn(Date, 'now').mockReturnValue(NOW * 1000);
});
afterAll(() => dateNow.mockRestore());

describe.each([
  ['ed25519', 'ed25519'],
  ['ecdsa-p256-sha256', 'ec'],
])('interop with http-message-signatures: %s', (alg, type) => {
  let privateKey: KeyObject;
  let publicKey: KeyObject;
  let ourSign: KeyHandle;
  let ourVerify: KeyHandle;
  let digest: string;
  beforeAll(async () => {
    const pair = type === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
    privateKey = pair.privateKey;
    publicKey = pair.publicKey;
    ourSign = await importKey(privateKey.export({ format: 'jwk' }) as never, alg, 'sign');
    ourVerify = await importKey(publicKey.export({ format: 'jwk' }) as never, alg, 'verify');
    digest = await createContentDigest(BODY);
  });

  const REQUEST_COMPONENTS = [
    '@method',
    '@target-uri',
    '@authority',
    '@scheme',
    '@request-target',
    '@path',
    '@query',
    '"@query-param";name="id"',
    'content-type',
    'content-digest',
    '"content-digest";key="sha-256"',
    '"content-digest";sf',
  ];
  const RESPONSE_COMPONENTS = ['@status', 'content-type', 'content-digest', '"@method";req', '"@authority";req', '"@path";req', '"@query";req', '"content-digest";req'];

  function ourRequest(): HttpRequest {
    return {
      method: 'POST',
      url: 'https://api.example.com/orders?id=42',
      headers: { host: ['api.example.com'], 'content-type': ['application/json'], 'content-digest': [digest] },
      body: BODY,
    };
  }
  /** The same request as a server sees it: origin-form target plus Host. */
  function ourServerRequest(headers: Fields): HttpRequest {
    return { method: 'POST', url: '/orders?id=42', scheme: 'https', headers, body: BODY };
  }
  function theirRequest(): HmsRequest {
    return { method: 'POST', url: 'https://api.example.com/orders?id=42', headers: { Host: 'api.example.com', 'Content-Type': 'application/json', 'Content-Digest': digest } };
  }
  function ourResponse(): HttpResponse {
    return { status: 201, headers: { 'content-type': ['application/json'], 'content-digest': [digest] }, body: BODY };
  }

  it('our request signature verifies with it, and a change fails', async () => {
    const request = ourRequest();
    const signed = await signMessage(request, { label: 'sig1', components: REQUEST_COMPONENTS, params: { created: NOW, expires: NOW + 60, keyid: 'k', alg, nonce: 'abc', tag: 'interop' }, key: ourSign });
    const message = { ...theirRequest(), headers: { ...theirRequest().headers, 'Signature-Input': signed.signatureInput, Signature: signed.signature } };
    expect(await theirsVerify(message, theirKey('k', alg, publicKey))).toBe(true);
    expect(await theirsVerify({ ...message, url: 'https://api.example.com/orders?id=43' }, theirKey('k', alg, publicKey))).toBe(false);
    expect(await theirsVerify({ ...message, method: 'PUT' }, theirKey('k', alg, publicKey))).toBe(false);
  });

  it('its request signature verifies with ours, as the client and as the server sees the request', async () => {
    const signed = await httpbis.signMessage(
      { key: createSigner(privateKey, alg, 'k'), name: 'sig1', fields: REQUEST_COMPONENTS, params: ['created', 'expires', 'nonce', 'tag', 'keyid', 'alg'], paramValues: { created: new Date(NOW * 1000), expires: new Date((NOW + 60) * 1000), nonce: 'abc', tag: 'interop' } },
      theirRequest(),
    );
    const headers = fields(signed.headers);
    expect(await oursVerify({ ...ourRequest(), headers }, ourVerify)).toBe(true);
    expect(await oursVerify(ourServerRequest(headers), ourVerify)).toBe(true);
    const tampered = fields(signed.headers);
    tampered['content-type'] = ['text/plain'];
    expect(await oursVerify(ourServerRequest(tampered), ourVerify)).toBe(false);
    expect(await oursVerify({ ...ourServerRequest(headers), url: '/orders?id=43' }, ourVerify)).toBe(false);
  });

  it('our response signature with request components verifies with it', async () => {
    const response = ourResponse();
    const signed = await signMessage(response, { components: RESPONSE_COMPONENTS, params: { created: NOW, keyid: 'k' }, key: ourSign, request: ourRequest() });
    const message: HmsResponse = { status: 201, headers: { ...flat(response.headers), 'Signature-Input': signed.signatureInput, Signature: signed.signature } };
    expect(await theirsVerify(message, theirKey('k', alg, publicKey), theirRequest())).toBe(true);
    expect(await theirsVerify({ ...message, status: 200 }, theirKey('k', alg, publicKey), theirRequest())).toBe(false);
    expect(await theirsVerify(message, theirKey('k', alg, publicKey), { ...theirRequest(), method: 'PUT' })).toBe(false);
  });

  it('its response signature with request components verifies with ours', async () => {
    const signed = await httpbis.signMessage(
      { key: createSigner(privateKey, alg, 'k'), fields: RESPONSE_COMPONENTS, paramValues: { created: new Date(NOW * 1000) } },
      { status: 201, headers: flat(ourResponse().headers) },
      theirRequest(),
    );
    const response: HttpResponse = { status: 201, headers: fields(signed.headers), body: BODY };
    expect(await oursVerify(response, ourVerify, ourRequest())).toBe(true);
    expect(await oursVerify(response, ourVerify, ourServerRequest(ourRequest().headers))).toBe(true);
    expect(await oursVerify({ ...response, status: 500 }, ourVerify, ourRequest())).toBe(false);
    expect(await oursVerify(response, ourVerify, { ...ourRequest(), url: '/elsewhere' })).toBe(false);
  });
});

describe('defects of http-message-signatures (docs/http-message-signatures.md)', () => {
  const ed = generateKeyPairSync('ed25519');
  const theirs = (fields: string[], message: HmsRequest): string => httpbis.formatSignatureBase(httpbis.createSignatureBase({ fields }, message));
  const get = (url: string, headers: Record<string, string | string[]> = {}, method = 'GET'): HmsRequest => ({ method, url, headers });
  const ours = (url: string, headers: Fields = {}, method = 'GET'): HttpRequest => ({ method, url, headers });

  it('1. @query-param uses encodeURIComponent, not the form-urlencoded set of RFC 9421 section 2.2.8', () => {
    expect(theirs(['"@query-param";name="a"'], get("https://e.example/p?a=it's"))).toBe('"@query-param";name="a": it\'s');
    expect(componentValue(ours("https://e.example/p?a=it's"), '"@query-param";name="a"')).toBe('it%27s');
    expect(theirs(['"@query-param";name="b"'], get('https://e.example/p?b=a~b'))).toBe('"@query-param";name="b": a~b');
    expect(componentValue(ours('https://e.example/p?b=a~b'), '"@query-param";name="b"')).toBe('a%7Eb');
  });

  it('2. a repeated query parameter becomes several base lines instead of an error', async () => {
    expect(theirs(['"@query-param";name="d"'], get('https://e.example/p?d=1&d=2'))).toBe('"@query-param";name="d": 1\n"@query-param";name="d": 2');
    expect(await codeOf(() => componentValue(ours('https://e.example/p?d=1&d=2'), '"@query-param";name="d"'))).toBe('request_malformed');
  });

  it('3. @query and @path are re-encoded by the WHATWG URL parser instead of read as sent', () => {
    expect(theirs(['@query'], get("https://e.example/p?x='y'"))).toBe('"@query": ?x=%27y%27');
    expect(componentValue(ours("/p?x='y'", { host: ['e.example'] }), '@query')).toBe("?x='y'");
    expect(theirs(['@path'], get('https://e.example/a/../b'))).toBe('"@path": /b');
    expect(componentValue(ours('/a/../b', { host: ['e.example'] }), '@path')).toBe('/a/../b');
  });

  it('4. ;bs encodes the UTF-8 of the JavaScript string, not the bytes of the field line', () => {
    // Node hands a field byte 0xE9 over as the character U+00E9.
    expect(theirs(['"x-latin";bs'], get('https://e.example/', { 'x-latin': 'caf\u00e9' }))).toBe('"x-latin";bs: :Y2Fmw6k=:');
    expect(componentValue(ours('/', { 'x-latin': ['caf\u00e9'] }), '"x-latin";bs')).toBe(':Y2Fm6Q==:');
  });

  it('5. ;key fails on a Dictionary that also parses as a List', async () => {
    expect(() => theirs(['"x-d";key="a"'], get('https://e.example/', { 'x-d': 'a, b' }))).toThrow('Unable to parse header as dictionary');
    expect(componentValue(ours('/', { 'x-d': ['a, b'] }), '"x-d";key="a"')).toBe('?1');
  });

  it('6. ;sf guesses the type, List first, so a Dictionary can be serialized as a List', () => {
    expect(theirs(['"x-d";sf'], get('https://e.example/', { 'x-d': 'a, a' }))).toBe('"x-d";sf: a, a');
    expect(componentValue(ours('/', { 'x-d': ['a, a'] }), '"x-d";sf', { structuredFields: { 'x-d': 'dictionary' } })).toBe('a');
  });

  it('7. ;tr is ignored: the header field is signed as if it were the trailer', async () => {
    expect(theirs(['"x-t";tr'], get('https://e.example/', { 'x-t': 'header value' }))).toBe('"x-t";tr: header value');
    expect(await codeOf(() => componentValue(ours('/', { 'x-t': ['header value'] }), '"x-t";tr'))).toBe('TypeError');
    expect(await codeOf(() => parseSignatureInput(['sig=("x-t";tr)']))).toBe('component_unsupported');
  });

  it('8. @method is upper-cased although methods are case-sensitive', () => {
    expect(theirs(['@method'], get('https://e.example/', {}, 'patch'))).toBe('"@method": PATCH');
    expect(componentValue(ours('/', {}, 'patch'), '@method')).toBe('patch');
  });

  it('9. Signature-Input is not validated: upper-case names, repeated and unknown components verify', async () => {
    const message = get('https://e.example/', { 'content-type': 'x' });
    const input = '("Content-Type" "@method" "@method" "@method";foo "@signature-params");created=' + NOW;
    const base = `"Content-Type": x\n"@method": GET\n"@method": GET\n"@method";foo: GET\n"@signature-params": ${input}`;
    expect(theirs(['"Content-Type"', '@method', '@method', '"@method";foo', '@signature-params'], message) + `\n"@signature-params": ${input}`).toBe(base);
    const signature = nodeSign(null, Buffer.from(base), ed.privateKey).toString('base64');
    const signed = { ...message, headers: { ...message.headers, 'Signature-Input': `sig=${input}`, Signature: `sig=:${signature}:` } };
    expect(await theirsVerify(signed, theirKey('k', 'ed25519', ed.publicKey))).toBe(true);
    expect(await codeOf(() => parseSignatureInput([`sig=${input}`]))).toBe('request_malformed');
  });

  it('10. an expires that is not an Integer never expires', async () => {
    const message = get('https://e.example/');
    const input = `("@method");created=${NOW - 7200};expires=never`;
    const base = `"@method": GET\n"@signature-params": ${input}`;
    const signature = nodeSign(null, Buffer.from(base), ed.privateKey).toString('base64');
    const signed = { ...message, headers: { 'Signature-Input': `sig=${input}`, Signature: `sig=:${signature}:` } };
    expect(await theirsVerify(signed, theirKey('k', 'ed25519', ed.publicKey))).toBe(true);
    // The same signature with an Integer expiry in the past is refused by the package itself.
    const past = `("@method");created=${NOW - 7200};expires=${NOW - 3600}`;
    const pastSignature = nodeSign(null, Buffer.from(`"@method": GET\n"@signature-params": ${past}`), ed.privateKey).toString('base64');
    await expect(theirsVerify({ ...message, headers: { 'Signature-Input': `sig=${past}`, Signature: `sig=:${pastSignature}:` } }, theirKey('k', 'ed25519', ed.publicKey))).rejects.toThrow('expired');
    expect(await codeOf(() => parseSignatureInput([`sig=${input}`]))).toBe('request_malformed');
  });

  it('11. with several signatures only the last one counts: an earlier invalid one is ignored', async () => {
    const message = get('https://e.example/', { host: 'e.example' });
    const signed = await httpbis.signMessage({ key: createSigner(ed.privateKey, 'ed25519', 'k'), name: 'good', fields: ['@method'], paramValues: { created: new Date(NOW * 1000) } }, message);
    const good = signed.headers as Flat;
    const zero = `:${Buffer.alloc(64).toString('base64')}:`;
    const badFirst = { 'Signature-Input': `${good['Signature-Input']!.replace('good=', 'bad=')}, ${good['Signature-Input']}`, Signature: `bad=${zero}, ${good['Signature']}` };
    const badLast = { 'Signature-Input': `${good['Signature-Input']}, ${good['Signature-Input']!.replace('good=', 'bad=')}`, Signature: `${good['Signature']}, bad=${zero}` };
    expect(await theirsVerify({ ...message, headers: badFirst }, theirKey('k', 'ed25519', ed.publicKey))).toBe(true);
    expect(await theirsVerify({ ...message, headers: badLast }, theirKey('k', 'ed25519', ed.publicKey))).toBe(false);
  });

  it('12. rsa-pss-sha512 signs with the largest salt, not the 64 bytes RFC 9421 section 3.3.1 requires, and verifies any salt', async () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const ourPublic = await importKey(rsa.publicKey.export({ format: 'jwk' }) as never, 'rsa-pss-sha512', 'verify');
    const ourPrivate = await importKey(rsa.privateKey.export({ format: 'jwk' }) as never, 'rsa-pss-sha512', 'sign');
    const request = ours('/x', { host: ['e.example'] });
    const theirSigned = await httpbis.signMessage(
      { key: createSigner(rsa.privateKey, 'rsa-pss-sha512', 'k'), fields: ['@method', '@path'], paramValues: { created: new Date(NOW * 1000) } },
      get('https://e.example/x', { host: 'e.example' }),
    );
    const headers = fields(theirSigned.headers);
    expect(await oursVerify({ ...request, headers: { ...request.headers, ...headers } }, ourPublic)).toBe(false);
    // Its salt is the largest a 2048-bit key allows: 256 - 64 - 2 = 190 bytes.
    const entry = parseSignatureInput(headers['signature-input']).get('sig')!;
    const base = Buffer.from(signatureBase(request, entry.components, entry.signatureParams));
    const bytes = parseSignature(headers['signature']).get('sig')!;
    expect(nodeVerify('sha512', base, { key: rsa.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 190 }, bytes)).toBe(true);
    expect(nodeVerify('sha512', base, { key: rsa.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 64 }, bytes)).toBe(false);
    // Ours (salt 64) verifies with theirs, which accepts any salt length.
    const ourSigned = await signMessage(request, { components: ['@method', '@path'], params: { created: NOW, alg: 'rsa-pss-sha512' }, key: ourPrivate });
    const message = { ...get('https://e.example/x', { host: 'e.example' }), headers: { 'Signature-Input': ourSigned.signatureInput, Signature: ourSigned.signature } };
    expect(await theirsVerify(message, theirKey('k', 'rsa-pss-sha512', rsa.publicKey))).toBe(true);
  });

  it('13. created in the future is refused with no clock tolerance by default', async () => {
    const message = get('https://e.example/', { host: 'e.example' });
    const signed = await httpbis.signMessage({ key: createSigner(ed.privateKey, 'ed25519', 'k'), fields: ['@method'], paramValues: { created: new Date((NOW + 1) * 1000) } }, message);
    await expect(theirsVerify(signed, theirKey('k', 'ed25519', ed.publicKey))).rejects.toThrow('too old');
  });

  it('14. @target-uri is the URL string as given, not normalized like @authority', () => {
    expect(theirs(['@target-uri', '@authority'], get('https://API.example.com:443/x'))).toBe('"@target-uri": https://API.example.com:443/x\n"@authority": api.example.com');
    expect(componentValue(ours('https://API.example.com:443/x'), '@target-uri')).toBe('https://api.example.com/x');
    expect(componentValue(ours('/x', { host: ['API.example.com:443'] }), '@target-uri')).toBe('https://api.example.com/x');
  });

  it('ECDSA signatures are raw r||s on both sides (no defect)', async () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const signed = await httpbis.signMessage(
      { key: createSigner(ec.privateKey, 'ecdsa-p256-sha256', 'k'), fields: ['@method'], paramValues: { created: new Date(NOW * 1000) } },
      get('https://e.example/', { host: 'e.example' }),
    );
    const headers = fields(signed.headers);
    expect(parseSignature(headers['signature']).get('sig')!.length).toBe(64);
    const key = await importKey(createPublicKey(createPrivateKey(ec.privateKey.export({ format: 'pem', type: 'pkcs8' }))).export({ format: 'jwk' }) as never, 'ecdsa-p256-sha256', 'verify');
    expect(await oursVerify(ours('/', headers), key)).toBe(true);
  });
});
