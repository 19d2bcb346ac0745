// HTTP, per framework, on loopback: requests per second of GET /hello (a) bare, (b) behind the
// framework's usual bearer-JWT middleware verifying an ES256 token, (c) behind oidc2 with full mutual
// authentication (ICT + request signature in, ICT + Content-Digest + signed response out).
// Servers run pinned to core 0, the load generator to core 1; measurements are short, repeated in
// rotating order and summarised by their median.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { distEntry } from './env.mjs';
import { AUDIENCE, ROUTE, newKey } from './credentials.mjs';
import { measure } from './load.mjs';
import { writePresigned } from './presign.mjs';
import { startServer } from './proc.mjs';
import { median, round } from './stats.mjs';

export const FRAMEWORKS = ['express', 'fastify', 'koa'];
const MODES = ['hello', 'bearer', 'oidc2'];

/**
 * Writes to `path` everything the servers need: Oidc2Options (trusted issuers, the service
 * credential) and the bearer middleware's key, issuer and audience; `extra` is merged in (e.g.
 * `replayRedis`, see bench/servers/common.mjs).
 */
export async function writeServerConfig(path, issuer, issuers, extra = {}) {
  const service = await newKey('ES256');
  const config = {
    oidc2: { issuers, audiences: [AUDIENCE], credential: { ict: await issuer.mintIct(service, 'api'), privateKey: service.privateJwk } },
    bearer: { publicPem: issuer.publicPem, issuer: issuer.issuer, audience: AUDIENCE },
    ...extra,
  };
  writeFileSync(path, JSON.stringify(config));
  return path;
}

/** Checks that a server does what its mode claims before it is measured: refuses and accepts. */
async function sanityCheck(core, port, mode, ctx) {
  const url = `http://127.0.0.1:${port}${ROUTE}`;
  const bare = await fetch(url);
  await bare.arrayBuffer();
  if (mode === 'hello') {
    if (bare.status !== 200) throw new Error(`hello answered ${bare.status}`);
    return;
  }
  if (bare.status !== 401) throw new Error(`${mode} accepted a request without credentials (${bare.status})`);
  if (mode === 'bearer') {
    const res = await fetch(url, { headers: { authorization: `Bearer ${ctx.bearer}` } });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`bearer rejected a valid token (${res.status})`);
    return;
  }
  const signed = await ctx.caller.sign();
  const headers = Object.entries(signed.headers).map(([k, v]) => [k, v.join(', ')]);
  const res = await fetch(url, { headers });
  const body = new Uint8Array(await res.arrayBuffer());
  if (res.status !== 200) throw new Error(`oidc2 rejected a signed request (${res.status}: ${new TextDecoder().decode(body)})`);
  for (const field of ['identity-certification-token', 'content-digest', 'signature-input', 'signature']) {
    if (!res.headers.get(field)) throw new Error(`oidc2 response lacks ${field}: the response is not signed`);
  }
  const replay = await fetch(url, { headers });
  await replay.arrayBuffer();
  if (replay.status !== 401) throw new Error(`oidc2 accepted a replayed request (${replay.status})`);
  // The caller's side: the response is signed by the service's ICT key and bound to this request.
  const response = { status: res.status, headers: core.normalizeFields(res.headers), body };
  await core.verifyResponse(response, { request: signed, binding: signed.binding, ictVerifier: ctx.ictVerifier });
}

/**
 * @param o { t, core, issuer, issuers, caller (presign.signer), tmp, frameworks, reps, duration,
 *            warmup, connections, log }
 */
export async function benchHttp(o) {
  const { t, core, tmp, log } = o;
  const configPath = await writeServerConfig(join(tmp, 'config.json'), o.issuer, o.issuers);
  const ctx = { caller: o.caller, bearer: await o.issuer.mintBearer('alice', AUDIENCE), ictVerifier: core.createIctVerifier({ issuers: o.issuers }) };
  const presigned = join(tmp, 'presigned.txt');
  const rows = [];
  for (const framework of o.frameworks) {
    const row = { framework, helloRps: null, bearerRps: null, oidc2Rps: null };
    const modes = existsSync(distEntry(framework)) ? MODES : MODES.filter((m) => m !== 'oidc2');
    if (modes.length < MODES.length) row.error = `packages/${framework} is not built: oidc2 not measured`;
    const servers = {};
    // samples[mode][rep]: requests per second, undefined for a discarded run.
    const samples = { hello: [], bearer: [], oidc2: [] };
    const p99 = { hello: [], bearer: [], oidc2: [] };
    const invalid = [];
    // Requests per second expected of oidc2, to size each batch of pre-signed requests.
    let expected = 2000;
    const one = async (mode, duration) => {
      const opts = { port: servers[mode].port, connections: o.connections, duration };
      if (mode === 'bearer') opts.headers = { Authorization: `Bearer ${ctx.bearer}` };
      for (let attempt = 0; ; attempt++) {
        if (mode === 'oidc2') {
          await writePresigned(o.caller, Math.ceil(expected * duration * 1.5) + 500, presigned);
          opts.presigned = presigned;
        }
        const r = await measure(t, opts);
        if (mode === 'oidc2') expected = Math.max(expected, r.rps);
        if (r.exhausted > 0 && attempt < 2) {
          expected *= 2;
          continue; // outlasted its pre-signed requests: repeat with more
        }
        return r;
      }
    };
    try {
      for (const mode of modes) {
        servers[mode] = await startServer(t, framework, mode, configPath);
        await sanityCheck(core, servers[mode].port, mode, ctx);
        if (o.warmup > 0) await one(mode, o.warmup);
      }
      for (let rep = 0; rep < o.reps; rep++) {
        // Rotate the order so slow drift of a shared machine does not favour one mode.
        const order = modes.map((_, i) => modes[(i + rep) % modes.length]);
        for (const mode of order) {
          const r = await one(mode, o.duration);
          if (r.non2xx > 0 || r.errors > 0 || r.exhausted > 0 || r.requests === 0) {
            invalid.push({ mode, rep, non2xx: r.non2xx, errors: r.errors, exhausted: r.exhausted });
            continue;
          }
          samples[mode][rep] = Math.round(r.rps);
          p99[mode].push(r.p99Ms);
        }
      }
    } catch (error) {
      log(`  ${framework} failed: ${error?.stack ?? error}`);
      row.error = String(error?.message ?? error).split('\n')[0];
    } finally {
      await Promise.all(Object.values(servers).map((s) => s.stop()));
    }
    for (const mode of MODES) {
      if (p99[mode].length) {
        row[`${mode}Rps`] = Math.round(median(samples[mode]));
        row[`${mode}P99Ms`] = round(median(p99[mode]));
      }
    }
    // Ratios of runs made back to back in the same repetition, then their median: more robust to
    // the machine's drift than a ratio of two medians.
    const ratio = (a, b) => {
      const r = samples[a].map((x, i) => (x && samples[b][i] ? x / samples[b][i] : NaN));
      return r.some(Number.isFinite) ? round(median(r), 3) : undefined;
    };
    row.oidc2VsBearer = ratio('oidc2', 'bearer');
    row.oidc2VsHello = ratio('oidc2', 'hello');
    row.bearerVsHello = ratio('bearer', 'hello');
    row.samples = samples;
    row.invalidRuns = invalid;
    rows.push(row);
    log(`  ${framework}: hello ${row.helloRps} req/s, bearer ${row.bearerRps} req/s, oidc2 ${row.oidc2Rps} req/s${row.error ? ` (${row.error})` : ''}`);
  }
  return rows;
}
