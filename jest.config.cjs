/** One jest run for every package: tests import package sources directly, so no build is needed to test. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test', '<rootDir>/packages'],
  testMatch: ['**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  transform: {
    '^.+\\.[tj]s$': ['ts-jest', { tsconfig: '<rootDir>/test/tsconfig.jest.json' }],
  },
  // ESM-only packages that ts-jest must transform. pnpm stores scoped packages as `.pnpm/@scope+name@x`,
  // so a scope is matched with `+` as well as `/`: @panva/hpke-noble and the @noble packages under it
  // are the optional engine of the `xwing` suite (docs/e2ee-engineering.md). oidc-provider is the
  // OpenID Provider of test/oidc-provider/.
  transformIgnorePatterns: ['/node_modules/(?!(\\.pnpm/)?(jose|hpke|cookie|oidc-provider|@noble[+/][a-z0-9-]+|@panva[+/]hpke-noble)[@/])'],
  moduleNameMapper: {
    '^@oidc2/([a-z-]+)$': '<rootDir>/packages/$1/src/index.ts',
    '^@oidc2/([a-z-]+)/([a-z-]+)$': '<rootDir>/packages/$1/src/$2.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  setupFiles: ['<rootDir>/test/setup/block-network.cjs'],
  testTimeout: 30000,
  reporters: ['default', '<rootDir>/test/setup/summary-reporter.cjs'],
};
