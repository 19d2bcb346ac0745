// End-to-end encryption, in one process (pinned by run.mjs), every row a ratio to a baseline
// measured interleaved with it in the same rounds:
//  - body: encrypting and decrypting 1 MiB with the core's RFC 8188 coding (buffered and streamed)
//    against raw node:crypto AES-128-GCM doing the same GCM operations (records of 16384 octets);
//  - exchange: a handshake and a rekey per suite, service side and caller side, in raw signature
//    verifications (ES256 and Ed25519, node:crypto, imported keys);
//  - session: a session request through the core's exchange (admit + respond, the body echoed)
//    against a plaintext mutually authenticated request with the same plaintext body.
// Prints one JSON line.
//
// Usage: node bench/lib/e2ee-bench.mjs '{"rounds":9,"bodyBatch":20,"exchangeBatch":100,"sessionBatch":200,"sizes":[1024,65536]}'
import { createCipheriv, createDecipheriv, createPrivateKey, createPublicKey, randomBytes, sign as rawSign, verify as rawVerify } from 'node:crypto';
import { loadAdapter, loadPackage } from './env.mjs';
import { AUDIENCE, newKey } from './credentials.mjs';
import { jsonBody, sessionParties } from './e2ee-caller.mjs';
import { median, round, usPerOp, usPerOpSync } from './stats.mjs';

const P = { rounds: 9, bodyBatch: 20, bodyBytes: 1 << 20, exchangeBatch: 100, sessionBatch: 200, sizes: [1024, 65536], warmup: 1, ...JSON.parse(process.argv[2] ?? '{}') };
const core = await loadPackage('core');
const adapter = await loadAdapter();
const RS = adapter.E2EE_RECORD_SIZE;
const TAG = 16;

/** Per-round ratios and medians of interleaved measurements: `m.add(name, us)` each round. */
function samples() {
  const s = {};
  return {
    add: (name, value) => (s[name] ??= []).push(value),
    median: (name) => round(median(s[name] ?? []), 3),
    all: s,
  };
}

// ---------------------------------------------------------------------------------------------
// 1. Body throughput: 1 MiB, record size 16384 (16367 octets of data + delimiter + tag per record).

/** Raw AES-128-GCM with the record layout of the coding: one cipher per record, one output body. */
function rawEncrypt(key, nonce, plaintext) {
  const per = RS - TAG - 1;
  const records = Math.max(1, Math.ceil(plaintext.length / per));
  const parts = [];
  const delimiter = Buffer.from([1]);
  const last = Buffer.from([2]);
  const iv = Buffer.from(nonce);
  for (let seq = 0; seq < records; seq++) {
    iv.writeUInt32BE(seq, 8); // same nonce arithmetic cost class as the coding's (XOR of SEQ)
    const cipher = createCipheriv('aes-128-gcm', key, iv);
    parts.push(cipher.update(plaintext.subarray(seq * per, Math.min(plaintext.length, (seq + 1) * per))));
    parts.push(cipher.update(seq === records - 1 ? last : delimiter));
    cipher.final();
    parts.push(cipher.getAuthTag());
  }
  return Buffer.concat(parts);
}

function rawDecrypt(key, nonce, body) {
  const parts = [];
  const iv = Buffer.from(nonce);
  for (let seq = 0, at = 0; at < body.length; seq++, at += RS) {
    const record = body.subarray(at, Math.min(body.length, at + RS));
    iv.writeUInt32BE(seq, 8);
    const decipher = createDecipheriv('aes-128-gcm', key, iv);
    decipher.setAuthTag(record.subarray(record.length - TAG));
    const plain = decipher.update(record.subarray(0, record.length - TAG));
    decipher.final();
    parts.push(plain.subarray(0, plain.length - 1));
  }
  return Buffer.concat(parts);
}

async function* chunks(bytes, size) {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, Math.min(bytes.length, at + size));
}

/** Drains a streamed body into one buffer, as a consumer that needs the whole body does. */
async function drain(iterable) {
  const parts = [];
  for await (const part of iterable) parts.push(part);
  return Buffer.concat(parts);
}

