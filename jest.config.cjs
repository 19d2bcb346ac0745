/** One jest run for every package: tests import package sources directly, so no build is needed to test. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test', '<rootDir>/packages'],
  testMatch: ['**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  transform: {
    '^.+\\.[tj]s$': ['ts-jest', { tsconfig: '<rootDir>/test/tsconfig.jest.json' }],
  },
  transformIgnorePatterns: ['/node_modules/(?!(\\.pnpm/)?(jose|@noble|hpke|cookie)[@/])'],
  moduleNameMapper: {
    '^@oidc2/([a-z-]+)$': '<rootDir>/packages/$1/src/index.ts',
    '^@oidc2/([a-z-]+)/([a-z-]+)$': '<rootDir>/packages/$1/src/$2.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  setupFiles: ['<rootDir>/test/setup/block-network.cjs'],
  testTimeout: 30000,
  reporters: ['default', '<rootDir>/test/setup/summary-reporter.cjs'],
};
