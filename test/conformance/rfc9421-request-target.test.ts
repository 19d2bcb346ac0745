// RFC 9421 section 2.2.5: `@request-target` is the request target as the request line carried it,
// so a request in absolute form (to a forward proxy) covers the absolute URI, as the RFC's example
// shows; the message model says which form the request line had. Trailer components (`;tr`) stay
// refused with a coded error.
import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import vectors from '../fixtures/rfc9421-request-target.json';
import { importKey } from '../../packages/core/src/lib/crypto';
import { componentValue, parseSignature, parseSignatureInput, signMessageFields, signatureBase, verifyMessageSignature } from '../../packages/core/src/rfc9421/index';
import type { HttpRequest } from '../../packages/core/src/message';
import { outcome, runs } from '../property/support';

function request(v: { method: string; target: string; host: string; absoluteForm: boolean }): HttpRequest {
  return { method: v.method, url: v.target, headers: { host: [v.host] }, absoluteForm: v.absoluteForm };
}

describe('@request-target (RFC 9421 section 2.2.5)', () => {
  it.each(vectors.vectors.map((v) => [v.method, v.target, v] as const))('%s %s gives the value of the RFC', (_m, _t, v) => {
    expect(componentValue(request(v), '@request-target')).toBe(v.value);
  });

  it('an absolute URL without absoluteForm names only the target URI: @request-target is its origin-form', () => {
    expect(componentValue({ method: 'GET', url: 'https://www.example.com/path?param=value', headers: {} }, '@request-target')).toBe('/path?param=value');
  });

  it('absoluteForm covers the absolute URI without its fragment, for any URL, and leaves every other component alone', () => {
    fc.assert(
      fc.property(fc.webUrl({ withQueryParameters: true, withFragments: true }), (url) => {
        const plain = { method: 'GET', url, headers: {} };
        const proxied = { ...plain, absoluteForm: true };
        const result = outcome(() => componentValue(proxied, '@request-target'));
        if ('code' in result) {
          // Only a target that cannot be signed (non-ASCII) is refused, and the same way in both forms.
          expect(outcome(() => componentValue(plain, '@request-target'))).toEqual(result);
          return;
        }
        const hash = url.indexOf('#');
        expect(result.value).toBe(hash < 0 ? url : url.slice(0, hash));
        for (const c of ['@path', '@query', '@authority', '@scheme', '@target-uri']) {
          expect(outcome(() => componentValue(proxied, c))).toEqual(outcome(() => componentValue(plain, c)));
        }
      }),
      runs(500),
    );
  });

  it('a signature over the absolute form verifies only against a request line in absolute form', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const signer = await importKey(privateKey.export({ format: 'jwk' }), 'ed25519', 'sign');
    const verifier = await importKey(publicKey.export({ format: 'jwk' }), 'ed25519', 'verify');
    const proxied: HttpRequest = { method: 'GET', url: 'https://www.example.com/path?param=value', headers: { host: ['www.example.com'] }, absoluteForm: true };
    const fields = await signMessageFields(proxied, { components: ['@method', '@request-target'], params: { created: 1618884473 }, key: signer });
    const entry = parseSignatureInput([fields['signature-input']![0]!]).get('sig')!;
    const signature = parseSignature([fields['signature']![0]!]).get('sig')!;
    expect(signatureBase(proxied, entry.components, entry.signatureParams)).toContain('"@request-target": https://www.example.com/path?param=value\n');
    await expect(verifyMessageSignature(proxied, entry, signature, verifier)).resolves.toBe(true);
    await expect(verifyMessageSignature({ ...proxied, absoluteForm: false }, entry, signature, verifier)).resolves.toBe(false);
    await expect(verifyMessageSignature({ ...proxied, url: '/path?param=value', absoluteForm: undefined }, entry, signature, verifier)).resolves.toBe(false);
  });

  it('absoluteForm with an origin-form url is a programmer error', () => {
    expect(outcome(() => componentValue({ method: 'GET', url: '/path', headers: { host: ['a.example'] }, absoluteForm: true }, '@request-target'))).toEqual({ code: 'ERR_INVALID_ARG_VALUE' });
  });
});

describe('trailer components (;tr)', () => {
  it.each(['"content-digest";tr', '"content-digest";tr;req', '"x-trailer";bs;tr', '"x";key="a";tr'])('Signature-Input covering %s is refused with component_unsupported', (id) => {
    expect(outcome(() => parseSignatureInput([`sig=("@method" ${id});created=1`]))).toEqual({ code: 'component_unsupported' });
  });

  it('a signer naming a trailer component gets a coded TypeError', () => {
    expect(outcome(() => componentValue({ method: 'GET', url: '/', headers: { x: ['1'] } }, '"x";tr'))).toEqual({ code: 'ERR_INVALID_ARG_VALUE' });
  });
});
