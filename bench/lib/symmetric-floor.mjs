// The least a service can spend on one symmetric session request (docs/protocol.md section 7.11)
// with a body of `size` octets each way: only the primitive calls the protocol makes it perform, on
// bare node:crypto, with nothing else (no parsing, no signature base built, no allocation beyond
// the primitives' own). Per request:
//   request:  HMAC-SHA256 over a signature base, compared; SHA-256 of the body (Content-Digest);
//             SHA-256 of the nonce (the replay store's fingerprint); K_req (one HKDF-Expand = one
//             HMAC); RFC 8188: HKDF-Extract and two HKDF-Expand (three HMAC) and one AES-128-GCM
//             pass over the body;
//   response: K_rsp (one HMAC), a 16-octet salt, RFC 8188 (three HMAC, one AES-128-GCM pass),
//             SHA-256 of the body (Content-Digest), HMAC-SHA256 over the response's signature base.
// Eleven HMAC, three SHA-256, two AES-128-GCM passes and one random draw. The bench sets this
// against the time per request that the symmetric target leaves oidc2 over the bare framework.
import { createCipheriv, createHash, createHmac, randomBytes, randomFillSync, timingSafeEqual } from 'node:crypto';
import { median, round } from './stats.mjs';

export function symmetricFloorUs(size, { rounds = 9, batch = 2000 } = {}) {
  const key = randomBytes(32);
  const base = Buffer.alloc(420, 0x61);
  const mac = createHmac('sha256', key).update(base).digest();
  const body = randomBytes(size + 17);
  const nonce = Buffer.from('sig:' + randomBytes(16).toString('base64url'));
  const info = Buffer.alloc(120, 0x62);
  const cekInfo = Buffer.from('Content-Encoding: aes128gcm\0\x01');
  const nonceInfo = Buffer.from('Content-Encoding: nonce\0\x01');
  const salt = Buffer.alloc(16);
  const gcm = (ikm) => {
    const prk = createHmac('sha256', salt).update(ikm).digest();
    const cek = createHmac('sha256', prk).update(cekInfo).digest().subarray(0, 16);
    const iv = createHmac('sha256', prk).update(nonceInfo).digest().subarray(0, 12);
    const c = createCipheriv('aes-128-gcm', cek, iv);
    c.update(body);
    c.final();
    return c.getAuthTag();
  };
  const once = () => {
    if (!timingSafeEqual(createHmac('sha256', key).update(base).digest(), mac)) throw new Error('mac');
    createHash('sha256').update(body).digest();
    createHash('sha256').update(nonce).digest();
    gcm(createHmac('sha256', key).update(info).digest());
    randomFillSync(salt);
    gcm(createHmac('sha256', key).update(info).digest());
    createHash('sha256').update(body).digest();
    createHmac('sha256', key).update(base).digest();
  };
  for (let i = 0; i < batch; i++) once();
  const samples = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < batch; i++) once();
    samples.push(Number(process.hrtime.bigint() - t0) / 1000 / batch);
  }
  return round(median(samples), 2);
}
