// Cold path: N distinct callers (own keys, own ICTs from one issuer) send their first request at the
// same moment to a service that has never fetched the issuer's keys. A real JWKS server on loopback
// counts fetches: single-flight means exactly one. Reports time to first byte under that burst.
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
    let fetchesBefore;
    let baseline;
    if (o.framework) {
      const configPath = await writeServerConfig(join(o.tmp, 'cold-config.json'), o.issuer, issuers);
      // The same burst at the same framework without authentication: what 1,000 new connections
      // cost by themselves on this machine.
      server = await startServer(o.t, o.framework, 'hello', configPath);
      baseline = summary(await burstHttp(server.port, requests));
      await server.stop();
      server = await startServer(o.t, o.framework, 'oidc2', configPath);
      fetchesBefore = jwks.fetches;
      results = await burstHttp(server.port, requests);
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
      ...(baseline ? { helloBurst: baseline } : {}),
    };
  } finally {
    await server?.stop();
    await jwks.close();
  }
}
