// `pnpm soak [--seconds N] [--concurrency C] [--frameworks express,fastify,koa]`: for each adapter,
// N seconds (default 600) of mixed valid and hostile traffic on 127.0.0.1 against a server in its
// own process (soak/server.mjs), in clear and end-to-end encrypted (soak/e2ee.mjs), then one line
// per adapter and a JSON summary: requests, 5xx count (must be 0), valid requests verified (must
// be all; encrypted ones also decrypted), hostile requests accepted (must be 0; encrypted ones
// refused with their own code), heap and RSS after full collections at the start (after a
// warm-up) and at the end, and the server's event-loop delay p99. Exits non-zero when an
// invariant fails.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { ROOT, loadPackage } from '../bench/lib/env.mjs';
import { AUDIENCE, newIssuer, newKey } from '../bench/lib/credentials.mjs';
import { E2EE_OPTIONS, e2eeTraffic, serviceCredential } from './e2ee.mjs';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '600' }, concurrency: { type: 'string', default: '16' }, frameworks: { type: 'string', default: 'express,fastify,koa' } } });
const SECONDS = Number(values.seconds);
const CONCURRENCY = Number(values.concurrency);
if (!(SECONDS > 0) || !(CONCURRENCY > 0)) throw new Error('--seconds and --concurrency must be positive numbers');
const MAX_BODY = 64 * 1024;

const core = await loadPackage('core');

// An issuer and callers whose ICTs the servers trust; ICTs are minted once per caller and renewed
// before they expire, as a real client does.
const issuer = await newIssuer();
async function newCaller(subject) {
  const holder = await newKey('ES256');
  const caller = { subject, key: await core.importKey(holder.privateJwk, 'ES256', 'sign'), ict: '', renewAt: 0 };
  caller.mint = async () => {
    caller.ict = await issuer.mintIct(holder, subject, 600);
    caller.renewAt = Date.now() / 1000 + 500;
  };
  await caller.mint();
  return caller;
}
const callers = await Promise.all(Array.from({ length: 8 }, (_, i) => newCaller(`soak-user-${i}`)));

const enc = new TextEncoder();
async function signed(method, path, { body, caller } = {}) {
  const c = caller ?? callers[Math.floor(Math.random() * callers.length)];
  if (Date.now() / 1000 > c.renewAt) await c.mint();
  const headers = body === undefined ? {} : { 'content-type': 'application/json' };
  const s = await core.signRequest({ method, url: `${AUDIENCE}${path}`, headers, body: body === undefined ? undefined : enc.encode(body) }, { ict: c.ict, key: c.key, signResponse: false });
  return { method, path, headers: Object.fromEntries(Object.entries(s.headers).map(([n, ls]) => [n, ls.join(', ')])), body: s.body, subject: c.subject };
}

// Hostile requests: each must be refused with a 4xx, never answered 2xx or 5xx.
const flip = (s) => {
  const i = Math.floor(Math.random() * s.length);
  const c = s.charCodeAt(i);
  return s.slice(0, i) + String.fromCharCode(c === 65 ? 66 : 65) + s.slice(i + 1);
};
const HOSTILE = {
  'tampered token': async () => {
    const r = await signed('GET', '/whoami');
    r.headers['identity-certification-token'] = flip(r.headers['identity-certification-token']);
    return r;
  },
  'tampered signature input': async () => {
    const r = await signed('GET', '/whoami');
    r.headers['signature-input'] = r.headers['signature-input'].replace('created=', 'created=1');
    return r;
  },
  'signature dropped': async () => {
    const r = await signed('GET', '/whoami');
    delete r.headers.signature;
    return r;
  },
  'body changed after signing': async () => {
    const r = await signed('POST', '/echo', { body: '{"n":1}' });
    r.body = enc.encode('{"n":2}');
    return r;
  },
  'path changed after signing': async () => ({ ...(await signed('GET', '/whoami')), path: '/whoami?admin=1' }),
  'replayed request': async () => ({ ...(await signed('GET', '/whoami')), replay: true }),
  'oversized header': async () => ({ ...(await signed('GET', '/whoami')), headers: { ...(await signed('GET', '/whoami')).headers, 'signature-input': `sig=("@method");created=1;x="${'x'.repeat(9000)}"` } }),
  'garbage structured fields': async () => {
    const r = await signed('GET', '/whoami');
    r.headers['signature-input'] = String.fromCharCode(...Array.from({ length: 200 }, () => 32 + Math.floor(Math.random() * 95)));
    r.headers.signature = 'sig=:!!:, ';
    return r;
  },
  'body over the limit': async () => signed('POST', '/echo', { body: JSON.stringify({ pad: 'x'.repeat(MAX_BODY) }) }),
  'no credentials': async () => ({ method: 'GET', path: '/whoami', headers: {} }),
  'unknown issuer token': async () => {
    const r = await signed('GET', '/whoami');
    const [h, , s] = r.headers['identity-certification-token'].split('.');
    r.headers['identity-certification-token'] = `${h}.${Buffer.from(JSON.stringify({ iss: 'https://evil.example', sub: 'x' })).toString('base64url')}.${s}`;
    return r;
  },
};
const HOSTILE_KINDS = Object.keys(HOSTILE);

