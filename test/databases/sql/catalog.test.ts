import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { cloneDatabase, dropDatabase, openDatabaseSql, retryConcurrentUpdate, retryEndingSessions } from '../../../src/databases/sql/catalog.js';
import { withDatabase } from '../../../src/postgres/index.js';
import { databasesStartingWith, query, useTestDatabases } from '../helpers.js';

const server = useTestDatabases('adm');
let admin: pg.Client;
let version: number;

/** A connected session on database `name`, ended (if still open) after the test. */
async function sessionOn(name: string, t: { after(fn: () => Promise<void>): void }): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: withDatabase(server.adminUrl, name) });
  client.on('error', () => undefined); // ended by the code under test
  await client.connect();
  t.after(() => client.end().catch(() => undefined));
  return client;
}

describe('maintenance statements on databases in use', () => {
  before(async () => {
    admin = new pg.Client({ connectionString: server.adminUrl });
    await admin.connect();
    version = Number((await admin.query<{ v: string }>('SHOW server_version_num')).rows[0]!.v);
  });
  after(() => admin.end());

  it('clones a database someone is connected to by ending that session', async (t) => {
    const source = `${server.prefix}_src`;
    await admin.query(`CREATE DATABASE ${source}`);
    const idle = await sessionOn(source, t);
    const ended = new Promise<void>((resolve) => idle.once('end', () => resolve()));
    await cloneDatabase(admin, `${server.prefix}_copy`, source, 'wal_log', version);
    await ended;
    assert.deepEqual(await databasesStartingWith(server.adminUrl, `${server.prefix}_copy`), [`${server.prefix}_copy`]);
  });

  it('ends the sessions first with endFirst, and fails at once on any other error', async (t) => {
    const name = `${server.prefix}_ren`;
    await admin.query(`CREATE DATABASE ${name}`);
    await sessionOn(name, t);
    await retryEndingSessions(admin, `ALTER DATABASE ${name} RENAME TO ${name}2`, name, { endFirst: true });
    assert.deepEqual(await databasesStartingWith(server.adminUrl, `${server.prefix}_ren`), [`${name}2`]);

    // Any other error fails at once, and ends nobody.
    const taken = `${server.prefix}_taken`;
    await admin.query(`CREATE DATABASE ${taken}`);
    const user = await sessionOn(taken, t);
    await assert.rejects(retryEndingSessions(admin, `ALTER DATABASE ${taken} RENAME TO ${name}2`, taken), (error) => (error as { code?: string }).code === '42P04');
    assert.deepEqual((await user.query<{ ok: number }>('SELECT 1 AS ok')).rows, [{ ok: 1 }]);
  });

  it('a clone is created closed and opened with its rights in one step; sessions opening one database at once all succeed', async (t) => {
    const source = `${server.prefix}_open_src`;
    const clone = `${server.prefix}_open_clone`;
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(source)}`);
    t.after(async () => {
      await dropDatabase(admin, clone);
      await dropDatabase(admin, source);
    });
    assert.equal(await cloneDatabase(admin, clone, source, 'wal_log', version), true);
    const [row] = await query<{ open: boolean; publicConnect: boolean }>(server.adminUrl, "SELECT datallowconn AS open, has_database_privilege('public', oid, 'CONNECT') AS \"publicConnect\" FROM pg_database WHERE datname = $1", [clone]);
    assert.deepEqual(row, { open: true, publicConnect: false });
    // Several claims of one lane open its database at the same moment (each a catalog update of one row).
    await admin.query(`ALTER DATABASE ${pg.escapeIdentifier(clone)} WITH ALLOW_CONNECTIONS false`);
    const clients = await Promise.all(Array.from({ length: 6 }, async () => {
      const client = new pg.Client({ connectionString: server.adminUrl });
      await client.connect();
      return client;
    }));
    t.after(() => Promise.all(clients.map((client) => client.end())));
    for (let round = 0; round < 5; round++) {
      await Promise.all(clients.map((client) => retryConcurrentUpdate(() => client.query(openDatabaseSql(clone)))));
    }
    assert.deepEqual((await query<{ open: boolean }>(server.adminUrl, 'SELECT datallowconn AS open FROM pg_database WHERE datname = $1', [clone]))[0], { open: true });
  });

  it('drops a database while sessions are connected, and a template, and tells whether it existed', async (t) => {
    const name = `${server.prefix}_drop`;
    await admin.query(`CREATE DATABASE ${name}`);
    await sessionOn(name, t);
    assert.equal(await dropDatabase(admin, name), true);
    assert.equal(await dropDatabase(admin, name), false);

    const template = `${server.prefix}_tpl`;
    await admin.query(`CREATE DATABASE ${template}`);
    await query(server.adminUrl, `ALTER DATABASE ${template} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false`);
    assert.equal(await dropDatabase(admin, template), true);
    assert.deepEqual(await databasesStartingWith(server.adminUrl, `${server.prefix}_`), [`${server.prefix}_copy`, `${server.prefix}_ren2`, `${server.prefix}_src`, `${server.prefix}_taken`]);
  });
});
