// The prepared response-signing path of signResponse (components prepared once per shape, parameters
// written directly, a synchronous digest and signature on Node) against its reference, signMessage
// (the path taken on WebCrypto): for every shape of response, the same Signature-Input up to the
// fresh nonce, the same Content-Digest, a signature that verifies over the reference signature base,
// and a response verifyResponse accepts. Arguments the reference refuses are refused alike.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createPublicKey, verify as rawVerify } from 'node:crypto';
import type { JWK } from 'jose';
import { importKey, useWebCrypto } from '../src/lib/crypto';
import { signResponse, type ServiceCredential, type SignResponseOptions } from '../src/response-signature';
import { OIDC2_PROFILE, WIMSE_06_PROFILE, WIMSE_PROFILE } from '../src/profile';
import { dpopBinding, wptBinding, type RequestBinding } from '../src/binding';
import { parseSignatureInput, serializeSignatureParams, signatureBase } from '../src/rfc9421';
import type { HttpRequest, HttpResponse } from '../src/message';
import * as httpSignatures from '../src/rfc9421/http-signatures';

// The real functions, wrapped to see which path signed.
jest.mock('../src/rfc9421/http-signatures', () => {
  const actual = jest.requireActual('../src/rfc9421/http-signatures');
  return { ...actual, signMessage: jest.fn(actual.signMessage), signPreparedSync: jest.fn(actual.signPreparedSync) };
});
const signMessage = httpSignatures.signMessage as jest.MockedFunction<typeof httpSignatures.signMessage>;
const signPreparedSync = httpSignatures.signPreparedSync as jest.MockedFunction<typeof httpSignatures.signPreparedSync>;

const fixture = (name: string): JWK => JSON.parse(readFileSync(join(__dirname, 'fixtures', name), 'utf8'));
const NOW = 1_800_000_000;
const request: HttpRequest = {
  method: 'POST',
  url: '/transfers?x=1&y=%20z',
  headers: { host: ['api.example'], dpop: ['dpop.proof.value'], authorization: ['WPT wpt.value'] },
};
const body = new TextEncoder().encode('{"hello":"world"}');
const response = (extra: Record<string, string[]> = {}): HttpResponse => ({ status: 201, headers: { 'content-type': ['application/json'], ...extra }, body });

interface Case {
  name: string;
  binding: RequestBinding;
  response: () => HttpResponse;
  options?: SignResponseOptions;
  kind?: 'ict' | 'wit';
  /** The request answered. Default `request`. */
  request?: HttpRequest;
}
// A request signed with an ICT: its answer also covers the caller's ICT with ;req.
const ictRequest: HttpRequest = { method: 'GET', url: '/orders', headers: { host: ['api.example'], 'identity-certification-token': ['eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln'] } };
const CASES: Case[] = [
  { name: 'OIDC² signature, signed response asked', binding: { proof: 'http-signature', nonce: 'n-1', signResponse: true }, response },
  { name: 'OIDC² signature, no nonce (an unbound error)', binding: { proof: 'http-signature', signResponse: false }, response },
  { name: 'OIDC² signature with the caller ICT', binding: { proof: 'http-signature', nonce: 'n-6', signResponse: true }, response, request: ictRequest },
  { name: 'OIDC² with e2ee fields and the caller ICT', binding: { proof: 'http-signature', nonce: 'n-7', signResponse: true }, response: () => response({ 'oidc2-key-share': ['x25519=:AA==:'] }), request: ictRequest },
  { name: 'OIDC² with e2ee fields present', binding: { proof: 'http-signature', nonce: 'n-2', signResponse: true }, response: () => response({ 'oidc2-session': ['sess'], 'content-encoding': ['aes128gcm'] }) },
  { name: 'nonce with characters to escape', binding: { proof: 'http-signature', nonce: 'a "quoted" \\ nonce', signResponse: true }, response },
  { name: 'DPoP binding with nonce', binding: { ...dpopBinding(), nonce: 'dpop-nonce', signResponse: true }, response },
  { name: 'DPoP binding without nonce', binding: dpopBinding(), response },
  { name: 'WPT binding', binding: wptBinding(), response, kind: 'wit' },
  { name: 'WIMSE -07 signature', binding: { proof: 'http-signature', nonce: 'w-1', signResponse: true, profile: WIMSE_PROFILE }, response, kind: 'wit' },
  { name: 'WIMSE -06 signature', binding: { proof: 'http-signature', nonce: 'w-2', signResponse: true, profile: WIMSE_06_PROFILE }, response, kind: 'wit' },
  { name: 'sha-512 digest', binding: { proof: 'http-signature', nonce: 'n-3', signResponse: true }, response, options: { digestAlgorithm: 'sha-512' } },
  { name: 'no body', binding: { proof: 'http-signature', nonce: 'n-4', signResponse: true }, response: () => ({ status: 204, headers: {} }) },
  {
    name: 'streamed encrypted head',
    binding: { proof: 'http-signature', nonce: 'n-5', signResponse: true },
    response: () => ({ status: 200, headers: { 'content-encoding': ['aes128gcm'] } }),
    options: { streamedEncryptedBody: true },
  },
];

