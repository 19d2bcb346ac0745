// RFC 8188 `aes128gcm` content coding on the HKDF and AES-128-GCM of lib/crypto.ts.
//
// Two layers. The codec (`aes128gcmEncode`/`Decode` and their streamed forms) is RFC 8188 itself,
// keyid included, so the RFC's own examples run through it. The profile entry points
// (`encryptBody`/`decryptBody` and streamed forms) are what oidc2 messages use: idlen 0, senders
// write rs 16384, receivers accept 1024 <= rs <= 65536 (docs/e2ee-engineering.md).
//
// Errors: a header that cannot be used (short, rs out of range, a keyid where none is allowed) is
// `e2ee_encoding_invalid`; every record failure (AEAD, delimiter, missing or extra final record,
// truncation) is one `e2ee_decrypt_failed` with one fixed message, so a receiver is no oracle.
import { Oidc2Error } from '../errors.js';
//
// Speed: on Node every record goes through one synchronous node:crypto cipher whose key is imported
// once per body, and whole bodies are written into one preallocated output, so the coding costs little
// more than the AES-GCM it runs; elsewhere the same steps run on WebCrypto.
import { aes128GcmOpen, aes128GcmRecordCipher, aes128GcmSeal, hkdfExpand, hkdfExpandSync, hkdfExtract, hkdfExtractSync, outputBytes, randomBytes, type Aes128GcmRecordCipher } from '../lib/crypto.js';
import { argumentError } from '../lib/validate.js';

/** Octets of the RFC 8188 salt. */
export const AES128GCM_SALT_LENGTH = 16;
/** Octets of the header without keyid: salt (16) || rs (4) || idlen (1). */
export const AES128GCM_HEADER_LENGTH = 21;
/** Record size oidc2 senders use. */
export const E2EE_RECORD_SIZE = 16384;
/** Smallest record size an oidc2 receiver accepts. */
export const E2EE_MIN_RECORD_SIZE = 1024;
/** Largest record size an oidc2 receiver accepts. */
export const E2EE_MAX_RECORD_SIZE = 65536;

const TAG_LENGTH = 16;
/** RFC 8188 section 2: a record holds at least the tag and the delimiter octet. */
const CODEC_MIN_RS = TAG_LENGTH + 2;
/** The codec's own upper bound on rs, so a streamed decoder's memory stays bounded. */
const CODEC_MAX_RS = 1 << 24;
const DELIMITER = 0x01;
const FINAL_DELIMITER = 0x02;
const IKM_MIN = 16;
const IKM_MAX = 64;
const CEK_INFO = new TextEncoder().encode('Content-Encoding: aes128gcm\0');
const NONCE_INFO = new TextEncoder().encode('Content-Encoding: nonce\0');
const DECRYPT_FAILED = 'the encrypted body could not be decrypted';

/** Options of the RFC 8188 encoder. `salt` is injectable for tests only: senders never set it. */
export interface Aes128gcmEncodeOptions {
  /** 16 octets; fresh random when absent. */
  readonly salt?: Uint8Array;
  /** Record size; default 16384. */
  readonly rs?: number;
  /** RFC 8188 keyid (codec level only; oidc2 messages carry none). */
  readonly keyid?: Uint8Array;
  /** Zero octets of padding added to the final record (it must fit in that record). */
  readonly padding?: number;
}

/** Options of the RFC 8188 decoder. */
export interface Aes128gcmDecodeOptions {
  /** Accept a non-empty keyid (default true at codec level). */
  readonly allowKeyid?: boolean;
  /** Smallest accepted rs (default 18). */
  readonly minRs?: number;
  /** Largest accepted rs (default 65536). */
  readonly maxRs?: number;
}

/** The parsed RFC 8188 header. */
export interface Aes128gcmHeader {
  readonly salt: Uint8Array;
  readonly rs: number;
  readonly keyid: Uint8Array;
}

