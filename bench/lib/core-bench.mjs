// Core, per operation, warm caches: `authenticate` of an ICT + RFC 9421 request against one raw
// node:crypto verification of the same algorithm, and response signing against one raw sign.
// Runs as its own process (pinned by run.mjs); prints one JSON line.
//
// Usage: node bench/lib/core-bench.mjs '{"rounds":9,"batch":1000,"warmup":2000}'
import { createPrivateKey, createPublicKey, sign as rawSign, verify as rawVerify } from 'node:crypto';
import { loadPackage } from './env.mjs';
import { AUDIENCE, ROUTE, newIssuer, newKey } from './credentials.mjs';
import { median, round, usPerOp, usPerOpSync } from './stats.mjs';

const { rounds = 9, batch = 1000, warmup = 2000, algs = ['ES256', 'Ed25519'] } = JSON.parse(process.argv[2] ?? '{}');

const core = await loadPackage('core');
const issuer = await newIssuer();
const issuers = [{ issuer: issuer.issuer, jwks: issuer.jwks }];
const host = new URL(AUDIENCE).host;

async function presign(ict, key, count) {
  const out = [];
  for (let i = 0; i < count; i++) {
    const signed = await core.signRequest({ method: 'GET', url: AUDIENCE + ROUTE, headers: { host } }, { ict, key, expiresIn: 300 });
    // What a server sees: origin-form target, the fields as received.
    out.push({ method: 'GET', url: ROUTE, headers: signed.headers });
  }
  return out;
}

async function benchAlg(alg) {
  const caller = await newKey(alg);
  const callerIct = await issuer.mintIct(caller, 'alice');
  const callerHandle = await core.importKey(caller.privateJwk, alg, 'sign');
  const service = await newKey(alg);
  const serviceIct = await issuer.mintIct(service, 'api');

  // The default replay store, made here to be warmed: its table (24 MiB) is mapped page by page on
  // first touch, which a fresh store pays over its first tens of thousands of nonces. Warm caches
  // include it: the table is touched as in a service that has recorded 60,000 nonces (they stay,
  // as they would, each for its window).
  const replayStore = new core.MemoryReplayStore();
  const t0 = Date.now() / 1000;
  for (let i = 0; i < 60_000; i++) replayStore.checkAndRecord(`warm:${i}`, t0 + 600, t0);
  const authenticator = core.createAuthenticator({ issuers, audiences: [AUDIENCE], replayStore });
  const oidc2 = core.createOidc2Service({ issuers, audiences: [AUDIENCE], credential: { ict: serviceIct, privateKey: service.privateJwk } });
  const requests = await presign(callerIct, callerHandle, warmup + rounds * batch);

  // The physical limit: one signature operation with an already imported key over as many bytes as
  // the signature base oidc2 verifies or signs (measured below from a real request and response).
  const hash = alg === 'ES256' ? 'sha256' : null;
  const pub = createPublicKey({ key: caller.publicJwk, format: 'jwk' });
  const priv = createPrivateKey({ key: caller.privateJwk, format: 'jwk' });
  const keyOpt = (key) => (alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key);
  const response = { status: 200, headers: { 'content-type': ['application/json; charset=utf-8'] }, body: new TextEncoder().encode('{"hello":"world"}') };
  let next = 0;
  const authenticateOne = async () => {
    const identity = await authenticator.authenticate(requests[next++]);
    if (identity.subject !== 'alice') throw new Error('authenticate returned the wrong identity');
    return identity;
  };
  const binding = (await authenticateOne()).binding;
  const signOne = async () => {
    const fields = await oidc2.signResponse(response, requests[0], binding);
    if (!fields?.signature) throw new Error('signResponse returned no signature');
    return fields;
  };
  // The signature bases' sizes: a request's (the caller's ICT dominates it) and its response's (the
  // service's ICT and, with ;req, the caller's).
  const baseBytes = (message, fields, context) => {
    const entry = [...core.parseSignatureInput(fields['signature-input']).values()][0];
    return Buffer.byteLength(core.signatureBase(message, entry.components, entry.signatureParams, context));
  };
  const requestBaseBytes = baseBytes(requests[0], requests[0].headers);
  const responseFields = await signOne();
  const responseBaseBytes = baseBytes({ ...response, headers: { ...response.headers, ...responseFields } }, responseFields, { request: requests[0] });
  const verifyData = Buffer.alloc(requestBaseBytes, 0x61);
  const signData = Buffer.alloc(responseBaseBytes, 0x61);
  const sig = rawSign(hash, verifyData, keyOpt(priv));
  if (!rawVerify(hash, verifyData, keyOpt(pub), sig)) throw new Error('raw verification failed');
  const verifyOne = () => {
    if (!rawVerify(hash, verifyData, keyOpt(pub), sig)) throw new Error('raw verification failed');
  };
  const rawSignOne = () => rawSign(hash, signData, keyOpt(priv));

  // Warm-up: JIT, the verified-ICT cache and the issuer key cache (the replay store is warm already).
  while (next < warmup) await authenticateOne();
  for (let i = 0; i < warmup; i++) {
    await signOne();
    verifyOne();
    rawSignOne();
  }

  // Interleaved rounds, so drift on a shared machine hits all four alike; ratios per round.
  const m = { authenticateUs: [], rawVerifyUs: [], signResponseUs: [], rawSignUs: [], authRatio: [], signRatio: [] };
  for (let r = 0; r < rounds; r++) {
    const a = await usPerOp(batch, authenticateOne);
    const v = usPerOpSync(batch, verifyOne);
    const s = await usPerOp(batch, signOne);
    const w = usPerOpSync(batch, rawSignOne);
    m.authenticateUs.push(a);
    m.rawVerifyUs.push(v);
    m.signResponseUs.push(s);
    m.rawSignUs.push(w);
    m.authRatio.push(a / v);
    m.signRatio.push(s / w);
  }
  return {
    alg,
    authenticateUs: round(median(m.authenticateUs)),
    rawVerifyUs: round(median(m.rawVerifyUs)),
    signResponseUs: round(median(m.signResponseUs)),
    rawSignUs: round(median(m.rawSignUs)),
    authenticateRatio: round(median(m.authRatio), 3),
    requestBaseBytes,
    responseBaseBytes,
    signResponseRatio: round(median(m.signRatio), 3),
    rounds,
    batch,
  };
}

const rows = [];
for (const alg of algs) rows.push(await benchAlg(alg));
process.stdout.write(`${JSON.stringify(rows)}\n`);
