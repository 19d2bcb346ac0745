// Where the time of a session request goes (not part of `pnpm bench`; its findings are in
// bench/README.md). In one process, with the service of the e2ee section:
//  1. the steps a session request adds to a plaintext one, each timed alone, interleaved with the
//     two whole requests: reading the session token through the core (one AES-256-GCM opening on
//     lib/crypto, then the claim checks), the same JWE opened with bare node:crypto for comparison,
//     the request body key and decryption, the response body key and encryption;
//  2. CPU profiles (node:inspector) of plaintext and of session requests, time grouped by step.
// WebCrypto runs its jobs on libuv's thread pool: the main thread's profile shows their wait as
// idle time, so step 1 is the one that prices them.
//
// Usage: taskset -c 0 node bench/lib/e2ee-profile.mjs [bytes=1024] [requests=3000] [--cpuprofile FILE]
// (FILE: the session requests' profile, for Chrome DevTools or speedscope)
import { createDecipheriv, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { loadAdapter, loadPackage } from './env.mjs';
import { AUDIENCE } from './credentials.mjs';
import { jsonBody, sessionParties } from './e2ee-caller.mjs';
import { median, round, usPerOp } from './stats.mjs';

const args = process.argv.slice(2);
const out = args.includes('--cpuprofile') ? args.splice(args.indexOf('--cpuprofile'), 2)[1] : undefined;
const bytes = Number(args[0] ?? 1024);
const count = Number(args[1] ?? 3000);
const ROUNDS = 9;
const BATCH = 200;

const core = await loadPackage('core');
const adapter = await loadAdapter();
const { service, caller } = await sessionParties(core);
const REQUIRED = { encryption: 'required' };
const serve = async (req, policy) => {
  const exchange = service.exchange({ method: req.method, url: req.url, headers: { ...req.headers } }, policy);
  const admission = await exchange.admit(req.body);
  if (admission.answered) throw new Error(`answered ${admission.response.status}`);
  return exchange.respond({ status: 200, headers: { 'content-type': ['application/json'] }, body: admission.body });
};
const session = await caller.handshake(async (req) => {
  const exchange = service.exchange({ method: req.method, url: req.url, headers: req.headers });
  const admission = await exchange.admit(req.body);
  return admission.response;
});
const plaintext = jsonBody(bytes);

// A token like the service's (same claims, same size) under a STEK this process holds, so that
// jose's work can be set beside a synchronous node:crypto opening of the same JWE.
const stek = new adapter.StaticSessionKeyStore({ keys: [{ kty: 'oct', kid: 'stek-bench', k: randomBytes(32).toString('base64url') }] });
const tokens = adapter.createSessionTokens({ keys: stek });
const partyId = await caller.identity;
const { token } = await tokens.issue({ sid: session.sid, rk: session.rk, suite: session.suite, epoch: 0, audience: AUDIENCE, caller: partyId });
const stekBytes = Buffer.from((await stek.current()).key);
const [protectedHeader, , iv, ciphertext, tag] = token.split('.');
const openSync = () => {
  const d = createDecipheriv('aes-256-gcm', stekBytes, Buffer.from(iv, 'base64url'));
  d.setAAD(Buffer.from(protectedHeader, 'ascii'));
  d.setAuthTag(Buffer.from(tag, 'base64url'));
  const claims = JSON.parse(Buffer.concat([d.update(Buffer.from(ciphertext, 'base64url')), d.final()]).toString('utf8'));
  if (claims.sid === undefined) throw new Error('no claims');
};
const sealed0 = await caller.sealed(session, 'POST', '/sealed', plaintext);
const nonce = sealed0.nonce;
const requestBody = sealed0.body;
const steps = {
  plainRequest: { list: true },
  sessionRequest: { list: true },
  tokenVerify: () => tokens.verify(token, AUDIENCE),
  tokenOpenNodeSync: async () => openSync(),
  requestKeyAndDecrypt: async () => adapter.decryptBody(await adapter.requestKey({ rk: session.rk, sid: session.sid, nonce, method: 'POST', audience: `${AUDIENCE}/sealed` }), requestBody),
  responseKeyAndEncrypt: async () => adapter.encryptBody(await adapter.responseKey({ rk: session.rk, sid: session.sid, nonce, status: 200 }), plaintext),
};
const names = Object.keys(steps);
const samples = Object.fromEntries(names.map((n) => [n, []]));
const run = async (name) => {
  if (name === 'plainRequest' || name === 'sessionRequest') {
    const list = [];
    for (let i = 0; i < BATCH; i++) list.push(name === 'plainRequest' ? await caller.plain('POST', '/echo', plaintext) : await caller.sealed(session, 'POST', '/sealed', plaintext));
    let k = 0;
    return usPerOp(BATCH, () => serve(list[k++], name === 'sessionRequest' ? REQUIRED : undefined));
  }
  return usPerOp(BATCH, steps[name]);
};
for (const n of names) await run(n);
for (let r = 0; r < ROUNDS; r++) for (const n of names.map((_, i) => names[(i + r) % names.length])) samples[n].push(await run(n));
const us = Object.fromEntries(names.map((n) => [n, round(median(samples[n]), 1)]));
process.stdout.write(`steps, µs per call (median of ${ROUNDS} interleaved rounds of ${BATCH}; ${bytes}-octet JSON body):\n`);
for (const n of names) process.stdout.write(`  ${n.padEnd(24)} ${String(us[n]).padStart(8)}\n`);
process.stdout.write(`  session - plain            ${round(us.sessionRequest - us.plainRequest, 1)}\n`);

// CPU profiles of plaintext and of session requests. Each sample is charged to the innermost frame
// on its stack that belongs to one of the buckets below, so that native work (a signature, a
// WebCrypto job's dispatch) counts for the step that asked for it. Shares of the profiled time are
// then scaled to the unprofiled µs per request of step 1 (the profiler slows everything down).
const BUCKETS = [
  ['session token: jose (if anything still reaches it)', (f) => f.url.includes('/jose/')],
  ['session token: opening, claims and checks', (f) => f.url.includes('/e2ee/session-token.js') || f.url.includes('/e2ee/session-keys.js')],
  ['e2ee fields: parse (Oidc2-Session, Content-Encoding)', (f) => (f.url.includes('/e2ee/service-side.js') && (f.functionName === 'inspect' || f.functionName === 'coding')) || f.url.includes('/e2ee/fields.js')],
  ['request body: K_req and aes128gcm decode', (f) => f.functionName === 'decryptRequest' || f.functionName === 'decryptBody' || f.functionName.startsWith('aes128gcmDecode') || f.functionName === 'requestKey'],
  ['response body: K_rsp and aes128gcm encode', (f) => f.functionName === 'seal' || f.functionName === 'encryptBody' || f.functionName.startsWith('aes128gcmEncode') || f.functionName === 'responseKey'],
  ['request signature: parse, base, ECDSA verify', (f) => f.url.includes('/proofs/http-signature.js') || f.functionName === 'verifyMessageSignature' || f.url.includes('/structured-headers/')],
  ['response: Content-Digest, base, ECDSA sign', (f) => f.url.includes('/response-signature.js') || f.functionName === 'signMessage' || f.url.includes('/content-digest.js')],
  ['garbage collector', (f) => f.functionName === '(garbage collector)'],
  ['idle (waiting for thread-pool jobs)', (f) => f.functionName === '(idle)'],
];
const OTHER = 'the rest: exchange, authenticator, replay store, V8, Node';

async function profiled(list, policy) {
  const inspector = new Session();
  inspector.connect();
  await inspector.post('Profiler.enable');
  await inspector.post('Profiler.setSamplingInterval', { interval: 100 });
  await inspector.post('Profiler.start');
  for (const req of list) await serve(req, policy);
  const { profile } = await inspector.post('Profiler.stop');
  inspector.disconnect();
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const bucketOf = new Map();
  const bucket = (id) => {
    if (bucketOf.has(id)) return bucketOf.get(id);
    let found = OTHER;
    for (let c = id; c !== undefined; c = parent.get(c)) {
      const frame = byId.get(c).callFrame;
      const hit = BUCKETS.find(([, match]) => match(frame));
      if (hit) {
        found = hit[0];
        break;
      }
    }
    bucketOf.set(id, found);
    return found;
  };
  const time = new Map();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const t = profile.timeDeltas[i] ?? 0;
    const b = bucket(profile.samples[i]);
    time.set(b, (time.get(b) ?? 0) + t);
    total += t;
  }
  return { profile, share: (b) => (time.get(b) ?? 0) / total };
}

const plainList = [];
const sessionList = [];
for (let i = 0; i < count; i++) {
  plainList.push(await caller.plain('POST', '/echo', plaintext));
  sessionList.push(await caller.sealed(session, 'POST', '/sealed', plaintext));
}
const plainProfile = await profiled(plainList);
const sessionProfile = await profiled(sessionList, REQUIRED);
if (out) writeFileSync(out, JSON.stringify(sessionProfile.profile));
process.stdout.write(`\nCPU profiles of ${count} requests each, shares scaled to the µs of step 1 (plaintext ${us.plainRequest}, session ${us.sessionRequest}):\n`);
process.stdout.write(`  ${'where'.padEnd(66)} ${'plaintext'.padStart(9)} ${'session'.padStart(9)} ${'added'.padStart(9)}\n`);
for (const b of [...BUCKETS.map(([name]) => name), OTHER]) {
  const p = plainProfile.share(b) * us.plainRequest;
  const q = sessionProfile.share(b) * us.sessionRequest;
  process.stdout.write(`  ${b.padEnd(66)} ${String(round(p, 0)).padStart(9)} ${String(round(q, 0)).padStart(9)} ${String(round(q - p, 0)).padStart(9)}\n`);
}