interface RecordKeys {
  readonly cek: Uint8Array;
  readonly nonce: Uint8Array;
  /** The synchronous cipher of `cek` on Node; undefined on the WebCrypto path. */
  readonly cipher: Aes128GcmRecordCipher | undefined;
}

const PROFILE_DECODE: Aes128gcmDecodeOptions = { allowKeyid: false, minRs: E2EE_MIN_RECORD_SIZE, maxRs: E2EE_MAX_RECORD_SIZE };

function decryptFailed(): Oidc2Error {
  return new Oidc2Error('e2ee_decrypt_failed', DECRYPT_FAILED);
}

function encodingInvalid(message: string): Oidc2Error {
  return new Oidc2Error('e2ee_encoding_invalid', message);
}

function assertIkm(ikm: unknown): asserts ikm is Uint8Array {
  if (!(ikm instanceof Uint8Array)) throw argumentError('ERR_INVALID_ARG_TYPE', 'ikm must be a Uint8Array');
  if (ikm.length < IKM_MIN || ikm.length > IKM_MAX) throw argumentError('ERR_INVALID_ARG_VALUE', `ikm must be ${IKM_MIN} to ${IKM_MAX} octets`);
}

function rsBounds(options: Aes128gcmDecodeOptions | undefined): [number, number] {
  const min = options?.minRs ?? CODEC_MIN_RS;
  const max = options?.maxRs ?? E2EE_MAX_RECORD_SIZE;
  for (const [name, v] of [['minRs', min], ['maxRs', max]] as const) {
    if (!Number.isSafeInteger(v) || v < CODEC_MIN_RS || v > CODEC_MAX_RS) {
      throw argumentError('ERR_INVALID_ARG_VALUE', `${name} must be an integer from ${CODEC_MIN_RS} to ${CODEC_MAX_RS}`);
    }
  }
  if (min > max) throw argumentError('ERR_INVALID_ARG_VALUE', 'minRs must not exceed maxRs');
  return [min, max];
}

/** Reads the header from the front of `bytes`; undefined when more bytes are needed. */
function parseHeader(bytes: Uint8Array, options: Aes128gcmDecodeOptions | undefined): { header: Aes128gcmHeader; length: number } | undefined {
  if (bytes.length < AES128GCM_HEADER_LENGTH) return undefined;
  const idlen = bytes[20]!;
  if (bytes.length < AES128GCM_HEADER_LENGTH + idlen) return undefined;
  const [min, max] = rsBounds(options);
  const rs = ((bytes[16]! << 24) | (bytes[17]! << 16) | (bytes[18]! << 8) | bytes[19]!) >>> 0;
  if (rs < min || rs > max) throw encodingInvalid(`record size must be from ${min} to ${max}`);
  if (idlen !== 0 && options?.allowKeyid === false) throw encodingInvalid('the body must not carry a keyid');
  return {
    header: { salt: bytes.slice(0, 16), rs, keyid: bytes.slice(21, 21 + idlen) },
    length: AES128GCM_HEADER_LENGTH + idlen,
  };
}

/** The record keys: at once on node:crypto, else a promise of them from WebCrypto. */
function recordKeys(ikm: Uint8Array, salt: Uint8Array): RecordKeys | Promise<RecordKeys> {
  const prkSync = hkdfExtractSync(salt, ikm);
  if (prkSync) {
    const cek = hkdfExpandSync(prkSync, CEK_INFO, 16)!;
    return { cek, nonce: hkdfExpandSync(prkSync, NONCE_INFO, 12)!, cipher: aes128GcmRecordCipher(cek) };
  }
  return recordKeysWeb(ikm, salt);
}

async function recordKeysWeb(ikm: Uint8Array, salt: Uint8Array): Promise<RecordKeys> {
  const prk = await hkdfExtract(salt, ikm);
  return { cek: await hkdfExpand(prk, CEK_INFO, 16), nonce: await hkdfExpand(prk, NONCE_INFO, 12), cipher: undefined };
}

