// Bundles a workspace package's source with esbuild, for browsers or for a child Node process,
// resolving `@oidc2/*` to the package sources (as jest does). For browsers there are no Node
// polyfills: whatever Node-only import remains in the import graph is an esbuild error or shows up in
// the output.
import { build, type Message, type Metafile, type Plugin } from 'esbuild';
import { resolve } from 'node:path';

const ROOT = resolve(__dirname, '../..');

// `@oidc2/x` and `@oidc2/x/y` resolve to the package sources, as in jest.
const workspaceSources: Plugin = {
  name: 'oidc2-workspace',
  setup(b) {
    b.onResolve({ filter: /^@oidc2\/[a-z-]+(\/[a-z-]+)?$/ }, (args) => {
      const [pkg, entry = 'index'] = args.path.slice('@oidc2/'.length).split('/');
      return { path: resolve(ROOT, 'packages', pkg!, 'src', `${entry}.ts`) };
    });
  },
};

export interface BrowserBundle {
  code: string;
  errors: Message[];
  warnings: Message[];
  metafile: Metafile;
}

/** Bundles `entry` (relative to the repository root) as one ES module for `platform: 'browser'`. */
export async function bundleForBrowser(entry: string, options: { globalName?: string } = {}): Promise<BrowserBundle> {
  let result;
  try {
    result = await build({
    entryPoints: [resolve(ROOT, entry)],
    bundle: true,
    write: false,
    platform: 'browser',
    format: options.globalName ? 'iife' : 'esm',
    ...(options.globalName ? { globalName: options.globalName } : {}),
    target: 'es2022',
    metafile: true,
    logLevel: 'silent',
    plugins: [workspaceSources],
    });
  } catch (error) {
    const failure = error as { errors?: Message[]; warnings?: Message[] };
    if (!Array.isArray(failure.errors)) throw error;
    return { code: '', errors: failure.errors, warnings: failure.warnings ?? [], metafile: { inputs: {}, outputs: {} } };
  }
  return { code: result.outputFiles[0]!.text, errors: result.errors, warnings: result.warnings, metafile: result.metafile! };
}

/** Node-only imports an output must not contain: `node:*` imports and requires of builtins. */
export function nodeImportsIn(code: string): string[] {
  const builtins = 'assert|buffer|child_process|crypto|dns|events|fs|http|http2|https|net|os|path|process|stream|tls|url|util|worker_threads|zlib';
  const patterns = [
    /\bfrom\s*["']node:[^"']+["']/g,
    /\bimport\s*\(\s*["']node:[^"']+["']\s*\)/g,
    /\bimport\s*["']node:[^"']+["']/g,
    new RegExp(`\\brequire\\s*\\(\\s*["'](?:node:)?(?:${builtins})(?:/[^"']*)?["']\\s*\\)`, 'g'),
  ];
  return patterns.flatMap((p) => code.match(p) ?? []);
}

/**
 * Bundles `entry` (relative to the repository root) as one CommonJS file for Node at `outfile`,
 * resolving `@oidc2/*` to the package sources and leaving `external` packages to be required at run
 * time (run it with `NODE_PATH` set to {@link ROOT_NODE_MODULES}).
 */
export async function bundleForNode(entry: string, outfile: string, external: string[]): Promise<void> {
  await build({
    entryPoints: [resolve(ROOT, entry)],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external,
    logLevel: 'silent',
    plugins: [workspaceSources],
  });
}

/** The repository's own `node_modules`, where the externals of {@link bundleForNode} resolve. */
export const ROOT_NODE_MODULES = resolve(ROOT, 'node_modules');
