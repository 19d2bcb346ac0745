// End-to-end encryption over HTTP, per framework, on loopback: requests per second of a session
// request (public-key mode: the caller's ICT and signature, plus Oidc2-Session and an encrypted
// body; the response encrypted and signed) against a plaintext mutually authenticated request with
// the same JSON body, each answered by its own process of the same server
// (bench/servers/<framework>.mjs, mode e2ee) echoing the body it parsed; and a symmetric session
// request (docs/protocol.md section 7.11: hmac-sha256 under K_c2s, the response under K_s2c, on a
// server whose oidc2 has e2ee.symmetric) against the framework's bearer-JWT middleware (mode bearer,
// an ES256 token) taking the same JSON body in clear. One process per variant,
// as the HTTP section has one per mode: a process that alternates between the two kinds of traffic
// pays for the switch (in trials on one process, a plaintext run right after a session run was
// 25-45% slower than the next plaintext run), which would
// land on whichever variant follows the other. Requests are signed (and encrypted) before each run
// and replayed once each by wrk through bench/presigned-body.lua (or by autocannon).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { distEntry, loadAdapter, loadPackage } from './env.mjs';
import { AUDIENCE, newKey } from './credentials.mjs';
import { e2eeCaller, jsonBody } from './e2ee-caller.mjs';
import { measure } from './load.mjs';
import { writePresignedBodies } from './presign.mjs';
import { startServer } from './proc.mjs';
import { writeServerConfig } from './http-bench.mjs';
import { median, round } from './stats.mjs';
import { symmetricFloorUs } from './symmetric-floor.mjs';

/**
 * Whether the symmetric target can be met at all on this framework: the time per request it leaves
 * oidc2 over the bare framework's JSON echo (1 / (1.5 x bearer) - 1 / bare), against what a symmetric
 * request adds now (1 / symmetric - 1 / bare) and against the least the protocol's primitives cost
 * (bench/lib/symmetric-floor.mjs), all in µs per request of this run.
 */
function budget(bareRps, bearerRps, symmetricRps, floorUs) {
  if (!bareRps || !bearerRps) return { floorUs };
  const budgetUs = round(1e6 / (SYMMETRIC_TARGET * bearerRps) - 1e6 / bareRps, 1);
  return {
    bareRps,
    floorUs,
    budgetUs,
    ...(symmetricRps ? { symmetricAddedUs: round(1e6 / symmetricRps - 1e6 / bareRps, 1) } : {}),
    bearerAddedUs: round(1e6 / bearerRps - 1e6 / bareRps, 1),
    reachable: budgetUs > floorUs,
  };
}

const VARIANTS = ['plain', 'session', 'symmetric', 'bearer', 'bare'];
const ROUTES = { plain: '/echo', session: '/sealed', symmetric: '/sealed', bearer: '/echo', bare: '/echo' };
/** The server mode of each variant, and whether its oidc2 has e2ee.symmetric. `bare`: the framework's JSON echo, no authentication. */
const SERVER_MODES = { plain: 'e2ee', session: 'e2ee', symmetric: 'e2ee', bearer: 'bearer', bare: 'hello' };
/** Symmetric session requests against the bearer-JWT middleware. */
const SYMMETRIC_TARGET = 1.5;
const adapter = await loadAdapter();

/**
 * A symmetric session request (docs/protocol.md section 7.11) as @oidc2/client makes it: the body
 * encrypted under K_req of its nonce, signed with hmac-sha256 under K_c2s; no ICT.
 */
async function macSealed(core, session, method, path, plaintext) {
  const nonce = core.createNonce();
  const audience = AUDIENCE + path;
  const body = await adapter.encryptBody(await adapter.requestKey({ rk: session.rk, sid: session.sid, nonce, method, audience }), plaintext);
  const headers = { host: new URL(AUDIENCE).host, [adapter.SESSION_FIELD]: [adapter.serializeSession(session.token)], 'content-type': ['application/json'], 'content-encoding': ['aes128gcm'] };
  session.macKeys ??= await adapter.macKeys(session.rk, session.sid);
  const signed = await core.signSessionMacRequest({ method, url: audience, headers, body }, { key: session.macKeys.c2s, nonce, audience, expiresIn: 300 });
  return { method, url: path, headers: signed.headers, body, nonce, signed };
}

/**
 * A bearer request with the same JSON body. The load generators replay requests in one format that
 * carries a signature and digest per request: the bearer request carries a real Content-Digest and
 * two placeholder signature fields (about 30 octets) the bearer middleware ignores.
 */