/** RFC 8188 section 2.3: the record nonce is the base nonce XOR the 96-bit big-endian SEQ. */
function recordNonce(base: Uint8Array, seq: number): Uint8Array {
  // SEQ 0 leaves the base as it is (the ciphers only read it).
  if (seq === 0) return base;
  const nonce = base.slice();
  const hi = Math.floor(seq / 0x100000000);
  const lo = seq >>> 0;
  nonce[4]! ^= hi >>> 24;
  nonce[5]! ^= (hi >>> 16) & 0xff;
  nonce[6]! ^= (hi >>> 8) & 0xff;
  nonce[7]! ^= hi & 0xff;
  nonce[8]! ^= lo >>> 24;
  nonce[9]! ^= (lo >>> 16) & 0xff;
  nonce[10]! ^= (lo >>> 8) & 0xff;
  nonce[11]! ^= lo & 0xff;
  return nonce;
}

/**
 * Decrypts one record and strips its padding. `last` says whether the record must be the final one
 * (it ended the body); the delimiter must agree. Any failure is `e2ee_decrypt_failed`.
 */
function openRecord(keys: RecordKeys, seq: number, record: Uint8Array, last: boolean): OpenedRecord | Promise<OpenedRecord> {
  if (record.length < TAG_LENGTH + 1) throw decryptFailed();
  const nonce = recordNonce(keys.nonce, seq);
  // On Node the record opens synchronously: no promise per record.
  if (keys.cipher) return opened(keys.cipher.open(nonce, record), last);
  return aes128GcmOpen(keys.cek, nonce, record).then((plain) => opened(plain, last));
}

interface OpenedRecord {
  readonly data: Uint8Array;
  readonly final: boolean;
}

function opened(plain: Uint8Array | undefined, last: boolean): OpenedRecord {
  if (!plain) throw decryptFailed();
  const { end, final } = unpad(plain, 0, plain.length, last);
  return { data: plain.subarray(0, end), final };
}

/**
 * Finds the delimiter of a record's plaintext `plain[start, end)` and returns where its data ends
 * and whether it was the final record. An all-zero record has no delimiter (padding abuse); a
 * non-final delimiter is fine only where the body goes on. Any failure is `e2ee_decrypt_failed`.
 */
function unpad(plain: Uint8Array, start: number, end: number, last: boolean): { end: number; final: boolean } {
  let at = end - 1;
  while (at >= start && plain[at] === 0) at--;
  if (at < start) throw decryptFailed();
  const delimiter = plain[at];
  if (delimiter === FINAL_DELIMITER) return { end: at, final: true };
  if (delimiter === DELIMITER && !last) return { end: at, final: false };
  throw decryptFailed();
}

function header(salt: Uint8Array, rs: number, keyid: Uint8Array): Uint8Array {
  const out = new Uint8Array(AES128GCM_HEADER_LENGTH + keyid.length);
  out.set(salt, 0);
  out[16] = rs >>> 24;
  out[17] = (rs >>> 16) & 0xff;
  out[18] = (rs >>> 8) & 0xff;
  out[19] = rs & 0xff;
  out[20] = keyid.length;
  out.set(keyid, AES128GCM_HEADER_LENGTH);
  return out;
}

interface EncodeParams {
  readonly salt: Uint8Array;
  readonly rs: number;
  readonly keyid: Uint8Array;
  readonly padding: number;
}

function encodeParams(options: Aes128gcmEncodeOptions | undefined): EncodeParams {
  const salt = options?.salt ?? randomBytes(AES128GCM_SALT_LENGTH);
  if (!(salt instanceof Uint8Array) || salt.length !== AES128GCM_SALT_LENGTH) throw argumentError('ERR_INVALID_ARG_VALUE', 'salt must be 16 octets');
  const rs = options?.rs ?? E2EE_RECORD_SIZE;
  if (!Number.isSafeInteger(rs) || rs < CODEC_MIN_RS || rs > CODEC_MAX_RS) throw argumentError('ERR_INVALID_ARG_VALUE', `rs must be an integer from ${CODEC_MIN_RS} to ${CODEC_MAX_RS}`);
  const keyid = options?.keyid ?? new Uint8Array(0);
  if (!(keyid instanceof Uint8Array) || keyid.length > 255) throw argumentError('ERR_INVALID_ARG_VALUE', 'keyid must be at most 255 octets');
  const padding = options?.padding ?? 0;
  if (!Number.isSafeInteger(padding) || padding < 0 || padding > rs - CODEC_MIN_RS + 1) {
    throw argumentError('ERR_INVALID_ARG_VALUE', 'padding must fit in one record');
  }
  return { salt: salt.slice(), rs, keyid: keyid.slice(), padding };
}