async function benchBody() {
  const bytes = P.bodyBytes;
  const plaintext = randomBytes(bytes);
  const ikm = new Uint8Array(randomBytes(32));
  const key = randomBytes(16);
  const nonce = randomBytes(12);
  const encrypted = await adapter.encryptBody(ikm, plaintext);
  const raw = rawEncrypt(key, nonce, plaintext);
  // Same bytes, same number of GCM operations: the coding adds only its 21-octet header.
  if (encrypted.length !== raw.length + 21) throw new Error(`the coding made ${encrypted.length} octets, raw GCM ${raw.length} + 21`);
  if (!Buffer.from(await adapter.decryptBody(ikm, encrypted)).equals(plaintext)) throw new Error('decryptBody did not return the plaintext');
  if (!rawDecrypt(key, nonce, raw).equals(plaintext)) throw new Error('raw decryption did not return the plaintext');
  const streams = typeof adapter.encryptBodyStream === 'function' && typeof adapter.decryptBodyStream === 'function';
  const CHUNK = 64 * 1024;
  if (streams) {
    const streamed = await drain(adapter.encryptBodyStream(ikm, chunks(plaintext, CHUNK)));
    if (streamed.length !== encrypted.length) throw new Error('encryptBodyStream made another length than encryptBody');
    if (!(await drain(adapter.decryptBodyStream(ikm, chunks(streamed, CHUNK)))).equals(plaintext)) throw new Error('decryptBodyStream did not return the plaintext');
  }

  const ops = {
    rawEncrypt: () => rawEncrypt(key, nonce, plaintext),
    rawDecrypt: () => rawDecrypt(key, nonce, raw),
    encrypt: () => adapter.encryptBody(ikm, plaintext),
    decrypt: () => adapter.decryptBody(ikm, encrypted),
    ...(streams
      ? {
          encryptStream: () => drain(adapter.encryptBodyStream(ikm, chunks(plaintext, CHUNK))),
          decryptStream: () => drain(adapter.decryptBodyStream(ikm, chunks(encrypted, CHUNK))),
        }
      : {}),
  };
  const names = Object.keys(ops);
  for (let w = 0; w < P.warmup; w++) for (const n of names) for (let i = 0; i < Math.max(3, P.bodyBatch >> 1); i++) await ops[n]();
  const m = samples();
  for (let r = 0; r < P.rounds; r++) {
    // Rotate the order within each round so no operation always runs right after another.
    const order = names.map((_, i) => names[(i + r) % names.length]);
    const us = {};
    for (const n of order) us[n] = n.startsWith('raw') ? usPerOpSync(P.bodyBatch, ops[n]) : await usPerOp(P.bodyBatch, ops[n]);
    for (const n of names) m.add(`${n}Us`, us[n]);
    // Throughput ratios: raw time / oidc2 time (1 = as fast as raw GCM).
    m.add('encryptRatio', us.rawEncrypt / us.encrypt);
    m.add('decryptRatio', us.rawDecrypt / us.decrypt);
    if (streams) {
      m.add('encryptStreamRatio', us.rawEncrypt / us.encryptStream);
      m.add('decryptStreamRatio', us.rawDecrypt / us.decryptStream);
    }
  }
  const mibps = (us) => round(bytes / 2 ** 20 / (us / 1e6), 0);
  const row = { bytes, recordSize: RS, records: Math.ceil(bytes / (RS - TAG - 1)), streamChunk: streams ? CHUNK : null, streams, rounds: P.rounds, batch: P.bodyBatch };
  for (const n of names) {
    row[`${n}Us`] = m.median(`${n}Us`);
    row[`${n}MiBps`] = mibps(row[`${n}Us`]);
  }
  for (const n of ['encryptRatio', 'decryptRatio', ...(streams ? ['encryptStreamRatio', 'decryptStreamRatio'] : [])]) row[n] = m.median(n);
  return row;
}

// ---------------------------------------------------------------------------------------------
// 2. Handshake and rekey per suite, in raw signature verifications.

function rawVerifier(alg, messageLength) {
  return (async () => {
    const k = await newKey(alg);
    const hash = alg === 'ES256' ? 'sha256' : null;
    const pub = createPublicKey({ key: k.publicJwk, format: 'jwk' });
    const priv = createPrivateKey({ key: k.privateJwk, format: 'jwk' });
    const keyOpt = (key) => (alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key);
    const data = Buffer.alloc(messageLength, 0x61);
    const sig = rawSign(hash, data, keyOpt(priv));
    return () => {
      if (!rawVerify(hash, data, keyOpt(pub), sig)) throw new Error('raw verification failed');
    };
  })();
}

const party = (sub) => ({ iss: 'https://op.bench.test', sub, jkt: new Uint8Array(randomBytes(32)) });

