// `oidc2 fetch` (the built binary) against a real Express service (@oidc2/express, end-to-end
// encryption on by default since it has a credential) on 127.0.0.1: the caller's key and ICT come
// from the CLI itself, the service's credential from test/support/credentials.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { JWK } from 'jose';
import { newIssuer, newKey, type TestIssuer } from '../../../test/support/credentials';
import { startFramework, type FrameworkService } from '../../../test/support/frameworks';
import { assertBuilt, runCli, tempDir, type CliResult } from './support/run-cli';

const CALLER_ISSUER = 'https://op.cli.test';
const SERVICE = 'spiffe://cli.test/orders';

let dir: ReturnType<typeof tempDir>;
let service: FrameworkService;
let services: TestIssuer;
let serviceIct: string;
let callerIct: string;
let callerKey: JWK;

const file = (name: string) => join(dir.path, name);
const cli = (...args: string[]) => runCli(args, { cwd: dir.path });

/** `oidc2 fetch <service>/<path>` as the CLI-minted caller, trusting the test service issuer. */
const fetchAs = (path: string, ...extra: string[]) =>
  cli('fetch', `${service.url}${path}`, '--key', 'caller.jwk', '--ict', '@caller.ict', '--service-issuer', services.issuer, '--service-jwks', 'services.jwks', ...extra);

beforeAll(async () => {
  assertBuilt();
  dir = tempDir('oidc2-cli-fetch-');
  for (const args of [
    ['keys', 'generate', '--out', 'issuer.jwk', '--public-out', 'issuer.pub.jwk'],
    ['keys', 'generate', '--out', 'caller.jwk', '--public-out', 'caller.pub.jwk'],
  ]) {
    expect((await cli(...args)).code).toBe(0);
  }
  const minted = await cli('ict', 'mint', '--issuer-key', 'issuer.jwk', '--iss', CALLER_ISSUER, '--sub', 'alice', '--holder-key', 'caller.pub.jwk', '--ctx', 'mfa');
  callerIct = minted.stdout.trim();
  writeFileSync(file('caller.ict'), callerIct);
  callerKey = JSON.parse(readFileSync(file('caller.jwk'), 'utf8')) as JWK;

  services = await newIssuer('https://attest.cli.test');
  const serviceKey = await newKey('ES256');
  serviceIct = await services.mint(serviceKey, { subject: SERVICE, lifetime: 3600 });
  writeFileSync(file('services.jwks'), JSON.stringify(services.jwks));
  const callerIssuerJwk = JSON.parse(readFileSync(file('issuer.pub.jwk'), 'utf8')) as JWK;
  service = await startFramework('express', (url) => ({
    issuers: [{ issuer: CALLER_ISSUER, jwks: { keys: [callerIssuerJwk] } }],
    audiences: [url],
    credential: { ict: serviceIct, privateKey: serviceKey.privateJwk },
  }));
});
afterAll(async () => {
  await service?.close();
  dir?.remove();
});

/** Nothing the binary printed holds the caller's ICT, the service's ICT or the caller's private key. */
function keepsSecrets(result: CliResult): void {
  const printed = result.stdout + result.stderr;
  expect(printed).not.toContain(callerIct.split('.')[2]);
  expect(printed).not.toContain(serviceIct.split('.')[2]);
  expect(printed).not.toContain(callerKey.d);
}

