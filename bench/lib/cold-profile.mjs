// What a new caller costs, in process: N callers (own keys, own ICTs) verified once each by a fresh
// ICT verifier (empty caches; the issuer's key imported beforehand), and authenticated and answered
// (authenticate + signResponse) by a fresh service. With a second build of @oidc2/core (its
// dist/esm/index.js) both builds are measured in alternating rounds, for before/after comparisons
// on a shared machine. Prints one JSON line of µs per new caller. Run with --cpu-prof to see the split.
//
// With --fresh, what the cold burst costs a freshly started process, without the connections: each
// round starts a new process per build (pinned to core 0 when taskset exists, as the bench's
// servers are) that has never fetched the issuer's keys (a JWKS server on 127.0.0.1, as in
// cold.mjs) and takes all N new callers at once: their ICTs through a verifier (`ict`), and their
// requests through a service's authenticate and signResponse (`service`). CPU time of the whole
// process (every thread: the JIT compiles on its own threads), wall time and minor page faults,
// per new caller, medians of the rounds. BENCH_SERVER_ARGS passes node flags to those processes, as
// to the bench's servers (`--cpu-prof --cpu-prof-dir=DIR` for their profiles).
//
// Usage: node bench/lib/cold-profile.mjs [callers=500] [other dist/esm/index.js]
//        node bench/lib/cold-profile.mjs --fresh [callers=1000] [rounds=7] [other dist/esm/index.js]
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { distEntry, loadPackage, pinned, tools } from './env.mjs';
import { AUDIENCE, ROUTE, newIssuer, newKey } from './credentials.mjs';
import { median, round } from './stats.mjs';
import { run } from './proc.mjs';

