// Properties of RFC 8188 aes128gcm bodies (docs/protocol.md section 7.7): what the encoder writes
// the decoder reads back, for any plaintext, record size and padding, whole or streamed in any
// chunking; any change to an encoded body is refused with one code and no detail; arbitrary bytes
// never throw anything but a coded error.
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { aes128gcmDecode, aes128gcmDecodeStream, aes128gcmEncode, decryptBody, decryptBodyStream, encryptBody } from '../../packages/core/src/e2ee/aes128gcm';
import { outcomeAsync, runs } from './support';

const ikm = new Uint8Array(randomBytes(32));

async function* chunks(bytes: Uint8Array, sizes: number[]): AsyncGenerator<Uint8Array> {
  let at = 0;
  for (const size of sizes) {
    if (at >= bytes.length) break;
    yield bytes.subarray(at, at + size);
    at += size;
  }
  if (at < bytes.length) yield bytes.subarray(at);
}

async function collect(source: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const part of source) parts.push(part);
  return Buffer.concat(parts);
}

const CODES = ['e2ee_decrypt_failed', 'e2ee_encoding_invalid'];

describe('aes128gcm (RFC 8188)', () => {
  it('round-trips any plaintext, record size and padding, whole and streamed in any chunking', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 3000 }), fc.integer({ min: 18, max: 2100 }), fc.nat(40), fc.array(fc.integer({ min: 1, max: 700 }), { maxLength: 12 }), async (plaintext, rs, pad, sizes) => {
        const padding = plaintext.length + pad + 17 <= rs ? pad : 0; // padding goes into the final record only
        const body = await aes128gcmEncode(ikm, plaintext, { rs, padding });
        const { plaintext: whole } = await aes128gcmDecode(ikm, body);
        expect(Buffer.from(whole)).toEqual(Buffer.from(plaintext));
        expect(Buffer.from(await collect(aes128gcmDecodeStream(ikm, chunks(body, sizes))))).toEqual(Buffer.from(plaintext));
      }),
      runs(250),
    );
  });

  it('refuses every change to a profile body (flip, drop, duplicate, truncate, extend) with one code', async () => {
    const plaintext = new Uint8Array(randomBytes(2500));
    const body = await encryptBody(ikm, plaintext);
    await expect(decryptBody(ikm, body)).resolves.toEqual(plaintext);
    const change = fc.oneof(
      fc.tuple(fc.constant('flip' as const), fc.nat(body.length - 1), fc.integer({ min: 1, max: 255 })),
      fc.tuple(fc.constant('drop' as const), fc.nat(body.length - 1), fc.integer({ min: 1, max: 64 })),
      fc.tuple(fc.constant('duplicate' as const), fc.nat(body.length - 1), fc.integer({ min: 1, max: 64 })),
      fc.tuple(fc.constant('truncate' as const), fc.nat(body.length - 1), fc.constant(0)),
      fc.tuple(fc.constant('extend' as const), fc.constant(0), fc.integer({ min: 1, max: 64 })),
    );
    await fc.assert(
      fc.asyncProperty(change, async ([kind, at, n]) => {
        let changed: Uint8Array;
        if (kind === 'flip') changed = body.map((b, i) => (i === at ? b ^ n : b));
        else if (kind === 'drop') changed = Buffer.concat([body.subarray(0, at), body.subarray(at + n)]);
        else if (kind === 'duplicate') changed = Buffer.concat([body.subarray(0, at + n), body.subarray(at)]);
        else if (kind === 'truncate') changed = body.subarray(0, at);
        else changed = Buffer.concat([body, randomBytes(n)]);
        const whole = await outcomeAsync(() => decryptBody(ikm, changed));
        expect(whole).toHaveProperty('code');
        expect(CODES).toContain((whole as { code: string }).code);
        const streamed = await outcomeAsync(() => collect(decryptBodyStream(ikm, chunks(changed, [100, 1000, 5000]))));
        expect(streamed).toHaveProperty('code');
        expect(CODES).toContain((streamed as { code: string }).code);
      }),
      runs(400),
    );
  });

  it('fails only with its codes on arbitrary bytes and arbitrary headers', async () => {
    const header = fc.tuple(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.nat(0xffffffff), fc.nat(255)).map(([salt, rs, idlen]) => {
      const h = Buffer.alloc(21);
      h.set(salt);
      h.writeUInt32BE(rs, 16);
      h[20] = idlen;
      return h;
    });
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.tuple(header, fc.uint8Array({ maxLength: 300 })).map(([h, b]) => new Uint8Array(Buffer.concat([h, b])))), async (bytes) => {
        for (const result of [await outcomeAsync(() => decryptBody(ikm, bytes)), await outcomeAsync(() => collect(decryptBodyStream(ikm, chunks(bytes, [7, 50]))))]) {
          expect(result).toHaveProperty('code');
          expect(CODES).toContain((result as { code: string }).code);
        }
      }),
      runs(500),
    );
  });
});
