import { randomBytes } from 'node:crypto';
import { cp } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { after, afterEach, before, type TestContext } from 'node:test';
import pg from 'pg';
import { DatabaseAllocator, DEFAULT_REGISTRY_DATABASE, REGISTRY_TABLE, type DatabaseAllocatorOptions } from '../../src/databases/index.js';
import { withDatabase } from '../../src/postgres/index.js';
import { getTestPostgres } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';

/** The migration fixtures folder. */
export const FIXTURES = fileURLToPath(new URL('../fixtures/migrations/', import.meta.url));

/**
 * Per test file: a PostgreSQL server and a prefix unique to this file and this run (so test files
 * can run concurrently against one server). After the file, every database whose name starts with
 * the prefix is dropped, templates included, whatever the tests left behind, and so are the
 * prefix's rows in the lane registry.
 */
export function useTestDatabases(name: string): { readonly adminUrl: string; readonly prefix: string } {
  const prefix = `t${name}${randomBytes(3).toString('hex')}`.slice(0, 16);
  let server: { adminUrl: string; release(): Promise<void> } | undefined;
  before(async () => {
    server = await getTestPostgres();
  });
  after(async () => {
    if (!server) return;
    try {
      await dropDatabasesStartingWith(server.adminUrl, `${prefix}_`);
      await dropRolesStartingWith(server.adminUrl, `${prefix}_`);
      const registry = withDatabase(server.adminUrl, DEFAULT_REGISTRY_DATABASE);
      await query(registry, `DELETE FROM ${REGISTRY_TABLE} WHERE prefix = $1`, [prefix]).catch(() => undefined); // no registry yet: nothing to do
    } finally {
      await server.release();
    }
  });
  return {
    get adminUrl() {
      if (!server) throw new Error('the test server is not ready (use it inside tests)');
      return server.adminUrl;
    },
    prefix,
  };
}

/** Runs `fn` with a connected client, then ends it. */
export async function query<T extends pg.QueryResultRow = Record<string, unknown>>(url: string, sql: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql, values)).rows;
  } finally {
    await client.end();
  }
}

/** Names of the databases starting with `start`, sorted. */
export async function databasesStartingWith(adminUrl: string, start: string): Promise<string[]> {
  const rows = await query<{ datname: string }>(adminUrl, 'SELECT datname FROM pg_database WHERE left(datname, $2) = $1 ORDER BY datname', [start, start.length]);
  return rows.map((row) => row.datname);
}

/** Drops every database starting with `start` (unsealing templates), even with sessions connected. */
export async function dropDatabasesStartingWith(adminUrl: string, start: string): Promise<void> {
  for (const name of await databasesStartingWith(adminUrl, start)) {
    const id = pg.escapeIdentifier(name);
    try {
      await query(adminUrl, `ALTER DATABASE ${id} WITH IS_TEMPLATE false`);
    } catch (error) {
      if ((error as { code?: string }).code === '3D000') continue; // dropped meanwhile (a background drop of the code under test)
      throw error;
    }
    await query(adminUrl, `DROP DATABASE IF EXISTS ${id} WITH (FORCE)`);
  }
}

/** Drops every role starting with `start` (lane roles and template owners), once their databases are gone. */
export async function dropRolesStartingWith(adminUrl: string, start: string): Promise<void> {
  const rows = await query<{ rolname: string }>(adminUrl, 'SELECT rolname FROM pg_roles WHERE left(rolname, $2) = $1 ORDER BY oid DESC', [start, start.length]);
  for (const { rolname } of rows) await query(adminUrl, `DROP ROLE IF EXISTS ${pg.escapeIdentifier(rolname)}`);
}

/** A copy of a fixture folder in `dir`, to edit freely. */
export async function copyFixture(fixture: string, dir: string): Promise<string> {
  const target = `${dir}/${fixture}`;
  await cp(`${FIXTURES}${fixture}`, target, { recursive: true });
  return target;
}

/**
 * Per test file: a function that makes an allocator on `server` with the `basic` fixture (seed:
 * alpha, beta), a state folder and a run id of its test, and `defaults`; each is released and
 * closed after its test (after the file's own earlier `afterEach` hooks).
 */
export function useBasicAllocators(
  server: { readonly adminUrl: string; readonly prefix: string },
  defaults: DatabaseAllocatorOptions = {},
): (t: TestContext, options?: DatabaseAllocatorOptions) => Promise<DatabaseAllocator> {
  const allocators: DatabaseAllocator[] = [];
  afterEach(async () => {
    for (const allocator of allocators.splice(0)) {
      await allocator.releaseRun().catch(() => undefined);
      await allocator.close();
    }
  });
  return async (t, options = {}) => {
    const allocator = new DatabaseAllocator({
      adminUrl: server.adminUrl,
      prefix: server.prefix,
      migrations: `${FIXTURES}basic/migrations`,
      seed: `${FIXTURES}basic/seed.ts`,
      stateDir: await tempDir(t),
      runId: `run-${t.name.slice(0, 12).replace(/[^a-z]/gi, '')}`,
      ...defaults,
      ...options,
    });
    allocators.push(allocator);
    return allocator;
  };
}
