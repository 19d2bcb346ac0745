// `pnpm demo` must run with no configuration, behave in every flow, and never print a credential.
// It uses the built packages, as `pnpm test` builds them before jest runs.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const ROOT = resolve(__dirname, '../..');
const BUILT = ['core', 'node', 'issuer', 'client', 'express', 'fastify', 'koa'].map((p) => resolve(ROOT, 'packages', p, 'dist/esm/index.js'));

describe('pnpm demo', () => {
  it('runs every flow, exits 0 through main(), and prints a trace without tokens', () => {
    const missing = BUILT.filter((f) => !existsSync(f));
    if (missing.length > 0) throw new Error(`the demo uses the built packages; run \`pnpm build\` first (missing ${missing.join(', ')})`);
    const script = `const { main } = await import(${JSON.stringify(pathToFileURL(resolve(ROOT, 'demo/run.mjs')).href)}); process.exitCode = await main();`;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    const trace = run.stdout;
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    for (const flow of [
      'user alice -> express',
      'user alice -> fastify',
      'user alice -> koa',
      'workload spiffe://demo.local/reports -> fastify',
      'tampered request',
      'replayed request',
      'end-to-end encrypted: alice -> express',
      'workload call chain: pod checkout -> express -> fastify',
    ]) {
      expect(trace).toContain(`== ${flow}`);
      expect(trace).toMatch(new RegExp(`ok: ${flow.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    }
    expect(trace).toContain('koa rejected the request: 401 digest_mismatch');
    expect(trace).toContain('express rejected the replay: 401 replay_detected');
    expect(trace).toContain('both services saw the same transaction txn-demo-1 from the forwarded Txn-Token');
    expect(trace).toContain('all 8 flows behaved as expected');
    // No JWT (ICT, WIT, Txn-Token, service-account token, access token, DPoP proof) and no signature value appears in full.
    expect(trace).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/);
    expect(trace).not.toMatch(/sig=:[A-Za-z0-9+/=]{40,}:/);
  }, 90_000);
});
