// The built `oidc2` binary's local commands: keys generate, api-key hash|new, ict mint, inspect,
// help and usage errors. Everything it prints is checked for the secrets it must keep back.
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT, calculateJwkThumbprint, importJWK, type JWK } from 'jose';
import { createIctVerifier } from '@oidc2/core';
import { hashApiKey } from '@oidc2/issuer';
import { newIssuer, newKey } from '../../../test/support/credentials';
import { assertBuilt, runCli, tempDir, type CliResult } from './support/run-cli';

const ISS = 'https://op.dev.test';
let dir: ReturnType<typeof tempDir>;
const file = (name: string) => join(dir.path, name);
const readJson = (name: string) => JSON.parse(readFileSync(file(name), 'utf8')) as JWK;
const mode = (name: string) => statSync(file(name)).mode & 0o777;
const cli = (...args: string[]) => runCli(args, { cwd: dir.path });

beforeAll(async () => {
  assertBuilt();
  dir = tempDir('oidc2-cli-');
  const issuer = await cli('keys', 'generate', '--out', 'issuer.jwk', '--public-out', 'issuer.pub.jwk');
  const holder = await cli('keys', 'generate', '--alg', 'Ed25519', '--out', 'holder.jwk', '--public-out', 'holder.pub.jwk');
  expect([issuer.code, holder.code]).toEqual([0, 0]);
});
afterAll(() => dir.remove());

/** Mints an ICT for holder.jwk with the CLI and returns it. */
async function mint(...extra: string[]): Promise<string> {
  const result = await cli('ict', 'mint', '--issuer-key', 'issuer.jwk', '--iss', ISS, '--sub', 'alice', '--holder-key', 'holder.pub.jwk', ...extra);
  expect(result).toMatchObject({ code: 0, stderr: '' });
  return result.stdout.trim();
}

function trustFile(name: string, keys: JWK[]): string {
  writeFileSync(file(name), JSON.stringify({ issuers: [{ issuer: ISS, jwks: { keys } }] }));
  return name;
}

describe('help and usage', () => {
  it.each(['keys generate', 'api-key hash', 'api-key new', 'ict mint', 'fetch', 'inspect'])('oidc2 %s --help prints its usage and exits 0', async (command) => {
    const result = await cli(...command.split(' '), '--help');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`Usage: oidc2 ${command}`);
  });

  it('lists every command and the exit codes; no command is a usage error', async () => {
    const help = await cli('--help');
    expect(help.code).toBe(0);
    for (const command of ['keys generate', 'api-key hash', 'api-key new', 'ict mint', 'fetch', 'inspect']) expect(help.stdout).toContain(command);
    expect(help.stdout).toMatch(/Exit codes:[\s\S]*0[\s\S]*1[\s\S]*2/);
    expect((await cli()).code).toBe(2);
    expect((await cli('--version')).stdout.trim()).toBe(JSON.parse(readFileSync(join(__dirname, '../package.json'), 'utf8')).version);
  });

  it.each([
    [['frobnicate']],
    [['keys', 'rotate']],
    [['keys', 'generate', '--bogus']],
    [['keys', 'generate', '--alg', 'HS256']],
    [['keys', 'generate', 'extra']],
    [['ict', 'mint', '--iss', ISS]],
    [['inspect']],
  ])('%j is a usage error: exit 2, the usage hint on stderr, nothing on stdout', async (args) => {
    const result = await cli(...args);
    expect(result).toMatchObject({ code: 2, stdout: '' });
    expect(result.stderr).toMatch(/--help' for usage/);
  });
});

describe('keys generate', () => {
  it('writes the private JWK with mode 0600 and the public JWK with kid, alg and use', async () => {
    const priv = readJson('issuer.jwk');
    const pub = readJson('issuer.pub.jwk');
    expect(mode('issuer.jwk')).toBe(0o600);
    expect(priv).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig', d: expect.any(String) });
    expect(pub).toEqual({ kty: 'EC', crv: 'P-256', x: priv.x, y: priv.y, kid: priv.kid, alg: 'ES256', use: 'sig' });
    expect(pub.kid).toBe(await calculateJwkThumbprint(pub));
  });

  it.each(['ES256', 'Ed25519', 'ES384', 'PS256'])('%s as PEM: PKCS#8 on stdout with --json, the public key a JWK', async (alg) => {
    const result = await cli('keys', 'generate', '--alg', alg, '--format', 'pem', '--kid', 'k1', '--json');
    expect(result.code).toBe(0);
    const out = JSON.parse(result.stdout) as { alg: string; kid: string; privateKey: string; publicKey: JWK };
    expect(out).toMatchObject({ alg, kid: 'k1', publicKey: { alg, kid: 'k1', use: 'sig' } });
    expect(out.privateKey).toMatch(/^-----BEGIN PRIVATE KEY-----\n[\s\S]+-----END PRIVATE KEY-----\n?$/);
    expect(out.publicKey).not.toHaveProperty('d');
  });

  it('refuses to overwrite a file without --force; with it, an existing file gets mode 0600 first', async () => {
    writeFileSync(file('old.jwk'), 'old');
    chmodSync(file('old.jwk'), 0o644);
    const refused = await cli('keys', 'generate', '--out', 'old.jwk');
    expect(refused.code).toBe(2);
    expect(readFileSync(file('old.jwk'), 'utf8')).toBe('old');
    const forced = await cli('keys', 'generate', '--out', 'old.jwk', '--force');
    expect(forced.code).toBe(0);
    expect(mode('old.jwk')).toBe(0o600);
    expect(readJson('old.jwk')).toHaveProperty('d');
    // The private key went to the file: stdout holds the public key only.
    expect(JSON.parse(forced.stdout)).not.toHaveProperty('d');
  });
});

