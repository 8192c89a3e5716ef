import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import pg from 'pg';
import { advisoryTransactionLock, advisoryUnlock, tryAdvisoryLock, withAdvisoryLock } from '../../../src/databases/sql/advisory-lock.js';
import { advisoryKey } from '../../../src/databases/sql/names.js';
import { useTestDatabases } from '../helpers.js';

const server = useTestDatabases('lock');

/** Two sessions of the test server, ended after `fn` whatever it did. */
async function withTwoSessions(fn: (a: pg.Client, b: pg.Client) => Promise<void>): Promise<void> {
  const a = new pg.Client({ connectionString: server.adminUrl });
  const b = new pg.Client({ connectionString: server.adminUrl });
  try {
    await a.connect();
    await b.connect();
    await fn(a, b);
  } finally {
    await a.end().catch(() => undefined);
    await b.end().catch(() => undefined);
  }
}

const freshKey = (): string => advisoryKey(`test:${server.prefix}:${randomBytes(4).toString('hex')}`);

describe('advisory locks', () => {
  it('are taken by one session at a time, and free again once let go', async () => {
    await withTwoSessions(async (a, b) => {
      const key = freshKey();
      assert.equal(await tryAdvisoryLock(a, key), true);
      assert.equal(await tryAdvisoryLock(b, key), false);
      await advisoryUnlock(a, key);
      assert.equal(await tryAdvisoryLock(b, key), true);
      await advisoryUnlock(b, key);
    });
  });

  it('run a function while held, and let go after it, even when it throws', async () => {
    await withTwoSessions(async (a, b) => {
      const key = freshKey();
      const held = await withAdvisoryLock(a, key, { wait: false }, async () => tryAdvisoryLock(b, key));
      assert.deepEqual(held, { locked: true, value: false });
      await assert.rejects(withAdvisoryLock(a, key, { wait: true }, async () => Promise.reject(new Error('boom'))), /boom/);
      assert.equal(await tryAdvisoryLock(b, key), true, 'let go after the function threw');
      await advisoryUnlock(b, key);
    });
  });

  it('do not run the function when another session holds the lock and the caller does not wait', async () => {
    await withTwoSessions(async (a, b) => {
      const key = freshKey();
      assert.equal(await tryAdvisoryLock(b, key), true);
      let ran = false;
      const result = await withAdvisoryLock(a, key, { wait: false }, async () => {
        ran = true;
      });
      assert.deepEqual(result, { locked: false });
      assert.equal(ran, false);
      await advisoryUnlock(b, key);
    });
  });

  it('wait for the holder when asked to', async () => {
    await withTwoSessions(async (a, b) => {
      const key = freshKey();
      assert.equal(await tryAdvisoryLock(b, key), true);
      const waiting = withAdvisoryLock(a, key, { wait: true }, async () => 'mine');
      await new Promise((resolve) => setTimeout(resolve, 100));
      await advisoryUnlock(b, key);
      assert.deepEqual(await waiting, { locked: true, value: 'mine' });
    });
  });

  it('taken for a transaction are let go by its end', async () => {
    await withTwoSessions(async (a, b) => {
      const key = freshKey();
      await a.query('BEGIN');
      await advisoryTransactionLock(a, key);
      assert.equal(await tryAdvisoryLock(b, key), false);
      await a.query('COMMIT');
      assert.equal(await tryAdvisoryLock(b, key), true);
      await advisoryUnlock(b, key);
    });
  });

  it('let go of a lock not held without throwing', async () => {
    await withTwoSessions(async (a) => {
      await advisoryUnlock(a, freshKey());
    });
  });
});
