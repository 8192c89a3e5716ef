import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireEmbeddedPostgres } from '../../src/postgres/index.js';

/** Set by CI to a PostgreSQL server the tests may use (e.g. Debian's PostgreSQL 15). */
export const TEST_DATABASE_URL_ENV = 'E2E_LANES_TEST_DATABASE_URL';

/** The folder of the embedded server shared by every test file on this host. */
export const TEST_POSTGRES_ROOT = join(tmpdir(), 'e2e-lanes-test-pg');

/**
 * A PostgreSQL server for tests: `E2E_LANES_TEST_DATABASE_URL` when set, else the embedded server
 * in `/tmp/e2e-lanes-test-pg/` shared by every test file (and every concurrent test run) on this
 * host. Call `release()` when done (e.g. in `after()`); the last release stops the embedded server.
 * `adminUrl` holds a password: do not print it.
 */
export async function getTestPostgres(): Promise<{ adminUrl: string; release(): Promise<void> }> {
  const given = process.env[TEST_DATABASE_URL_ENV];
  if (given) return { adminUrl: given, release: async () => undefined };
  const server = await acquireEmbeddedPostgres({
    dataDir: join(TEST_POSTGRES_ROOT, 'postgres'),
    stateDir: join(TEST_POSTGRES_ROOT, 'state'),
    runId: `test-${process.pid}`,
  });
  return { adminUrl: server.adminUrl, release: () => server.release() };
}