const DELIMITER_ONLY = Uint8Array.of(DELIMITER);
const FINAL_DELIMITER_ONLY = Uint8Array.of(FINAL_DELIMITER);

/** The octets after a record's data: its delimiter, then `padding` zeros. */
function trailer(final: boolean, padding: number): Uint8Array {
  if (padding === 0) return final ? FINAL_DELIMITER_ONLY : DELIMITER_ONLY;
  const out = new Uint8Array(1 + padding);
  out[0] = final ? FINAL_DELIMITER : DELIMITER;
  return out;
}

/**
 * Encrypts one record, `data || delimiter || padding` under SEQ `seq` (`data` given whole or in
 * parts), into `out` at `offset`; returns the offset after it. On Node the parts go straight into
 * the cipher; on WebCrypto they are joined first.
 */
function sealRecordInto(keys: RecordKeys, seq: number, data: Uint8Array | readonly Uint8Array[], final: boolean, padding: number, out: Uint8Array, offset: number): number | Promise<number> {
  const parts = data instanceof Uint8Array ? [data] : data;
  const nonce = recordNonce(keys.nonce, seq);
  // On Node the record is sealed synchronously: no promise per record.
  if (keys.cipher) return keys.cipher.sealInto(nonce, [...parts, trailer(final, padding)], out, offset);
  return sealRecordWeb(keys, nonce, parts, final, padding, out, offset);
}

async function sealRecordWeb(keys: RecordKeys, nonce: Uint8Array, parts: readonly Uint8Array[], final: boolean, padding: number, out: Uint8Array, offset: number): Promise<number> {
  const length = parts.reduce((n, part) => n + part.length, 0);
  const plain = new Uint8Array(length + 1 + padding);
  let at = 0;
  for (const part of parts) {
    plain.set(part, at);
    at += part.length;
  }
  plain[length] = final ? FINAL_DELIMITER : DELIMITER;
  const sealed = await aes128GcmSeal(keys.cek, nonce, plain);
  out.set(sealed, offset);
  return offset + sealed.length;
}

/** One record of its own: see {@link sealRecordInto}. */
function sealRecord(keys: RecordKeys, seq: number, data: Uint8Array | readonly Uint8Array[], final: boolean, padding: number): Uint8Array | Promise<Uint8Array> {
  const length = data instanceof Uint8Array ? data.length : data.reduce((n, part) => n + part.length, 0);
  // Every octet is written: data, delimiter and padding as ciphertext, then the tag.
  const out = outputBytes(length + 1 + padding + TAG_LENGTH);
  const end = sealRecordInto(keys, seq, data, final, padding, out, 0);
  return typeof end === 'number' ? out : end.then(() => out);
}

/**
 * RFC 8188 encoding of a whole body. Records carry `rs - 17` octets of data each; the last one
 * carries the rest (possibly nothing) with delimiter 0x02, so a body that fills its records exactly
 * ends with a full-size final record.
 */