async function inProcess() {
  const count = Number(process.argv[2] ?? 500);
  const builds = { current: await loadPackage('core') };
  if (process.argv[3]) builds.other = await import(pathToFileURL(process.argv[3]).href);
  const core = builds.current;
  const issuer = await newIssuer();
  const issuers = [{ issuer: issuer.issuer, jwks: issuer.jwks }];
  const host = new URL(AUDIENCE).host;
  const callers = [];
  for (let i = 0; i < count; i++) {
    const key = await newKey('ES256');
    callers.push({ ict: await issuer.mintIct(key, `caller-${i}`), handle: await core.importKey(key.privateJwk, 'ES256', 'sign') });
  }
  const sign = async () => {
    const out = [];
    for (const c of callers) {
      const signed = await core.signRequest({ method: 'GET', url: AUDIENCE + ROUTE, headers: { host } }, { ict: c.ict, key: c.handle, expiresIn: 300 });
      out.push({ method: 'GET', url: ROUTE, headers: signed.headers });
    }
    return out;
  };
  const service = await newKey('ES256');
  const serviceIct = await issuer.mintIct(service, 'api');
  const response = { status: 200, headers: { 'content-type': ['application/json; charset=utf-8'] }, body: new TextEncoder().encode('{"hello":"world"}') };

  // CPU time of the whole process (every thread: WebCrypto runs on libuv's pool), in µs. On a machine
  // shared with other work, wall time favours whatever runs on more threads; CPU time is the cost.
  const cpu = () => {
    const u = process.cpuUsage();
    return u.user + u.system;
  };

  async function round1(build) {
    const verifier = build.createIctVerifier({ issuers });
    await verifier.verify(await issuer.mintIct(await newKey('ES256'), 'warm')); // the issuer key, imported once
    let t = performance.now();
    let c0 = cpu();
    for (const c of callers) await verifier.verify(c.ict);
    const ictUs = ((performance.now() - t) * 1000) / count;
    const ictCpuUs = (cpu() - c0) / count;
    const requests = await sign();
    const oidc2 = build.createOidc2Service({ issuers, audiences: [AUDIENCE], credential: { ict: serviceIct, privateKey: service.privateJwk } });
    await oidc2.authenticate(requests[0]).catch(() => undefined);
    t = performance.now();
    c0 = cpu();
    for (const request of requests.slice(1)) {
      const { identity } = await oidc2.authenticate(request);
      await oidc2.signResponse(response, request, identity.binding);
    }
    return { ictUs, ictCpuUs, fullUs: ((performance.now() - t) * 1000) / (count - 1), fullCpuUs: (cpu() - c0) / (count - 1) };
  }

  const m = Object.fromEntries(Object.keys(builds).map((k) => [k, { ict: [], ictCpu: [], full: [], fullCpu: [] }]));
  for (let r = 0; r < 5; r++) {
    for (const name of r % 2 ? Object.keys(builds).reverse() : Object.keys(builds)) {
      const x = await round1(builds[name]);
      m[name].ict.push(x.ictUs);
      m[name].ictCpu.push(x.ictCpuUs);
      m[name].full.push(x.fullUs);
      m[name].fullCpu.push(x.fullCpuUs);
    }
  }
  const out = { callers: count };
  for (const [name, v] of Object.entries(m)) {
    out[name] = { ictVerifyUs: round(median(v.ict), 1), ictVerifyCpuUs: round(median(v.ictCpu), 1), authenticateAndSignUs: round(median(v.full), 1), authenticateAndSignCpuUs: round(median(v.fullCpu), 1) };
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

const RESPONSE = { status: 200, headers: { 'content-type': ['application/json; charset=utf-8'] }, body: new TextEncoder().encode('{"hello":"world"}') };

/** Fresh-process rounds: mints the callers once, then alternates builds, a new process per measurement. */
async function fresh(count, rounds, other) {
  const { jwksServer } = await import('./cold.mjs');
  const t = tools();
  const flags = (process.env.BENCH_SERVER_ARGS ?? '').split(' ').filter(Boolean);
  const core = await loadPackage('core');
  const issuer = await newIssuer();
  const jwks = await jwksServer(issuer.jwks);
  const dir = mkdtempSync(join(tmpdir(), 'oidc2-cold-'));
  try {
    const host = new URL(AUDIENCE).host;
    const icts = [];
    const requests = [];
    for (let i = 0; i < count; i++) {
      const key = await newKey('ES256');
      const ict = await issuer.mintIct(key, `caller-${i}`);
      const signed = await core.signRequest({ method: 'GET', url: AUDIENCE + ROUTE, headers: { host } }, { ict, key: await core.importKey(key.privateJwk, 'ES256', 'sign'), expiresIn: 300 });
      icts.push(ict);
      requests.push({ method: 'GET', url: ROUTE, headers: signed.headers });
    }
    const service = await newKey('ES256');
    const file = join(dir, 'callers.json');
    writeFileSync(file, JSON.stringify({ issuer: issuer.issuer, jwksUri: jwks.uri, icts, requests, credential: { ict: await issuer.mintIct(service, 'api'), privateKey: service.privateJwk } }));
    const builds = { current: distEntry('core'), ...(other ? { other } : {}) };
    const m = {};
    for (let r = 0; r < rounds; r++) {
      for (const name of r % 2 ? Object.keys(builds).reverse() : Object.keys(builds)) {
        for (const measure of ['ict', 'service']) {
          const before = jwks.fetches;
          const argv = pinned(t, 0, [process.execPath, ...flags, fileURLToPath(import.meta.url), '--child', builds[name], file, measure]);
          // Not spawnSync: the JWKS server answers from this process's event loop.
          const { code, stdout, stderr } = await run(argv, { timeoutMs: 300_000 });
          if (code !== 0) throw new Error(`${name}/${measure} failed (exit ${code}):\n${stderr.slice(-4000)}`);
          const x = JSON.parse(stdout.trim().split('\n').pop());
          if (x.ok !== count || jwks.fetches !== before + 1) throw new Error(`${name}/${measure}: ${x.ok} of ${count} accepted (${x.error}), ${jwks.fetches - before} JWKS fetches`);
          process.stderr.write(`round ${r} ${name} ${measure}: ${JSON.stringify(x)}\n`);
          for (const [k, v] of Object.entries(x)) if (typeof v === 'number') ((m[name] ??= {})[`${measure}.${k}`] ??= []).push(v);
        }
      }
    }
    const out = { callers: count, rounds };
    for (const [name, v] of Object.entries(m)) {
      out[name] = {};
      for (const measure of ['ict', 'service']) out[name][measure] = { cpuUs: round(median(v[`${measure}.cpuUs`]), 1), wallUs: round(median(v[`${measure}.wallUs`]), 1), faults: round(median(v[`${measure}.faults`]), 2) };
    }
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await jwks.close();
  }
}

/** One fresh process: every new caller at once, through one build, measured from the first to the last answer. */
async function child(entry, file, measure) {
  const build = await import(pathToFileURL(entry).href);
  const { issuer, jwksUri, icts, requests, credential } = JSON.parse(readFileSync(file, 'utf8'));
  const issuers = [{ issuer, jwksUri }];
  let burst;
  if (measure === 'ict') {
    const verifier = build.createIctVerifier({ issuers });
    burst = () => icts.map((ict) => verifier.verify(ict));
  } else {
    const oidc2 = build.createOidc2Service({ issuers, audiences: [AUDIENCE], credential });
    await oidc2.ready();
    burst = () => requests.map(async (request) => oidc2.signResponse(RESPONSE, request, (await oidc2.authenticate(request)).identity.binding));
  }
  const usage = () => {
    const u = process.resourceUsage();
    return { cpu: u.userCPUTime + u.systemCPUTime, faults: u.minorPageFault, at: performance.now() };
  };
  const a = usage();
  const settled = await Promise.allSettled(burst());
  const b = usage();
  const n = settled.length;
  const failed = settled.find((s) => s.status === 'rejected');
  process.stdout.write(`${JSON.stringify({ ok: settled.filter((s) => s.status === 'fulfilled').length, ...(failed ? { error: String(failed.reason?.code ?? failed.reason) } : {}), cpuUs: (b.cpu - a.cpu) / n, wallUs: ((b.at - a.at) * 1000) / n, faults: (b.faults - a.faults) / n })}\n`);
  process.exit(0);
}

if (process.argv[2] === '--child') await child(...process.argv.slice(3));
else if (process.argv[2] === '--fresh') await fresh(Number(process.argv[3] ?? 1000), Number(process.argv[4] ?? 7), process.argv[5]);
else await inProcess();
