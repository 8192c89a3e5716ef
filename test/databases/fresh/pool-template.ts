import { randomBytes } from 'node:crypto';
import { after, before } from 'node:test';
import pg from 'pg';
import { withDatabase } from '../../../src/postgres/index.js';
import { fillPool } from '../../../src/databases/fresh/ready-pool.js';
import { getTestPostgres } from '../../helpers/postgres.js';

/**
 * Per test file: a template of its own (`<tag><random>_tpl_<hash>`, a table `item` with the rows
 * `seed 1` and `seed 2`) on the test server, given to `ready` once connected; after the file, every
 * database of its prefix is dropped.
 */
export function usePoolTemplate(tag: string, ready: (live: { server: Awaited<ReturnType<typeof getTestPostgres>>; admin: pg.Client; version: number }) => void) {
  const PREFIX = `${tag}${randomBytes(3).toString('hex')}`;
  const HASH = randomBytes(6).toString('hex');
  const TEMPLATE = { name: `${PREFIX}_tpl_${HASH}`, hash: HASH };
  let live: { server: Awaited<ReturnType<typeof getTestPostgres>>; admin: pg.Client; version: number } | undefined;
  const current = () => {
    if (!live) throw new Error('the template is not ready (use it inside tests)');
    return live;
  };

  /** The databases of this file's prefix, by name. */
  const databases = async (): Promise<string[]> => {
    const { rows } = await current().admin.query<{ datname: string }>('SELECT datname FROM pg_database WHERE left(datname, $2) = $1 ORDER BY datname', [`${PREFIX}_`, PREFIX.length + 1]);
    return rows.map((row) => row.datname);
  };

  /** The names in `item` of `database`. */
  const rowsOf = async (database: string): Promise<string[]> => {
    const client = new pg.Client({ connectionString: withDatabase(current().server.adminUrl, database) });
    await client.connect();
    try {
      return (await client.query<{ name: string }>('SELECT name FROM item ORDER BY id')).rows.map((row) => row.name);
    } finally {
      await client.end();
    }
  };

  /** Fills the pool of ready copies of the template up to `target`. */
  const fill = (target: number) =>
    fillPool(current().admin, { prefix: PREFIX, template: TEMPLATE, target, strategy: 'wal_log', serverVersion: current().version, mark: { toolkit: 'e2e-lanes', kind: 'pool', created: '2026-01-01T00:00:00.000Z', hash: HASH } });

  before(async () => {
    const server = await getTestPostgres();
    const admin = new pg.Client({ connectionString: server.adminUrl });
    await admin.connect();
    const version = Number((await admin.query<{ v: string }>('SHOW server_version_num')).rows[0]!.v);
    live = { server, admin, version };
    ready(live);
    await admin.query(`CREATE DATABASE ${TEMPLATE.name}`);
    const build = new pg.Client({ connectionString: withDatabase(server.adminUrl, TEMPLATE.name) });
    await build.connect();
    await build.query(`CREATE TABLE item (id serial PRIMARY KEY, name text NOT NULL); INSERT INTO item (name) VALUES ('seed 1'), ('seed 2')`);
    await build.end();
    await admin.query(`ALTER DATABASE ${TEMPLATE.name} WITH ALLOW_CONNECTIONS false IS_TEMPLATE true`);
  });

  after(async () => {
    if (!live) return;
    const { admin, server } = live;
    for (const name of await databases()) {
      await admin.query(`ALTER DATABASE ${pg.escapeIdentifier(name)} WITH IS_TEMPLATE false`).catch(() => undefined);
      await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
    }
    await admin.end();
    await server.release();
  });

  return { PREFIX, HASH, TEMPLATE, databases, rowsOf, fill, current };
}