export async function aes128gcmEncode(ikm: Uint8Array, plaintext: Uint8Array, options?: Aes128gcmEncodeOptions): Promise<Uint8Array> {
  assertIkm(ikm);
  if (!(plaintext instanceof Uint8Array)) throw argumentError('ERR_INVALID_ARG_TYPE', 'plaintext must be a Uint8Array');
  const p = encodeParams(options);
  const pending = recordKeys(ikm, p.salt);
  const keys = pending instanceof Promise ? await pending : pending;
  const per = p.rs - TAG_LENGTH - 1;
  const lastData = plaintext.length - Math.max(0, Math.ceil(plaintext.length / per) - 1) * per;
  if (lastData + 1 + p.padding + TAG_LENGTH > p.rs) throw argumentError('ERR_INVALID_ARG_VALUE', 'padding must fit in the final record');
  const records = Math.max(1, Math.ceil(plaintext.length / per));
  // The whole body is written into one output: header, then each record in place.
  const head = header(p.salt, p.rs, p.keyid);
  const out = outputBytes(head.length + plaintext.length + records * (1 + TAG_LENGTH) + p.padding);
  out.set(head, 0);
  let offset = head.length;
  for (let seq = 0; seq < records; seq++) {
    const final = seq === records - 1;
    const end = sealRecordInto(keys, seq, plaintext.subarray(seq * per, Math.min(plaintext.length, (seq + 1) * per)), final, final ? p.padding : 0, out, offset);
    offset = typeof end === 'number' ? end : await end;
  }
  // Every octet was written (the length above is exactly the records'); kept true if that changes.
  if (offset !== out.length) out.fill(0, offset);
  return out;
}

/** RFC 8188 decoding of a whole body: the plaintext and the header it carried. */
export async function aes128gcmDecode(ikm: Uint8Array, body: Uint8Array, options?: Aes128gcmDecodeOptions): Promise<{ plaintext: Uint8Array; header: Aes128gcmHeader }> {
  assertIkm(ikm);
  if (!(body instanceof Uint8Array)) throw argumentError('ERR_INVALID_ARG_TYPE', 'body must be a Uint8Array');
  rsBounds(options);
  const parsed = parseHeader(body, options);
  if (!parsed) throw encodingInvalid('the encrypted body is shorter than its header');
  const { header: h, length } = parsed;
  const pending = recordKeys(ikm, h.salt);
  const keys = pending instanceof Promise ? await pending : pending;
  const records = body.subarray(length);
  // No record at all: the final record is missing.
  if (records.length === 0) throw decryptFailed();
  const count = Math.ceil(records.length / h.rs);
  // Only the last record can be short; one without room for a tag and a delimiter is a cut body.
  if (records.length - (count - 1) * h.rs < TAG_LENGTH + 1) throw decryptFailed();
  // One record (most bodies): its plaintext is the cipher's output, with no second copy.
  if (count === 1 && keys.cipher) {
    const plain = keys.cipher.open(keys.nonce, records);
    if (!plain) throw decryptFailed();
    const { end, final } = unpad(plain, 0, plain.length, true);
    if (!final) throw decryptFailed();
    plain.fill(0, end);
    return { plaintext: plain.subarray(0, end), header: h };
  }
  // Each record's plaintext (data, delimiter, padding) is decrypted straight into the output, after
  // the data of the records before it; its delimiter and padding are overwritten by the next one.
  const out = outputBytes(Math.max(0, records.length - count * TAG_LENGTH));
  let written = 0;
  for (let seq = 0; seq < count; seq++) {
    const last = seq === count - 1;
    const record = records.subarray(seq * h.rs, Math.min(records.length, (seq + 1) * h.rs));
    let final: boolean;
    if (keys.cipher) {
      const length = keys.cipher.openInto(recordNonce(keys.nonce, seq), record, out, written);
      if (length < 0) throw decryptFailed();
      ({ end: written, final } = unpad(out, written, written + length, last));
    } else {
      const web = await openRecord(keys, seq, record, last);
      out.set(web.data, written);
      written += web.data.length;
      final = web.final;
    }
    // A final record with more records after it.
    if (final && !last) throw decryptFailed();
  }
  // Past the data lie the last delimiter and padding, and octets no record reached: zeroed.
  out.fill(0, written);
  return { plaintext: out.subarray(0, written), header: h };
}

