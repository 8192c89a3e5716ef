/**
 * The setup file `withDatabases` adds: runs in the worker before every test file is imported.
 * It points `DATABASE_URL` (and the other URL and `PG*` variables) at the worker's database, so
 * clients created when a test file or the app it imports is loaded reach that database and no
 * other; with `reset: 'test'`, every test starts from the seed.
 */
import { afterEach, beforeEach, inject } from 'vitest';
import { PROVIDED_KEY, type ProvidedLanes } from './options.js';
import { enterTest, enterWorkerDatabase } from './worker-database.js';

const provided = inject(PROVIDED_KEY as never) as ProvidedLanes | undefined;
await enterWorkerDatabase(provided);

if (provided?.reset === 'test') {
  // By test: `test.concurrent` tests wait for each other here.
  const held = new WeakMap<object, { release(): void }>();
  // Hooks' contexts are destructured: Vitest reads which fixtures they use from their first parameter.
  beforeEach(async ({ task }) => {
    held.set(task, await enterTest());
  });
  afterEach(({ task }) => {
    held.get(task)?.release();
    held.delete(task);
  });
}
