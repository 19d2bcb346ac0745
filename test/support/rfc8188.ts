// RFC 8188 `aes128gcm` at the record level, on node:crypto directly (not on the core's codec), so
// attack tests can build bodies no honest sender makes: records out of order, repeated, cut, with
// any delimiter or padding, and headers with any rs or keyid.
import { createCipheriv, createDecipheriv, hkdfSync } from 'node:crypto';

const TAG = 16;
export const HEADER_LENGTH = 21;

/** The content-encryption key and base nonce of a body (RFC 8188 section 2.2, 2.3). */
export function recordKeys(ikm: Uint8Array, salt: Uint8Array): { cek: Buffer; nonce: Buffer } {
  const prk = (info: string, length: number) => Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from(info), length));
  return { cek: prk('Content-Encoding: aes128gcm\0', 16), nonce: prk('Content-Encoding: nonce\0', 12) };
}

function nonceFor(base: Buffer, seq: number): Buffer {
  const nonce = Buffer.from(base);
  const s = Buffer.alloc(12);
  s.writeUInt32BE(Math.floor(seq / 2 ** 32), 4);
  s.writeUInt32BE(seq >>> 0, 8);
  for (let i = 0; i < 12; i++) nonce[i]! ^= s[i]!;
  return nonce;
}

/** The header: salt || rs (uint32) || idlen || keyid. */
export function encodeHeader(salt: Uint8Array, rs: number, keyid: Uint8Array = new Uint8Array(0)): Buffer {
  const h = Buffer.alloc(HEADER_LENGTH + keyid.length);
  Buffer.from(salt).copy(h, 0);
  h.writeUInt32BE(rs >>> 0, 16);
  h[20] = keyid.length;
  Buffer.from(keyid).copy(h, HEADER_LENGTH);
  return h;
}

/** Seals one record whose plaintext is given whole (data, delimiter and padding included). */
export function sealRecord(ikm: Uint8Array, salt: Uint8Array, seq: number, plain: Uint8Array): Buffer {
  const { cek, nonce } = recordKeys(ikm, salt);
  const cipher = createCipheriv('aes-128-gcm', cek, nonceFor(nonce, seq));
  return Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
}

/** Opens one record; undefined when it does not authenticate. */
export function openRecord(ikm: Uint8Array, salt: Uint8Array, seq: number, record: Uint8Array): Buffer | undefined {
  if (record.length < TAG) return undefined;
  const { cek, nonce } = recordKeys(ikm, salt);
  const decipher = createDecipheriv('aes-128-gcm', cek, nonceFor(nonce, seq));
  decipher.setAuthTag(record.subarray(record.length - TAG));
  try {
    return Buffer.concat([decipher.update(record.subarray(0, record.length - TAG)), decipher.final()]);
  } catch {
    return undefined;
  }
}

/** `data || delimiter || padding zeros`. */
export function recordPlain(data: Uint8Array, delimiter: number, padding = 0): Buffer {
  return Buffer.concat([Buffer.from(data), Buffer.from([delimiter]), Buffer.alloc(padding)]);
}

/** An honest encoding split into its parts: every non-final record is exactly `rs` octets. */
export function encodeRecords(ikm: Uint8Array, plaintext: Uint8Array, rs: number, salt: Uint8Array): { header: Buffer; records: Buffer[] } {
  const per = rs - TAG - 1;
  const count = Math.max(1, Math.ceil(plaintext.length / per));
  const records: Buffer[] = [];
  for (let seq = 0; seq < count; seq++) {
    const final = seq === count - 1;
    records.push(sealRecord(ikm, salt, seq, recordPlain(plaintext.subarray(seq * per, (seq + 1) * per), final ? 2 : 1)));
  }
  return { header: encodeHeader(salt, rs), records };
}

/** Splits a body by the rs its header states. */
export function splitBody(body: Uint8Array): { header: Buffer; salt: Buffer; rs: number; records: Buffer[] } {
  const b = Buffer.from(body);
  const header = b.subarray(0, HEADER_LENGTH + b[20]!);
  const rs = b.readUInt32BE(16);
  const records: Buffer[] = [];
  for (let at = header.length; at < b.length; at += rs) records.push(b.subarray(at, Math.min(b.length, at + rs)));
  return { header, salt: b.subarray(0, 16), rs, records };
}

/** Whether a whole body decrypts under `ikm` (any rs, honest framing), independently of the core. */
export function opens(ikm: Uint8Array, body: Uint8Array): boolean {
  if (body.length < HEADER_LENGTH) return false;
  const { salt, records } = splitBody(body);
  if (records.length === 0) return false;
  return records.every((record, seq) => openRecord(ikm, salt, seq, record) !== undefined);
}