async function send(base, r) {
  const response = await fetch(`${base}${r.path}`, { method: r.method, headers: r.headers, body: r.body, signal: AbortSignal.timeout(30_000) });
  const text = await response.text();
  return { status: response.status, text };
}

function startServer(framework, configPath) {
  const child = spawn(process.execPath, ['--expose-gc', join(ROOT, 'soak', 'server.mjs'), framework, configPath], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  const waiting = [];
  lines.on('line', (line) => waiting.shift()?.(JSON.parse(line)));
  const next = () => new Promise((resolve) => waiting.push(resolve));
  return {
    port: next().then((m) => m.port),
    stats: () => {
      const p = next();
      child.stdin.write('stats\n');
      return p;
    },
    stop: () => new Promise((resolve) => {
      child.once('exit', resolve);
      child.stdin.end();
    }),
  };
}

async function soak(framework) {
  const dir = mkdtempSync(join(tmpdir(), 'oidc2-soak-'));
  const configPath = join(dir, 'config.json');
  const issuers = [{ issuer: issuer.issuer, jwks: issuer.jwks }];
  writeFileSync(configPath, JSON.stringify({ issuers, audiences: [AUDIENCE], maxBodyBytes: MAX_BODY, credential: await serviceCredential(issuer), e2ee: E2EE_OPTIONS }));
  const server = startServer(framework, configPath);
  const base = `http://127.0.0.1:${await server.port}`;
  const e2ee = await e2eeTraffic(core, issuer, base);
  const totals = {
    requests: 0,
    status5xx: 0,
    valid: 0,
    validVerified: 0,
    hostile: 0,
    hostileAccepted: 0,
    hostileByKind: {},
    e2ee: { valid: 0, verified: 0, byKind: {}, byMode: {}, hostile: 0, refusedAsExpected: 0, hostileByKind: {} },
    failures: [],
  };
  const failure = (f) => totals.failures.length < 10 && totals.failures.push(f);
  const E2EE_VALID = Object.keys(e2ee.valid);
  const E2EE_HOSTILE = Object.keys(e2ee.hostile);
  const pick = (kinds) => kinds[Math.floor(Math.random() * kinds.length)];

  const one = async (count) => {
    const dice = Math.random();
    if (dice < 0.2) {
      const kind = pick(E2EE_VALID);
      const { verified, mode, failure: f } = await e2ee.valid[kind]().catch((error) => ({ verified: false, mode: 'error', failure: { error: String(error?.code ?? error), cause: String(error?.cause?.code ?? error?.cause ?? '') } }));
      if (!count) return;
      totals.requests++;
      totals.valid++;
      totals.e2ee.valid++;
      totals.e2ee.byKind[kind] = (totals.e2ee.byKind[kind] ?? 0) + 1;
      totals.e2ee.byMode[mode] = (totals.e2ee.byMode[mode] ?? 0) + 1;
      if (f?.status >= 500) totals.status5xx++;
      if (verified) {
        totals.validVerified++;
        totals.e2ee.verified++;
      } else failure({ kind: `e2ee ${kind}`, ...f });
      return;
    }
    if (dice < 0.35) {
      const kind = pick(E2EE_HOSTILE);
      const r = await e2ee.hostile[kind]();
      if (!count) return;
      totals.requests += r.requests;
      totals.hostile++;
      totals.e2ee.hostile++;
      totals.e2ee.hostileByKind[kind] = (totals.e2ee.hostileByKind[kind] ?? 0) + 1;
      if (r.status >= 500) totals.status5xx++;
      if (r.status < 400) totals.hostileAccepted++;
      if (r.status >= 400 && r.status < 500 && r.code === r.expected) totals.e2ee.refusedAsExpected++;
      else failure({ kind: `e2ee ${kind}`, status: r.status, code: r.code, expected: r.expected });
      return;
    }
    if (dice < 0.75) {
      const r = Math.random() < 0.5 ? await signed('GET', '/whoami') : await signed('POST', '/echo', { body: JSON.stringify({ n: Math.random() }) });
      const { status, text } = await send(base, r);
      if (!count) return;
      totals.requests++;
      totals.valid++;
      if (status >= 500) totals.status5xx++;
      if (status === 200 && JSON.parse(text).caller === r.subject) totals.validVerified++;
      else failure({ kind: 'valid', status, text: text.slice(0, 200) });
      return;
    }
    const kind = HOSTILE_KINDS[Math.floor(Math.random() * HOSTILE_KINDS.length)];
    const r = await HOSTILE[kind]();
    let { status, text } = await send(base, r);
    if (r.replay) ({ status, text } = await send(base, r)); // the first is valid; the second is the replay
    if (!count) return;
    totals.requests += r.replay ? 2 : 1;
    totals.hostile++;
    totals.hostileByKind[kind] = (totals.hostileByKind[kind] ?? 0) + 1;
    if (status >= 500) totals.status5xx++;
    if (status < 400 || status >= 500) {
      totals.hostileAccepted += status < 400 ? 1 : 0;
      failure({ kind, status, text: text.slice(0, 200) });
    }
  };

  // Warm-up, then the baseline memory.
  const warmUntil = Date.now() + Math.min(5_000, SECONDS * 100);
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => { while (Date.now() < warmUntil) await one(false); }));
  const start = await server.stats();
  const started = Date.now();
  const until = started + SECONDS * 1000;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => { while (Date.now() < until) await one(true); }));
  const seconds = (Date.now() - started) / 1000;
  const end = await server.stats();
  await server.stop();
  const mib = (b) => Math.round((b / 1048576) * 10) / 10;
  return {
    framework,
    seconds: Math.round(seconds),
    requests: totals.requests,
    requestsPerSecond: Math.round(totals.requests / seconds),
    status5xx: totals.status5xx,
    valid: totals.valid,
    validVerified: totals.validVerified,
    hostile: totals.hostile,
    hostileAccepted: totals.hostileAccepted,
    hostileByKind: totals.hostileByKind,
    e2ee: totals.e2ee,
    heapMiB: { start: mib(start.heapUsed), end: mib(end.heapUsed) },
    rssMiB: { start: mib(start.rss), end: mib(end.rss) },
    eventLoopDelayMs: { p50: end.eldP50, p99: end.eldP99, max: end.eldMax },
    failures: totals.failures,
  };
}