describe('api-key', () => {
  it('hash prints hashApiKey of the key, from an argument or from stdin without its newline', async () => {
    const key = 'k3y-with-enough-randomness-0123456789';
    expect((await cli('api-key', 'hash', key)).stdout.trim()).toBe(hashApiKey(key));
    const piped = await runCli(['api-key', 'hash', '--json'], { stdin: `${key}\n` });
    expect(JSON.parse(piped.stdout)).toEqual({ hash: hashApiKey(key) });
    expect((await runCli(['api-key', 'hash'], { stdin: '' })).code).toBe(2);
  });

  it('new prints a 256-bit key and its hash, or writes the key to a 0600 file and prints only the hash', async () => {
    const shown = JSON.parse((await cli('api-key', 'new', '--json')).stdout) as { key: string; hash: string };
    expect(Buffer.from(shown.key, 'base64url')).toHaveLength(32);
    expect(shown.hash).toBe(hashApiKey(shown.key));
    const written = await cli('api-key', 'new', '--out', 'workload.key');
    const key = readFileSync(file('workload.key'), 'utf8').trim();
    expect(mode('workload.key')).toBe(0o600);
    expect(written.stdout.trim()).toBe(hashApiKey(key));
    expect(written.stdout + written.stderr).not.toContain(key);
  });
});

describe('ict mint', () => {
  it('signs an ICT the core verifier accepts, certifying the holder key with its contexts', async () => {
    const token = await mint('--ctx', 'mfa,payments', '--lifetime', '120');
    const verifier = createIctVerifier({ issuers: [{ issuer: ISS, jwks: { keys: [readJson('issuer.pub.jwk')] } }] });
    const ict = await verifier.verify(token);
    expect(ict).toMatchObject({ issuer: ISS, subject: 'alice', contexts: ['mfa', 'payments'], alg: 'Ed25519' });
    expect(ict.thumbprint).toBe(await calculateJwkThumbprint(readJson('holder.pub.jwk')));
    expect(ict.payload.exp! - ict.payload.iat!).toBe(120);
    expect(ict.header).toMatchObject({ typ: 'ict+jwt', alg: 'ES256', kid: readJson('issuer.jwk').kid });
  });

  it('certifies only the public part of a private holder key', async () => {
    const result = await cli('ict', 'mint', '--issuer-key', 'issuer.jwk', '--iss', ISS, '--sub', 'bob', '--holder-key', 'holder.jwk', '--json');
    const { claims } = JSON.parse(result.stdout) as { claims: { cnf: { jwk: JWK } } };
    expect(claims.cnf.jwk).toEqual({ kty: 'OKP', crv: 'Ed25519', x: readJson('holder.jwk').x, alg: 'Ed25519' });
  });

  it.each([
    [['--lifetime', '0']],
    [['--lifetime', '3601']],
    [['--ctx', 'bad context']],
    [['--typ', 'jwt']],
  ])('refuses %j with exit 2', async (extra) => {
    const result = await cli('ict', 'mint', '--issuer-key', 'issuer.jwk', '--iss', ISS, '--sub', 'alice', '--holder-key', 'holder.pub.jwk', ...extra);
    expect(result).toMatchObject({ code: 2, stdout: '' });
  });

  it('names an unreadable or malformed key file without quoting its content', async () => {
    writeFileSync(file('broken.jwk'), '{"kty":"EC","d":"c2VjcmV0LWtleS1tYXRlcmlhbA"');
    for (const keyFile of ['missing.jwk', 'broken.jwk', 'holder.pub.jwk']) {
      const result = await cli('ict', 'mint', '--issuer-key', keyFile, '--iss', ISS, '--sub', 'alice', '--holder-key', 'holder.pub.jwk');
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(keyFile);
      expect(result.stderr).not.toContain('c2VjcmV0');
    }
  });
});

