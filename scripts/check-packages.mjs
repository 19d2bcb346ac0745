#!/usr/bin/env node
// Packaging checks for every publishable package: publint (exports, files, types) and
// arethetypeswrong (types resolve for import and require under node16 and bundlers).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const bin = (name) => resolve('node_modules', '.bin', name);
let failed = false;
for (const dir of readdirSync('packages')) {
  const pkgDir = join('packages', dir);
  const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
  if (pkg.private) continue;
  for (const [name, args] of [
    ['publint', ['--strict']],
    ['attw', ['--pack', '.', '--profile', 'node16', '--format', 'table-flipped']],
  ]) {
    try {
      execFileSync(bin(name), args, { cwd: pkgDir, stdio: 'pipe' });
      console.log(`${pkg.name}: ${name} ok`);
    } catch (err) {
      failed = true;
      console.error(`${pkg.name}: ${name} failed\n${err.stdout ?? ''}${err.stderr ?? ''}`);
    }
  }
}
process.exit(failed ? 1 : 0);
