import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DatabaseLedger } from '../../../src/databases/records/ledger.js';
import { DATABASES_FILE } from '../../../src/databases/types.js';
import { newOwner } from '../../../src/state/index.js';
import { tempDir } from '../../helpers/tmp.js';

const ADMIN = 'postgres://admin:secret@127.0.0.1:5432/postgres';

async function ledgerIn(t: import('node:test').TestContext): Promise<{ ledger: DatabaseLedger; stateDir: string }> {
  const stateDir = await tempDir(t);
  const ledger = new DatabaseLedger({ stateDir, prefix: 'e2e', leaseMs: 60_000, shard: undefined });
  t.after(() => ledger.stopKeepingAlive('run-1'));
  return { ledger, stateDir };
}

describe('the ledger of lane databases', () => {
  it('records a lane once, in allocated-databases.json, with its URL redacted and this process as owner', async (t) => {
    const { ledger, stateDir } = await ledgerIn(t);
    const key = { runId: 'run-1', project: 'chromium' };
    const first = await ledger.record(key, 'e2e_run1_chromium', 'e2e_tpl_abc', ADMIN);
    assert.equal(first.added, true);
    assert.equal(first.entry.owner.pid, process.pid);
    assert.equal(first.entry.databaseUrl, 'postgres://admin:***@127.0.0.1:5432/e2e_run1_chromium');
    const again = await ledger.record(key, 'e2e_run1_chromium', 'e2e_tpl_abc', ADMIN);
    assert.equal(again.added, false);
    assert.equal(ledger.path, join(stateDir, DATABASES_FILE));
    const text = await readFile(ledger.path, 'utf8');
    assert.ok(text.includes('e2e_run1_chromium'));
    assert.doesNotMatch(text, /secret/);
    assert.equal((await ledger.find(key, 'e2e_run1_chromium'))?.template, 'e2e_tpl_abc');
    assert.equal(await ledger.holds(key, 'e2e_run1_chromium'), true);
    assert.equal(await ledger.holds(key, 'e2e_other'), false);
  });

  it('forgets an entry an allocation recorded unless its database exists after all', async (t) => {
    const { ledger } = await ledgerIn(t);
    const key = { runId: 'run-1', project: 'firefox' };
    const { entry } = await ledger.record(key, 'e2e_run1_firefox', 'e2e_tpl_abc', ADMIN);
    await ledger.unrecord(entry, async () => true);
    assert.equal(await ledger.holds(key, 'e2e_run1_firefox'), true, 'kept: its database is there');
    await ledger.unrecord(entry, async () => false);
    assert.equal(await ledger.holds(key, 'e2e_run1_firefox'), false);
  });

  it('keeps a run, gives it to another owner, and lists every entry with its liveness', async (t) => {
    const { ledger } = await ledgerIn(t);
    await ledger.record({ runId: 'run-1', project: 'a' }, 'e2e_run1_a', 'e2e_tpl_abc', ADMIN);
    await ledger.record({ runId: 'run-2', project: 'b' }, 'e2e_run2_b', 'e2e_tpl_abc', ADMIN);
    const kept = await ledger.keepRun('run-1');
    assert.deepEqual(kept.map((entry) => [entry.databaseName, entry.owner.kept]), [['e2e_run1_a', true]]);
    const watchdog = { ...newOwner('run-2'), pid: 2 ** 30 };
    const handed = await ledger.handOverRun('run-2', watchdog);
    assert.deepEqual(handed.map((entry) => [entry.databaseName, entry.owner.pid]), [['e2e_run2_b', 2 ** 30]]);
    const listed = await ledger.list();
    assert.deepEqual(listed.map((entry) => [entry.databaseName, entry.alive]).sort(), [['e2e_run1_a', true], ['e2e_run2_b', false]]);
  });

  it('forgets under its lock exactly the entries a removal names', async (t) => {
    const { ledger } = await ledgerIn(t);
    await ledger.record({ runId: 'run-1', project: 'a' }, 'e2e_run1_a', 'e2e_tpl_abc', ADMIN);
    await ledger.record({ runId: 'run-1', project: 'b' }, 'e2e_run1_b', 'e2e_tpl_abc', ADMIN);
    const names = await ledger.remove(async (entries) => ({ forget: entries.filter((entry) => entry.project === 'a'), value: entries.map((entry) => entry.databaseName).sort() }));
    assert.deepEqual(names, ['e2e_run1_a', 'e2e_run1_b']);
    const left = await ledger.inspect(async (entries) => entries.map((entry) => entry.databaseName), { readOnly: true });
    assert.deepEqual(left, ['e2e_run1_b']);
  });
});
