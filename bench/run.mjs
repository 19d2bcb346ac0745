#!/usr/bin/env node
// `pnpm bench`: measures oidc2 side by side with its baselines in one run, prints a table of
// ratios and writes bench/results/latest.json. See bench/README.md.
//
//   node bench/run.mjs                  full run (about 12 minutes on 2 cores, 7 of them --only e2ee)
//   node bench/run.mjs --quick          smoke run with tiny counts (numbers meaningless)
//   --out FILE                          where to write the JSON (default: results/latest.json,
//                                       or results/quick.tmp.json with --quick)
//   --only core,http,cold,replay,scale,e2ee   run some sections
//   --frameworks express,fastify,koa    frameworks of the HTTP section
//   --autocannon                        generate load with autocannon even when wrk is installed
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { BENCH, distEntry, loadPackage, pinned, rootRequire, tools } from './lib/env.mjs';
import { newIssuer, newKey } from './lib/credentials.mjs';
import { FRAMEWORKS, benchHttp } from './lib/http-bench.mjs';
import { benchCold } from './lib/cold.mjs';
import { signer } from './lib/presign.mjs';
import { runJson } from './lib/proc.mjs';
import { RSS_TOLERANCE, benchReplay } from './lib/replay.mjs';
import { benchE2eeHttp } from './lib/e2ee-http.mjs';
import { SCALE_VARIANTS, benchScale } from './lib/scale.mjs';
import { median, round } from './lib/stats.mjs';

const SECTIONS = ['core', 'http', 'cold', 'replay', 'scale', 'e2ee'];

function parseArgs(argv) {
  const args = { quick: false, out: undefined, only: SECTIONS, frameworks: FRAMEWORKS, autocannon: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new TypeError(`${a} needs a value`);
      return v;
    };
    if (a === '--quick') args.quick = true;
    else if (a === '--out') args.out = value();
    else if (a === '--only') args.only = value().split(',');
    else if (a === '--frameworks') args.frameworks = value().split(',');
    else if (a === '--autocannon') args.autocannon = true;
    else throw new TypeError(`unknown argument ${a}`);
  }
  for (const s of args.only) if (!SECTIONS.includes(s)) throw new TypeError(`unknown section ${s}`);
  for (const f of args.frameworks) if (!FRAMEWORKS.includes(f)) throw new TypeError(`unknown framework ${f}`);
  args.out ??= join(BENCH, 'results', args.quick ? 'quick.tmp.json' : 'latest.json');
  args.full = !args.quick && args.only.length === SECTIONS.length && args.frameworks.length === FRAMEWORKS.length;
  return args;
}

const PARAMS = {
  full: {
    core: { rounds: 9, batch: 1000, warmup: 2000 },
    http: { reps: 7, duration: 2, warmup: 2, connections: 32 },
    cold: { callers: 1000 },
    replay: { entries: 1_000_000, rate: 5000, pairs: 3 },
    scale: { reps: 5, duration: 2, warmup: 2, connections: 32 },
    e2ee: { rounds: 9, bodyBatch: 20, exchangeBatch: 100, sessionBatch: 200, warmup: 1, sizes: [1024, 65536], http: { reps: 7, duration: 2, warmup: 4, connections: 32 } },
  },
  quick: {
    core: { rounds: 2, batch: 20, warmup: 20 },
    http: { reps: 1, duration: 1, warmup: 0, connections: 4 },
    cold: { callers: 20 },
    replay: { entries: 10_000, rate: 5000, pairs: 1 },
    scale: { reps: 1, duration: 1, warmup: 0, connections: 4 },
    e2ee: { rounds: 2, bodyBatch: 2, exchangeBatch: 3, sessionBatch: 4, warmup: 1, sizes: [1024, 65536], http: { reps: 1, duration: 1, warmup: 0, connections: 4 } },
  },
};

/** Warm `authenticate` against one raw verification, `signResponse` against one raw sign (issue 12). */
const AUTH_TARGET = 1.2;
const SIGN_TARGET = 1.4;
/**
 * oidc2's own work per request on Fastify, ((1/oidc2 - 1/hello) - (raw verify + raw sign)), against
 * @fastify/jwt's, ((1/bearer - 1/hello) - raw verify): at most this ratio.
 */
