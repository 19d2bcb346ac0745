#!/usr/bin/env node
// Builds the package in the current directory twice from one source:
// dist/esm (ES modules) and dist/cjs (CommonJS), each with its own declarations,
// so that both `import` and `require` consumers get matching types.
// Source maps and declaration maps point into src/, which every package ships: stack traces and
// "go to definition" land on the TypeScript source. (--inlineSources would cover the .js maps
// only; declaration maps cannot inline their sources.)
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const tsc = require.resolve('typescript/bin/tsc');
rmSync('dist', { recursive: true, force: true });
const common = ['-p', 'tsconfig.json', '--rootDir', 'src', '--sourceMap', '--declarationMap'];
try {
  execFileSync(process.execPath, [tsc, ...common, '--outDir', 'dist/esm', '--module', 'ES2022', '--moduleResolution', 'Bundler'], { stdio: 'inherit' });
  execFileSync(process.execPath, [tsc, ...common, '--outDir', 'dist/cjs', '--module', 'Node20', '--moduleResolution', 'Node16'], { stdio: 'inherit' });
} catch {
  process.exit(1); // tsc has printed the errors
}
mkdirSync('dist/esm', { recursive: true });
writeFileSync('dist/esm/package.json', '{"type":"module","sideEffects":false}\n');
writeFileSync('dist/cjs/package.json', '{"type":"commonjs","sideEffects":false}\n');
