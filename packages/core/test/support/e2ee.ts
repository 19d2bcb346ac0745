// Shared helpers of the e2ee vector suites: fixture loading, hex/base64url, the two crypto paths.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { useWebCrypto } from '../../src/lib/crypto';

/** A fixture under packages/core/test/fixtures/e2ee. */
export function fixture<T = any>(name: string): T {
  return JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'e2ee', name), 'utf8')) as T;
}

export const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
export const toHex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
export const b64u = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64url'));
export const toB64u = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');
export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** The two paths of lib/crypto.ts, for describe.each. */
export const CRYPTO_PATHS: [string, boolean][] = [
  ['node:crypto', false],
  ['WebCrypto', true],
];

/** Registers hooks that switch lib/crypto.ts to one path for the enclosing describe. */
export function onCryptoPath(web: boolean): void {
  beforeAll(() => useWebCrypto(web));
  afterAll(() => useWebCrypto(false));
}

/** The same bytes at a non-zero offset of a larger buffer (a subarray view). */
export function asSubarray(bytes: Uint8Array): Uint8Array {
  const backing = new Uint8Array(bytes.length + 7).fill(0xee);
  backing.set(bytes, 3);
  return backing.subarray(3, 3 + bytes.length);
}

/** Splits bytes into an async iterable of chunks of the given sizes (the rest in the last one). */
export async function* chunked(bytes: Uint8Array, sizes: number[] | number): AsyncGenerator<Uint8Array> {
  let offset = 0;
  let i = 0;
  while (offset < bytes.length) {
    const size = typeof sizes === 'number' ? sizes : (sizes[i++] ?? bytes.length);
    yield bytes.subarray(offset, Math.min(bytes.length, offset + Math.max(1, size)));
    offset += Math.max(1, size);
  }
}

/** Drains an async iterable into one array. */
export async function collect(source: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const part of source) parts.push(part);
  return new Uint8Array(Buffer.concat(parts));
}
