// The HPKE facade runs in browsers: its import graph (the `hpke` engine included) bundles for
// `platform: 'browser'` with no Node import.
import { bundleForBrowser, nodeImportsIn } from '../../../test/support/bundle';

describe('the HPKE facade in a browser bundle', () => {
  it('bundles with esbuild for the browser with no Node-only import', async () => {
    const bundle = await bundleForBrowser('packages/core/src/e2ee/hpke.ts');
    expect(bundle.errors).toEqual([]);
    expect(bundle.warnings).toEqual([]);
    expect(nodeImportsIn(bundle.code)).toEqual([]);
    const inputs = Object.keys(bundle.metafile.inputs);
    expect(inputs.some((i) => /node_modules\/(\.pnpm\/hpke@1\.1\.7\/node_modules\/)?hpke\//.test(i))).toBe(true);
    expect(inputs.filter((i) => i.startsWith('node:'))).toEqual([]);
  });
});
