// The packages as users get them: every package packed by pnpm (what would be published), installed
// from the tarballs into an empty project, then imported there from ESM and CJS, and one service
// and one caller built from them alone (plus the installed `oidc2` binary) exchange signed and
// end-to-end encrypted requests.
//
// Without network: the third-party dependencies are packed from the workspace's own install (the
// versions the lockfile pins), and npm installs everything from those tarballs with `--offline` and
// an empty cache. So it runs the same on a fresh CI machine right after `pnpm install
// --frozen-lockfile` and `pnpm build`. Peer dependencies (express, fastify, koa, redis) are not
// installed: the adapters import only their types, which the imports below prove.
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { tempDir } from '../../packages/cli/test/support/run-cli';

const ROOT = resolve(__dirname, '../..');
const FIXTURES = join(__dirname, 'app');
const run = promisify(execFile);

interface Manifest {
  name: string;
  version: string;
  private?: boolean;
  exports?: Record<string, unknown>;
  dependencies?: Record<string, string>;
}

const manifest = (dir: string): Manifest => JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;
const packageDirs = readdirSync(join(ROOT, 'packages'))
  .map((name) => join(ROOT, 'packages', name))
  .filter((dir) => existsSync(join(dir, 'package.json')) && !manifest(dir).private);

/** Where Node would find `name` from `dir`: the nearest `node_modules/<name>` above it, resolved. */
function installedDir(name: string, dir: string): string {
  for (let at = dir; ; at = dirname(at)) {
    if (!at.endsWith('node_modules')) {
      const candidate = join(at, 'node_modules', name);
      if (existsSync(candidate)) return realpathSync(candidate);
    }
    if (dirname(at) === at) throw new Error(`${name} is not installed for ${dir}: run pnpm install`);
  }
}

/** Every third-party package the workspace packages need at run time, as installed: name -> dir. */
function thirdPartyClosure(): Map<string, string> {
  const found = new Map<string, string>();
  const visit = (dependencies: Record<string, string> | undefined, from: string) => {
    for (const name of Object.keys(dependencies ?? {})) {
      if (name.startsWith('@oidc2/')) continue;
      const dir = installedDir(name, from);
      const seen = found.get(name);
      if (seen === dir) continue;
      if (seen !== undefined) throw new Error(`two versions of ${name} are needed (${seen}, ${dir}): one flat install cannot hold both`);
      found.set(name, dir);
      visit(manifest(dir).dependencies, dir);
    }
  };
  for (const dir of packageDirs) visit(manifest(dir).dependencies, dir);
  return found;
}

/** Runs `node <script>` in `cwd` and returns its stdout parsed as JSON. */
async function nodeJson(script: string, cwd: string): Promise<unknown> {
  const { stdout } = await run(process.execPath, [script], { cwd, timeout: 30_000 });
  return JSON.parse(stdout);
}

describe('the packed packages, installed from their tarballs', () => {
  let dir: ReturnType<typeof tempDir>;
  let app: string;

  beforeAll(async () => {
    for (const pkg of packageDirs) {
      if (!existsSync(join(pkg, 'dist'))) throw new Error(`${pkg}/dist is missing: run 'pnpm build' before this test`);
    }
    dir = tempDir('oidc2-pack-install-');
    const tarballs = join(dir.path, 'tarballs');
    app = join(dir.path, 'app');
    mkdirSync(tarballs);
    mkdirSync(app);

    const ours = await Promise.all(
      packageDirs.map(async (pkg) => {
        const { stdout } = await run('pnpm', ['pack', '--pack-destination', tarballs, '--json'], { cwd: pkg });
        return [manifest(pkg).name, (JSON.parse(stdout) as { filename: string }).filename] as const;
      }),
    );
    const closure = thirdPartyClosure();
    const { stdout } = await run('npm', ['pack', ...closure.values(), '--pack-destination', tarballs, '--ignore-scripts', '--json'], { cwd: dir.path });
    const theirs = (JSON.parse(stdout) as Array<{ name: string; filename: string }>).map((t) => [t.name, join(tarballs, t.filename)] as const);

    const dependencies = Object.fromEntries([...ours, ...theirs].map(([name, file]) => [name, `file:${file}`]));
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'packaging-check', private: true, dependencies }, null, 2));
    for (const fixture of readdirSync(FIXTURES)) copyFileSync(join(FIXTURES, fixture), join(app, fixture));
    await run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--legacy-peer-deps', '--ignore-scripts', '--cache', join(dir.path, 'npm-cache')], {
      cwd: app,
      timeout: 60_000,
    });
  }, 120_000);
  afterAll(() => dir?.remove());

  it('every entry point of every library package loads from ESM and from CJS, with its exports', async () => {
    const entries = packageDirs.flatMap((pkg) => Object.keys(manifest(pkg).exports ?? {}).filter((e) => e !== './package.json').map((e) => manifest(pkg).name + e.slice(1)));
    expect(((await nodeJson('imports.mjs', app)) as string[]).sort()).toEqual([...entries].sort());
    expect(((await nodeJson('imports.cjs', app)) as string[]).sort()).toEqual([...entries].sort());
  });

  it('a node:http service and a client from the tarballs exchange signed and encrypted requests; so does the installed oidc2 binary', async () => {
    const results = (await nodeJson('request.mjs', app)) as Record<'off' | 'required' | 'cli', Record<string, unknown>>;
    expect(results.off).toMatchObject({ status: 200, service: 'spiffe://packaging.test/echo', encryption: null, body: { caller: 'alice', echo: 'hello off' } });
    expect(results.required).toMatchObject({ status: 200, encryption: { bodyEncrypted: true }, body: { caller: 'alice', echo: 'hello required' } });
    expect(results.cli).toMatchObject({ status: 200, service: { subject: 'spiffe://packaging.test/echo' }, encryption: { bodyEncrypted: true } });
    expect(JSON.parse(results.cli.body as string)).toEqual({ caller: 'alice', echo: 'hello cli' });
  });
});
