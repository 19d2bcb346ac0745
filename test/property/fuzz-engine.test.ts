// `pnpm fuzz` (fuzz/run.mjs) drives a coverage-guided engine over the built packages. A few seconds
// of it here keep the tooling from rotting: the engine must find coverage beyond its seeds on a real
// target, and find and save a bug that only a search guided by coverage reaches in that time.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '../..');
const BUILT = resolve(ROOT, 'packages/core/dist/cjs/rfc9421/fast-dictionary.js');

interface FuzzReport {
  target: string;
  executions: number;
  inputsAtStart: number;
  coverageAtStart: number;
  coverage: number;
  newInputs: number;
  findings: { file: string; error: string }[];
}

function fuzz(dir: string, seconds: number, target: string): { status: number | null; results: FuzzReport[] } {
  const run = spawnSync(process.execPath, [resolve(ROOT, 'fuzz/run.mjs'), '--seconds', String(seconds), '--targets', target, '--corpus', join(dir, 'corpus'), '--crashes', join(dir, 'crashes')], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: (seconds + 30) * 1000,
  });
  const summary = run.stdout.slice(run.stdout.indexOf('\n{') + 1);
  return { status: run.status, results: (JSON.parse(summary) as { results: FuzzReport[] }).results };
}

describe('the coverage-guided fuzz run', () => {
  let dir: string;
  beforeEach(() => {
    if (!existsSync(BUILT)) throw new Error(`the fuzz targets use the built packages; run \`pnpm build\` first (missing ${BUILT})`);
    dir = mkdtempSync(join(tmpdir(), 'oidc2-fuzz-test-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('finds coverage beyond its seeds on the structured-field fast path, and no bug', () => {
    const { status, results } = fuzz(dir, 4, 'fast-dictionary');
    expect(status).toBe(0);
    const [r] = results;
    expect(r).toMatchObject({ target: 'fast-dictionary', findings: [] });
    expect(r!.inputsAtStart).toBeGreaterThan(0);
    expect(r!.executions).toBeGreaterThan(r!.inputsAtStart);
    expect(r!.coverage).toBeGreaterThan(r!.coverageAtStart);
    expect(r!.newInputs).toBeGreaterThan(0);
    // What it kept is on disk for the next run to start from.
    expect(readdirSync(join(dir, 'corpus', 'fast-dictionary')).length).toBe(r!.newInputs);
  }, 60_000);

  it('reaches a bug behind three nested branches, saves the input and fails', () => {
    const { status, results } = fuzz(dir, 20, 'fuzz/fixtures/three-octets.cjs');
    expect(status).toBe(1);
    const [finding] = results[0]!.findings;
    expect(finding!.error).toContain('reached the nested branch');
    expect(readFileSync(finding!.file).subarray(0, 3).toString('latin1')).toBe('oid');
  }, 60_000);
});
