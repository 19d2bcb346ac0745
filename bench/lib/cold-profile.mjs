// What a new caller costs, in process: N callers (own keys, own ICTs) verified once each by a fresh
// ICT verifier (empty caches; the issuer's key imported beforehand), and authenticated and answered
// (authenticate + signResponse) by a fresh service. With a second build of @oidc2/core (its
// dist/esm/index.js) both builds are measured in alternating rounds, for before/after comparisons
// on a shared machine. Prints one JSON line of µs per new caller. Run with --cpu-prof to see the split.
//
// Usage: node bench/lib/cold-profile.mjs [callers=500] [other dist/esm/index.js]
import { pathToFileURL } from 'node:url';
import { loadPackage } from './env.mjs';
import { AUDIENCE, ROUTE, newIssuer, newKey } from './credentials.mjs';
import { median, round } from './stats.mjs';

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
