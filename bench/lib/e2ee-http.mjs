// End-to-end encryption over HTTP, per framework, on loopback: requests per second of a session
// request (public-key mode: the caller's ICT and signature, plus Oidc2-Session and an encrypted
// body; the response encrypted and signed) against a plaintext mutually authenticated request with
// the same JSON body, each answered by its own process of the same server
// (bench/servers/<framework>.mjs, mode e2ee) echoing the body it parsed. One process per variant,
// as the HTTP section has one per mode: a process that alternates between the two kinds of traffic
// pays for the switch (in trials on one process, a plaintext run right after a session run was
// 25-45% slower than the next plaintext run), which would
// land on whichever variant follows the other. Requests are signed (and encrypted) before each run
// and replayed once each by wrk through bench/presigned-body.lua (or by autocannon).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { distEntry, loadPackage } from './env.mjs';
import { AUDIENCE, newKey } from './credentials.mjs';
import { e2eeCaller, jsonBody } from './e2ee-caller.mjs';
import { measure } from './load.mjs';
import { writePresignedBodies } from './presign.mjs';
import { startServer } from './proc.mjs';
import { writeServerConfig } from './http-bench.mjs';
import { median, round } from './stats.mjs';

const VARIANTS = ['plain', 'session'];
const ROUTES = { plain: '/echo', session: '/sealed' };
/** A session is opened again when it is older than this (its token lives 600 s; signatures 300 s). */
const SESSION_REFRESH_SECONDS = 240;

/** Sends a request (as e2eeCaller builds it) to a bench server; resolves { status, headers, body }. */
function sender(core, port) {
  return async (req) => {
    const headers = Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : v]);
    const res = await fetch(`http://127.0.0.1:${port}${req.url}`, { method: req.method, headers, ...(req.body ? { body: req.body } : {}) });
    return { status: res.status, headers: core.normalizeFields(res.headers), body: new Uint8Array(await res.arrayBuffer()) };
  };
}

/**
 * Checks a server before it is measured: both routes answer a valid request with the body it sent;
 * the session answer is encrypted, signed and decrypts; `/sealed` refuses plaintext (401
 * e2ee_required) and replays; and @oidc2/client with `encryption: 'required'` gets the same answer
 * through its own handshake (its fetch goes to the loopback server).
 */
async function sanityCheck(ctx, sends, session, plaintext) {
  const { caller, core } = ctx;
  const plain = await caller.plain('POST', ROUTES.plain, plaintext);
  const r1 = await sends.plain(plain);
  const send = sends.session;
  if (r1.status !== 200) throw new Error(`plaintext POST answered ${r1.status}: ${new TextDecoder().decode(r1.body)}`);
  await core.verifyResponse(r1, { request: plain.signed, binding: plain.binding, ictVerifier: ctx.ictVerifier });
  if (JSON.parse(new TextDecoder().decode(r1.body)).data.length !== plaintext.length - 11) throw new Error('plaintext POST did not echo the body');

  const sealed = await caller.sealed(session, 'POST', ROUTES.session, plaintext);
  const r2 = await send(sealed);
  if (r2.status !== 200) throw new Error(`session POST answered ${r2.status}: ${new TextDecoder().decode(r2.body)}`);
  const opened = await caller.open(session, sealed, r2);
  if (JSON.parse(new TextDecoder().decode(opened)).data.length !== plaintext.length - 11) throw new Error('session POST did not echo the body');
  const replay = await send(sealed);
  if (replay.status !== 401) throw new Error(`a replayed session request was answered ${replay.status}`);
  const clear = await send(await caller.plain('POST', ROUTES.session, plaintext));
  if (clear.status !== 401) throw new Error(`a plaintext request to the required route was answered ${clear.status}`);

  if (ctx.client) {
    const res = await ctx.client(`${AUDIENCE}${ROUTES.session}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: plaintext });
    const text = await res.text();
    if (res.status !== 200 || res.encryption?.bodyEncrypted !== true || JSON.parse(text).data.length !== plaintext.length - 11) {
      throw new Error(`@oidc2/client (encryption: 'required') got ${res.status} ${JSON.stringify(res.encryption)}`);
    }
  }
}

/** @oidc2/client with encryption required, whose fetch sends what it addresses to AUDIENCE to the loopback port. */
async function loopbackClient(ctx, port) {
  if (!existsSync(distEntry('client'))) return undefined;
  const { createClient } = await loadPackage('client');
  return createClient({
    serviceIssuers: ctx.issuers,
    expectedService: 'api',
    getIct: (publicJwk) => ctx.issuer.mintIct({ alg: 'ES256', publicJwk }, 'alice'),
    encryption: 'required',
    fetch: (input, init) => {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      if (!url.startsWith(AUDIENCE)) throw new Error(`the bench client addressed ${url}`);
      const target = `http://127.0.0.1:${port}${url.slice(AUDIENCE.length)}`;
      return typeof input === 'string' || input instanceof URL ? fetch(target, init) : fetch(new Request(target, input), init);
    },
  });
}