const OWN_WORK_TARGET = 1.25;
/** oidc2's throughput against the bearer middleware's on Express and Koa: at least this ratio. */
const THROUGHPUT_TARGET = 1.1;
/** The cold burst's p99 time to first byte against the same burst at hello world: at most this ratio. */
const COLD_TARGET = 2;
/** Encrypted body throughput against raw AES-128-GCM over the same records. */
const BODY_TARGET = 0.8;
/** Symmetric session requests against the framework's bearer-JWT middleware with the same JSON body. */
const SYMMETRIC_TARGET = 1.5;
const log = (line) => process.stderr.write(`${line}\n`);
const fmt = (x, d = 0) => (typeof x === 'number' && Number.isFinite(x) ? x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }) : '—');
const yes = (ok) => (ok === undefined ? '—' : ok ? 'yes' : '**no**');
const mib = (b) => `${fmt(b / 2 ** 20, 1)} MiB`;

function table(head, rows) {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

/** The results as Markdown: what `pnpm bench` prints and bench/README.md shows. */
/**
 * The results as Markdown: `main` (core, http, cold, replay) and `e2ee`, each opened by the run's
 * date and machine, so that bench/README.md can hold each in its own block.
 */
function render(result) {
  const m = result.meta;
  const machine = `Run of ${m.date.slice(0, 10)}: Node ${m.node}, ${m.cpus} cores (${m.cpuModel}), load generator ${m.loadGenerator}, ${m.pinned ? 'server pinned to core 0, load generator and runner to core 1' : 'no core pinning (taskset missing or one core)'}${m.quick ? ', QUICK smoke run: numbers are meaningless' : ''}.`;
  const main = SECTIONS.some((s) => s !== 'e2ee' && result[s]) ? renderMain(result, machine) : undefined;
  const e2ee = result.e2ee ? [machine, ...renderE2ee(result.e2ee, m.params.e2ee)].join('\n') : undefined;
  return { main, e2ee, text: [main, e2ee].filter(Boolean).join('\n\n') };
}

function renderMain(result, machine) {
  const out = [machine];
  const m = result.meta;
  if (result.core) {
    out.push('', `**Core, per operation** (µs; warm caches; median of ${m.params.core.rounds} interleaved rounds of ${m.params.core.batch})`, '');
    if (result.core.error) out.push(`failed: ${result.core.error}`);
    else
      out.push(
        table(
          ['alg', 'authenticate', 'raw verify', 'ratio', `≤ ${AUTH_TARGET}x`, 'signResponse', 'raw sign', 'ratio', `≤ ${SIGN_TARGET}x`],
          result.core.map((r) => [r.alg, fmt(r.authenticateUs, 1), fmt(r.rawVerifyUs, 1), `${fmt(r.authenticateRatio, 2)}x`, yes(r.authenticateRatio <= AUTH_TARGET), fmt(r.signResponseUs, 1), fmt(r.rawSignUs, 1), `${fmt(r.signResponseRatio, 2)}x`, yes(r.signResponseRatio <= SIGN_TARGET)]),
        ),
      );
  }
  if (result.http) {
    const p = m.params.http;
    out.push('', `**HTTP, GET /hello on loopback** (req/s; median of ${p.reps} runs of ${p.duration} s, ${p.connections} connections, every oidc2 request with its own nonce)`, '');
    if (result.http.error) out.push(`failed: ${result.http.error}`);
    else {
      out.push(
        table(
          ['framework', 'hello world', 'bearer JWT (ES256)', 'oidc2 mutual auth', 'oidc2 / bearer', `≥ ${THROUGHPUT_TARGET}x (Express, Koa)`, 'bearer / hello', 'oidc2 / hello'],
          result.http.map((r) => [r.framework, fmt(r.helloRps), fmt(r.bearerRps), fmt(r.oidc2Rps), r.oidc2VsBearer ? `${fmt(r.oidc2VsBearer, 2)}x` : '—', r.framework === 'fastify' ? 'see below' : yes(r.oidc2VsBearer === undefined ? undefined : r.oidc2VsBearer >= THROUGHPUT_TARGET), r.bearerVsHello ? `${fmt(r.bearerVsHello, 2)}x` : '—', r.oidc2VsHello ? `${fmt(r.oidc2VsHello, 2)}x` : '—']),
        ),
      );
      const c = result.httpCrypto;
      if (c) {
        out.push(
          '',
          `*Per request* (µs, from the medians above; raw ES256 crypto from the core section: verify ${fmt(c.rawVerifyUs, 1)} µs, sign ${fmt(c.rawSignUs, 1)} µs). Own work: what each middleware adds over hello world minus the public-key operations it cannot avoid (bearer: one verify; oidc2: one verify and one sign); the ratio is the median of the per-run ratios`,
          '',
          table(
            ['framework', 'hello world', 'bearer adds', 'oidc2 adds', 'bearer own work', 'oidc2 own work', 'own-work ratio', `≤ ${OWN_WORK_TARGET}x (Fastify)`],
            result.http.map((r) => {
              const p = r.perRequest ?? {};
              return [r.framework, fmt(p.helloUs, 1), fmt(p.bearerAddsUs, 1), fmt(p.oidc2AddsUs, 1), fmt(p.bearerOwnUs, 1), fmt(p.oidc2OwnUs, 1), x(p.ownWorkRatio), r.framework === 'fastify' ? yes(typeof p.ownWorkRatio === 'number' ? p.ownWorkRatio <= OWN_WORK_TARGET : undefined) : '—'];
            }),
          ),
        );
      }
      for (const r of result.http) {
        if (r.error) out.push('', `${r.framework}: ${r.error}`);
        if (r.invalidRuns.length) out.push('', `${r.framework}: ${r.invalidRuns.length} run(s) discarded for non-2xx or socket errors: ${JSON.stringify(r.invalidRuns)}`);
      }
    }
  }
  if (result.cold) {
    const c = result.cold;
    out.push('', `**Cold path**: ${fmt(c.callers)} distinct callers' first requests fired at once ${c.via === 'core' ? 'at the core authenticator' : `at the ${c.via} adapter`}`, '');
    if (c.error) out.push(`failed: ${c.error}`);
    else
      out.push(
        table(
          ['server', 'JWKS fetches', 'exactly one', 'succeeded', 'p50 TTFB', 'p99 TTFB', 'max TTFB', 'p99 / hello p99', `≤ ${COLD_TARGET}x`],
          [
            [`${c.via} + oidc2`, fmt(c.jwksFetches), yes(c.jwksFetches === 1), `${fmt(c.ok)} / ${fmt(c.callers)}`, `${fmt(c.p50Ms, 1)} ms`, `${fmt(c.p99Ms, 1)} ms`, `${fmt(c.maxMs, 1)} ms`, c.helloBurst ? x(c.p99Ms / c.helloBurst.p99Ms) : '—', c.helloBurst ? yes(c.p99Ms / c.helloBurst.p99Ms <= COLD_TARGET) : '—'],
            ...(c.helloBurst ? [[`${c.via} hello world (same burst)`, '—', '—', `${fmt(c.helloBurst.ok)} / ${fmt(c.callers)}`, `${fmt(c.helloBurst.p50Ms, 1)} ms`, `${fmt(c.helloBurst.p99Ms, 1)} ms`, `${fmt(c.helloBurst.maxMs, 1)} ms`, '—', '—']] : []),
          ],
        ),
      );
  }
  if (result.replay) {
    const r = result.replay;
    out.push('', `**Replay store memory**: ${fmt(r.entries)} distinct nonces through the default MemoryReplayStore (${fmt(r.simulatedRate)} req/s simulated; median of ${r.pairs ?? '—'} paired runs)`, '');
    if (r.error) out.push(`failed: ${r.error}`);
    else
      out.push(
        table(
          ['bound (maxBytes)', 'table allocated', 'RSS growth', 'control RSS growth', 'store RSS (net)', `≤ bound (+${RSS_TOLERANCE * 100}%)`, 'entries held', 'checkAndRecord'],
          [[mib(r.boundBytes), mib(r.arrayBuffersGrowthBytes), mib(r.rssGrowthBytes), mib(r.controlRssGrowthBytes), mib(r.netRssGrowthBytes), yes(r.netRssGrowthBytes <= r.boundBytes * (1 + RSS_TOLERANCE)), fmt(r.heldAtEnd), `${fmt(r.checkAndRecordUs, 2)} µs`]],
        ),
      );
  }
  if (result.scale) {
    const r = result.scale;
    const p = m.params.scale;
    out.push('', `**Scaling and the replay store**: GET /hello with oidc2 mutual auth on ${r.framework ?? '—'} (req/s; median of ${p.reps} runs of ${p.duration} s, ${p.connections} connections; one process on core 0, two processes behind one port on both cores; Redis on 127.0.0.1, without persistence, on core 1)`, '');
    if (r.error) out.push(`failed: ${r.error}`);
    else {
      const v = r.variants;
      out.push(
        table(
          ['replay store', 'workers', 'req/s', 'ratio'],
          SCALE_VARIANTS.map((s) => [v[s.name].replayStore === 'redis' ? 'RedisReplayStore' : 'MemoryReplayStore', String(s.workers), fmt(v[s.name].rps), s.name === 'redis' ? `${x(r.redisVsMemory)} of memory (adds ${fmt(r.redisAddsUs, 1)} µs)` : s.name === 'redis-2' ? `${x(r.twoVsOneWorker)} of one worker` : '—']),
        ),
      );
      if (r.invalidRuns?.length) out.push('', `${r.invalidRuns.length} run(s) discarded for non-2xx or socket errors: ${JSON.stringify(r.invalidRuns)}`);
    }
  }
  return out.join('\n');
}

const x = (r, d = 2) => (typeof r === 'number' && Number.isFinite(r) ? `${fmt(r, d)}x` : '—');

function renderE2ee(e, p) {
  const out = [];
  out.push('', '**End-to-end encryption**', '');
  if (e.error) {
    out.push(`failed: ${e.error}`);
    return out;
  }
  const b = e.body;
  out.push(`*Body throughput*: ${b?.bytes ? mib(b.bytes) : '1 MiB'} in records of ${fmt(b?.recordSize)} octets (${fmt(b?.records)} AES-128-GCM operations) against raw \`node:crypto\` AES-128-GCM over the same records (µs per body; MiB/s; median of ${p.rounds} interleaved rounds of ${p.bodyBatch})`, '');
  if (!b || b.error) out.push(`failed: ${b?.error ?? 'not run'}`);
  else {
    const rows = [
      ['`encryptBody`', b.encryptUs, b.encryptMiBps, b.rawEncryptUs, b.rawEncryptMiBps, b.encryptRatio],
      ['`decryptBody`', b.decryptUs, b.decryptMiBps, b.rawDecryptUs, b.rawDecryptMiBps, b.decryptRatio],
    ];
    if (b.streams) {
      rows.push([`\`encryptBodyStream\` (${fmt(b.streamChunk / 1024)} KiB chunks)`, b.encryptStreamUs, b.encryptStreamMiBps, b.rawEncryptUs, b.rawEncryptMiBps, b.encryptStreamRatio]);
      rows.push([`\`decryptBodyStream\` (${fmt(b.streamChunk / 1024)} KiB chunks)`, b.decryptStreamUs, b.decryptStreamMiBps, b.rawDecryptUs, b.rawDecryptMiBps, b.decryptStreamRatio]);
    }
    out.push(
      table(
        ['operation', 'oidc2', 'MiB/s', 'raw GCM', 'MiB/s', 'oidc2 / raw', `≥ ${BODY_TARGET}x`],
        rows.map(([name, us, mbs, rawUs, rawMbs, ratio]) => [name, fmt(us, 0), fmt(mbs), fmt(rawUs, 0), fmt(rawMbs), x(ratio), yes(typeof ratio === 'number' ? ratio >= BODY_TARGET : undefined)]),
      ),
    );
  }

  out.push('', `*Handshake and rekey* per suite, in raw signature verifications (\`node:crypto\`, imported key; µs; median of ${p.rounds} interleaved rounds of ${p.exchangeBatch}). Service: \`acceptHandshake\` / \`acceptRekey\` and the new session token; caller: a fresh key pair and its share, then \`completeHandshake\` / \`completeRekey\``, '');
  if (!Array.isArray(e.exchange)) out.push(`failed: ${e.exchange?.error ?? 'not run'}`);
  else {
    const rows = [];
    for (const r of e.exchange) {
      if (!r.available) {
        rows.push([r.suite, '—', `not available (${r.reason})`, '—', '—', '—', '—', '—']);
        continue;
      }
      for (const side of ['service', 'caller']) {
        const h = `${side}Handshake`;
        const k = `${side}Rekey`;
        rows.push([r.suite, side, fmt(r[`${h}Us`], 0), x(r[`${h}VsES256`], 1), x(r[`${h}VsEd25519`], 1), fmt(r[`${k}Us`], 0), x(r[`${k}VsES256`], 1), x(r[`${k}VsEd25519`], 1)]);
      }
    }
    out.push(table(['suite', 'side', 'handshake', '× ES256 verify', '× Ed25519 verify', 'rekey', '× ES256 verify', '× Ed25519 verify'], rows));
    const first = e.exchange.find((r) => r.available);
    if (first) {
      const tv = e.exchange.filter((r) => r.available).map((r) => `${fmt(r.tokenVerifyUs, 0)} µs = ${x(r.tokenVerifyVsES256, 1)} (${r.suite} round)`);
      out.push('', `One raw verify: ES256 ${fmt(first.verifyES256Us, 1)} µs, Ed25519 ${fmt(first.verifyEd25519Us, 1)} µs (${first.suite} rounds). Reading a session token (every session request): ${tv.join(', ')} an ES256 verify.`);
    }
  }

  out.push('', `*Session request in process* (\`createOidc2Service\`: \`exchange(request).admit(body)\` and \`respond\`, the route echoing the body; requests signed beforehand; median of ${p.rounds} interleaved rounds)`, '');
  if (!Array.isArray(e.session)) out.push(`failed: ${e.session?.error ?? 'not run'}`);
  else
    out.push(
      table(
        ['JSON body', 'plaintext mutual auth', 'session request', 'session / plaintext', 'added per request'],
        e.session.map((r) => [`${fmt(r.bytes / 1024)} KiB`, `${fmt(r.plainRps)} req/s`, `${fmt(r.sessionRps)} req/s`, x(r.sessionVsPlain), `${fmt(r.addedUs, 0)} µs`]),
      ),
    );

  const h = p.http;
  out.push('', `*Session request over HTTP* (POST of a JSON body echoed by the route; req/s; median of ${h.reps} runs of ${h.duration} s, ${h.connections} connections; plaintext mutual auth to \`/echo\`, session requests to \`/sealed\` with \`encryption: 'required'\`, each variant on its own process of the same server)`, '');
  if (!Array.isArray(e.http)) out.push(`failed: ${e.http?.error ?? 'not run'}`);
  else {
    const rows = [];
    for (const r of e.http) {
      if (r.error && !r.sizes.length) rows.push([r.framework, '—', '—', '—', '—', '—', '—', '—']);
      for (const s of r.sizes) {
        const ok = s.symmetricVsBearer === undefined ? '' : s.symmetricVsBearer >= SYMMETRIC_TARGET ? ' (yes)' : ' (**no**)';
        rows.push([r.framework, `${fmt(s.bytes / 1024)} KiB`, fmt(s.plainRps), fmt(s.sessionRps), x(s.sessionVsPlain), fmt(s.symmetricRps), fmt(s.bearerRps), `${x(s.symmetricVsBearer)}${ok}`]);
      }
    }
    out.push(table(['framework', 'JSON body', 'plaintext mutual auth', 'session request', 'session / plaintext', 'symmetric session request', 'bearer JWT (ES256)', `symmetric session / bearer JWT (≥ ${SYMMETRIC_TARGET}x)`], rows));
    for (const r of e.http) {
      if (r.error) out.push('', `${r.framework}: ${r.error}`);
      if (r.invalidRuns?.length) out.push('', `${r.framework}: ${r.invalidRuns.length} run(s) discarded for non-2xx or socket errors: ${JSON.stringify(r.invalidRuns)}`);
    }
  }
  out.push('', `Symmetric session requests (docs/protocol.md section 7.11: \`e2ee.symmetric\`, hmac-sha256 under the session's keys, no ICT) go to \`/sealed\` of a third process with the mode on; the bearer-JWT middleware (ES256) takes the same JSON body in clear on \`POST /echo\` of a fourth; target ≥ ${SYMMETRIC_TARGET}x, ratio of back-to-back runs.`);
  if (Array.isArray(e.http) && e.http.some((r) => r.sizes.some((s) => s.budgetUs !== undefined))) {
    out.push('', `*Can the symmetric target be met on this framework?* (µs per request, this run: the framework's bare JSON echo of the same body without authentication, a fifth process; the time the ${SYMMETRIC_TARGET}x target leaves oidc2 over it, 1 / (${SYMMETRIC_TARGET} × bearer) − 1 / bare; what the bearer middleware and a symmetric session request add over it now; and the floor: the primitive calls the protocol makes a service perform for one such request — eleven HMAC, three SHA-256, two AES-128-GCM passes, one random draw — on bare node:crypto with nothing else, bench/lib/symmetric-floor.mjs)`, '');
    const rows = [];
    for (const r of e.http) {
      for (const s of r.sizes) {
        if (s.budgetUs === undefined) continue;
        rows.push([r.framework, `${fmt(s.bytes / 1024)} KiB`, fmt(s.bareRps), fmt(s.bearerAddedUs), fmt(s.budgetUs), fmt(s.symmetricAddedUs), fmt(s.floorUs, 1), s.reachable ? 'yes: floor within budget' : '**no**: the floor alone exceeds the budget']);
      }
    }
    out.push(table(['framework', 'JSON body', 'bare JSON echo (req/s)', 'bearer adds', `budget at ${SYMMETRIC_TARGET}x bearer`, 'symmetric adds now', 'floor of the primitives', 'reachable'], rows));
  }
  return out;
}

function targets(result) {
  const t = {};
  if (Array.isArray(result.core)) {
    t.coreAuthenticateWithin1_2x = Object.fromEntries(result.core.map((r) => [r.alg, r.authenticateRatio <= AUTH_TARGET]));
    t.coreSignResponseWithin1_4x = Object.fromEntries(result.core.map((r) => [r.alg, r.signResponseRatio <= SIGN_TARGET]));
  }
  if (Array.isArray(result.http)) {
    for (const r of result.http) {
      if (r.framework === 'fastify') t.fastifyOwnWorkWithin1_25x = typeof r.perRequest?.ownWorkRatio === 'number' ? r.perRequest.ownWorkRatio <= OWN_WORK_TARGET : null;
      else (t.oidc2AtLeast1_1xBearer ??= {})[r.framework] = r.oidc2VsBearer === undefined ? null : r.oidc2VsBearer >= THROUGHPUT_TARGET;
    }
  }
  if (result.cold && !result.cold.error) {
    t.coldSingleJwksFetch = result.cold.jwksFetches === 1 && result.cold.ok === result.cold.callers;
    if (result.cold.helloBurst) t.coldP99Within2xHello = result.cold.p99Ms / result.cold.helloBurst.p99Ms <= COLD_TARGET;
  }
  if (result.replay && !result.replay.error) t.replayUnderBound = result.replay.netRssGrowthBytes <= result.replay.boundBytes * (1 + RSS_TOLERANCE);
  const body = result.e2ee?.body;
  if (body && !body.error) {
    const ok = (r) => (typeof r === 'number' ? r >= BODY_TARGET : null);
    t.e2eeBodyWithin0_8x = { encrypt: ok(body.encryptRatio), decrypt: ok(body.decryptRatio), ...(body.streams ? { encryptStream: ok(body.encryptStreamRatio), decryptStream: ok(body.decryptStreamRatio) } : {}) };
  }
  // Symmetric session requests against the bearer-JWT middleware, per framework and body size.
  if (Array.isArray(result.e2ee?.http)) {
    t.e2eeSymmetricAtLeast1_5xBearer = Object.fromEntries(
      result.e2ee.http.map((r) => [r.framework, Object.fromEntries(r.sizes.map((s) => [`${s.bytes}`, s.symmetricVsBearer === undefined ? null : s.symmetricVsBearer >= SYMMETRIC_TARGET]))]),
    );
  }
  return t;
}

/**
 * Per request (µs) from the medians of one framework's row, and the own-work ratio: per run made back
 * to back, ((1/oidc2 - 1/hello) - (verify + sign)) / ((1/bearer - 1/hello) - verify), then the median.
 */
function perRequest(r, verifyUs, signUs) {
  const us = (rps) => (rps ? 1e6 / rps : undefined);
  const helloUs = us(r.helloRps);
  const bearerAddsUs = helloUs === undefined || !r.bearerRps ? undefined : us(r.bearerRps) - helloUs;
  const oidc2AddsUs = helloUs === undefined || !r.oidc2Rps ? undefined : us(r.oidc2Rps) - helloUs;
  const s = r.samples ?? {};
  const ratios = (s.oidc2 ?? []).map((o, i) => {
    const h = s.hello?.[i];
    const b = s.bearer?.[i];
    if (!o || !h || !b) return NaN;
    return (1e6 / o - 1e6 / h - (verifyUs + signUs)) / (1e6 / b - 1e6 / h - verifyUs);
  });
  const finite = ratios.filter(Number.isFinite);
  return {
    helloUs: helloUs && round(helloUs, 1),
    bearerAddsUs: bearerAddsUs && round(bearerAddsUs, 1),
    oidc2AddsUs: oidc2AddsUs && round(oidc2AddsUs, 1),
    bearerOwnUs: bearerAddsUs === undefined ? undefined : round(bearerAddsUs - verifyUs, 1),
    oidc2OwnUs: oidc2AddsUs === undefined ? undefined : round(oidc2AddsUs - verifyUs - signUs, 1),
    ownWorkRatio: finite.length ? round(median(finite), 3) : undefined,
  };
}

async function section(name, fn) {
  const started = Date.now();
  log(`${name} ...`);
  try {
    return await fn();
  } catch (error) {
    log(`${name} failed: ${error?.stack ?? error}`);
    return { error: String(error?.message ?? error).split('\n')[0] };
  } finally {
    log(`${name} took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const t = tools();
  if (args.autocannon) t.wrk = undefined;
  const P = args.quick ? PARAMS.quick : PARAMS.full;
  // The runner (presigning, the cold-path burst) stays off the server's core.
  if (t.taskset) execFileSync(t.taskset, ['-a', '-cp', '1', String(process.pid)], { stdio: 'ignore' });
  // `wrk -v` prints its version and exits non-zero.
  const wrkVersion = () => spawnSync(t.wrk, ['-v'], { encoding: 'utf8' }).stdout.split('\n')[0].split(' Copyright')[0].trim();
  const generator = t.wrk ? `${wrkVersion()} with bench/presigned.lua` : `autocannon ${rootRequire('autocannon/package.json').version} (${args.autocannon ? '--autocannon' : 'wrk not found'})`;
  log(`load generator: ${generator}; pinning: ${t.taskset ? 'taskset' : 'none'}`);

  const core = await loadPackage('core');
  const issuer = await newIssuer();
  const issuers = [{ issuer: issuer.issuer, jwks: issuer.jwks }];
  const tmp = mkdtempSync(join(tmpdir(), 'oidc2-bench-'));
  const result = {
    meta: {
      date: new Date().toISOString(),
      node: process.versions.node,
      cpus: t.cpus,
      cpuModel: cpus()[0]?.model?.trim() ?? 'unknown',
      loadGenerator: generator,
      pinned: Boolean(t.taskset),
      quick: args.quick,
      params: P,
    },
  };
  try {
    if (args.only.includes('core')) {
      result.core = await section('core', () => runJson(pinned(t, 0, [process.execPath, join(BENCH, 'lib', 'core-bench.mjs'), JSON.stringify(P.core)]), { timeoutMs: 600_000 }));
    }
    if (args.only.includes('http')) {
      result.http = await section('http', async () => {
        const callerKey = await newKey('ES256');
        const caller = signer(core, await issuer.mintIct(callerKey, 'alice'), await core.importKey(callerKey.privateJwk, 'ES256', 'sign'));
        return benchHttp({ t, core, issuer, issuers, caller, tmp, frameworks: args.frameworks, log, ...P.http });
      });
      if (Array.isArray(result.http)) {
        // The unavoidable public-key work, ES256 as in the HTTP section: from the core section of this
        // run, or measured now by the same child (pinned to the servers' core) when it did not run.
        const es256 = Array.isArray(result.core) ? result.core.find((r) => r.alg === 'ES256') : undefined;
        const raw = es256 ?? (await runJson(pinned(t, 0, [process.execPath, join(BENCH, 'lib', 'core-bench.mjs'), JSON.stringify({ ...P.core, algs: ['ES256'] })]), { timeoutMs: 600_000 }).then((rows) => rows[0]).catch(() => undefined));
        if (raw) {
          result.httpCrypto = { rawVerifyUs: raw.rawVerifyUs, rawSignUs: raw.rawSignUs };
          for (const r of result.http) r.perRequest = perRequest(r, raw.rawVerifyUs, raw.rawSignUs);
        }
      }
    }
    if (args.only.includes('cold')) {
      const framework = ['fastify', 'express', 'koa'].find((f) => existsSync(distEntry(f)));
      result.cold = await section('cold', () => benchCold({ t, core, issuer, tmp, framework, ...P.cold }));
    }
    if (args.only.includes('replay')) {
      result.replay = await section('replay', () => benchReplay(t, P.replay));
    }
    if (args.only.includes('scale')) {
      const framework = ['fastify', 'express', 'koa'].find((f) => existsSync(distEntry(f)) && existsSync(distEntry('redis')));
      result.scale = await section('scale', async () => {
        if (!framework) throw new Error('no adapter and packages/redis built: run pnpm build');
        const callerKey = await newKey('ES256');
        const caller = signer(core, await issuer.mintIct(callerKey, 'alice'), await core.importKey(callerKey.privateJwk, 'ES256', 'sign'));
        return benchScale({ t, issuer, issuers, caller, tmp, framework, log, ...P.scale });
      });
    }
    if (args.only.includes('e2ee')) {
      result.e2ee = await section('e2ee', async () => {
        const { http, ...inProcess } = P.e2ee;
        const e2ee = await runJson(pinned(t, 0, [process.execPath, join(BENCH, 'lib', 'e2ee-bench.mjs'), JSON.stringify(inProcess)]), { timeoutMs: 600_000 });
        e2ee.http = await benchE2eeHttp({ t, core, issuer, issuers, tmp, frameworks: args.frameworks, sizes: P.e2ee.sizes, log, ...http }).catch((error) => ({ error: String(error?.message ?? error).split('\n')[0] }));
        e2ee.symmetric = { implemented: true, target: SYMMETRIC_TARGET };
        return e2ee;
      });
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  result.targets = targets(result);

  const rendered = render(result);
  process.stdout.write(`\n${rendered.text}\n\n`);
  mkdirSync(dirname(args.out), { recursive: true });
  writeFileSync(args.out, `${JSON.stringify(result, null, 2)}\n`);
  log(`wrote ${relative(process.cwd(), args.out) || args.out}`);
  // Each block of bench/README.md is replaced by a run that made all of it: every section but e2ee
  // on every framework for the main block, the e2ee section on every framework for its own.
  const everyFramework = !args.quick && args.frameworks.length === FRAMEWORKS.length;
  if (everyFramework && SECTIONS.every((s) => s === 'e2ee' || args.only.includes(s))) updateReadme('results', rendered.main);
  if (everyFramework && args.only.includes('e2ee')) updateReadme('e2ee-results', rendered.e2ee);

  const e2eeFailed = (e) => e && ['body', 'exchange', 'session', 'http'].some((k) => e[k]?.error || (Array.isArray(e[k]) && e[k].some((r) => r.error)));
  const failed = SECTIONS.filter((s) => result[s]?.error || (Array.isArray(result[s]) && result[s].some((r) => r.error)) || (s === 'e2ee' && e2eeFailed(result[s])));
  if (failed.length) {
    log(`sections with errors: ${failed.join(', ')}`);
    process.exitCode = 1;
  }
}

/** Replaces a results block of bench/README.md (`<!-- name:start -->` to `<!-- name:end -->`) with this run's tables. */
function updateReadme(name, text) {
  const path = join(BENCH, 'README.md');
  if (!existsSync(path) || !text) return;
  const readme = readFileSync(path, 'utf8');
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const a = readme.indexOf(start);
  const b = readme.indexOf(end);
  if (a < 0 || b < a) return;
  writeFileSync(path, `${readme.slice(0, a + start.length)}\n${text}\n${readme.slice(b)}`);
  log(`updated ${name} in bench/README.md`);
}

await main();
