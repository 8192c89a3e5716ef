/**
 * The shared way for bench part 9: the tests of examples/vitest-prisma against ONE database,
 * migrated and seeded once, one test file at a time (`fileParallelism: false`), every table
 * truncated and the seed run again before each test (the naive way), as suites do before a tool
 * gives each worker a database. `e2e-lanes/vitest` is replaced by a shim of the same shape.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  root: here('../../examples/vitest-prisma'),
  resolve: { alias: { 'e2e-lanes/vitest': here('vitest-shared-shim.ts') } },
  test: {
    include: ['test/**/*.test.ts'],
    fileParallelism: false,
    globalSetup: [here('vitest-shared-global.ts')],
    setupFiles: [here('vitest-shared-setup.ts')],
  },
});
