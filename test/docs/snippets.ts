// Extracts the TypeScript snippets of the README, docs/ and the package READMEs, and type-checks
// them with the project's strict settings against the packages' sources.
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import ts from 'typescript';

export const ROOT = resolve(__dirname, '../..');

export interface Snippet {
  /** Where it is: `docs/express.md:14` (the line of the opening fence). */
  where: string;
  code: string;
}

/** Every Markdown file whose snippets are checked. */
export function documents(): string[] {
  const docs = readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => join(ROOT, 'docs', f));
  const packages = readdirSync(join(ROOT, 'packages')).map((p) => join(ROOT, 'packages', p, 'README.md'));
  return [join(ROOT, 'README.md'), ...docs, ...packages.filter((p) => { try { readFileSync(p); return true; } catch { return false; } })];
}

/** The ```ts blocks of `file`. */
export function snippetsOf(file: string): Snippet[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  const found: Snippet[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^\s*```ts\s*$/.test(lines[i]!)) continue;
    const indent = /^\s*/.exec(lines[i]!)![0].length;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^\s*```\s*$/.test(lines[i]!); i++) body.push(lines[i]!.slice(indent));
    found.push({ where: `${relative(ROOT, file)}:${start + 1}`, code: body.join('\n') });
  }
  return found;
}

/** Type-checks `snippets` (each as a module, with `prelude` declaring what a reader brings); returns the diagnostics. */
export function typeCheck(snippets: Snippet[], prelude: string): string[] {
  const base = ts.readConfigFile(join(ROOT, 'test/tsconfig.json'), ts.sys.readFile);
  const parsed = ts.parseJsonConfigFileContent(base.config, ts.sys, join(ROOT, 'test'));
  const files = new Map<string, string>();
  // At the repository root, as a reader's module beside examples/ would be (events.md imports one).
  snippets.forEach((s, i) => files.set(join(ROOT, `.snippet-${i}.ts`), `${s.code}\nexport {}\n`));
  files.set(join(ROOT, '.snippet-prelude.d.ts'), prelude);
  const host = ts.createCompilerHost({ ...parsed.options, noEmit: true });
  const read = host.readFile.bind(host);
  const exists = host.fileExists.bind(host);
  host.readFile = (name) => files.get(name) ?? read(name);
  host.fileExists = (name) => files.has(name) || exists(name);
  const program = ts.createProgram([...files.keys()], { ...parsed.options, noEmit: true, noUnusedLocals: false, types: ['node'] }, host);
  const out: string[] = [];
  for (const d of ts.getPreEmitDiagnostics(program)) {
    if (!d.file || !files.has(d.file.fileName)) {
      out.push(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      continue;
    }
    const index = Number(/\.snippet-(\d+)\.ts$/.exec(d.file.fileName)?.[1]);
    const { line } = d.file.getLineAndCharacterOfPosition(d.start ?? 0);
    const s = snippets[index];
    out.push(`${s ? s.where.replace(/:(\d+)$/, (_, l) => `:${Number(l) + 1 + line}`) : d.file.fileName}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`);
  }
  return out;
}
