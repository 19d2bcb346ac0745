import { createContentDigest, verifyContentDigest } from '../src/content-digest';
import { useWebCrypto } from '../src/lib/crypto';
import { codeOf } from '../../../test/support/error-code';

const enc = new TextEncoder();
// RFC 9530 Appendix B: the representation {"hello": "world"} and the partial content "hello" (bytes 1-7).
const HELLO = enc.encode('{"hello": "world"}');
const HELLO_SHA256 = 'sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:';
const HELLO_SHA512 = 'sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:';
const PARTIAL = enc.encode('"hello"');
const PARTIAL_SHA256 = 'sha-256=:Wqdirjg/u3J688ejbUlApbjECpiUUtIwT8lY/z81Tno=:';


describe.each([
  ['node:crypto', false],
  ['WebCrypto', true],
])('RFC 9530 Content-Digest on %s', (_backend, web) => {
  beforeAll(() => useWebCrypto(web));
  afterAll(() => useWebCrypto(false));

  it('creates the values of the RFC examples', async () => {
    expect(await createContentDigest(HELLO)).toBe(HELLO_SHA256);
    expect(await createContentDigest(HELLO, 'sha-256')).toBe(HELLO_SHA256);
    expect(await createContentDigest(HELLO, 'sha-512')).toBe(HELLO_SHA512);
    expect(await createContentDigest(PARTIAL)).toBe(PARTIAL_SHA256);
    expect(await createContentDigest(new Uint8Array(0))).toBe('sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:');
  });

  it('accepts matching digests: one member, several members, several field lines', async () => {
    await expect(verifyContentDigest([HELLO_SHA256], HELLO)).resolves.toBeUndefined();
    await expect(verifyContentDigest([HELLO_SHA512], HELLO, { required: true })).resolves.toBeUndefined();
    await expect(verifyContentDigest([`${HELLO_SHA256}, ${HELLO_SHA512}`], HELLO)).resolves.toBeUndefined();
    await expect(verifyContentDigest([HELLO_SHA512, HELLO_SHA256], HELLO)).resolves.toBeUndefined();
    await expect(verifyContentDigest([PARTIAL_SHA256], PARTIAL)).resolves.toBeUndefined();
    // Deprecated and unknown members beside an Active one are ignored.
    await expect(verifyContentDigest([`md5=:XrY7u+Ae7tCTyyK7j1rNww==:, ${HELLO_SHA256}, foo=:AA==:`], HELLO)).resolves.toBeUndefined();
  });

  it('treats an absent field as missing only when required', async () => {
    await expect(verifyContentDigest(undefined, HELLO)).resolves.toBeUndefined();
    await expect(verifyContentDigest([], HELLO)).resolves.toBeUndefined();
    expect(await codeOf(() => verifyContentDigest(undefined, HELLO, { required: true }))).toBe('digest_missing');
    expect(await codeOf(() => verifyContentDigest([], HELLO, { required: true }))).toBe('digest_missing');
  });

  it('rejects a digest that does not match, even when another member matches', async () => {
    expect(await codeOf(() => verifyContentDigest([HELLO_SHA256], PARTIAL))).toBe('digest_mismatch');
    expect(await codeOf(() => verifyContentDigest([HELLO_SHA512], enc.encode('{"hello": "World"}')))).toBe('digest_mismatch');
    expect(await codeOf(() => verifyContentDigest([`${HELLO_SHA256}, ${PARTIAL_SHA256.replace('sha-256', 'sha-512')}`], HELLO))).toBe('digest_mismatch');
    expect(await codeOf(() => verifyContentDigest([PARTIAL_SHA256, HELLO_SHA512], HELLO))).toBe('digest_mismatch');
    expect(await codeOf(() => verifyContentDigest(['sha-256=::'], HELLO))).toBe('digest_mismatch');
    // A sha-512 value under the sha-256 key is the wrong length.
    expect(await codeOf(() => verifyContentDigest([HELLO_SHA512.replace('sha-512', 'sha-256')], HELLO))).toBe('digest_mismatch');
  });

  it.each([
    ['md5', 'md5=:XrY7u+Ae7tCTyyK7j1rNww==:'],
    ['sha', 'sha=:Kq5sNclPz7QV2+lfQIuc6R7oRu0=:'],
    ['unixsum', 'unixsum=:AAAA:'],
    ['unixcksum', 'unixcksum=:AAAA:'],
    ['adler', 'adler=:AAAA:'],
    ['crc32c', 'crc32c=:AAAA:'],
    ['an unknown algorithm', 'sha-3=:AAAA:'],
    ['several deprecated algorithms', 'md5=:AAAA:, sha=:AAAA:'],
    ['an empty dictionary', ''],
  ])('rejects %s alone as unsupported', async (_name, value) => {
    expect(await codeOf(() => verifyContentDigest([value], HELLO))).toBe('digest_unsupported');
  });

  it.each([
    ['a List', '(sha-256 sha-512)'],
    ['a string member', 'sha-256="X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="'],
    ['an RFC 3230 Digest value', 'SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE='],
    ['a token member', 'sha-256=abc'],
    ['an inner list member', 'sha-256=(:AA==:)'],
    ['a boolean member', 'sha-256'],
    ['broken base64', 'sha-256=:X48E9q*:'],
    ['a trailing comma', `${HELLO_SHA256},`],
    ['an unsupported member that is not bytes', `${HELLO_SHA256}, md5=1`],
  ])('rejects %s as malformed', async (_name, value) => {
    expect(await codeOf(() => verifyContentDigest([value], HELLO))).toBe('request_malformed');
  });

  it('bounds the field size', async () => {
    expect(await codeOf(() => verifyContentDigest([`${HELLO_SHA256}, x=:${'A'.repeat(4096)}:`], HELLO))).toBe('header_too_large');
    expect(await codeOf(() => verifyContentDigest([HELLO_SHA256], HELLO, { maxBytes: 20 }))).toBe('header_too_large');
    await expect(verifyContentDigest([`${HELLO_SHA256}, x=:${'A'.repeat(4000)}:`], HELLO)).resolves.toBeUndefined();
  });

  it('refuses invalid arguments', async () => {
    expect(await codeOf(() => createContentDigest(HELLO, 'md5' as 'sha-256'))).toBe('TypeError');
    expect(await codeOf(() => createContentDigest('body' as unknown as Uint8Array))).toBe('TypeError');
    expect(await codeOf(() => verifyContentDigest([HELLO_SHA256], 'body' as unknown as Uint8Array))).toBe('TypeError');
    expect(await codeOf(() => verifyContentDigest([HELLO_SHA256], HELLO, { maxBytes: 0 }))).toBe('TypeError');
  });
});
