// The aes128gcm record layer beyond the RFC examples: rs edges, padding, record boundaries,
// truncation everywhere, reordering, and the profile's header rules. Both paths of lib/crypto.ts.
import {
  aes128gcmDecode,
  aes128gcmDecodeStream,
  aes128gcmEncode,
  aes128gcmEncodeStream,
  decryptBody,
  decryptBodyStream,
  encryptBody,
  encryptBodyStream,
  E2EE_RECORD_SIZE,
} from '../src/e2ee/aes128gcm';
import { aes128GcmOpen, aes128GcmSeal, hkdfExpand, hkdfExtract } from '../src/lib/crypto';
import { codeOf } from '../../../test/support/error-code';
import { CRYPTO_PATHS, asSubarray, chunked, collect, onCryptoPath, toHex, utf8 } from './support/e2ee';

const IKM = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
const SALT = Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i);
const data = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + 7) & 0xff);

/** Builds a body record by record with chosen plaintexts (delimiters included), to forge bad bodies. */
async function forge(rs: number, records: Uint8Array[], ikm = IKM, salt = SALT): Promise<Uint8Array> {
  const prk = await hkdfExtract(salt, ikm);
  const cek = await hkdfExpand(prk, utf8('Content-Encoding: aes128gcm\0'), 16);
  const base = await hkdfExpand(prk, utf8('Content-Encoding: nonce\0'), 12);
  const parts: Uint8Array[] = [salt, Uint8Array.of(rs >>> 24, (rs >>> 16) & 255, (rs >>> 8) & 255, rs & 255, 0)];
  for (let seq = 0; seq < records.length; seq++) {
    const nonce = base.slice();
    nonce[11] ^= seq;
    parts.push(await aes128GcmSeal(cek, nonce, records[seq]!));
  }
  return new Uint8Array(Buffer.concat(parts));
}
const rec = (body: Uint8Array, delimiter: number, padding = 0): Uint8Array => {
  const out = new Uint8Array(body.length + 1 + padding);
  out.set(body);
  out[body.length] = delimiter;
  return out;
};

async function decodeBoth(ikm: Uint8Array, body: Uint8Array, opts?: { minRs?: number; chunk?: number }): Promise<[string | undefined, string | undefined]> {
  const o = opts?.minRs ? { minRs: opts.minRs } : undefined;
  return [
    await codeOf(() => aes128gcmDecode(ikm, body, o)),
    await codeOf(() => collect(aes128gcmDecodeStream(ikm, chunked(body, opts?.chunk ?? 13), o))),
  ];
}

