import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { TruncateResets } from '../../../src/databases/fresh/truncate-reset.js';
import { takeSnapshot } from '../../../src/databases/template/snapshot.js';
import { isLanesError } from '../../../src/errors.js';
import { withDatabase } from '../../../src/postgres/index.js';
import { query, useTestDatabases } from '../helpers.js';

const server = useTestDatabases('trunc');
const resets = new TruncateResets();
after(() => resets.close());

/** A template with a table of two rows and its snapshot, and a clone of it; resolves the clone's URL. */
async function laneFromTemplate(name: string, snapshot = true): Promise<string> {
  const template = `${server.prefix}_${name}_tpl`;
  const lane = `${server.prefix}_${name}`;
  await query(server.adminUrl, `CREATE DATABASE ${pg.escapeIdentifier(template)}`);
  const client = new pg.Client({ connectionString: withDatabase(server.adminUrl, template) });
  await client.connect();
  try {
    await client.query(`CREATE TABLE item (id serial PRIMARY KEY, name text NOT NULL); INSERT INTO item (name) VALUES ('seed 1'), ('seed 2')`);
    if (snapshot) await takeSnapshot(client);
  } finally {
    await client.end();
  }
  await query(server.adminUrl, `CREATE DATABASE ${pg.escapeIdentifier(lane)} TEMPLATE ${pg.escapeIdentifier(template)}`);
  return withDatabase(server.adminUrl, lane);
}

const names = async (url: string): Promise<string[]> => (await query<{ name: string }>(url, 'SELECT name FROM item ORDER BY id')).map((row) => row.name);

describe('the truncate reset of a lane', () => {
  it("puts the template's rows back on a connection it keeps, while the app's session stays connected", async () => {
    const url = await laneFromTemplate('keep');
    const app = new pg.Client({ connectionString: url });
    await app.connect();
    try {
      await app.query(`INSERT INTO item (name) VALUES ('written by a test')`);
      const summary = await resets.reset(url, { connectTimeoutMs: 10_000 });
      assert.equal(summary.rows, 2);
      assert.deepEqual(await names(url), ['seed 1', 'seed 2']);
      assert.equal((await app.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one, 1, "the app's session was not ended");
      const [kept] = await query<{ count: string }>(server.adminUrl, `SELECT count(*)::text AS count FROM pg_stat_activity WHERE datname = $1 AND application_name = 'e2e-lanes reset'`, [new URL(url).pathname.slice(1)]);
      assert.equal(kept?.count, '1', 'one kept connection');
      await app.query(`DELETE FROM item`);
      await resets.reset(url, { connectTimeoutMs: 10_000 });
      assert.deepEqual(await names(url), ['seed 1', 'seed 2']);
    } finally {
      await app.end();
      await resets.forget(url);
    }
  });

  it('resets again on a new connection when the kept one was ended', async () => {
    const url = await laneFromTemplate('lost');
    await resets.reset(url, { connectTimeoutMs: 10_000 });
    await query(server.adminUrl, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'e2e-lanes reset'`, [new URL(url).pathname.slice(1)]);
    await query(url, `INSERT INTO item (name) VALUES ('after the end')`);
    await resets.reset(url, { connectTimeoutMs: 10_000 });
    assert.deepEqual(await names(url), ['seed 1', 'seed 2']);
    await resets.forget(url);
  });

  it('refuses a database without a copy of its rows with DATABASE_RESET_FAILED, changing nothing', async () => {
    const url = await laneFromTemplate('none', false);
    await query(url, `INSERT INTO item (name) VALUES ('stays')`);
    await assert.rejects(resets.reset(url, { connectTimeoutMs: 10_000 }), (error) => isLanesError(error, 'DATABASE_RESET_FAILED') && /no copy of its template's rows/.test(error.message));
    assert.deepEqual(await names(url), ['seed 1', 'seed 2', 'stays']);
  });
});
