import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { ServerAccess } from '../../../src/databases/sql/server-access.js';
import { withDatabase } from '../../../src/postgres/index.js';
import { tempDir } from '../../helpers/tmp.js';
import { query, useTestDatabases } from '../helpers.js';

const server = useTestDatabases('access');

describe("an allocator's access to its server", () => {
  it('joins the server once on first use, runs maintenance statements, and lets it go', async (t) => {
    const access = new ServerAccess({ adminUrl: server.adminUrl, stateDir: await tempDir(t), runId: 'access-run', connectTimeoutMs: 10_000 });
    try {
      assert.equal(access.joined, false);
      const first = access.server();
      assert.equal(access.server(), first, 'one join for every caller');
      assert.equal(access.joined, true);
      assert.equal((await first).adminUrl, server.adminUrl);
      const [database, version] = await access.withAdmin(async (client, serverVersion) => [(await client.query<{ name: string }>('SELECT current_database() AS name')).rows[0]!.name, serverVersion] as const);
      assert.equal(database, new URL(server.adminUrl).pathname.slice(1) || 'postgres');
      assert.ok(version >= 150_000, `server_version_num ${version}`);
    } finally {
      await access.release();
    }
    assert.equal(access.joined, false);
  });

  it('sends maintenance connections to the database it is told, and says where they go', async (t) => {
    const name = `${server.prefix}_maint`;
    await query(server.adminUrl, `CREATE DATABASE ${pg.escapeIdentifier(name)}`);
    const access = new ServerAccess({ adminUrl: server.adminUrl, stateDir: await tempDir(t), runId: 'access-run', connectTimeoutMs: 10_000 });
    try {
      assert.equal(await access.maintenanceUrl(), server.adminUrl);
      access.maintainIn(withDatabase(server.adminUrl, name));
      assert.equal(await access.maintenanceUrl(), withDatabase(server.adminUrl, name));
      assert.equal(await access.withAdmin(async (client) => (await client.query<{ name: string }>('SELECT current_database() AS name')).rows[0]!.name), name);
    } finally {
      await access.release();
    }
  });
});