describe.each(CRYPTO_PATHS)('aes128gcm record layer on %s', (_path, web) => {
  onCryptoPath(web);

  it('AES-128-GCM seals and opens with an explicit nonce and refuses any change', async () => {
    const key = data(16);
    const nonce = data(12);
    const sealed = await aes128GcmSeal(key, nonce, utf8('hello'), utf8('aad'));
    expect(sealed.length).toBe(5 + 16);
    expect(await aes128GcmOpen(key, nonce, sealed, utf8('aad'))).toEqual(utf8('hello'));
    expect(await aes128GcmOpen(Buffer.from(key), asSubarray(nonce), Buffer.from(sealed), utf8('aad'))).toEqual(utf8('hello'));
    const bad = sealed.slice();
    bad[0] ^= 1;
    expect(await aes128GcmOpen(key, nonce, bad, utf8('aad'))).toBeUndefined();
    expect(await aes128GcmOpen(key, nonce, sealed, utf8('aaD'))).toBeUndefined();
    expect(await aes128GcmOpen(key, nonce, sealed.subarray(0, 15))).toBeUndefined();
    expect(await codeOf(() => aes128GcmSeal(data(32), nonce, utf8('x')))).toBe('TypeError');
    expect(await codeOf(() => aes128GcmSeal(key, data(16), utf8('x')))).toBe('TypeError');
  });

  it('outputs own their memory: no view into a shared Buffer pool', async () => {
    const prk = await hkdfExtract(SALT, IKM);
    const okm = await hkdfExpand(prk, utf8('x'), 16);
    const sealed = await aes128GcmSeal(okm, data(12), utf8('short'));
    const opened = (await aes128GcmOpen(okm, data(12), sealed))!;
    for (const out of [prk, okm, sealed, opened]) {
      expect(out.constructor).toBe(Uint8Array);
      expect([out.byteOffset, out.buffer.byteLength]).toEqual([0, out.length]);
    }
  });

  it.each([0, 1, 16366, 16367, 16368, 2 * 16367, 2 * 16367 + 1, 100_000])('round-trips %i octets at rs 16384, whole and streamed', async (n) => {
    const plain = data(n);
    const body = await encryptBody(IKM, plain, { salt: SALT });
    const per = E2EE_RECORD_SIZE - 17;
    const records = Math.max(1, Math.ceil(n / per));
    expect(body.length).toBe(21 + n + records * 17);
    expect(await decryptBody(IKM, body)).toEqual(plain);
    const streamed = await collect(encryptBodyStream(IKM, chunked(plain, [1, 5000, 20000]), { salt: SALT }));
    expect(toHex(streamed)).toBe(toHex(body));
    for (const size of [1000, 16384, 16405, 70000]) {
      expect(await collect(decryptBodyStream(IKM, chunked(body, size)))).toEqual(plain);
    }
  });

  it('a boundary-aligned final record (exactly rs octets, delimiter 2) decodes', async () => {
    const plain = data(2 * (1024 - 17));
    const body = await aes128gcmEncode(IKM, plain, { salt: SALT, rs: 1024 });
    expect(body.length).toBe(21 + 2 * 1024);
    expect(await decryptBody(IKM, body)).toEqual(plain);
    expect(await collect(decryptBodyStream(IKM, chunked(body, 1024)))).toEqual(plain);
  });

  it('rs edges: the codec takes 18, the profile 1024 to 65536', async () => {
    for (const rs of [18, 19, 25]) {
      const body = await aes128gcmEncode(IKM, data(40), { rs, salt: SALT });
      expect((await aes128gcmDecode(IKM, body)).plaintext).toEqual(data(40));
      expect(await collect(aes128gcmDecodeStream(IKM, chunked(body, 3)))).toEqual(data(40));
    }
    expect(await codeOf(() => aes128gcmEncode(IKM, data(1), { rs: 17 }))).toBe('TypeError');
    for (const rs of [1024, 65536]) {
      const body = await aes128gcmEncode(IKM, data(70000), { rs, salt: SALT });
      expect(await decryptBody(IKM, body)).toEqual(data(70000));
    }
    for (const rs of [18, 1023, 65537, 0xffffffff]) {
      const body = await aes128gcmEncode(IKM, data(3), { rs: Math.min(rs, 1 << 24), salt: SALT });
      body.set([rs >>> 24, (rs >>> 16) & 255, (rs >>> 8) & 255, rs & 255], 16);
      expect(await codeOf(() => decryptBody(IKM, body))).toBe('e2ee_encoding_invalid');
      expect(await codeOf(() => collect(decryptBodyStream(IKM, chunked(body, 7))))).toBe('e2ee_encoding_invalid');
    }
  });

  it('profile entry points refuse a keyid and a short header', async () => {
    const withKeyid = await aes128gcmEncode(IKM, data(5), { rs: 4096, keyid: utf8('k'), salt: SALT });
    expect(await codeOf(() => decryptBody(IKM, withKeyid))).toBe('e2ee_encoding_invalid');
    expect(await codeOf(() => collect(decryptBodyStream(IKM, chunked(withKeyid, 4))))).toBe('e2ee_encoding_invalid');
    const body = await encryptBody(IKM, data(5), { salt: SALT });
    for (const cut of [0, 1, 16, 20]) {
      expect(await codeOf(() => decryptBody(IKM, body.subarray(0, cut)))).toBe('e2ee_encoding_invalid');
      expect(await codeOf(() => collect(decryptBodyStream(IKM, chunked(body.subarray(0, cut), 3))))).toBe('e2ee_encoding_invalid');
    }
    // A keyid length that runs past the end of the body.
    const short = body.slice(0, 22);
    short[20] = 5;
    expect(await codeOf(() => aes128gcmDecode(IKM, short))).toBe('e2ee_encoding_invalid');
  });

  it('a header alone (no final record) fails to decrypt', async () => {
    const body = await encryptBody(IKM, data(5), { salt: SALT });
    expect(await codeOf(() => decryptBody(IKM, body.subarray(0, 21)))).toBe('e2ee_decrypt_failed');
    expect(await codeOf(() => collect(decryptBodyStream(IKM, chunked(body.subarray(0, 21), 4))))).toBe('e2ee_decrypt_failed');
  });

  it('truncation at every record boundary and inside records fails, streamed too, never ending quietly', async () => {
    const rs = 1024;
    const body = await aes128gcmEncode(IKM, data(3 * (rs - 17) + 100), { rs, salt: SALT });
    const cuts = new Set<number>();
    for (let r = 0; r <= 3; r++) {
      const start = 21 + r * rs;
      for (const d of [0, 1, 16, 17, 500, rs - 1]) if (start + d < body.length) cuts.add(start + d);
    }
    cuts.delete(21 + 0); // header only: covered above
    for (const cut of cuts) {
      const truncated = body.subarray(0, cut);
      expect([cut, ...(await decodeBoth(IKM, truncated, { minRs: 18, chunk: 300 }))]).toEqual([cut, 'e2ee_decrypt_failed', 'e2ee_decrypt_failed']);
    }
    // The stream yields the records it authenticated, then throws: a consumer cannot mistake it for the end.
    const seen: number[] = [];
    const code = await codeOf(async () => {
      for await (const chunk of decryptBodyStream(IKM, chunked(body.subarray(0, 21 + 2 * rs + 100), 100))) seen.push(chunk.length);
    });
    expect(code).toBe('e2ee_decrypt_failed');
    expect(seen).toEqual([rs - 17, rs - 17]);
    // Cut exactly after a full non-final record: its delimiter says more follows, so it is yielded
    // without waiting for the next one (a flushed record is not held back), and the end right after it fails.
    seen.length = 0;
    expect(await codeOf(async () => {
      for await (const chunk of decryptBodyStream(IKM, chunked(body.subarray(0, 21 + 2 * rs), 100))) seen.push(chunk.length);
    })).toBe('e2ee_decrypt_failed');
    expect(seen).toEqual([rs - 17, rs - 17]);
  });

  it('streams in bounded memory: at most one record read ahead of what was yielded, and the source is closed on error', async () => {
    const plain = data(40 * (E2EE_RECORD_SIZE - 17) + 123);
    const body = await encryptBody(IKM, plain, { salt: SALT });
    let pulled = 0;
    let closed = false;
    async function* source(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
      try {
        for (let o = 0; o < bytes.length; o += size) {
          const chunk = bytes.subarray(o, Math.min(bytes.length, o + size));
          pulled += chunk.length;
          yield chunk;
        }
      } finally {
        closed = true;
      }
    }
    let yielded = 0;
    let records = 0;
    for await (const chunk of decryptBodyStream(IKM, source(body, 5000))) {
      expect(chunk.length).toBeLessThanOrEqual(E2EE_RECORD_SIZE - 17);
      yielded += chunk.length;
      records++;
      // Header, the records yielded so far, the one whose end is being checked, and one chunk.
      expect(pulled).toBeLessThanOrEqual(21 + (records + 1) * E2EE_RECORD_SIZE + 5000);
    }
    expect(yielded).toBe(plain.length);
    expect(closed).toBe(true);

    // Encoding pulls at most one record of plaintext beyond what it has written.
    pulled = 0;
    let written = 0;
    for await (const part of encryptBodyStream(IKM, source(plain, 3000), { salt: SALT })) {
      written += part.length;
      expect(pulled).toBeLessThanOrEqual(written + 2 * E2EE_RECORD_SIZE + 3000);
    }
    expect(written).toBe(body.length);

    // A failure mid-stream closes the source instead of leaving it open.
    closed = false;
    const bad = body.slice();
    bad[21 + 3 * E2EE_RECORD_SIZE + 10] ^= 1;
    expect(await codeOf(() => collect(decryptBodyStream(IKM, source(bad, 7000))))).toBe('e2ee_decrypt_failed');
    expect(closed).toBe(true);
  });

  it('reordered, duplicated and extended records fail', async () => {
    const rs = 1024;
    const body = await aes128gcmEncode(IKM, data(2 * (rs - 17) + 10), { rs, salt: SALT });
    const header = body.subarray(0, 21);
    const r = [0, 1, 2].map((i) => body.subarray(21 + i * rs, Math.min(body.length, 21 + (i + 1) * rs)));
    const cat = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));
    for (const bad of [cat(header, r[1]!, r[0]!, r[2]!), cat(header, r[0]!, r[0]!, r[1]!, r[2]!), cat(header, r[0]!, r[1]!, r[2]!, r[2]!), cat(header, r[0]!, r[1]!, r[2]!, Uint8Array.of(0))]) {
      expect(await decodeBoth(IKM, bad, { minRs: 18 })).toEqual(['e2ee_decrypt_failed', 'e2ee_decrypt_failed']);
    }
    // Changing rs in the header moves every record boundary.
    const otherRs = body.slice();
    otherRs[18] = 0x05;
    expect(await decodeBoth(IKM, otherRs, { minRs: 18 })).toEqual(['e2ee_decrypt_failed', 'e2ee_decrypt_failed']);
  });

  it('delimiter and padding rules: all-zero records, wrong delimiters, 0x01 at the end, a record after the final one', async () => {
    const rs = 40; // 24 octets of record plaintext
    const full = (d: number, fill = 0x41) => rec(new Uint8Array(23).fill(fill), d);
    const cases: [string, Uint8Array[], string | undefined][] = [
      ['padding only after a delimiter (no data) is valid', [rec(new Uint8Array(0), 2, 23)], undefined],
      ['an empty final record after a full one is valid', [full(1), rec(new Uint8Array(0), 2)], undefined],
      ['a short final record with padding is valid', [full(1), rec(utf8('abc'), 2, 5)], undefined],
      ['all-zero final record', [new Uint8Array(24)], 'e2ee_decrypt_failed'],
      ['all-zero non-final record', [new Uint8Array(24), rec(utf8('a'), 2)], 'e2ee_decrypt_failed'],
      ['empty record plaintext', [new Uint8Array(0)], 'e2ee_decrypt_failed'],
      ['delimiter 3', [full(3), rec(utf8('a'), 2)], 'e2ee_decrypt_failed'],
      ['delimiter 0x01 on the final record', [full(1), rec(utf8('a'), 1)], 'e2ee_decrypt_failed'],
      ['delimiter 0x02 on a non-final record (a record after the final one)', [full(2), rec(utf8('a'), 2)], 'e2ee_decrypt_failed'],
      ['only non-final records (final record missing)', [full(1), full(1)], 'e2ee_decrypt_failed'],
    ];
    for (const [name, records, expected] of cases) {
      const body = await forge(rs, records);
      const both = await decodeBoth(IKM, body, { minRs: 18, chunk: 7 });
      expect([name, ...both]).toEqual([name, expected, expected]);
    }
  });

  it('every record failure has the same code and message (no oracle)', async () => {
    const messages = new Set<string>();
    const body = await encryptBody(IKM, data(50), { salt: SALT });
    const tag = body.slice();
    tag[tag.length - 1] ^= 1;
    for (const bad of [tag, body.subarray(0, body.length - 1), await forge(1024, [new Uint8Array(30)]), await forge(1024, [rec(data(3), 1)])]) {
      try {
        await decryptBody(IKM, bad);
      } catch (error) {
        messages.add(`${(error as { code: string }).code}: ${(error as Error).message}`);
      }
    }
    expect([...messages]).toEqual(['e2ee_decrypt_failed: the encrypted body could not be decrypted']);
  });

  it('fresh salts: two encryptions of one body differ', async () => {
    const a = await encryptBody(IKM, data(10));
    const b = await encryptBody(IKM, data(10));
    expect(toHex(a.subarray(0, 16))).not.toBe(toHex(b.subarray(0, 16)));
  });

  it('streamed encoding with padding that does not fit a full final record closes with an empty one', async () => {
    const plain = data(2 * (25 - 17));
    const out = await collect(aes128gcmEncodeStream(IKM, chunked(plain, 3), { rs: 25, salt: SALT, padding: 2 }));
    expect((await aes128gcmDecode(IKM, out)).plaintext).toEqual(plain);
  });

  it('flushes on a pause: what it holds goes out at once as a non-final record padded to rs, and decrypts', async () => {
    const events = ['data: one\n\n', 'data: two\n\n', 'data: three\n\n'].map(utf8);
    let produced = 0;
    async function* paced(): AsyncGenerator<Uint8Array> {
      for (const event of events) {
        produced++;
        yield event;
        await new Promise((resolve) => setTimeout(resolve, 40));
      }
    }
    const parts: Uint8Array[] = [];
    const producedAt: number[] = [];
    for await (const part of encryptBodyStream(IKM, paced(), { flushAfterMs: 5 })) {
      parts.push(part);
      producedAt.push(produced);
    }
    // Header, one full-size record per event, each out before the next event existed, then an empty final record.
    expect(parts.map((p) => p.length)).toEqual([21, E2EE_RECORD_SIZE, E2EE_RECORD_SIZE, E2EE_RECORD_SIZE, 17]);
    expect(producedAt.slice(1, 4)).toEqual([1, 2, 3]);
    const seen: string[] = [];
    for await (const chunk of decryptBodyStream(IKM, chunked(new Uint8Array(Buffer.concat(parts)), parts.map((p) => p.length)))) seen.push(new TextDecoder().decode(chunk));
    expect(seen).toEqual(['data: one\n\n', 'data: two\n\n', 'data: three\n\n']);
  });

  it('flushing pads nothing while the source keeps up: the output is the whole-body encoding', async () => {
    const plain = data(5 * (E2EE_RECORD_SIZE - 17) + 99);
    const streamed = await collect(encryptBodyStream(IKM, chunked(plain, [1, 5000, 20000, 7]), { salt: SALT, flushAfterMs: 0 }));
    expect(toHex(streamed)).toBe(toHex(await encryptBody(IKM, plain, { salt: SALT })));
  });

  it('bounds its arguments', async () => {
    expect(await codeOf(() => collect(aes128gcmEncodeStream(IKM, chunked(data(1), 1), { flushAfterMs: -1 })))).toBe('TypeError');
    expect(await codeOf(() => encryptBody(new Uint8Array(16), data(1)))).toBe('TypeError');
    expect(await codeOf(() => aes128gcmEncode(new Uint8Array(8), data(1)))).toBe('TypeError');
    expect(await codeOf(() => aes128gcmEncode(IKM, data(1), { salt: new Uint8Array(15) }))).toBe('TypeError');
    expect(await codeOf(() => aes128gcmEncode(IKM, data(1), { keyid: new Uint8Array(256) }))).toBe('TypeError');
    expect(await codeOf(() => aes128gcmDecode(IKM, 'x' as unknown as Uint8Array))).toBe('TypeError');
    expect(await codeOf(() => aes128gcmDecode(IKM, data(60), { minRs: 10 }))).toBe('TypeError');
    expect(await codeOf(() => collect(aes128gcmDecodeStream(IKM, (async function* () { yield 'x' as unknown as Uint8Array; })())))).toBe('TypeError');
  });
});
