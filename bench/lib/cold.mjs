// Cold path: N distinct callers (own keys, own ICTs from one issuer) send their first request at the
// same moment to a service that has never fetched the issuer's keys. A real JWKS server on loopback
// counts fetches: single-flight means exactly one. Reports time to first byte under that burst, and
// (from /proc, where there is one) the CPU time each server spent on it.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { AUDIENCE, ROUTE, newKey } from './credentials.mjs';
import { signer } from './presign.mjs';
import { startServer } from './proc.mjs';
import { percentile, round } from './stats.mjs';
import { writeServerConfig } from './http-bench.mjs';

/** A JWKS endpoint on 127.0.0.1 that counts how often it is fetched. */
export async function jwksServer(jwks) {
  let fetches = 0;
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/jwks') {
      fetches++;
      res.writeHead(200, { 'content-type': 'application/jwk-set+json', 'cache-control': 'max-age=300' });
      res.end(JSON.stringify(jwks));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    uri: `http://127.0.0.1:${server.address().port}/jwks`,
    get fetches() {
      return fetches;
    },
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

async function callers(o, count) {
  const out = [];
  for (let i = 0; i < count; i++) {
    const key = await newKey('ES256');
    const handle = await o.core.importKey(key.privateJwk, 'ES256', 'sign');
    out.push(await signer(o.core, await o.issuer.mintIct(key, `caller-${i}`), handle).sign());
  }
  return out;
}

/** Fires every request at once at a real adapter server; resolves the per-request results. */
function burstHttp(port, requests) {
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  const start = performance.now();
  return Promise.all(
    requests.map(
      (signed) =>
        new Promise((resolve) => {
          const headers = {};
          for (const [k, v] of Object.entries(signed.headers)) headers[k] = v.join(', ');
          const req = http.request({ host: '127.0.0.1', port, path: ROUTE, method: 'GET', headers, agent }, (res) => {
            const ttfb = performance.now() - start;
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode, ms: ttfb }));
          });
          req.on('error', (e) => resolve({ status: 0, ms: performance.now() - start, error: e.code }));
          req.end();
        }),
    ),
  );
}

/** The same burst straight at the core authenticator (when no adapter is built). */
function burstCore(authenticator, requests) {
  const start = performance.now();
  return Promise.all(
    requests.map((signed) =>
      authenticator
        .authenticate({ method: 'GET', url: ROUTE, headers: signed.headers })
        .then(() => ({ status: 200, ms: performance.now() - start }))
        .catch((e) => ({ status: e.status ?? 0, ms: performance.now() - start, error: e.code })),
    ),
  );
}

// CPU time (user + system, every thread) a process has used, in ms, from /proc; undefined where
// there is none. Less sensitive than the time to first byte to other work sharing the machine.
let clockTicks;
function cpuMs(pid) {
  try {
    clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })) || 100;
    // Fields after the command name (which may contain spaces): utime and stime are the 12th and 13th.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ').pop().split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks;
  } catch {
    return undefined;
  }
}

/** The burst at a started server, with the CPU time the server spent on it (when /proc says). */
async function measuredBurst(server, requests) {
  const before = cpuMs(server.pid);
  const results = await burstHttp(server.port, requests);
  const after = cpuMs(server.pid);
  return { results, serverCpuMs: before === undefined || after === undefined ? undefined : round(after - before, 0) };
}

function summary(results) {
  const ms = results.map((r) => r.ms);
  const failures = {};
  for (const r of results) if (r.status !== 200) failures[r.error ?? r.status] = (failures[r.error ?? r.status] ?? 0) + 1;
  return {
    ok: results.filter((r) => r.status === 200).length,
    failures,
    p50Ms: round(percentile(ms, 50)),
    p99Ms: round(percentile(ms, 99)),
    maxMs: round(Math.max(...ms)),
  };
}

/**
 * @param o { t, core, issuer, tmp, callers, framework (or undefined for the core) }
 */
export async function benchCold(o) {
  const jwks = await jwksServer(o.issuer.jwks);
  const issuers = [{ issuer: o.issuer.issuer, jwksUri: jwks.uri }];
  let server;
  try {
    const requests = await callers(o, o.callers);
    let results;
    let serverCpuMs;
    let fetchesBefore;
    let baseline;
    if (o.framework) {
      const configPath = await writeServerConfig(join(o.tmp, 'cold-config.json'), o.issuer, issuers);
      // The same burst at the same framework without authentication: what 1,000 new connections
      // cost by themselves on this machine.
      server = await startServer(o.t, o.framework, 'hello', configPath);
      const hello = await measuredBurst(server, requests);
      baseline = { ...summary(hello.results), serverCpuMs: hello.serverCpuMs };
      await server.stop();
      server = await startServer(o.t, o.framework, 'oidc2', configPath);
      fetchesBefore = jwks.fetches;
      ({ results, serverCpuMs } = await measuredBurst(server, requests));
    } else {
      const authenticator = o.core.createAuthenticator({ issuers, audiences: [AUDIENCE] });
      fetchesBefore = jwks.fetches;
      results = await burstCore(authenticator, requests);
    }
    return {
      callers: o.callers,
      via: o.framework ?? 'core',
      jwksFetches: jwks.fetches,
      jwksFetchesBeforeBurst: fetchesBefore,
      ...summary(results),
      ...(serverCpuMs !== undefined ? { serverCpuMs } : {}),
      ...(baseline ? { helloBurst: baseline } : {}),
    };
  } finally {
    await server?.stop();
    await jwks.close();
  }
}