const results = [];
for (const framework of values.frameworks.split(',')) {
  const r = await soak(framework);
  results.push(r);
  console.log(
    `${r.framework}: ${r.seconds} s, ${r.requests} requests (${r.requestsPerSecond}/s), 5xx ${r.status5xx}, valid verified ${r.validVerified}/${r.valid}, hostile accepted ${r.hostileAccepted}/${r.hostile}, ` +
      `encrypted: verified and decrypted ${r.e2ee.verified}/${r.e2ee.valid} (${Object.entries(r.e2ee.byMode).map(([m, n]) => `${m} ${n}`).join(', ')}), hostile refused with their code ${r.e2ee.refusedAsExpected}/${r.e2ee.hostile}, ` +
      `heap ${r.heapMiB.start} -> ${r.heapMiB.end} MiB, RSS ${r.rssMiB.start} -> ${r.rssMiB.end} MiB, event-loop delay p99 ${r.eventLoopDelayMs.p99} ms`,
  );
}
console.log(JSON.stringify({ seconds: SECONDS, concurrency: CONCURRENCY, node: process.version, results }, null, 2));
const failed = results.some((r) => r.status5xx > 0 || r.validVerified !== r.valid || r.hostileAccepted > 0 || r.e2ee.refusedAsExpected !== r.e2ee.hostile);
if (failed) {
  console.error('soak failed: a 5xx, an unverified valid request, an accepted hostile one or an encrypted one refused with another code (see failures above)');
  process.exitCode = 1;
}
