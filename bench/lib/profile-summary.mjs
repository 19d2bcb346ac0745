// Where a bench server's time went: reads the .cpuprofile files of `BENCH_SERVER_ARGS='--cpu-prof
// --cpu-prof-dir=DIR' node bench/run.mjs --only http --frameworks F` and charges every sample to a
// layer (crypto, oidc2 core by part, adapter, bearer middleware, framework, Node, GC). Idle time
// (between runs) is left out; the rest is scaled to µs per request with the median req/s of the
// same run when given (a saturated server is busy for all of it).
//
// Usage: node bench/lib/profile-summary.mjs DIR [rps-of-each-profile,in-file-order]
import { readFileSync, readdirSync } from 'node:fs';

const [dir, rpsArg] = process.argv.slice(2);
const rps = (rpsArg ?? '').split(',').filter(Boolean).map(Number);

function layer(cf) {
  const u = cf.url;
  const f = cf.functionName;
  if (f === '(garbage collector)') return 'GC';
  if (f === '(idle)') return 'idle';
  if (f === '(program)') return 'V8 and native (program)';
  if (/verifyOneShot|signOneShot/.test(f) || /internal\/crypto\/(sig|keys)/.test(u)) return 'public-key crypto';
  if (/packages\/core\/dist.*rfc9421\/(fast-dictionary|signature-fields)/.test(u)) return 'core: Signature-Input / Signature parsing';
  if (/packages\/core\/dist.*rfc9421\//.test(u)) return 'core: signature bases and signing';
  if (/packages\/core\/dist.*replay-store/.test(u)) return 'core: replay store';
  if (/packages\/core\/dist.*(proofs|authenticator|ict|jwt-credential)/.test(u)) return 'core: authentication';
  if (/packages\/core\/dist.*(exchange|service|response-signature|content-digest)/.test(u)) return 'core: exchange and response';
  if (/packages\/core\/dist/.test(u)) return 'core: other';
  if (/packages\/(fastify|node|express|koa)\/dist/.test(u)) return 'adapter';
  if (/structured-headers/.test(u)) return 'core: Signature-Input / Signature parsing';
  if (/fast-jwt|@fastify\/jwt|jsonwebtoken|express-jwt|koa-jwt|\/jwa\/|\/jws\/|ecdsa-sig-formatter|asn1/.test(u)) return 'bearer middleware';
  if (/node_modules/.test(u)) return 'framework';
  if (/^node:|internal/.test(u) || u === '') return 'Node (HTTP, streams, sockets)';
  return 'framework';
}

const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort();
files.forEach((file, index) => {
  const p = JSON.parse(readFileSync(`${dir}/${file}`, 'utf8'));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const memo = new Map();
  // Node internals called from a layer count for that layer (core hashing, the adapter's Buffers).
  const layerOf = (id) => {
    if (memo.has(id)) return memo.get(id);
    let l = layer(byId.get(id).callFrame);
    if (l === 'Node (HTTP, streams, sockets)' && parent.has(id)) {
      const up = layerOf(parent.get(id));
      if (up.startsWith('core') || up === 'adapter' || up === 'bearer middleware' || up === 'public-key crypto') l = up;
    }
    memo.set(id, l);
    return l;
  };
  const time = new Map();
  let busy = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const l = layerOf(p.samples[i]);
    if (l === 'idle') continue;
    const d = p.timeDeltas[i] ?? 0;
    busy += d;
    time.set(l, (time.get(l) ?? 0) + d);
  }
  const perRequest = rps[index] ? 1e6 / rps[index] : undefined;
  console.log(`${file}: busy ${(busy / 1e6).toFixed(1)} s${perRequest ? `, ${perRequest.toFixed(0)} µs per request at ${rps[index]} req/s` : ''}`);
  for (const [l, t] of [...time].sort((a, b) => b[1] - a[1])) {
    const share = t / busy;
    if (share < 0.005) continue;
    console.log(`  ${l.padEnd(44)} ${(100 * share).toFixed(1).padStart(5)}%${perRequest ? `  ${(share * perRequest).toFixed(1).padStart(7)} µs` : ''}`);
  }
});
