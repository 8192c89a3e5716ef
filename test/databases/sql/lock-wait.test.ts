import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { tryAdvisoryLock } from '../../../src/databases/sql/advisory-lock.js';
import { advisoryLockHolders, blockingSessions, describeHolder, describeLockWait } from '../../../src/databases/sql/lock-wait.js';
import { advisoryKey } from '../../../src/databases/sql/names.js';
import { useTestDatabases } from '../helpers.js';

const server = useTestDatabases('wait');

async function session(applicationName: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: server.adminUrl, application_name: applicationName });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/** Resolves once session `pid` waits for a lock (at most 5 s). */
async function untilWaiting(observer: pg.Client, pid: number): Promise<void> {
  for (let i = 0; i < 100; i += 1) {
    const { rows } = await observer.query<{ waiting: boolean }>(`SELECT wait_event_type = 'Lock' AS waiting FROM pg_stat_activity WHERE pid = $1`, [pid]);
    if (rows[0]?.waiting) return;
    await sleep(50);
  }
  throw new Error(`session ${pid} never waited for a lock`);
}

describe('who a session waits for', () => {
  it('names the holder of an advisory lock, by pid, application and mode', async () => {
    const holder = await session('lock-holder');
    const observer = await session('observer');
    try {
      const key = advisoryKey(`test:${server.prefix}:${randomBytes(4).toString('hex')}`);
      assert.deepEqual(await advisoryLockHolders(observer, key), []);
      assert.equal(await tryAdvisoryLock(holder, key), true);
      const holderPid = (await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const holders = await advisoryLockHolders(observer, key);
      assert.deepEqual(holders.map((h) => [h.pid, h.applicationName, h.modes]), [[holderPid, 'lock-holder', 'ExclusiveLock']]);
      assert.match(describeHolder(holders[0]!), new RegExp(`^pid ${holderPid} \\(application "lock-holder", user .*holds ExclusiveLock\\)$`));
    } finally {
      await holder.end().catch(() => undefined);
      await observer.end().catch(() => undefined);
    }
  });

  it('names the table and the idle transaction a blocked session waits for, never its query text', async () => {
    const table = `${server.prefix}_t`;
    const holder = await session('idle-holder');
    const waiter = await session('waiter');
    const observer = await session('observer');
    try {
      await observer.query(`CREATE TABLE ${pg.escapeIdentifier(table)} (secret text)`);
      await holder.query('BEGIN');
      await holder.query(`LOCK TABLE ${pg.escapeIdentifier(table)} IN ACCESS EXCLUSIVE MODE`);
      const holderPid = (await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const waiterPid = (await waiter.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const blocked = waiter.query(`SELECT 'password=hunter2' AS p FROM ${pg.escapeIdentifier(table)}`).catch((error: unknown) => error);
      await untilWaiting(observer, waiterPid);
      const sessions = await blockingSessions(observer, waiterPid);
      assert.deepEqual(sessions.map((s) => [s.pid, s.applicationName, s.state]), [[holderPid, 'idle-holder', 'idle in transaction']]);
      assert.match(sessions[0]!.modes ?? '', /AccessExclusiveLock/);
      const words = await describeLockWait(server.adminUrl, waiterPid);
      assert.match(words, new RegExp(`relation "?${table}"?`));
      assert.match(words, new RegExp(`pid ${holderPid} \\(application "idle-holder"`));
      assert.doesNotMatch(words, /hunter2/);
      await holder.query('ROLLBACK');
      await blocked;
    } finally {
      await holder.end().catch(() => undefined);
      await waiter.end().catch(() => undefined);
      await observer.query(`DROP TABLE IF EXISTS ${pg.escapeIdentifier(table)}`).catch(() => undefined);
      await observer.end().catch(() => undefined);
    }
  });
});
