import { test as vitestTest, type TestAPI } from 'vitest';
import type { DatabaseReset, ResetStrategy } from '../databases/index.js';
import { currentWorkerDatabase, resetWorkerDatabase, type WorkerDatabase } from './worker-database.js';

export type { WorkerDatabase };

/**
 * The database of this Vitest worker: its URL (also `DATABASE_URL`), its name, and `reset()`.
 * Call it in a test, a hook or a fixture.
 * @throws {LanesError} `CONFIG_INVALID` when the config is not wrapped with `withDatabases`.
 */
export function useDatabase(): WorkerDatabase {
  return currentWorkerDatabase();
}

/**
 * Puts this worker's database back to exactly the seed now, under the same name and URL: for a
 * test that wants fresh data in its middle, or after a `beforeAll` that wrote. With `swap` (the
 * default of `database.reset`) the sessions on it are ended; Prisma and a `pg.Pool` with an
 * `'error'` listener reconnect on their next query.
 * @throws {LanesError} `DATABASE_RESET_FAILED` naming the step that failed.
 */
export function resetDatabase(options: { strategy?: ResetStrategy } = {}): Promise<DatabaseReset> {
  return resetWorkerDatabase(options);
}

/** The test context `test` adds. */
export interface DatabaseFixtures {
  /** The worker's database (see {@link useDatabase}). */
  database: WorkerDatabase;
}

/**
 * Vitest's `test` with a `database` context value: `test('…', async ({ database }) => …)`. In the
 * Vitest process itself (where `vitest.config.ts` imports this module for `withDatabases`) there
 * is no test runner to extend: there it is Vitest's own `test`.
 */
export const test: TestAPI<DatabaseFixtures> =
  process.env.VITEST_POOL_ID === undefined
    ? (vitestTest as unknown as TestAPI<DatabaseFixtures>)
    : vitestTest.extend<DatabaseFixtures>({
        // Vitest reads a fixture's dependencies from its first parameter, which must be a pattern
        // (an empty one may be compiled away when Vite transforms this file).
        database: async ({ task }, use) => {
          void task;
          await use(currentWorkerDatabase());
        },
      });