/**
 * @param o { t, core, issuer, issuers, tmp, frameworks, sizes, reps, duration, warmup, connections, log }
 */
export async function benchE2eeHttp(o) {
  const { t, core, tmp, log } = o;
  const configPath = await writeServerConfig(join(tmp, 'e2ee-config.json'), o.issuer, o.issuers);
  const callerKey = await newKey('ES256');
  const ictVerifier = core.createIctVerifier({ issuers: o.issuers });
  const caller = e2eeCaller(core, {
    ict: await o.issuer.mintIct(callerKey, 'alice'),
    key: await core.importKey(callerKey.privateJwk, 'ES256', 'sign'),
    publicJwk: callerKey.publicJwk,
    ictVerifier,
  });
  const file = join(tmp, 'presigned-bodies.bin');
  const rows = [];
  for (const framework of o.frameworks) {
    if (!existsSync(distEntry(framework))) {
      rows.push({ framework, error: `packages/${framework} is not built: not measured`, sizes: [], invalidRuns: [] });
      continue;
    }
    const row = { framework, sizes: [], invalidRuns: [] };
    const servers = {};
    try {
      for (const v of VARIANTS) servers[v] = await startServer(t, framework, 'e2ee', configPath);
      const sends = { plain: sender(core, servers.plain.port), session: sender(core, servers.session.port) };
      const send = sends.session;
      const ctx = { caller, core, ictVerifier, issuer: o.issuer, issuers: o.issuers, client: await loopbackClient({ issuer: o.issuer, issuers: o.issuers }, servers.session.port) };
      let session = await caller.handshake(send);
      row.suite = session.suite;
      row.clientChecked = Boolean(ctx.client);
      const fresh = async () => {
        if (Date.now() / 1000 - session.openedAt > SESSION_REFRESH_SECONDS) session = await caller.handshake(send);
        return session;
      };
      for (const size of o.sizes) {
        const plaintext = jsonBody(size);
        await sanityCheck(ctx, sends, await fresh(), plaintext);
        // Requests per second expected of each variant, to size each batch of pre-signed requests.
        const expected = { plain: size > 16384 ? 800 : 1500, session: size > 16384 ? 500 : 1000 };
        const one = async (variant, duration) => {
          for (let attempt = 0; ; attempt++) {
            const s = await fresh();
            const make = variant === 'plain' ? () => caller.plain('POST', ROUTES.plain, plaintext) : () => caller.sealed(s, 'POST', ROUTES.session, plaintext);
            await writePresignedBodies(make, Math.ceil(expected[variant] * duration * 1.5) + 200, file);
            const r = await measure(t, { port: servers[variant].port, connections: o.connections, duration, bodies: file, path: ROUTES[variant] });
            expected[variant] = Math.max(expected[variant], r.rps);
            if (r.exhausted > 0 && attempt < 2) {
              expected[variant] *= 2;
              continue; // outlasted its pre-signed requests: repeat with more
            }
            return r;
          }
        };
        const samples = { plain: [], session: [] };
        const p99 = { plain: [], session: [] };
        if (o.warmup > 0) for (const v of VARIANTS) await one(v, o.warmup);
        for (let rep = 0; rep < o.reps; rep++) {
          // Alternate the order so slow drift of a shared machine does not favour one variant.
          const order = rep % 2 ? [...VARIANTS].reverse() : VARIANTS;
          for (const variant of order) {
            const r = await one(variant, o.duration);
            if (r.non2xx > 0 || r.errors > 0 || r.exhausted > 0 || r.requests === 0) {
              row.invalidRuns.push({ size, variant, rep, non2xx: r.non2xx, errors: r.errors, exhausted: r.exhausted });
              continue;
            }
            samples[variant][rep] = Math.round(r.rps);
            p99[variant].push(r.p99Ms);
          }
        }
        const ratios = samples.session.map((x, i) => (x && samples.plain[i] ? x / samples.plain[i] : NaN));
        const entry = {
          bytes: size,
          plainRps: samples.plain.some(Boolean) ? Math.round(median(samples.plain)) : null,
          sessionRps: samples.session.some(Boolean) ? Math.round(median(samples.session)) : null,
          plainP99Ms: round(median(p99.plain)),
          sessionP99Ms: round(median(p99.session)),
          // Ratios of runs made back to back, then their median (as in the HTTP section).
          sessionVsPlain: ratios.some(Number.isFinite) ? round(median(ratios), 3) : undefined,
          samples,
        };
        row.sizes.push(entry);
        log(`  ${framework} ${size} B: plaintext ${entry.plainRps} req/s, session ${entry.sessionRps} req/s (${entry.sessionVsPlain}x)`);
      }
    } catch (error) {
      log(`  ${framework} failed: ${error?.stack ?? error}`);
      row.error = String(error?.message ?? error).split('\n')[0];
    } finally {
      await Promise.all(Object.values(servers).map((s) => s.stop()));
    }
    rows.push(row);
  }
  return rows;
}
