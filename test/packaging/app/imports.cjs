// Requires every entry point of the installed packages as CommonJS and checks its exports.
// Prints the entry points checked, as JSON.
const expected = require('./exports.json');

for (const [entry, names] of Object.entries(expected)) {
  const module = require(entry);
  for (const name of names) if (typeof module[name] !== 'function') throw new Error(`require('${entry}').${name} is ${typeof module[name]}`);
}
console.log(JSON.stringify(Object.keys(expected)));
