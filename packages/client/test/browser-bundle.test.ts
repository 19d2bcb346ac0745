// The client must run unchanged in browsers: its whole import graph bundles for
// `platform: 'browser'` without Node polyfills, and nothing in it imports a Node builtin.
import { bundleForBrowser, nodeImportsIn } from '../../../test/support/bundle';

describe('@oidc2/client in a browser bundle', () => {
  it('bundles with esbuild for the browser with no unresolved or Node-only imports', async () => {
    const bundle = await bundleForBrowser('packages/client/src/index.ts');
    expect(bundle.errors).toEqual([]);
    expect(bundle.warnings).toEqual([]);
    expect(nodeImportsIn(bundle.code)).toEqual([]);
    const inputs = Object.keys(bundle.metafile.inputs);
    expect(inputs.some((i) => i.includes('packages/core/src/'))).toBe(true);
    expect(inputs.filter((i) => i.startsWith('node:') || /(^|\/)node_modules\/(buffer|crypto-browserify|process)\//.test(i))).toEqual([]);
    expect(bundle.code).toMatch(/createClient/);
  });

  it('detects Node-only imports (the check itself can fail)', () => {
    expect(nodeImportsIn('import { createHash } from "node:crypto";')).toHaveLength(1);
    expect(nodeImportsIn('const c = require("crypto");')).toHaveLength(1);
    expect(nodeImportsIn('await import("node:fs")')).toHaveLength(1);
    expect(nodeImportsIn('globalThis.process?.getBuiltinModule?.("node:crypto")')).toEqual([]);
  });

  it('reports a graph that imports a Node builtin as unresolved', async () => {
    const bundle = await bundleForBrowser('packages/issuer/src/authenticators/api-keys.ts');
    expect(bundle.errors.map((e) => e.text).join('\n')).toMatch(/node:crypto/);
  });
});
