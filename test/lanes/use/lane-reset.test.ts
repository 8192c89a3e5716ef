import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { DatabaseAllocator } from '../../../src/databases/index.js';
import { isLanesError } from '../../../src/errors.js';
import { resetLaneData, type ResetTarget } from '../../../src/lanes/use/lane-reset.js';
import { LaneUsers } from '../../../src/lanes/use/lane-users.js';
import { FIXTURES, query, useTestDatabases } from '../../databases/helpers.js';
import { tempDir } from '../../helpers/tmp.js';

const db = useTestDatabases('lreset');

function target(databases: DatabaseAllocator | undefined, running: { swapped?: boolean } | undefined, users = new LaneUsers()): ResetTarget {
  return { key: { runId: 'lane-reset', project: 'shop' }, id: 'shop', databases, users, resets: {}, up: async () => running };
}

test("resets of one lane run one after another and put its data back; a swap marks the lane's servers' sessions ended", { timeout: 90_000 }, async (t) => {
  const stateDir = await tempDir(t);
  const databases = new DatabaseAllocator({ adminUrl: db.adminUrl, prefix: db.prefix, migrations: join(FIXTURES, 'basic/migrations'), seed: join(FIXTURES, 'basic/seed.ts'), stateDir, runId: 'lane-reset', reset: 'swap' });
  t.after(async () => {
    await databases.releaseRun('lane-reset').catch(() => undefined);
    await databases.close();
  });
  await databases.prepare();
  const { databaseUrl } = await databases.allocateDatabaseForProject('shop');
  const seeded = (await query<{ n: number }>(databaseUrl, 'SELECT count(*)::int AS n FROM "Item"'))[0]!.n;
  await query(databaseUrl, 'DELETE FROM "Item"');
  // The allocator's own reset, watched: when each starts and ends.
  const log: string[] = [];
  const reset = databases.resetDatabaseForProject.bind(databases);
  let n = 0;
  databases.resetDatabaseForProject = async (...args) => {
    const mine = ++n;
    log.push(`start ${mine}`);
    try {
      return await reset(...args);
    } finally {
      log.push(`end ${mine}`);
    }
  };
  const running: { swapped?: boolean } = {};
  const lane = target(databases, running);
  await Promise.all([resetLaneData(lane), resetLaneData(lane)]);
  assert.deepEqual(log, ['start 1', 'end 1', 'start 2', 'end 2']);
  assert.equal(running.swapped, true);
  assert.equal((await query<{ n: number }>(databaseUrl, 'SELECT count(*)::int AS n FROM "Item"'))[0]!.n, seeded);
});

test('a reset is refused without a database, before the lane is up, and while another test uses the lane', async (t) => {
  await assert.rejects(resetLaneData(target(undefined, {})), (error) => isLanesError(error, 'INVALID_OPTION'));
  const databases = new DatabaseAllocator({ adminUrl: 'postgresql://127.0.0.1:1/none', runId: 'lane-reset-refused', stateDir: await tempDir(t) });
  await assert.rejects(resetLaneData(target(databases, undefined)), (error) => isLanesError(error, 'LANE_NOT_FOUND'));
  const users = new LaneUsers();
  // Another live worker's test (one worker runs one test at a time: it must be another process).
  await users.begin('shop', 'the lane of project "shop"', { pid: process.ppid, testId: 'other' });
  await assert.rejects(resetLaneData(target(databases, {}, users), { user: { pid: process.pid, testId: 'mine' } }), (error) => isLanesError(error, 'LANE_RESET_CONFLICT'));
});
