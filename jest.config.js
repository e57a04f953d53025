/** Unit tests sit beside the code; integration tests in test/ run real Redis and gateway processes. */
const transform = {
  '^.+\\.ts$': [
    '@swc/jest',
    { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' } },
  ],
};
// The A2A SDK's CommonJS build requires `jose`, which ships as ES modules only: compiled to CommonJS
// for the tests like the TypeScript (every other package in node_modules is left as it is).
const integrationTransform = {
  ...transform,
  '^.+/node_modules/jose/.+\\.js$': [
    '@swc/jest',
    { jsc: { parser: { syntax: 'ecmascript' }, target: 'es2022' }, module: { type: 'commonjs' } },
  ],
};
const transformIgnorePatterns = ['^(?!.*/node_modules/jose/).*/node_modules/'];
// Unit tests import sibling packages from source, so they run without a build.
const moduleNameMapper = {
  '^@openclaw/(protocol|core|gateway|sdk|cli)$': '<rootDir>/packages/$1/src/index.ts',
  '^@openclaw/core/tracing$': '<rootDir>/packages/core/src/telemetry/tracing.ts',
};

/** @type {import('jest').Config} */
module.exports = {
  projects: [
    {
      displayName: 'unit',
      rootDir: __dirname,
      testMatch: ['<rootDir>/packages/*/src/**/*.test.ts'],
      testEnvironment: 'node',
      transform,
      moduleNameMapper,
    },
    {
      displayName: 'integration',
      rootDir: __dirname,
      testMatch: ['<rootDir>/test/**/*.test.ts'],
      // Stops at once, naming what to install, when redis-server, nginx, promtool or Chromium is missing.
      globalSetup: '<rootDir>/test/helpers/required-tools.ts',
      globalTeardown: '<rootDir>/test/helpers/exit-watchdog.ts',
      testEnvironment: 'node',
      transform: integrationTransform,
      transformIgnorePatterns,
      moduleNameMapper,
      slowTestThreshold: 20,
    },
    {
      // The routing, async task, workflow and approval suites again, on a Redis Cluster (three
      // masters with a replica each) instead of one Redis: `startCluster` reads OPENCLAW_TEST_REDIS.
      displayName: 'integration-redis-cluster',
      rootDir: __dirname,
      testMatch: ['<rootDir>/test/integration/{routing,async-tasks,workflows,approvals,state}.test.ts'],
      globalSetup: '<rootDir>/test/helpers/required-tools.ts',
      globalTeardown: '<rootDir>/test/helpers/exit-watchdog.ts',
      setupFiles: ['<rootDir>/test/helpers/on-redis-cluster.ts'],
      testEnvironment: 'node',
      transform,
      moduleNameMapper,
      slowTestThreshold: 20,
    },
  ],
  // Integration tests start real processes; unit tests finish far sooner.
  testTimeout: 60_000,
  // Reports what a test left open. Leaked child processes are killed and fail the run
  // (test/helpers/child-reaper.ts); anything else left open keeps jest from exiting, for a minute:
  // then test/helpers/exit-watchdog.ts ends the run as failed.
  detectOpenHandles: true,
};