async function benchExchange() {
  // As long as a request's signature base (the ICT dominates it), as in the core section.
  const verify = { ES256: await rawVerifier('ES256', 900), Ed25519: await rawVerifier('Ed25519', 900) };
  const tokens = adapter.createSessionTokens({ keys: new adapter.MemorySessionKeyStore() });
  const caller = party('alice');
  const service = party('api');
  const base = AUDIENCE;
  const suites = [];
  const unavailable = [];
  for (const name of ['x25519', 'p256', 'xwing']) {
    try {
      const suite = adapter.hpkeSuite(name);
      if (!suite.info.implemented) throw Object.assign(new Error('not implemented'), { code: 'not_implemented' });
      suites.push(name);
    } catch (error) {
      unavailable.push({ suite: name, available: false, reason: error?.code ?? String(error?.message ?? error) });
    }
  }

  const rows = [];
  for (const name of suites) {
    const hpke = adapter.hpkeSuite(name);
    // A pool of callers' shares (fresh key pairs, as every handshake has), cycled through.
    const pool = [];
    for (let i = 0; i < 32; i++) {
      const pair = await hpke.generateKeyPair();
      const key = await hpke.serializePublicKey(pair.publicKey);
      pool.push({ share: { suite: name, key }, keyShare: adapter.serializeRequestKeyShare([{ suite: name, key }]) });
    }
    const binding = (i) => ({ keyShare: pool[i % pool.length].keyShare, nonce: core.createNonce(), audience: `${base}/orders`, caller, service });
    const first = await adapter.acceptHandshake(pool[0].share, binding(0));
    const session = { rk: first.rk, sid: first.sid };
    const issued = await tokens.issue({ sid: first.sid, rk: first.rk, suite: name, epoch: 0, audience: base, caller });
    const sessionStart = Math.floor(Date.now() / 1000);
    const chosen = { suite: name, key: first.enc };

    let i = 0;
    const ops = {
      verifyES256: verify.ES256,
      verifyEd25519: verify.Ed25519,
      // Service: key exchange, then the new session token (what a handshake or rekey response adds).
      serviceHandshake: async () => {
        const ex = await adapter.acceptHandshake(pool[i % pool.length].share, binding(i++));
        await tokens.issue({ sid: ex.sid, rk: ex.rk, suite: ex.suite, epoch: 0, audience: base, caller });
      },
      serviceRekey: async () => {
        const ex = await adapter.acceptRekey(pool[i % pool.length].share, binding(i++), session);
        await tokens.issue({ sid: session.sid, rk: ex.rk, suite: ex.suite, epoch: 1, sessionStart, audience: base, caller });
      },
      // Caller: a fresh ephemeral key pair and its share, then the exchange completed.
      callerHandshake: async () => {
        const pair = await hpke.generateKeyPair();
        const keyShare = adapter.serializeRequestKeyShare([{ suite: name, key: await hpke.serializePublicKey(pair.publicKey) }]);
        await adapter.completeHandshake(chosen, new Map([[name, pair]]), { keyShare, nonce: core.createNonce(), audience: `${base}/orders`, caller, service });
      },
      callerRekey: async () => {
        const pair = await hpke.generateKeyPair();
        const keyShare = adapter.serializeRequestKeyShare([{ suite: name, key: await hpke.serializePublicKey(pair.publicKey) }]);
        await adapter.completeRekey(chosen, new Map([[name, pair]]), { keyShare, nonce: core.createNonce(), audience: `${base}/orders`, caller, service }, session);
      },
      // What every session request pays to read its token (for reference).
      tokenVerify: () => tokens.verify(issued.token, base),
    };
    const names = Object.keys(ops);
    for (let w = 0; w < P.warmup; w++) for (const n of names) for (let k = 0; k < P.exchangeBatch; k++) await ops[n]();
    const m = samples();
    for (let r = 0; r < P.rounds; r++) {
      const order = names.map((_, j) => names[(j + r) % names.length]);
      const us = {};
      for (const n of order) us[n] = n.startsWith('verify') ? usPerOpSync(P.exchangeBatch, ops[n]) : await usPerOp(P.exchangeBatch, ops[n]);
      for (const n of names) m.add(`${n}Us`, us[n]);
      for (const n of names.filter((x) => !x.startsWith('verify'))) {
        m.add(`${n}VsES256`, us[n] / us.verifyES256);
        m.add(`${n}VsEd25519`, us[n] / us.verifyEd25519);
      }
    }
    const row = { suite: name, available: true, rounds: P.rounds, batch: P.exchangeBatch };
    for (const n of names) row[`${n}Us`] = m.median(`${n}Us`);
    for (const n of names.filter((x) => !x.startsWith('verify'))) {
      row[`${n}VsES256`] = m.median(`${n}VsES256`);
      row[`${n}VsEd25519`] = m.median(`${n}VsEd25519`);
    }
    rows.push(row);
  }
  return [...rows, ...unavailable];
}

