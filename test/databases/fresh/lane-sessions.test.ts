import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { resolveDatabaseAllocatorOptions } from '../../../src/databases/options.js';
import { isLanesError } from '../../../src/errors.js';
import { query, useBasicAllocators, useTestDatabases } from '../helpers.js';

const server = useTestDatabases('grace');
const clients: pg.Client[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) await client.end().catch(() => undefined);
});

/** An allocator on the test server with the `basic` fixture (seed: alpha, beta), released after the test. */
const allocatorFor = useBasicAllocators(server, { pool: 1 });

/** A client of the lane (its role's URL, as the app's servers connect), ended after the test. */
async function appClient(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined); // ended by a reset: seen by the test through its queries
  clients.push(client);
  await client.connect();
  return client;
}

/** Waits (5 s at most) until the lane database has a query running (`active`) other than the looker's. */
async function untilActive(adminUrl: string, database: string): Promise<void> {
  for (let attempt = 0; attempt < 500; attempt++) {
    const rows = await query(adminUrl, `SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND state = 'active' AND pid <> pg_backend_pid()`, [database]);
    if (rows.length > 0) return;
    await sleep(10);
  }
  throw new Error(`no query ever ran on ${database}`);
}

const names = async (url: string): Promise<string[]> => (await query<{ name: string }>(url, 'SELECT name FROM "Item" ORDER BY id')).map((row) => row.name);

describe('a swap reset and the queries in flight', () => {
  it('lets a query running when the reset starts finish, then puts the seed back', async (t) => {
    const allocator = await allocatorFor(t);
    const lane = await allocator.allocateDatabaseForProject('inflight');
    await query(lane.databaseUrl, `INSERT INTO "Item" (name) VALUES ('before')`);
    const app = await appClient(lane.databaseUrl);
    // A request of the previous test still running on the server: it writes once its half second is over.
    const running = app.query(`INSERT INTO "Item" (name) SELECT 'late' FROM pg_sleep(0.5) RETURNING name`);
    running.catch(() => undefined); // judged below
    await untilActive(server.adminUrl, lane.databaseName);
    const reset = await allocator.resetDatabaseForProject('inflight', { strategy: 'swap' });
    const answered = await running; // rejected with "terminating connection due to administrator command" when the reset does not wait
    assert.deepEqual(answered.rows, [{ name: 'late' }]);
    assert.equal(reset.strategy, 'swap');
    assert.deepEqual(await names(lane.databaseUrl), ['alpha', 'beta'], 'the reset happened after the query: neither write is left');
  });

  it('ends a query still running when the grace is over, and the reset happens', async (t) => {
    const allocator = await allocatorFor(t, { resetGraceMs: 300 });
    const lane = await allocator.allocateDatabaseForProject('stuck');
    await query(lane.databaseUrl, `INSERT INTO "Item" (name) VALUES ('before')`);
    const app = await appClient(lane.databaseUrl);
    const running = app.query('SELECT pg_sleep(30)');
    running.catch(() => undefined); // judged below
    await untilActive(server.adminUrl, lane.databaseName);
    const started = performance.now();
    await allocator.resetDatabaseForProject('stuck', { strategy: 'swap' });
    const tookMs = performance.now() - started;
    await assert.rejects(running, /terminating connection due to administrator command|Connection terminated/);
    assert.ok(tookMs >= 290, `the reset waited the grace first (took ${Math.round(tookMs)} ms)`);
    assert.ok(tookMs < 15_000, `the reset did not wait for the query (took ${Math.round(tookMs)} ms)`);
    assert.deepEqual(await names(lane.databaseUrl), ['alpha', 'beta']);
  });

  it('ends an idle connection at once, without waiting the grace', async (t) => {
    const allocator = await allocatorFor(t, { resetGraceMs: 20_000 });
    const lane = await allocator.allocateDatabaseForProject('idle');
    const app = await appClient(lane.databaseUrl);
    await app.query(`INSERT INTO "Item" (name) VALUES ('before')`);
    const started = performance.now();
    await allocator.resetDatabaseForProject('idle', { strategy: 'swap' });
    const tookMs = performance.now() - started;
    assert.ok(tookMs < 10_000, `the reset did not wait the 20 s grace for an idle session (took ${Math.round(tookMs)} ms)`);
    await assert.rejects(app.query('SELECT 1'), 'the idle session was ended');
    assert.deepEqual(await names(lane.databaseUrl), ['alpha', 'beta']);
  });

  it('rejects a grace that is not a number of milliseconds from 0 to 60000', () => {
    for (const bad of [-1, 60_001, Number.NaN, '2000']) {
      assert.throws(
        () => resolveDatabaseAllocatorOptions({ resetGraceMs: bad as never }),
        (error) => isLanesError(error, 'INVALID_OPTION') && /resetGraceMs/.test(error.message) && /database\.resetGraceMs/.test(error.hint ?? ''),
        String(bad),
      );
    }
    assert.equal(resolveDatabaseAllocatorOptions({ resetGraceMs: 0 }).resetGraceMs, 0);
    assert.equal(resolveDatabaseAllocatorOptions({}).resetGraceMs, 2_000);
  });
});
