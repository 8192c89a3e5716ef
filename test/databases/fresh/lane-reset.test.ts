import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { claimLane } from '../../../src/databases/claim.js';
import { LaneResets } from '../../../src/databases/fresh/lane-reset.js';
import { PoolKeeper } from '../../../src/databases/fresh/pool-keeper.js';
import { ensureTemplate } from '../../../src/databases/index.js';
import { FileRecords } from '../../../src/databases/records/lane-records.js';
import { DatabaseLedger } from '../../../src/databases/records/ledger.js';
import { parseMark } from '../../../src/databases/sql/marks.js';
import { ServerAccess } from '../../../src/databases/sql/server-access.js';
import { tempDir } from '../../helpers/tmp.js';
import { FIXTURES, query, useTestDatabases } from '../helpers.js';

const server = useTestDatabases('lreset');

const names = async (url: string): Promise<string[]> => (await query<{ name: string }>(url, 'SELECT name FROM "Item" ORDER BY id')).map((row) => row.name);

describe("the resets of a lane's database", () => {
  it('put the seed back with a swap (a clone when no copy is ready, the lane mark kept) and with a truncate, under the same URL', async (t) => {
    const stateDir = await tempDir(t);
    const session = new ServerAccess({ adminUrl: server.adminUrl, stateDir, runId: 'reset-run', connectTimeoutMs: 10_000 });
    const template = await ensureTemplate({ adminUrl: server.adminUrl, prefix: server.prefix, migrations: `${FIXTURES}basic/migrations`, seed: `${FIXTURES}basic/seed.ts` });
    const pool = new PoolKeeper({ session, prefix: server.prefix, cloneStrategy: 'wal_log', size: 0, template: async () => template });
    const resets = new LaneResets(session, pool, { prefix: server.prefix, cloneStrategy: 'wal_log', connectTimeoutMs: 10_000, resetLockTimeoutMs: 5_000, resetGraceMs: 0, laneRoles: false });
    const ledger = new DatabaseLedger({ stateDir, prefix: server.prefix, leaseMs: 60_000, shard: undefined });
    // Closed when the test ends, before the file's databases are dropped (no background drop races that).
    t.after(async () => {
      await resets.close();
      await pool.close();
      ledger.stopKeepingAlive('reset-run');
      await session.release();
    });
    const key = { runId: 'reset-run', project: 'web' };
    const lane = await claimLane({ session, records: new FileRecords(ledger), prefix: server.prefix, cloneStrategy: 'wal_log', tookReadyCopy: () => undefined }, key, template);
    const entry = (await ledger.find(key, lane.databaseName))!;

    await query(lane.databaseUrl, `INSERT INTO "Item" (name) VALUES ('by a test')`);
    const swapped = await resets.reset(entry, template, 'swap');
    assert.deepEqual([swapped.databaseName, swapped.strategy, swapped.source], [lane.databaseName, 'swap', 'clone']);
    assert.deepEqual(await names(lane.databaseUrl), ['alpha', 'beta']);
    const [row] = await query<{ comment: string }>(server.adminUrl, `SELECT shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = $1`, [lane.databaseName]);
    assert.equal(parseMark(row?.comment ?? null)?.project, 'web', 'the fresh copy carries the lane mark');

    await query(lane.databaseUrl, `DELETE FROM "Item"`);
    const truncated = await resets.reset(entry, template, 'truncate');
    assert.deepEqual([truncated.strategy, truncated.source], ['truncate', 'truncate']);
    assert.deepEqual(await names(lane.databaseUrl), ['alpha', 'beta']);
  });
});
