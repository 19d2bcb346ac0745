// Two builds of @oidc2/core side by side, interleaved in one process (pinned by the caller): warm
// `authenticate` and `signResponse` of each, and one raw verify and sign, as core-bench.mjs measures
// them. For before/after comparisons on a shared machine, where two separate runs minutes apart
// are not comparable. Prints one JSON line: per alg, each build's µs and ratios to raw crypto.
//
// Usage: node bench/lib/core-compare.mjs <before dist/esm/index.js> <after dist/esm/index.js> [rounds] [batch]
import { createPrivateKey, createPublicKey, sign as rawSign, verify as rawVerify } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { AUDIENCE, ROUTE, newIssuer, newKey } from './credentials.mjs';
import { median, round, usPerOp, usPerOpSync } from './stats.mjs';

const [beforePath, afterPath, roundsArg = '9', batchArg = '1000'] = process.argv.slice(2);
const rounds = Number(roundsArg);
const batch = Number(batchArg);
const builds = { before: await import(pathToFileURL(beforePath).href), after: await import(pathToFileURL(afterPath).href) };
const issuer = await newIssuer();
const issuers = [{ issuer: issuer.issuer, jwks: issuer.jwks }];
const host = new URL(AUDIENCE).host;
const response = { status: 200, headers: { 'content-type': ['application/json; charset=utf-8'] }, body: new TextEncoder().encode('{"hello":"world"}') };

async function setup(core, alg, callerIct, caller, service, serviceIct, count) {
  const key = await core.importKey(caller.privateJwk, alg, 'sign');
  const requests = [];
  for (let i = 0; i < count; i++) {
    const signed = await core.signRequest({ method: 'GET', url: AUDIENCE + ROUTE, headers: { host } }, { ict: callerIct, key, expiresIn: 300 });
    requests.push({ method: 'GET', url: ROUTE, headers: signed.headers });
  }
  const authenticator = core.createAuthenticator({ issuers, audiences: [AUDIENCE] });
  const oidc2 = core.createOidc2Service({ issuers, audiences: [AUDIENCE], credential: { ict: serviceIct, privateKey: service.privateJwk } });
  let next = 0;
  const authenticateOne = async () => {
    const identity = await authenticator.authenticate(requests[next++]);
    if (identity.subject !== 'alice') throw new Error('wrong identity');
    return identity;
  };
  const binding = (await authenticateOne()).binding;
  const signOne = async () => {
    const fields = await oidc2.signResponse(response, requests[0], binding);
    if (!fields?.signature) throw new Error('no signature');
  };
  return { authenticateOne, signOne };
}

const out = [];
for (const alg of ['ES256', 'Ed25519']) {
  const caller = await newKey(alg);
  const service = await newKey('ES256');
  const callerIct = await issuer.mintIct(caller, 'alice');
  const serviceIct = await issuer.mintIct(service, 'api');
  const warmup = 2000;
  const s = {};
  for (const [name, core] of Object.entries(builds)) s[name] = await setup(core, alg, callerIct, caller, service, serviceIct, warmup + rounds * batch + 1);
  const hash = alg === 'ES256' ? 'sha256' : null;
  const keyOpt = (key) => (alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key);
  const pub = createPublicKey({ key: caller.publicJwk, format: 'jwk' });
  const priv = createPrivateKey({ key: caller.privateJwk, format: 'jwk' });
  const spriv = createPrivateKey({ key: service.privateJwk, format: 'jwk' });
  const data = Buffer.alloc(callerIct.length + 320, 0x61);
  const sig = rawSign(hash, data, keyOpt(priv));
  for (const name of Object.keys(builds)) for (let i = 0; i < warmup; i++) {
    await s[name].authenticateOne();
    await s[name].signOne();
  }
  const m = { before: { a: [], s: [], ar: [], sr: [] }, after: { a: [], s: [], ar: [], sr: [] } };
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 ? ['after', 'before'] : ['before', 'after'];
    const v = usPerOpSync(batch, () => rawVerify(hash, data, keyOpt(pub), sig));
    // The service signs ES256 whatever the caller's algorithm.
    const w = usPerOpSync(batch, () => rawSign('sha256', data, { key: spriv, dsaEncoding: 'ieee-p1363' }));
    for (const name of order) {
      const a = await usPerOp(batch, s[name].authenticateOne);
      const x = await usPerOp(batch, s[name].signOne);
      m[name].a.push(a);
      m[name].s.push(x);
      m[name].ar.push(a / v);
      m[name].sr.push(x / w);
    }
  }
  const row = { alg };
  for (const name of Object.keys(builds)) {
    row[name] = { authenticateUs: round(median(m[name].a), 1), signResponseUs: round(median(m[name].s), 1), authenticateRatio: round(median(m[name].ar), 3), signResponseRatio: round(median(m[name].sr), 3) };
  }
  out.push(row);
}
process.stdout.write(`${JSON.stringify(out)}\n`);
