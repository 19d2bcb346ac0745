// Where things are and what this machine offers: the built packages, jose (a dependency of
// @oidc2/core, resolved through it), and the optional tools wrk and taskset.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BENCH = join(ROOT, 'bench');

/** The built ESM entry of a workspace package. */
export function distEntry(pkg) {
  return join(ROOT, 'packages', pkg, 'dist', 'esm', 'index.js');
}

/** Imports a built package; throws a message naming `pnpm build` when it has not been built. */
export async function loadPackage(pkg) {
  const entry = distEntry(pkg);
  if (!existsSync(entry)) throw new Error(`packages/${pkg} is not built (${entry} is missing): run pnpm build`);
  return import(pathToFileURL(entry).href);
}

/** `@oidc2/core/adapter`: the key exchange, session and body-encoding layer of end-to-end encryption. */
export async function loadAdapter() {
  const entry = join(ROOT, 'packages', 'core', 'dist', 'esm', 'adapter.js');
  if (!existsSync(entry)) throw new Error(`packages/core is not built (${entry} is missing): run pnpm build`);
  return import(pathToFileURL(entry).href);
}

/** jose as @oidc2/core resolves it (the root does not depend on jose directly). */
export async function loadJose() {
  const require = createRequire(join(ROOT, 'packages', 'core', 'package.json'));
  return import(pathToFileURL(require.resolve('jose')).href);
}

/** Resolves a dependency installed at the root (express, fastify, ...). */
export const rootRequire = createRequire(join(ROOT, 'package.json'));

function which(tool) {
  try {
    return execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Tools found on this machine. */
export function tools() {
  const taskset = which('taskset');
  let cpus = 1;
  try {
    cpus = Number(execFileSync('nproc', { encoding: 'utf8' }).trim()) || 1;
  } catch {
    cpus = 1;
  }
  return { wrk: which('wrk'), taskset: taskset && cpus >= 2 ? taskset : undefined, cpus };
}

/** argv prefix that pins a process to one core when taskset is available. */
export function pinned(t, core, argv) {
  return t.taskset ? [t.taskset, '-c', String(core), ...argv] : argv;
}
