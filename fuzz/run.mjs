// `pnpm fuzz [--seconds N] [--targets a,b] [--corpus DIR] [--crashes DIR]`: a coverage-guided fuzz
// run of each target in fuzz/targets/ for N seconds (default FUZZ_SECONDS, else 60) under jsfuzz,
// which instruments every module the target loads (istanbul: statements, branches, functions),
// keeps each input that covers something no earlier input covered, and mutates the kept ones
// further. Each target starts from its seeds (fuzz/seeds/<target>/) and the corpus earlier runs
// kept (fuzz/corpus/<target>/, not committed); an input that makes a target throw, or hang past
// 30 s, is a finding, copied to fuzz/crashes/<target>-<sha256>; the target's run ends there. The
// budget counts from the first execution. Prints per target, and as a JSON summary: executions (as
// of the engine's last report, every 3 s), coverage at the start and at the end (and per module of
// @oidc2/core), corpus size, findings. Exits non-zero on a finding.
//
// A target is a name in fuzz/targets/ or the path of a CommonJS file that exports `fuzz(buffer)`.
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const FUZZ = dirname(fileURLToPath(import.meta.url));
const TARGETS = ['fast-dictionary', 'signature-base', 'query-param'];
const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: process.env.FUZZ_SECONDS ?? '60' },
    targets: { type: 'string', default: TARGETS.join(',') },
    corpus: { type: 'string' },
    crashes: { type: 'string', default: join(FUZZ, 'crashes') },
  },
});
const SECONDS = Number(values.seconds);
if (!(SECONDS > 0)) throw new Error('--seconds (or FUZZ_SECONDS) must be a positive number');
const ENGINE = createRequire(join(FUZZ, '..', 'package.json')).resolve('jsfuzz');
/** Longest wait for the engine's first execution before the run is abandoned. */
const STARTUP_MS = 60_000;
const STATS = /^#(\d+) (NEW|PULSE)\s+cov: (\d+) corp: (\d+) exec\/s: (\d+)/;

const CORE = join(FUZZ, '..', 'packages', 'core', 'dist', 'cjs');

/**
 * Per module of @oidc2/core the target loaded: [covered, total] statements, branches (each arm of
 * a conditional) and functions, from the istanbul counters the engine's worker dumps when it stops.
 */
function coreCoverage(dump) {
  if (!existsSync(dump)) return undefined;
  const modules = {};
  for (const [file, c] of Object.entries(JSON.parse(readFileSync(dump, 'utf8')))) {
    if (!file.startsWith(CORE)) continue;
    const count = (hits) => [hits.filter((n) => n > 0).length, hits.length];
    modules[relative(CORE, file)] = { statements: count(Object.values(c.s)), branches: count(Object.values(c.b).flat()), functions: count(Object.values(c.f)) };
  }
  return modules;
}

/** Runs one target for SECONDS; resolves what the engine reported. */
function run(target) {
  const file = target.includes('/') ? resolve(target) : join(FUZZ, 'targets', `${target}.cjs`);
  if (!existsSync(file)) throw new Error(`no fuzz target ${file}`);
  const name = target.includes('/') ? 'custom' : target;
  const corpus = values.corpus ? join(values.corpus, name) : join(FUZZ, 'corpus', name);
  mkdirSync(corpus, { recursive: true });
  const seeds = join(FUZZ, 'seeds', name);
  // The engine writes crash files and its coverage dump into its working directory, and takes
  // the target relative to it.
  const cwd = mkdtempSync(join(tmpdir(), 'oidc2-fuzz-'));
  // Its versifier (inputs recombined as text) stalls on some corpora, growing without bound; off.
  const args = [ENGINE, relative(cwd, file), corpus, ...(existsSync(seeds) ? [seeds] : []), '--versifier', 'false'];
  const child = spawn(process.execPath, args, { cwd, detached: true, stdio: ['ignore', 'pipe', 'inherit'] });
  // The budget starts with the first execution, after the worker has loaded and instrumented the
  // target; then SIGINT to the engine's process group: its worker stops, and the engine with it.
  const signal = (name) => () => {
    try {
      process.kill(-child.pid, name);
    } catch {
      // already gone
    }
  };
  let stop;
  let kill = setTimeout(signal('SIGKILL'), STARTUP_MS + SECONDS * 1000);
  let startedAt;
  const started = () => {
    if (stop) return;
    startedAt = Date.now();
    stop = setTimeout(signal('SIGINT'), SECONDS * 1000);
    clearTimeout(kill);
    kill = setTimeout(signal('SIGKILL'), SECONDS * 1000 + 15_000);
  };
  const report = { target: name, seconds: SECONDS, executions: 0, inputsAtStart: 0, coverageAtStart: 0, coverage: 0, corpus: 0, newInputs: 0, findings: [] };
  const error = [];
  let inError = false;
  createInterface({ input: child.stdout }).on('line', (line) => {
    const read = /^#0 READ units: (\d+)/.exec(line);
    if (read) report.inputsAtStart = Number(read[1]);
    const stats = STATS.exec(line);
    if (stats) {
      started();
      const [, n, kind, cov, corp] = stats.map(Number);
      report.executions = n;
      report.coverage = cov;
      report.corpus = corp;
      if (kind !== 'PULSE' && n <= report.inputsAtStart) report.coverageAtStart = cov;
    }
    if (line.startsWith('=====')) inError = true;
    else if (inError && error.length < 40 && !line.startsWith('crash')) error.push(line);
    const crash = /^crash was written to (\S+)/.exec(line);
    if (crash) {
      mkdirSync(values.crashes, { recursive: true });
      const saved = join(values.crashes, `${name}-${crash[1].replace(/^crash-/, '')}`);
      copyFileSync(join(cwd, crash[1]), saved);
      report.findings.push({ file: saved, error: error.join('\n').trim().slice(0, 2000) });
    }
  });
  return new Promise((done) => {
    child.once('close', () => {
      clearTimeout(stop);
      clearTimeout(kill);
      report.elapsedSeconds = startedAt ? Math.round((Date.now() - startedAt) / 100) / 10 : 0;
      report.coreCoverage = coreCoverage(join(cwd, '.nyc_output', 'cov.json'));
      rmSync(cwd, { recursive: true, force: true });
      report.newInputs = report.corpus - report.inputsAtStart;
      done(report);
    });
  });
}

const results = [];
for (const target of values.targets.split(',')) {
  const r = await run(target);
  results.push(r);
  console.log(
    `${r.target}: ${r.elapsedSeconds} of ${r.seconds} s, ${r.executions} executions, coverage ${r.coverageAtStart} after the ${r.inputsAtStart} inputs it started from -> ${r.coverage} ` +
      `(statements, branches and functions), corpus ${r.corpus} (${r.newInputs} new), findings ${r.findings.length}`,
  );
  for (const [module, c] of Object.entries(r.coreCoverage ?? {})) {
    console.log(`  ${module}: statements ${c.statements.join('/')}, branches ${c.branches.join('/')}, functions ${c.functions.join('/')}`);
  }
  for (const f of r.findings) console.log(`  finding ${f.file}\n${f.error}`);
}
console.log(JSON.stringify({ seconds: SECONDS, node: process.version, results }, null, 2));
if (results.some((r) => r.findings.length > 0)) {
  console.error('fuzz: findings above; each input is in the crashes directory');
  process.exitCode = 1;
}
if (results.some((r) => r.executions === 0)) {
  console.error(`fuzz: the engine never ran ${results.filter((r) => r.executions === 0).map((r) => r.target).join(', ')}`);
  process.exitCode = 1;
}