describe('inspect', () => {
  let token: string;
  beforeAll(async () => {
    token = await mint('--ctx', 'mfa');
    writeFileSync(file('token.ict'), `${token}\n`);
    trustFile('trust.json', [readJson('issuer.pub.jwk')]);
    trustFile('wrong-trust.json', [(await newIssuer(ISS)).jwks.keys[0]!]);
  });

  const neverEchoes = (result: CliResult) => {
    expect(result.stdout + result.stderr).not.toContain(token.split('.')[2]);
  };

  it('decodes header, claims, times and the cnf thumbprint, without echoing the token', async () => {
    const text = await cli('inspect', '@token.ict');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^kind\s+ICT \(typ ict\+jwt\)/);
    expect(text.stdout).toMatch(/exp\s+\S+Z \(in [45]m/);
    neverEchoes(text);
    const json = JSON.parse((await runCli(['inspect', '-', '--json'], { stdin: token })).stdout);
    expect(json).toMatchObject({ kind: 'ict', header: { typ: 'ict+jwt' }, claims: { sub: 'alice', ctx: ['mfa'] }, times: { lifetime: 300, expired: false } });
    expect(json.cnf).toEqual({ member: 'jwk', thumbprint: await calculateJwkThumbprint(readJson('holder.pub.jwk')) });
    expect(json).not.toHaveProperty('verification');
  });

  it('verifies against a trust config: 0 when the core verifier accepts, 1 with the code when not', async () => {
    const ok = await cli('inspect', '@token.ict', '--trust', 'trust.json');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/verified\s+yes: alice from https:\/\/op\.dev\.test/);
    const wrong = await cli('inspect', '@token.ict', '--trust', 'wrong-trust.json', '--json');
    expect(wrong.code).toBe(1);
    expect(JSON.parse(wrong.stdout).verification).toMatchObject({ verified: false, code: expect.stringMatching(/^ict_(unknown_key|invalid)$/) });
    neverEchoes(wrong);
  });

  it('reports an expired ICT as ict_expired', async () => {
    const issuer = await newIssuer(ISS);
    const expired = await issuer.mint(await newKey(), { now: Date.now() / 1000 - 3600, lifetime: 300 });
    trustFile('expired-trust.json', issuer.jwks.keys);
    const result = await cli('inspect', expired, '--trust', 'expired-trust.json', '--json');
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toMatchObject({ times: { expired: true }, verification: { verified: false, code: 'ict_expired' } });
  });

  it('verifies a WIT against the trust domains of the config', async () => {
    const domainKey = await newKey();
    const workload = await newKey();
    const wit = await new SignJWT({ sub: 'spiffe://example.test/orders', cnf: { jwk: { ...workload.publicJwk, alg: 'ES256' } } })
      .setProtectedHeader({ alg: 'ES256', typ: 'wit+jwt' })
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(await importJWK(domainKey.privateJwk, 'ES256'));
    writeFileSync(file('wit-trust.json'), JSON.stringify({ trustDomains: [{ trustDomain: 'example.test', jwks: { keys: [domainKey.publicJwk] } }] }));
    const result = await cli('inspect', wit, '--trust', 'wit-trust.json', '--json');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ kind: 'wit', verification: { verified: true, subject: 'spiffe://example.test/orders' } });
  });

  it('decodes a Txn-Token, and refuses --trust for a kind it cannot verify (exit 2)', async () => {
    const key = await newKey();
    const txn = await new SignJWT({ sub: 'user-1', txn: 't-1' }).setProtectedHeader({ alg: 'ES256', typ: 'txntoken+jwt' }).setIssuedAt().setExpirationTime('5m').sign(await importJWK(key.privateJwk, 'ES256'));
    const decoded = await cli('inspect', txn, '--json');
    expect(JSON.parse(decoded.stdout)).toMatchObject({ kind: 'txn-token', claims: { txn: 't-1' }, cnf: null });
    expect((await cli('inspect', txn, '--trust', 'trust.json')).code).toBe(2);
  });

  it('is exit 1 for something that is not a JWT, and exit 2 for an unusable trust config', async () => {
    expect((await cli('inspect', 'not.a-token')).code).toBe(1);
    writeFileSync(file('bad-trust.json'), JSON.stringify({ issuers: [{ issuer: ISS }], extra: true }));
    expect((await cli('inspect', '@token.ict', '--trust', 'bad-trust.json')).code).toBe(2);
    writeFileSync(file('bad-trust.json'), JSON.stringify({ issuers: [{ issuer: ISS, jwks: { keys: [] }, typo: 1 }] }));
    expect((await cli('inspect', '@token.ict', '--trust', 'bad-trust.json')).code).toBe(2);
  });
});