function bearerRequest(core, token, plaintext) {
  return async () => ({
    method: 'POST',
    url: ROUTES.bearer,
    headers: { ...(token === undefined ? {} : { authorization: [`Bearer ${token}`] }), 'content-type': ['application/json'], 'signature-input': ['b=()'], signature: ['b=:AA==:'], 'content-digest': [await core.createContentDigest(plaintext)] },
    body: plaintext,
  });
}
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
async function sanityCheck(ctx, sends, session, plaintext, macSession) {
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

  // The symmetric session: answered, MAC-signed under K_s2c, decrypts; a replay is refused.
  const mac = await macSealed(core, macSession, 'POST', ROUTES.symmetric, plaintext);
  const r3 = await sends.symmetric(mac);
  if (r3.status !== 200) throw new Error(`symmetric session POST answered ${r3.status}: ${new TextDecoder().decode(r3.body)}`);
  await core.verifySessionMacResponse(r3, { request: mac.signed, nonce: mac.nonce, key: macSession.macKeys.s2c });
  const echoed = await adapter.decryptBody(await adapter.responseKey({ rk: macSession.rk, sid: macSession.sid, nonce: mac.nonce, status: 200 }), r3.body);
  if (JSON.parse(new TextDecoder().decode(echoed)).data.length !== plaintext.length - 11) throw new Error('symmetric session POST did not echo the body');
  if ((await sends.symmetric(mac)).status !== 401) throw new Error('a replayed symmetric session request was not refused');
  // The bearer route: answers a valid token with the body, refuses none.
  const bearer = await ctx.bearerRequest();
  const r4 = await sends.bearer(bearer);
  if (r4.status !== 200 || JSON.parse(new TextDecoder().decode(r4.body)).data.length !== plaintext.length - 11) throw new Error(`bearer POST answered ${r4.status}`);
  if ((await sends.bearer({ ...bearer, headers: { 'content-type': ['application/json'] } })).status !== 401) throw new Error('the bearer route accepted a request without a token');
  // The bare framework's echo: no authentication at all.
  const r5 = await sends.bare(await ctx.bareRequest());
  if (r5.status !== 200 || JSON.parse(new TextDecoder().decode(r5.body)).data.length !== plaintext.length - 11) throw new Error(`the bare JSON echo answered ${r5.status}`);

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
  // The same service with symmetric session authentication on.
  const symmetricConfig = JSON.parse(readFileSync(configPath, 'utf8'));
  symmetricConfig.oidc2.e2ee = { symmetric: true };
  const symmetricPath = join(tmp, 'e2ee-symmetric-config.json');
  writeFileSync(symmetricPath, JSON.stringify(symmetricConfig));
  const bearerToken = await o.issuer.mintBearer('alice', AUDIENCE);
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
      for (const v of VARIANTS) servers[v] = await startServer(t, framework, SERVER_MODES[v], v === 'symmetric' ? symmetricPath : configPath);
      const sends = Object.fromEntries(VARIANTS.map((v) => [v, sender(core, servers[v].port)]));
      const send = sends.session;
      const ctx = { caller, core, ictVerifier, issuer: o.issuer, issuers: o.issuers, client: await loopbackClient({ issuer: o.issuer, issuers: o.issuers }, servers.session.port) };
      let session = await caller.handshake(send);
      let macSession = await caller.handshake(sends.symmetric);
      row.suite = session.suite;
      row.clientChecked = Boolean(ctx.client);
      const fresh = async () => {
        if (Date.now() / 1000 - session.openedAt > SESSION_REFRESH_SECONDS) session = await caller.handshake(send);
        return session;
      };
      const freshMac = async () => {
        if (Date.now() / 1000 - macSession.openedAt > SESSION_REFRESH_SECONDS) macSession = await caller.handshake(sends.symmetric);
        return macSession;
      };
      for (const size of o.sizes) {
        const plaintext = jsonBody(size);
        const floorUs = symmetricFloorUs(size);
        ctx.bearerRequest = bearerRequest(core, bearerToken, plaintext);
        const bareRequest = bearerRequest(core, undefined, plaintext);
        ctx.bareRequest = bareRequest;
        await sanityCheck(ctx, sends, await fresh(), plaintext, await freshMac());
        // Requests per second expected of each variant, to size each batch of pre-signed requests.
        const expected = { plain: size > 16384 ? 800 : 1500, session: size > 16384 ? 500 : 1000, symmetric: size > 16384 ? 800 : 2000, bearer: size > 16384 ? 1000 : 3000, bare: size > 16384 ? 2000 : 6000 };
        const one = async (variant, duration) => {
          for (let attempt = 0; ; attempt++) {
            const s = await fresh();
            const m = await freshMac();
            const makers = {
              plain: () => caller.plain('POST', ROUTES.plain, plaintext),
              session: () => caller.sealed(s, 'POST', ROUTES.session, plaintext),
              symmetric: () => macSealed(core, m, 'POST', ROUTES.symmetric, plaintext),
              bearer: ctx.bearerRequest,
              bare: bareRequest,
            };
            const make = makers[variant];
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
        const samples = Object.fromEntries(VARIANTS.map((v) => [v, []]));
        const p99 = Object.fromEntries(VARIANTS.map((v) => [v, []]));
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
        const symmetricRatios = samples.symmetric.map((x, i) => (x && samples.bearer[i] ? x / samples.bearer[i] : NaN));
        const rps = (v) => (samples[v].some(Boolean) ? Math.round(median(samples[v].filter(Boolean))) : null);
        const entry = {
          bytes: size,
          plainRps: samples.plain.some(Boolean) ? Math.round(median(samples.plain)) : null,
          sessionRps: samples.session.some(Boolean) ? Math.round(median(samples.session)) : null,
          plainP99Ms: round(median(p99.plain)),
          sessionP99Ms: round(median(p99.session)),
          // Ratios of runs made back to back, then their median (as in the HTTP section).
          sessionVsPlain: ratios.some(Number.isFinite) ? round(median(ratios), 3) : undefined,
          symmetricRps: rps('symmetric'),
          bearerRps: rps('bearer'),
          symmetricP99Ms: round(median(p99.symmetric)),
          bearerP99Ms: round(median(p99.bearer)),
          // Symmetric session request against the bearer-JWT middleware (target >= 1.5x), paired runs.
          symmetricVsBearer: symmetricRatios.some(Number.isFinite) ? round(median(symmetricRatios.filter(Number.isFinite)), 3) : undefined,
          ...budget(rps('bare'), rps('bearer'), rps('symmetric'), floorUs),
          samples,
        };
        row.sizes.push(entry);
        log(`  ${framework} ${size} B: plaintext ${entry.plainRps} req/s, session ${entry.sessionRps} req/s (${entry.sessionVsPlain}x); symmetric ${entry.symmetricRps} req/s, bearer ${entry.bearerRps} req/s (${entry.symmetricVsBearer}x)`);
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
