// The fuzz harness: runs a fast-check property in batches under fresh random seeds until the time
// budget (FUZZ_SECONDS, default 60 per target) is spent, and writes every failure to
// fuzz/findings/<target>-<seed>.json (the seed and path replay it) before failing.
//
// This is the honest fallback for a coverage-guided fuzzer: @jazzer.js/core 4 installs from npm
// here, but its prebuilt libFuzzer binary needs glibc 2.38 and this machine's is older, so the
// search is random (with fast-check's biased generators and shrinking), not guided by coverage.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';

export const SECONDS = Number(process.env.FUZZ_SECONDS ?? 60);

export interface FuzzReport {
  target: string;
  seconds: number;
  runs: number;
  batches: number;
  findings: string[];
}

/** Runs `property` until the budget is spent; returns what it did. */
export async function fuzz<T>(target: string, property: fc.IProperty<T> | fc.IAsyncProperty<T>, seconds = SECONDS): Promise<FuzzReport> {
  const until = Date.now() + seconds * 1000;
  const report: FuzzReport = { target, seconds, runs: 0, batches: 0, findings: [] };
  while (Date.now() < until) {
    const seed = (Math.random() * 2 ** 31) | 0;
    const details = await fc.check(property as fc.IAsyncProperty<T>, { seed, numRuns: 1000, interruptAfterTimeLimit: Math.max(1, until - Date.now()) });
    report.runs += details.numRuns;
    report.batches++;
    if (details.failed) {
      const dir = join(__dirname, 'findings');
      mkdirSync(dir, { recursive: true });
      const file = join(dir, `${target}-${seed}.json`);
      writeFileSync(file, JSON.stringify({ target, seed, path: details.counterexamplePath, counterexample: fc.stringify(details.counterexample), error: String(details.errorInstance) }, null, 2));
      report.findings.push(file);
    }
  }
  process.stdout.write(`${JSON.stringify(report)}\n`);
  return report;
}
