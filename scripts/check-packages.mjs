#!/usr/bin/env node
// Packaging checks for every publishable package, on the tarball `pnpm pack` makes (workspace:
// ranges replaced, exactly what would be published):
// - publint: exports, files, types, bin;
// - arethetypeswrong: types resolve for import and require under node16 and bundlers (not for a
//   package that only has a `bin`: it has no types to resolve);
// - contents: README.md and LICENSE, a source map beside every .js and .d.ts that names it, and
//   every source a map points to inside the tarball, so stack traces and "go to definition" land
//   on the TypeScript source.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';

const bin = (name) => resolve('node_modules', '.bin', name);
const work = mkdtempSync(join(tmpdir(), 'oidc2-check-packages-'));
let failed = false;

/** What is wrong with the unpacked package in `root`: missing files, maps, or sources. */
function contentProblems(root, files) {
  const problems = [];
  for (const required of ['README.md', 'LICENSE']) if (!files.includes(required)) problems.push(`${required} is not in the tarball`);
  const built = files.filter((f) => f.startsWith('dist/') && (f.endsWith('.js') || f.endsWith('.d.ts')));
  if (built.length === 0) problems.push('the tarball has no dist/*.js');
  for (const file of built) {
    const map = `${file}.map`;
    if (!files.includes(map)) {
      problems.push(`${map} is missing`);
      continue;
    }
    if (!readFileSync(join(root, file), 'utf8').trimEnd().endsWith(`//# sourceMappingURL=${basename(map)}`)) problems.push(`${file} does not name its source map`);
    const { sources = [] } = JSON.parse(readFileSync(join(root, map), 'utf8'));
    for (const source of sources) {
      if (!existsSync(resolve(root, dirname(map), source))) problems.push(`${map} points to ${source}, which is not in the tarball`);
    }
  }
  return problems;
}

function run(command, args, cwd) {
  return execFileSync(command, args, { cwd, stdio: 'pipe', encoding: 'utf8' });
}

try {
  for (const dir of readdirSync('packages')) {
    const pkgDir = join('packages', dir);
    const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
    if (pkg.private) continue;
    const out = join(work, dir);
    mkdirSync(out);
    const checks = [['publint', () => run(bin('publint'), ['--strict'], pkgDir)]];
    let tarball;
    checks.push([
      'contents',
      () => {
        const packed = JSON.parse(run('pnpm', ['pack', '--pack-destination', resolve(out), '--json'], pkgDir));
        tarball = packed.filename;
        run('tar', ['-xzf', tarball, '-C', out]);
        const problems = contentProblems(join(out, 'package'), packed.files.map((f) => f.path));
        if (problems.length > 0) throw Object.assign(new Error('tarball contents'), { stdout: `${problems.join('\n')}\n` });
      },
    ]);
    if (pkg.exports !== undefined || pkg.main !== undefined || pkg.types !== undefined) {
      checks.push(['attw', () => run(bin('attw'), [tarball ?? pkgDir, '--profile', 'node16', '--format', 'table-flipped'])]);
    } else {
      console.log(`${pkg.name}: attw skipped (only a bin, no types to resolve)`);
    }
    for (const [name, check] of checks) {
      try {
        check();
        console.log(`${pkg.name}: ${name} ok`);
      } catch (err) {
        failed = true;
        console.error(`${pkg.name}: ${name} failed\n${err.stdout ?? ''}${err.stderr ?? ''}${err.stdout || err.stderr ? '' : `${err.message}\n`}`);
      }
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