let credentials: Record<string, ServiceCredential>;
const publicKeys: Record<string, ReturnType<typeof createPublicKey>> = {};
beforeAll(async () => {
  credentials = {};
  for (const [alg, file] of [['ES256', 'caller-p256.jwk.json'], ['Ed25519', 'caller-ed25519.jwk.json']] as const) {
    const jwk = fixture(file);
    publicKeys[alg] = createPublicKey({ key: { ...jwk, d: undefined } as never, format: 'jwk' });
    credentials[alg] = { ict: 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhcGkifQ.c2ln', key: await importKey(jwk, alg, 'sign') };
  }
});

async function signBoth(c: Case, alg: string) {
  const credential = { ...credentials[alg]!, kind: c.kind ?? 'ict' };
  const options = { now: () => NOW, ...c.options };
  signMessage.mockClear();
  signPreparedSync.mockClear();
  const fast = await signResponse(c.response(), c.request ?? request, c.binding, credential, options);
  // On Node every case here takes the prepared path, never the reference.
  expect(signPreparedSync).toHaveBeenCalledTimes(1);
  expect(signMessage).not.toHaveBeenCalled();
  useWebCrypto(true);
  let reference;
  try {
    reference = await signResponse(c.response(), c.request ?? request, c.binding, { ...credential, key: await importKey(alg === 'ES256' ? fixture('caller-p256.jwk.json') : fixture('caller-ed25519.jwk.json'), alg, 'sign') }, options);
  } finally {
    useWebCrypto(false);
  }
  expect(signMessage).toHaveBeenCalledTimes(1);
  return { fast, reference, credential };
}

const withoutNonce = (input: string) => input.replace(/;nonce="[^"]*"/, ';nonce=""');

describe.each(['ES256', 'Ed25519'])('signResponse %s: prepared path against signMessage', (alg) => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const { fast, reference } = await signBoth(c, alg);
    expect(Object.keys(fast)).toEqual(Object.keys(reference));
    for (const name of Object.keys(fast)) if (name !== 'signature-input' && name !== 'signature') expect(fast[name]).toEqual(reference[name]);
    expect(withoutNonce(fast['signature-input']![0]!)).toBe(withoutNonce(reference['signature-input']![0]!));
    expect(fast['signature-input']![0]!.includes('"identity-certification-token";req')).toBe(c.request === ictRequest);
    // The reference's own serialization of the parsed member, and its signature base: the fast
    // path's signature must verify over exactly that.
    const entry = [...parseSignatureInput(fast['signature-input']).values()][0]!;
    expect(`${entry.label}=${serializeSignatureParams(entry.components, entry.params)}`).toBe(fast['signature-input']![0]);
    const signed = c.response();
    const base = signatureBase({ ...signed, headers: { ...signed.headers, ...fast } }, entry.components, entry.signatureParams, { request: c.request ?? request });
    const signature = Buffer.from(/:(.*):/.exec(fast.signature![0]!)![1]!, 'base64');
    const ok = rawVerify(alg === 'ES256' ? 'sha256' : null, Buffer.from(base), alg === 'ES256' ? { key: publicKeys[alg]!, dsaEncoding: 'ieee-p1363' } : publicKeys[alg]!, signature);
    expect(ok).toBe(true);
  });
});

describe('signResponse: what the reference refuses, the prepared path refuses alike', () => {
  const binding: RequestBinding = { proof: 'http-signature', nonce: 'n', signResponse: true };
  const code = async (run: () => Promise<unknown>) => {
    try {
      await run();
      return 'ok';
    } catch (error) {
      return `${(error as Error).name}:${String((error as { code?: unknown }).code)}`;
    }
  };
  const cases: Array<[string, (web: boolean) => Promise<unknown>]> = [
    ['a fractional lifetime', () => signResponse(response(), request, binding, credentials.ES256!, { now: () => NOW, expiresIn: 1.5 })],
    ['a clock before 1970', () => signResponse(response(), request, binding, credentials.ES256!, { now: () => -5 })],
    ['a clock past the Integer range', () => signResponse(response(), request, binding, credentials.ES256!, { now: () => 1e15 })],
    ['a request nonce that is not printable', () => signResponse(response(), request, { ...binding, nonce: 'line\nbreak' }, credentials.ES256!, { now: () => NOW })],
    ['a verification key', async () => signResponse(response(), request, binding, { ict: 'x.y.z', key: await importKey(fixture('caller-p256.jwk.json'), 'ES256', 'verify') }, { now: () => NOW })],
    ['no key', () => signResponse(response(), request, binding, { ict: 'x.y.z', key: null as never }, { now: () => NOW })],
    ['a field that cannot be signed', () => signResponse(response({ 'content-type': ['caf\u00e9'] }), request, binding, credentials.ES256!, { now: () => NOW })],
  ];
  it.each(cases)('%s', async (_name, run) => {
    const fast = await code(() => run(false));
    useWebCrypto(true);
    let reference: string;
    try {
      reference = await code(() => run(true));
    } finally {
      useWebCrypto(false);
    }
    expect(fast).toBe(reference);
    expect(fast).not.toBe('ok');
  });
});