describe('oidc2 fetch against an Express service', () => {
  it('signs a plain request, verifies the answer and reports who answered; the body goes to stdout', async () => {
    const result = await fetchAs('/whoami', '--expect-service', SERVICE);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ framework: 'express', caller: 'alice', issuer: CALLER_ISSUER, proof: 'http-signature' });
    expect(result.stderr).toMatch(new RegExp(`service\\s+${SERVICE} \\(issuer ${services.issuer}\\)`));
    expect(result.stderr).toMatch(/proof\s+HTTP Message Signature/);
    expect(result.stderr).toMatch(/service subject \S+ is the expected one/);
    expect(result.stderr).toMatch(/Content-Digest matches/);
    expect(result.stderr).toMatch(/encryption\s+none \(in clear\)/);
    expect(result.stderr).toMatch(/status\s+200 OK/);
    keepsSecrets(result);
  });

  it('--json: status, redacted token fields, the service, the checks and the body in one object', async () => {
    const result = await fetchAs('/echo', '-H', 'content-type: application/json', '-d', '{"amount":5}', '--json');
    expect(result.code).toBe(0);
    const out = JSON.parse(result.stdout);
    expect(out).toMatchObject({ method: 'POST', proof: 'http-signature', status: 200, service: { issuer: services.issuer, subject: SERVICE }, encryption: null });
    expect(out.verified.length).toBeGreaterThanOrEqual(5);
    expect(out.headers['identity-certification-token']).toBe('[redacted]');
    expect(JSON.parse(out.body)).toMatchObject({ caller: 'alice', echo: { amount: 5 } });
    keepsSecrets(result);
  });

  it('--dpop proves the key with DPoP', async () => {
    const result = await fetchAs('/whoami', '--dpop', '--json');
    expect(result.code).toBe(0);
    const out = JSON.parse(result.stdout);
    expect(out.proof).toBe('dpop');
    expect(JSON.parse(out.body)).toMatchObject({ caller: 'alice', proof: 'dpop' });
    keepsSecrets(result);
  });

  it('--encrypt sends and receives the bodies end-to-end encrypted, and says so', async () => {
    const body = join(dir.path, 'body.json');
    writeFileSync(body, '{"secret":"the vault code"}');
    const result = await fetchAs('/echo', '--encrypt', '-H', 'content-type: application/json', '-d', `@${body}`, '--json');
    expect(result.code).toBe(0);
    const out = JSON.parse(result.stdout);
    expect(out.encryption).toMatchObject({ suite: expect.any(String), mode: 'session', epoch: 0, bodyEncrypted: true });
    expect(out.verified.join('\n')).toMatch(/body decrypted/);
    expect(JSON.parse(out.body)).toMatchObject({ echo: { secret: 'the vault code' } });
    const text = await fetchAs('/whoami', '--encrypt');
    expect(text.code).toBe(0);
    expect(text.stderr).toMatch(/encryption\s+(x25519|p256), handshake, epoch 0, body encrypted/);
    keepsSecrets(text);
  });

  it.each([
    ['another service subject is expected', ['--expect-service', 'spiffe://cli.test/payments'], 'response_untrusted'],
    ['the service issuer has other keys', ['--service-jwks', 'caller.pub.jwk'], 'response_untrusted'],
    ['another issuer is trusted for services', ['--service-issuer', CALLER_ISSUER], 'response_untrusted'],
  ])('fails verification with exit 1 when %s', async (_name, extra, code) => {
    // The later options win: parseArgs keeps the last value of a single-valued option.
    const result = await fetchAs('/whoami', ...extra);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(`oidc2 fetch: ${code}:`);
    keepsSecrets(result);
  });

  it('reports a verification failure as a JSON error with --json', async () => {
    const result = await fetchAs('/whoami', '--expect-service', 'spiffe://cli.test/payments', '--json');
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toEqual({ error: { code: 'response_untrusted', message: expect.any(String) } });
  });

  it('a signed refusal is a verified answer: exit 0, or 1 with --fail', async () => {
    const issuer = await newIssuer('https://stranger.cli.test');
    writeFileSync(file('stranger.ict'), await issuer.mint(JSON.parse(readFileSync(file('caller.pub.jwk'), 'utf8')) as JWK));
    const args = ['fetch', `${service.url}/whoami`, '--key', 'caller.jwk', '--ict', '@stranger.ict', '--service-issuer', services.issuer, '--service-jwks', 'services.jwks'];
    const refused = await cli(...args);
    expect(refused.code).toBe(0);
    expect(refused.stderr).toMatch(/status\s+401/);
    expect(JSON.parse(refused.stdout)).toMatchObject({ code: 'ict_untrusted_issuer' });
    expect((await cli(...args, '--fail')).code).toBe(1);
  });

  it('a request that cannot be sent is exit 1', async () => {
    const closed = await startFramework('express', (url) => ({ issuers: [{ issuer: CALLER_ISSUER, jwks: services.jwks }], audiences: [url] }));
    await closed.close();
    const result = await cli('fetch', `${closed.url}/whoami`, '--key', 'caller.jwk', '--ict', '@caller.ict', '--service-issuer', services.issuer, '--service-jwks', 'services.jwks');
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/request_failed: .*ECONNREFUSED/);
  });

  it.each([
    ['no --key', ['--key', '']],
    ['a missing key file', ['--key', 'nowhere.jwk']],
    ['a public key as --key', ['--key', 'caller.pub.jwk']],
    ['--dpop with --encrypt', ['--dpop', '--encrypt']],
    ['a malformed header', ['-H', 'no colon here']],
    ['an empty ICT file', ['--ict', '@/dev/null']],
    ['two URLs', ['http://127.0.0.1:1/']],
    ['a bad --timeout', ['--timeout', '0']],
  ])('%s is a usage error (exit 2) before anything is sent', async (_name, extra) => {
    const result = await fetchAs('/whoami', ...extra);
    expect(result).toMatchObject({ code: 2, stdout: '' });
  });

  it('refuses plain http to a host that is not loopback unless --insecure-http is given', async () => {
    const base = ['--key', 'caller.jwk', '--ict', '@caller.ict', '--service-issuer', services.issuer];
    const refused = await cli('fetch', 'http://api.example.com/orders', ...base);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/--insecure-http/);
    expect((await cli('fetch', 'ftp://127.0.0.1/x', ...base)).code).toBe(2);
  });
});
