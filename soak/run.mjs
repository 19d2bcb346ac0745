// `pnpm soak [--seconds N] [--concurrency C] [--frameworks express,fastify,koa]`: for each adapter,
// N seconds (default 600) of mixed valid and hostile traffic on 127.0.0.1 against a server in its
// own process (soak/server.mjs), then one line per adapter and a JSON summary: requests, 5xx count
// (must be 0), valid requests verified (must be all), hostile requests accepted (must be 0),
// heap and RSS after full collections at the start (after a warm-up) and at the end, and the
// server's event-loop delay p99. Exits non-zero when an invariant fails.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { ROOT, loadJose, loadPackage } from '../bench/lib/env.mjs';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '600' }, concurrency: { type: 'string', default: '16' }, frameworks: { type: 'string', default: 'express,fastify,koa' } } });
const SECONDS = Number(values.seconds);
const CONCURRENCY = Number(values.concurrency);
if (!(SECONDS > 0) || !(CONCURRENCY > 0)) throw new Error('--seconds and --concurrency must be positive numbers');
const AUDIENCE = 'http://soak.test';
const MAX_BODY = 64 * 1024;

const { SignJWT, exportJWK, generateKeyPair } = await loadJose();
const core = await loadPackage('core');

// An issuer and callers whose ICTs the servers trust; ICTs are minted once per caller and renewed
// before they expire, as a real client does.
const issuerKeys = await generateKeyPair('ES256', { extractable: true });
const issuerJwk = { ...(await exportJWK(issuerKeys.publicKey)), kid: 'soak', alg: 'ES256' };
const ISSUER = 'https://op.soak.test';
async function newCaller(subject) {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), alg: 'ES256' };
  const caller = { subject, key: await core.importKey(await exportJWK(privateKey), 'ES256', 'sign'), ict: '', renewAt: 0 };
  caller.mint = async () => {
    const now = Math.floor(Date.now() / 1000);
    caller.ict = await new SignJWT({ cnf: { jwk } }).setProtectedHeader({ alg: 'ES256', kid: 'soak', typ: 'ict+jwt' }).setIssuer(ISSUER).setSubject(subject).setIssuedAt(now).setExpirationTime(now + 600).sign(issuerKeys.privateKey);
    caller.renewAt = now + 500;
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
  writeFileSync(configPath, JSON.stringify({ issuers: [{ issuer: ISSUER, jwks: { keys: [issuerJwk] } }], audiences: [AUDIENCE], maxBodyBytes: MAX_BODY }));
  const server = startServer(framework, configPath);
  const base = `http://127.0.0.1:${await server.port}`;
  const totals = { requests: 0, status5xx: 0, valid: 0, validVerified: 0, hostile: 0, hostileAccepted: 0, hostileByKind: {}, failures: [] };

  const one = async (count) => {
    if (Math.random() < 0.6) {
      const r = Math.random() < 0.5 ? await signed('GET', '/whoami') : await signed('POST', '/echo', { body: JSON.stringify({ n: Math.random() }) });
      const { status, text } = await send(base, r);
      if (!count) return;
      totals.requests++;
      totals.valid++;
      if (status >= 500) totals.status5xx++;
      if (status === 200 && JSON.parse(text).caller === r.subject) totals.validVerified++;
      else if (totals.failures.length < 5) totals.failures.push({ kind: 'valid', status, text: text.slice(0, 200) });
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
      if (totals.failures.length < 5) totals.failures.push({ kind, status, text: text.slice(0, 200) });
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
      `heap ${r.heapMiB.start} -> ${r.heapMiB.end} MiB, RSS ${r.rssMiB.start} -> ${r.rssMiB.end} MiB, event-loop delay p99 ${r.eventLoopDelayMs.p99} ms`,
  );
}
console.log(JSON.stringify({ seconds: SECONDS, concurrency: CONCURRENCY, node: process.version, results }, null, 2));
const failed = results.some((r) => r.status5xx > 0 || r.validVerified !== r.valid || r.hostileAccepted > 0);
if (failed) {
  console.error('soak failed: a 5xx, an unverified valid request or an accepted hostile one (see failures above)');
  process.exitCode = 1;
}
