// oidc2 api-key hash | new: the stored form of a workload's API key, as the issuer's `apiKeys`
// authenticator expects it (`hashApiKey` of @oidc2/issuer, so the two cannot drift apart).
import { randomBytes } from 'node:crypto';
import { hashApiKey } from '@oidc2/issuer';
import { EXIT, UsageError, note, print, printJson, stringOption, table, type Command } from '../lib/command.js';
import { SECRET_FILE_MODE, readStdin, writeOutputFile } from '../lib/files.js';

/** Random bytes in a generated key: 256 bits, twice what `hashApiKey` asks for. */
const KEY_BYTES = 32;

export const apiKeyHash: Command = {
  path: ['api-key', 'hash'],
  summary: "print the hash the issuer's apiKeys authenticator stores for an API key",
  help: `Usage: oidc2 api-key hash [<key> | -] [--json]

Prints hashApiKey(key) of @oidc2/issuer: base64url(SHA-256(key)), the "hash" of an entry of
apiKeys({ keys: [{ hash, subject }] }). Without <key>, or with -, the key is read from stdin (one
trailing newline is dropped). Prefer stdin: a key on the command line stays in shell history and
is visible to other users in the process list.

Options:
  --json       {"hash": "..."} on stdout
  -h, --help   this help

Example:
  printf %s "$BILLING_API_KEY" | oidc2 api-key hash`,
  options: { json: { type: 'boolean' } },
  positionals: [0, 1],
  async run(values, [argument]) {
    const key = argument === undefined || argument === '-' ? (await readStdin()).toString('utf8').replace(/\r?\n$/, '') : argument;
    if (key.length === 0) throw new UsageError('the API key is empty');
    const hash = hashApiKey(key);
    if (values.json === true) printJson({ hash });
    else print(hash);
    return EXIT.ok;
  },
};

export const apiKeyNew: Command = {
  path: ['api-key', 'new'],
  summary: 'generate a random API key and its hash',
  help: `Usage: oidc2 api-key new [--out <file>] [--force] [--json]

Generates an API key of 256 random bits (base64url) and prints it with its hash. Give the key to
the workload and store only the hash in the issuer's apiKeys({ keys: [{ hash, subject }] }). The
key is shown once: it cannot be recovered from the hash.

Options:
  --out <file>  write the key to this file (mode 0600) and print only the hash
  --force       overwrite an existing --out file
  --json        {"key": "...", "hash": "..."} on stdout ("keyFile" instead of "key" with --out)
  -h, --help    this help`,
  options: { out: { type: 'string' }, force: { type: 'boolean' }, json: { type: 'boolean' } },
  positionals: [0, 0],
  async run(values) {
    const key = randomBytes(KEY_BYTES).toString('base64url');
    const hash = hashApiKey(key);
    const out = stringOption(values, 'out');
    if (out !== undefined) {
      writeOutputFile(out, `${key}\n`, SECRET_FILE_MODE, values.force === true);
      note(`wrote the API key to ${out} (mode 0600)`);
    }
    if (values.json === true) printJson(out === undefined ? { key, hash } : { keyFile: out, hash });
    else if (out !== undefined) print(hash);
    else print(table([['key', key], ['hash', hash]]));
    return EXIT.ok;
  },
};
