// One service and one caller from the installed packages only: a node:http service with
// @oidc2/node's admitRequest, and @oidc2/client calling it, in clear and end-to-end encrypted.
// Then the installed `oidc2` binary calls the same service. Prints what each call verified.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { promisify } from 'node:util';
import { createOidc2Service } from '@oidc2/core';
import { admitRequest } from '@oidc2/node';
import { createClient } from '@oidc2/client';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';

const SERVICE = 'spiffe://packaging.test/echo';

async function keyPair() {
  const pair = await generateKeyPair('ES256', { extractable: true });
  return { ...pair, publicJwk: await exportJWK(pair.publicKey), privateJwk: await exportJWK(pair.privateKey) };
}
const issuerKey = await keyPair();
const issuer = { issuer: 'https://op.packaging.test', jwks: { keys: [{ ...issuerKey.publicJwk, kid: 'k1', alg: 'ES256' }] } };
const mint = (holder, sub) =>
  new SignJWT({ cnf: { jwk: { ...holder.publicJwk, alg: 'ES256' } }, ctx: [] })
    .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'ict+jwt' })
    .setIssuer(issuer.issuer)
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(issuerKey.privateKey);

const serviceKey = await keyPair();
const server = createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${server.address().port}`;
const service = createOidc2Service({
  issuers: [issuer],
  audiences: [url],
  credential: { ict: await mint(serviceKey, SERVICE), privateKey: serviceKey.privateJwk },
});
server.on('request', async (req, res) => {
  const admission = await admitRequest(service, req, res);
  if (!admission) return;
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ caller: admission.identity?.subject, echo: Buffer.concat(chunks).toString('utf8') }));
});

const caller = await keyPair();
const callerIct = await mint(caller, 'alice');
const results = {};
for (const encryption of ['off', 'required']) {
  const api = createClient({ serviceIssuers: [issuer], expectedService: SERVICE, getIct: async () => callerIct, keyPair: caller, encryption });
  const response = await api(`${url}/echo`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: `hello ${encryption}` });
  results[encryption] = { status: response.status, service: response.service.subject, encryption: response.encryption, body: await response.json() };
}

writeFileSync('caller.jwk', JSON.stringify(caller.privateJwk));
writeFileSync('caller.ict', callerIct);
writeFileSync('issuer.jwks', JSON.stringify(issuer.jwks));
const cli = await promisify(execFile)('node_modules/.bin/oidc2', [
  'fetch', `${url}/echo`, '--key', 'caller.jwk', '--ict', '@caller.ict', '--service-issuer', issuer.issuer,
  '--service-jwks', 'issuer.jwks', '--expect-service', SERVICE, '--encrypt', '-d', 'hello cli', '--json',
]);
results.cli = JSON.parse(cli.stdout);

server.closeAllConnections();
server.close();
console.log(JSON.stringify(results));
