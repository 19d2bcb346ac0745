// Imports every entry point of the installed packages as an ES module and checks its exports.
// Prints the entry points checked, as JSON.
import { readFileSync } from 'node:fs';

const expected = JSON.parse(readFileSync(new URL('./exports.json', import.meta.url), 'utf8'));
for (const [entry, names] of Object.entries(expected)) {
  const module = await import(entry);
  for (const name of names) if (typeof module[name] !== 'function') throw new Error(`import('${entry}').${name} is ${typeof module[name]}`);
}
console.log(JSON.stringify(Object.keys(expected)));
