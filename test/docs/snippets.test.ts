// Every ```ts snippet of the README, docs/ and the package READMEs type-checks with the project's
// strict settings against the packages' sources, with only what a reader brings declared
// (snippet-prelude.ts). One test per Markdown file; quick-start.test.ts runs the set-up snippets.
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { documents, snippetsOf, typeCheck, ROOT, type Snippet } from './snippets';
import { SNIPPET_PRELUDE } from './snippet-prelude';

const files = documents().map((file) => [relative(ROOT, file), snippetsOf(file)] as const);
const all = files.flatMap(([, snippets]) => snippets);

// Snippets the checker must refuse, checked in the same program: an ICT request without the
// subject the types require, and a placeholder nobody declared.
const CONTROLS: Snippet[] = [
  { where: 'control-subject:1', code: "import { createClient } from '@oidc2/client'\ncreateClient({ serviceIssuers: [{ issuer: 'https://op.example' }], issuer: { url: 'https://op.example', credential: { apiKey: 'k' } } })" },
  { where: 'control-placeholder:1', code: "import { oidc2 } from '@oidc2/express'\noidc2({ issuers: [{ issuer: 'https://op.example' }], audiences: ['https://api.example'], credential: undeclaredCredential })" },
];

let diagnostics: string[];
beforeAll(() => {
  // One program for all snippets: loading the packages' sources once keeps the check fast.
  diagnostics = typeCheck([...all, ...CONTROLS], SNIPPET_PRELUDE);
}, 60_000);

it('finds the snippets of every document', () => {
  expect(all.length).toBeGreaterThan(50);
  for (const name of ['README.md', 'docs/express.md', 'docs/fastify.md', 'docs/koa.md', 'docs/client.md', 'packages/core/README.md']) {
    expect(files.find(([file]) => file === name)?.[1].length).toBeGreaterThan(0);
  }
});

it('refuses the control snippets, so a passing document means something', () => {
  expect(diagnostics.filter((d) => d.startsWith('control-subject:'))).toEqual([expect.stringContaining("is not assignable to type 'IssuanceOptions | undefined'")]);
  expect(diagnostics.filter((d) => d.startsWith('control-placeholder:'))).toEqual([expect.stringContaining("Cannot find name 'undeclaredCredential'")]);
});

it('the prelude itself has no errors', () => {
  expect(diagnostics.filter((d) => !/^[^:]+:\d+: /.test(d))).toEqual([]);
});

it('no snippet escapes the checker (any, casts to never, @ts- comments)', () => {
  const escapes = all.filter((s) => /\bas any\b|:\s*any\b|\bas never\b|@ts-(ignore|expect-error|nocheck)/.test(s.code)).map((s) => s.where);
  expect(escapes).toEqual([]);
});

it.each(files.filter(([, snippets]) => snippets.length > 0).map(([file]) => file))('%s: every snippet type-checks', (file) => {
  expect(diagnostics.filter((d) => d.startsWith(`${file}:`))).toEqual([]);
});

// A snippet introduced by a line naming an example file (`examples/events/pino.ts`:) is that file.
it('the snippets that show an example file show it as it is', () => {
  const shown: string[] = [];
  for (const [file] of files) {
    const lines = readFileSync(join(ROOT, file), 'utf8').split('\n');
    for (const s of snippetsOf(join(ROOT, file))) {
      const fence = Number(/:(\d+)$/.exec(s.where)![1]);
      const named = /^`(examples\/[\w./-]+\.ts)`:$/.exec(lines[fence - 3] ?? '');
      if (!named) continue;
      shown.push(named[1]!);
      expect(`${s.code}\n`).toBe(readFileSync(join(ROOT, named[1]!), 'utf8'));
    }
  }
  expect(shown).toEqual(expect.arrayContaining(['examples/events/pino.ts', 'examples/events/opentelemetry.ts']));
});
