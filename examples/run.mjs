#!/usr/bin/env node
// `pnpm example <name> [--serve]`: runs examples/<name>/main.ts against the built packages.
import { readdirSync, existsSync } from 'node:fs';
import { register } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = new URL('.', import.meta.url);
const names = readdirSync(here, { withFileTypes: true })
  .filter((entry) => entry.isDirectory() && existsSync(new URL(`${entry.name}/main.ts`, here)))
  .map((entry) => entry.name);
const [name, ...args] = process.argv.slice(2);

if (!names.includes(name)) {
  console.error(`usage: pnpm example <name> [--serve], where <name> is one of: ${names.join(', ')}`);
  process.exit(2);
}
register('./ts-hooks.mjs', import.meta.url);
const entry = new URL(`${name}/main.ts`, here);
process.argv = [process.argv[0], fileURLToPath(entry), ...args];
await import(entry.href);
