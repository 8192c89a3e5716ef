import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { cloneDatabase, dropDatabase, retryEndingSessions } from '../../../src/databases/sql/catalog.js';
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
