// Every Node example runs as a user runs it: `node examples/run.mjs <name>` is what `pnpm example
// <name>` does after `pnpm build`, against the built packages. What it prints is what the clients
// and services verified, so the output is the assertion.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';

const ROOT = resolve(__dirname, '../..');
const BUILT = ['core', 'node', 'issuer', 'client', 'express', 'fastify', 'koa'].map((p) => resolve(ROOT, 'packages', p, 'dist/esm/index.js'));
const URL_PATTERN = 'http://127\\.0\\.0\\.1:\\d+';

function example(...args: string[]) {
  return spawnSync(process.execPath, ['examples/run.mjs', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
}

beforeAll(() => {
  const missing = BUILT.filter((f) => !existsSync(f));
  if (missing.length > 0) throw new Error(`the examples use the built packages; run \`pnpm build\` first (missing ${missing.join(', ')})`);
});

describe.each([
  ['express', 'Express'],
  ['fastify', 'Fastify'],
  ['koa', 'Koa'],
])('pnpm example %s', (name, framework) => {
  it('verifies alice at the service and the service at alice, and requires encryption on POST /orders', () => {
    const run = example(name);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout.trimEnd().split('\n')).toEqual([
      expect.stringMatching(new RegExp(`^issuer ${URL_PATTERN}; ${framework} service ${URL_PATTERN}, answering as spiffe://example\\.local/orders$`)),
      'GET /me: 200, signed by spiffe://example.local/orders; the service saw {"caller":"alice","kind":"user","proof":"http-signature"}',
      'POST /orders in clear: 401 e2ee_required, signed by spiffe://example.local/orders',
      'POST /orders encrypted end to end: 201 {"caller":"alice","order":{"item":"book","quantity":2}}, {"suite":"x25519","mode":"session","epoch":0,"bodyEncrypted":true}',
    ]);
  }, 90_000);
});

it('examples/README.md shows the output of `pnpm example express` as it is, ports aside', () => {
  const readme = readFileSync(resolve(ROOT, 'examples/README.md'), 'utf8');
  const shown = /`pnpm example express` prints \(ports vary\):\n\n```\n([^`]*)```/.exec(readme)?.[1];
  const run = example('express');
  expect(run.status).toBe(0);
  const ports = (text: string) => text.replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:<port>');
  expect(ports(shown ?? '')).toBe(ports(run.stdout));
}, 90_000);

describe('pnpm example workload-pair', () => {
  it('ledger sees orders as a workload of the trust domain, and orders verifies the WIT-signed, encrypted answer', () => {
    const run = example('workload-pair');
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout.trimEnd().split('\n')).toEqual([
      expect.stringMatching(new RegExp(`^issuer ${URL_PATTERN} of trust domain example\\.local$`)),
      expect.stringMatching(new RegExp(`^ledger \\(Fastify\\) ${URL_PATTERN}: workloads only, answers as spiffe://example\\.local/ledger$`)),
      expect.stringMatching(new RegExp(`^orders \\(Express\\) ${URL_PATTERN}: answers as spiffe://example\\.local/orders, calls ledger as that workload$`)),
      'alice -> orders: 201, signed by spiffe://example.local/orders',
      'orders -> ledger: 201, signed with the WIT of spiffe://example.local/ledger, {"suite":"x25519","mode":"session","epoch":0,"bodyEncrypted":true}',
      'ledger saw: {"caller":"spiffe://example.local/orders","kind":"workload","proof":"http-signature","entry":{"order":"o-17","by":"alice"}}',
    ]);
  }, 90_000);
});

describe('examples/run.mjs', () => {
  it('names the examples when asked for one that does not exist, and exits 2', () => {
    const run = example('nonesuch');
    expect(run.status).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe('usage: pnpm example <name> [--serve], where <name> is one of: browser-vite, express, fastify, koa, workload-pair\n');
  });

  it('with --serve keeps the service up until Ctrl-C, then closes it and exits 0', async () => {
    const child = spawn(process.execPath, ['examples/run.mjs', 'koa', '--serve'], { cwd: ROOT });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    await new Promise<void>((ready, fail) => {
      child.stdout.on('data', (chunk) => {
        stdout += chunk;
        if (stdout.includes('serving until Ctrl-C\n')) ready();
      });
      child.on('exit', () => fail(new Error(`exited early: ${stdout}${stderr}`)));
    });
    // Still serving, and still refusing a caller without credentials.
    const service = new RegExp(`Koa service (${URL_PATTERN})`).exec(stdout)![1]!;
    const anonymous = await fetch(`${service}/me`);
    expect(anonymous.status).toBe(401);
    expect((await anonymous.json()).code).toBe('ict_missing');
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(stderr).toBe('');
  }, 90_000);
});
