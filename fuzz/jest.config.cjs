/**
 * `pnpm fuzz`: the long randomized runs of fuzz/*.fuzz.ts, apart from the default test run (whose
 * testMatch is *.test.ts). Same transform and module mapping as the root config.
 */
const root = require('../jest.config.cjs');

module.exports = {
  ...root,
  rootDir: '..',
  roots: ['<rootDir>/fuzz'],
  testMatch: ['**/*.fuzz.ts'],
  reporters: ['default'],
  // Each target runs for its own time budget (FUZZ_SECONDS), plus room to finish its last batch.
  testTimeout: 24 * 3600 * 1000,
};