// ---------------------------------------------------------------------------------------------
// 3. A session request against a plaintext mutually authenticated one, through the core's exchange.

async function benchSession() {
  const { service, caller } = await sessionParties(core);
  const REQUIRED = { encryption: 'required' };
  const json = { 'content-type': ['application/json'] };
  // The route echoes the body it was given (plaintext in both cases); the exchange signs the
  // response, and for the session request encrypts it first.
  const serve = async (req, policy) => {
    const exchange = service.exchange({ method: req.method, url: req.url, headers: req.headers }, policy);
    const admission = await exchange.admit(req.body);
    if (admission.answered) return admission.response;
    return exchange.respond({ status: 200, headers: { ...json }, body: admission.body });
  };
  // The headers object is consumed by the exchange: each request is served from a fresh copy.
  const copy = (req) => ({ method: req.method, url: req.url, headers: { ...req.headers }, body: req.body });
  const session = await caller.handshake((req) => serve(req));

  const rows = [];
  for (const size of P.sizes) {
    const plaintext = jsonBody(size);
    // Correctness first: both answer 200 with the body; the session answer decrypts to it.
    const p0 = await caller.plain('POST', '/echo', plaintext);
    const r0 = await serve(copy(p0));
    if (r0.status !== 200 || !Buffer.from(r0.body).equals(Buffer.from(plaintext))) throw new Error(`plaintext request answered ${r0.status}`);
    const s0 = await caller.sealed(session, 'POST', '/sealed', plaintext);
    const rs0 = await serve(copy(s0), REQUIRED);
    if (rs0.status !== 200) throw new Error(`session request answered ${rs0.status}: ${new TextDecoder().decode(rs0.body)}`);
    if (!Buffer.from(await caller.open(session, s0, rs0)).equals(Buffer.from(plaintext))) throw new Error('the session response did not decrypt to the body');
    const again = await serve(copy(s0), REQUIRED);
    if (again.status !== 401) throw new Error(`a replayed session request was answered ${again.status}`);

    const batch = size >= 32768 ? Math.max(1, Math.round(P.sessionBatch / 2)) : P.sessionBatch;
    const presign = async () => {
      const plain = [];
      const sealed = [];
      for (let k = 0; k < batch; k++) {
        plain.push(await caller.plain('POST', '/echo', plaintext));
        sealed.push(await caller.sealed(session, 'POST', '/sealed', plaintext));
      }
      return { plain, sealed };
    };
    const runBatch = async (list, policy) => {
      let k = 0;
      return usPerOp(list.length, async () => {
        const res = await serve(copy(list[k++]), policy);
        if (res.status !== 200) throw new Error(`answered ${res.status}`);
      });
    };
    for (let w = 0; w < P.warmup; w++) {
      const { plain, sealed } = await presign();
      await runBatch(plain);
      await runBatch(sealed, REQUIRED);
    }
    const m = samples();
    for (let r = 0; r < P.rounds; r++) {
      // Signed ahead of the measurement (each nonce is accepted once), outside the timed loop.
      const { plain, sealed } = await presign();
      let plainUs;
      let sessionUs;
      if (r % 2 === 0) {
        plainUs = await runBatch(plain);
        sessionUs = await runBatch(sealed, REQUIRED);
      } else {
        sessionUs = await runBatch(sealed, REQUIRED);
        plainUs = await runBatch(plain);
      }
      m.add('plainUs', plainUs);
      m.add('sessionUs', sessionUs);
      m.add('ratio', plainUs / sessionUs);
    }
    const plainUs = m.median('plainUs');
    const sessionUs = m.median('sessionUs');
    rows.push({
      bytes: size,
      plainUs,
      sessionUs,
      plainRps: Math.round(1e6 / plainUs),
      sessionRps: Math.round(1e6 / sessionUs),
      // Throughput of session requests over plaintext ones (1 = no cost), median of per-round ratios.
      sessionVsPlain: m.median('ratio'),
      addedUs: round(sessionUs - plainUs, 1),
      rounds: P.rounds,
      batch,
    });
  }
  return rows;
}

const out = {};
for (const [name, fn] of [
  ['body', benchBody],
  ['exchange', benchExchange],
  ['session', benchSession],
]) {
  try {
    out[name] = await fn();
  } catch (error) {
    process.stderr.write(`${name}: ${error?.stack ?? error}\n`);
    out[name] = { error: String(error?.message ?? error).split('\n')[0] };
  }
}
process.stdout.write(`${JSON.stringify(out)}\n`);