/** Pulls exact byte counts out of an async iterable of chunks, holding at most one request plus one chunk. */
class ChunkReader {
  readonly #iterator: AsyncIterator<Uint8Array>;
  #pending: Uint8Array = new Uint8Array(0);
  #done = false;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.#iterator = source[Symbol.asyncIterator]();
  }

  /**
   * Up to `n` octets; fewer only at the end of the source. A view into the source's chunk when the
   * octets lie within one (valid until the next read: the decoder is done with a record before it
   * reads on), else a copy.
   */
  async read(n: number): Promise<Uint8Array> {
    if (n === 0) return new Uint8Array(0);
    while (this.#pending.length === 0 && !this.#done) await this.#pull();
    if (this.#pending.length >= n) {
      const view = this.#pending.subarray(0, n);
      this.#pending = this.#pending.subarray(n);
      return view;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      if (this.#pending.length === 0) {
        if (this.#done) break;
        await this.#pull();
        continue;
      }
      const take = Math.min(n - filled, this.#pending.length);
      out.set(this.#pending.subarray(0, take), filled);
      this.#pending = this.#pending.subarray(take);
      filled += take;
    }
    return filled === n ? out : out.subarray(0, filled);
  }

  async #pull(): Promise<void> {
    const next = await this.#iterator.next();
    if (next.done) this.#done = true;
    else if (!(next.value instanceof Uint8Array)) throw argumentError('ERR_INVALID_ARG_TYPE', 'body chunks must be Uint8Arrays');
    else this.#pending = next.value;
  }

  /**
   * The whole `size`-octet pieces already held (as many as there are, at least one), as one view
   * into the source's chunk; undefined when fewer than `size` octets are held. Never waits.
   */
  takeWhole(size: number): Uint8Array | undefined {
    const length = Math.floor(this.#pending.length / size) * size;
    if (length === 0) return undefined;
    const view = this.#pending.subarray(0, length);
    this.#pending = this.#pending.subarray(length);
    return view;
  }

  /** True when the source has no more octets. */
  async atEnd(): Promise<boolean> {
    while (this.#pending.length === 0 && !this.#done) await this.#pull();
    return this.#pending.length === 0;
  }

  async cancel(): Promise<void> {
    this.#done = true;
    this.#pending = new Uint8Array(0);
    await this.#iterator.return?.();
  }
}

/**
 * RFC 8188 decoding of a streamed body, one record at a time: yields each record's plaintext as soon
 * as it is authenticated, and throws (never ends quietly) when the body ends before its final record,
 * goes on after it, or any record fails. A consumer must not treat the body as complete before the
 * iteration ends without an error.
 */
export async function* aes128gcmDecodeStream(ikm: Uint8Array, source: AsyncIterable<Uint8Array>, options?: Aes128gcmDecodeOptions): AsyncGenerator<Uint8Array, void, undefined> {
  assertIkm(ikm);
  rsBounds(options);
  const reader = new ChunkReader(source);
  try {
    const fixed = await reader.read(AES128GCM_HEADER_LENGTH);
    if (fixed.length < AES128GCM_HEADER_LENGTH) throw encodingInvalid('the encrypted body is shorter than its header');
    // Copied before the next read: `fixed` may be a view into the source's chunk.
    const whole = new Uint8Array(AES128GCM_HEADER_LENGTH + fixed[20]!);
    whole.set(fixed);
    const keyid = await reader.read(fixed[20]!);
    whole.set(keyid, AES128GCM_HEADER_LENGTH);
    const parsed = parseHeader(whole.subarray(0, AES128GCM_HEADER_LENGTH + keyid.length), options);
    if (!parsed) throw encodingInvalid('the encrypted body is shorter than its header');
    const h = parsed.header;
    const keys = await recordKeys(ikm, h.salt);
    for (let seq = 0; ; seq++) {
      // On Node, the full records already held (a 64 KiB chunk holds three or four) open straight
      // from the source's chunk, without the copy a read makes; a full record is never the short
      // last one, so the rules are those below.
      const run = keys.cipher ? reader.takeWhole(h.rs) : undefined;
      if (run) {
        for (let at = 0; at < run.length; at += h.rs, seq++) {
          const { data, final } = opened(keys.cipher!.open(recordNonce(keys.nonce, seq), run.subarray(at, at + h.rs)), false);
          // A final record must be the end: nothing after it, held or still to come.
          if (final && (at + h.rs < run.length || !(await reader.atEnd()))) throw decryptFailed();
          if (data.length) yield data;
          if (final) return;
        }
        seq--;
        continue;
      }
      const record = await reader.read(h.rs);
      // Ended at a record boundary before the final record (or with no record at all).
      if (record.length === 0) throw decryptFailed();
      // A short record ends the body. A full one goes out as soon as it opens when its delimiter says
      // more follows (a flushed record must not wait for the next one), so that an end right after
      // it fails at the next read; a full final record must be the end.
      const result = openRecord(keys, seq, record, record.length < h.rs);
      const { data, final } = 'data' in result ? result : await result;
      if (final && !(await reader.atEnd())) throw decryptFailed();
      if (data.length) yield data;
      if (final) return;
    }
  } finally {
    await reader.cancel();
  }
}

/** Options of the streamed RFC 8188 encoder. */
export interface Aes128gcmEncodeStreamOptions extends Aes128gcmEncodeOptions {
  /**
   * Flushes on a pause of the source: when no chunk has come for this many milliseconds, the data
   * held for the next record goes out at once as a non-final record padded to `rs` (RFC 8188 section
   * 2: non-final records are exactly `rs` octets, padding is zeros after the delimiter), so a slow
   * producer's bytes are never held back for long. Default: never; records go out full, and the
   * output is the same as {@link aes128gcmEncode} of the whole body.
   */
  readonly flushAfterMs?: number;
}

/** The next result of `next`, or undefined when it has not come within `ms`. */
function within<T>(next: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms, undefined);
    next.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/**
 * RFC 8188 encoding of a streamed body: the header, then one record per `rs - 17` octets of input,
 * each sent as soon as it is full (and, with `flushAfterMs`, padded early when the source pauses);
 * the records one source chunk completes are yielded together, as one array. Holds at most one
 * record of plaintext beyond the chunk being read.
 */
export async function* aes128gcmEncodeStream(ikm: Uint8Array, source: AsyncIterable<Uint8Array>, options?: Aes128gcmEncodeStreamOptions): AsyncGenerator<Uint8Array, void, undefined> {
  assertIkm(ikm);
  const p = encodeParams(options);
  const flushAfter = options?.flushAfterMs;
  if (flushAfter !== undefined && (!Number.isSafeInteger(flushAfter) || flushAfter < 0)) throw argumentError('ERR_INVALID_ARG_VALUE', 'flushAfterMs must be a non-negative integer');
  const keys = await recordKeys(ikm, p.salt);
  const per = p.rs - TAG_LENGTH - 1;
  const iterator = source[Symbol.asyncIterator]();
  // The plaintext of the next record: up to `per` octets beyond a full record are held only until
  // it is known whether more follows, so that a body filling its records exactly ends with a full final record.
  const held: Uint8Array[] = [];
  let size = 0;
  // The first `n` octets held, as views (the record is encrypted from them directly).
  const take = (n: number): Uint8Array[] => {
    const parts: Uint8Array[] = [];
    for (let taken = 0; taken < n; ) {
      const first = held[0]!;
      const part = Math.min(n - taken, first.length);
      parts.push(first.subarray(0, part));
      taken += part;
      if (part === first.length) held.shift();
      else held[0] = first.subarray(part);
    }
    size -= n;
    return parts;
  };
  let pending: Promise<IteratorResult<Uint8Array>> | undefined;
  let seq = 0;
  try {
    yield header(p.salt, p.rs, p.keyid);
    for (;;) {
      pending ??= iterator.next();
      const next = size > 0 && flushAfter !== undefined ? await within(pending, flushAfter) : await pending;
      if (next === undefined) {
        // The source paused: what is held goes out now, padded to a whole record.
        const padding = per - size;
        yield await sealRecord(keys, seq++, take(size), false, padding);
        continue;
      }
      pending = undefined;
      if (next.done) break;
      if (!(next.value instanceof Uint8Array)) throw argumentError('ERR_INVALID_ARG_TYPE', 'body chunks must be Uint8Arrays');
      if (next.value.length === 0) continue;
      held.push(next.value);
      size += next.value.length;
      if (size > per) {
        // The records this chunk completed go out at once, sealed into one output.
        const count = Math.floor((size - 1) / per);
        // Every octet is written: `count` full records.
        const out = outputBytes(count * p.rs);
        for (let i = 0, offset = 0; i < count; i++) {
          const end = sealRecordInto(keys, seq++, take(per), false, 0, out, offset);
          offset = typeof end === 'number' ? end : await end;
        }
        yield out;
      }
    }
    const fits = size + 1 + p.padding + TAG_LENGTH <= p.rs;
    const data = take(size);
    if (!fits) {
      // The padding does not fit beside a full final record: close with an empty one.
      yield await sealRecord(keys, seq, data, false, 0);
      yield await sealRecord(keys, seq + 1, new Uint8Array(0), true, p.padding);
      return;
    }
    yield await sealRecord(keys, seq, data, true, p.padding);
  } finally {
    // A read still under way (stopped while flushing) cannot be awaited: the source ends it after it settles.
    if (pending) void pending.then(() => iterator.return?.(), () => undefined).catch(() => undefined);
    else await iterator.return?.();
  }
}

function assertProfileIkm(ikm: unknown): asserts ikm is Uint8Array {
  if (!(ikm instanceof Uint8Array) || ikm.length !== 32) throw argumentError('ERR_INVALID_ARG_VALUE', 'a message key must be 32 octets');
}

/** Test-only inputs of the profile encoder. */
export interface EncryptBodyOptions {
  /** Fixes the salt (tests and the worked example only). */
  readonly salt?: Uint8Array;
}

/** Encrypts a whole oidc2 message body: fresh salt, rs 16384, no keyid. */
export async function encryptBody(ikm: Uint8Array, plaintext: Uint8Array, options?: EncryptBodyOptions): Promise<Uint8Array> {
  assertProfileIkm(ikm);
  return aes128gcmEncode(ikm, plaintext, { salt: options?.salt, rs: E2EE_RECORD_SIZE });
}

/** Decrypts a whole oidc2 message body: no keyid, 1024 <= rs <= 65536. */
export async function decryptBody(ikm: Uint8Array, body: Uint8Array): Promise<Uint8Array> {
  assertProfileIkm(ikm);
  return (await aes128gcmDecode(ikm, body, PROFILE_DECODE)).plaintext;
}

/** Options of {@link encryptBodyStream}. */
export interface EncryptBodyStreamOptions extends EncryptBodyOptions {
  /** Sends what is held as a padded record when the source pauses this long; see {@link Aes128gcmEncodeStreamOptions.flushAfterMs}. Default: never. */
  readonly flushAfterMs?: number;
}

/** Encrypts a streamed oidc2 message body record by record. */
export function encryptBodyStream(ikm: Uint8Array, source: AsyncIterable<Uint8Array>, options?: EncryptBodyStreamOptions): AsyncGenerator<Uint8Array, void, undefined> {
  assertProfileIkm(ikm);
  return aes128gcmEncodeStream(ikm, source, { salt: options?.salt, rs: E2EE_RECORD_SIZE, ...(options?.flushAfterMs !== undefined ? { flushAfterMs: options.flushAfterMs } : {}) });
}

/** Decrypts a streamed oidc2 message body record by record; see {@link aes128gcmDecodeStream}. */
export function decryptBodyStream(ikm: Uint8Array, source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array, void, undefined> {
  assertProfileIkm(ikm);
  return aes128gcmDecodeStream(ikm, source, PROFILE_DECODE);
}
