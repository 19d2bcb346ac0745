// Runs a documentation snippet as a Node ES module in a child process: bundled with esbuild, with
// `@oidc2/*` from the packages' sources and every other package the repository has left to Node
// (resolved from the repository's node_modules), the network limited to loopback as in every test.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build, type Plugin } from 'esbuild';
import { ROOT } from './snippets';

// `@oidc2/x` resolves to the package's source; a package in the repository's node_modules stays an
// import; anything else (a dependency of one package only) is bundled.
const sources: Plugin = {
  name: 'snippet-sources',
  setup(b) {
    b.onResolve({ filter: /^@oidc2\/[a-z-]+(\/[a-z-]+)?$/ }, (args) => {
      const [pkg, entry = 'index'] = args.path.slice('@oidc2/'.length).split('/');
      return { path: resolve(ROOT, 'packages', pkg!, 'src', `${entry}.ts`) };
    });
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      const name = args.path.split('/').slice(0, args.path.startsWith('@') ? 2 : 1).join('/');
      return args.path.startsWith('node:') || existsSync(join(ROOT, 'node_modules', name)) ? { external: true } : undefined;
    });
  },
};

/**
 * Replaces each `[from, to]` in `code` (every occurrence); throws when one does not occur, so a
 * snippet that changed shape fails the test rather than running unsubstituted.
 */
export function substitute(code: string, replacements: Array<[string | RegExp, string]>): string {
  let out = code;
  for (const [from, to] of replacements) {
    const pattern = typeof from === 'string' ? new RegExp(from.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'g') : new RegExp(from.source, 'g');
    if (!pattern.test(out)) throw new Error(`the snippet no longer contains ${String(from)}`);
    out = out.replace(pattern, () => to);
  }
  return out;
}

export interface RunningSnippet {
  child: ChildProcess;
  /** Everything written to stdout so far. */
  stdout(): string;
  /** Resolves with the exit code (and the output) once the process ends. */
  exited: Promise<{ code: number | null; stdout: string; stderr: string }>;
  stop(): Promise<void>;
}

/** Bundles `code` (TypeScript, top-level await allowed) and starts it with `env` added. */
export async function runSnippet(code: string, env: Record<string, string> = {}): Promise<RunningSnippet> {
  const dir = await mkdtemp(join(tmpdir(), 'oidc2-snippet-'));
  await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  const result = await build({
    stdin: { contents: code, loader: 'ts', resolveDir: ROOT, sourcefile: 'snippet.ts' },
    bundle: true,
    write: false,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'silent',
    // Bundled CommonJS code may require Node's builtins.
    banner: { js: "import { createRequire as __snippetRequire } from 'node:module'; const require = __snippetRequire(import.meta.url);" },
    plugins: [sources],
  });
  const file = join(dir, 'snippet.mjs');
  await writeFile(file, result.outputFiles[0]!.text);
  const child = spawn(process.execPath, ['--require', join(ROOT, 'test/setup/block-network.cjs'), file], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
    child.on('exit', (exitCode) => done({ code: exitCode, stdout, stderr }));
  }).finally(() => rm(dir, { recursive: true, force: true }));
  return {
    child,
    stdout: () => stdout,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill();
      await exited;
    },
  };
}

/** Resolves once `url` answers at all; rejects with the snippet's output if it exits first or takes over 20 s. */
export async function answering(snippet: RunningSnippet, url: string): Promise<void> {
  let ended: { code: number | null; stderr: string } | undefined;
  void snippet.exited.then((e) => (ended = e));
  for (let attempt = 0; attempt < 400; attempt++) {
    if (ended) throw new Error(`the snippet exited with ${ended.code} before listening:\n${ended.stderr}`);
    try {
      await fetch(url);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`the snippet did not listen on ${url}`);
}
