// Where a new caller's first request goes, in process: N callers (own keys, own ICTs), each
// authenticated once by a fresh authenticator (empty caches) and answered with signResponse, one
// after another. Prints µs per new caller for the ICT alone, and for authenticate + signResponse.
// Run with --cpu-prof to see the split.
//
// Usage: node bench/lib/cold-profile.mjs [callers=500]
import { loadPackage } from './env.mjs';
import { AUDIENCE, ROUTE, newIssuer, newKey } from './credentials.mjs';

const count = Number(process.argv[2] ?? 500);
const core = await loadPackage('core');
const issuer = await newIssuer();
const issuers = [{ issuer: issuer.issuer, jwks: issuer.jwks }];
const host = new URL(AUDIENCE).host;
const requests = [];
for (let i = 0; i < count; i++) {
  const key = await newKey('ES256');
  const ict = await issuer.mintIct(key, `caller-${i}`);
  const handle = await core.importKey(key.privateJwk, 'ES256', 'sign');
  const signed = await core.signRequest({ method: 'GET', url: AUDIENCE + ROUTE, headers: { host } }, { ict, key: handle, expiresIn: 300 });
  requests.push({ ict, request: { method: 'GET', url: ROUTE, headers: signed.headers } });
}
const service = await newKey('ES256');
const oidc2 = core.createOidc2Service({ issuers, audiences: [AUDIENCE], credential: { ict: await issuer.mintIct(service, 'api'), privateKey: service.privateJwk } });
const response = { status: 200, headers: { 'content-type': ['application/json; charset=utf-8'] }, body: new TextEncoder().encode('{"hello":"world"}') };

// Warm the code paths (and the issuer key import) on a verifier that is then dropped.
{
  const warm = core.createIctVerifier({ issuers });
  for (const r of requests.slice(0, 50)) await warm.verify(r.ict);
}
const ictOnly = core.createIctVerifier({ issuers });
let t = performance.now();
for (const r of requests) await ictOnly.verify(r.ict);
const ictUs = ((performance.now() - t) * 1000) / count;

const auth = oidc2.authenticator ?? core.createAuthenticator({ issuers, audiences: [AUDIENCE] });
t = performance.now();
for (const r of requests) {
  const identity = await auth.authenticate(r.request);
  await oidc2.signResponse(response, r.request, identity.binding);
}
const fullUs = ((performance.now() - t) * 1000) / count;
process.stdout.write(`${JSON.stringify({ callers: count, ictVerifyUs: Math.round(ictUs), authenticateAndSignUs: Math.round(fullUs) })}\n`);
