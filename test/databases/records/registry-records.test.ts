import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { releasing } from '../../../src/databases/records/decisions.js';
import type { LaneRecords } from '../../../src/databases/records/lane-records.js';
import { DatabaseLedger } from '../../../src/databases/records/ledger.js';
import { openLaneRecords } from '../../../src/databases/records/open-records.js';
import { RegistryRecords } from '../../../src/databases/records/registry-records.js';
import { resolveDatabaseAllocatorOptions } from '../../../src/databases/options.js';
import { ServerAccess } from '../../../src/databases/sql/server-access.js';
import { isLanesError } from '../../../src/errors.js';
import { currentHost, newOwner } from '../../../src/state/index.js';
import { tempDir } from '../../helpers/tmp.js';
import { useTestDatabases } from '../helpers.js';

const server = useTestDatabases('regrec');
const sessions: ServerAccess[] = [];
after(async () => {
  for (const session of sessions) await session.release();
});

/** The records of an allocator with a registry of this file's own (a database the helper drops after). */
async function open(t: import('node:test').TestContext, runId: string): Promise<{ records: LaneRecords; session: ServerAccess; stateDir: string }> {
  const stateDir = await tempDir(t);
  const options = resolveDatabaseAllocatorOptions({ stateDir, runId, adminUrl: server.adminUrl, prefix: server.prefix, registry: 'postgres', registryDatabase: `${server.prefix}_reg` });
  const session = new ServerAccess({ adminUrl: options.adminUrl, stateDir, runId, connectTimeoutMs: options.connectTimeoutMs });
  sessions.push(session);
  const ledger = new DatabaseLedger({ stateDir, prefix: server.prefix, leaseMs: options.leaseMs, shard: undefined });
  const records = await openLaneRecords(options, session, ledger, undefined);
  t.after(() => ledger.stopKeepingAlive(runId));
  return { records, session, stateDir };
}

describe('lanes recorded in the registry', () => {
  it('claim a row for this process before the database is made, list it, and forget it when the lane is released', async (t) => {
    const { records, session, stateDir } = await open(t, 'rr-run');
    assert.ok(records instanceof RegistryRecords);
    assert.equal(records.kind, 'postgres');
    const databaseName = `${server.prefix}_rr_a`;
    let rowsWhileCreating = -1;
    await session.withAdmin((client) =>
      records.claim(client, { key: { runId: 'rr-run', project: 'a' }, databaseName, template: 'tpl' }, async () => {
        rowsWhileCreating = (await records.rows({ prefix: server.prefix })).length;
      }),
    );
    assert.equal(rowsWhileCreating, 1, 'the row is there before the database is made');
    const [row] = await records.rows({ prefix: server.prefix, runId: 'rr-run' });
    assert.deepEqual([row?.databaseName, row?.host, row?.pid, row?.expired], [databaseName, currentHost(), process.pid, false]);
    const entry = { runId: 'rr-run', project: 'a', owner: newOwner('rr-run'), databaseName, databaseUrl: 'postgres://u:***@h/x', template: 'tpl' };
    let dropped = false;
    await session.withAdmin((client) =>
      records.remove(client, { databaseName, entry, reason: 'released', ledger: [], row: row! }, releasing('rr-run', stateDir, () => true), { wait: true }, async () => {
        dropped = true;
        return true;
      }),
    );
    assert.equal(dropped, true);
    assert.deepEqual(await records.rows({ prefix: server.prefix, runId: 'rr-run' }), []);
  });

  it('refuse a lane that a live owner of another run holds, never running its creation', async (t) => {
    const first = await open(t, 'rr-one');
    const second = await open(t, 'rr-two');
    const databaseName = `${server.prefix}_rr_b`;
    await first.session.withAdmin((client) => first.records.claim(client, { key: { runId: 'rr-one', project: 'b' }, databaseName, template: 'tpl' }, async () => undefined));
    let created = false;
    await assert.rejects(
      second.session.withAdmin((client) =>
        second.records.claim(client, { key: { runId: 'rr-two', project: 'b' }, databaseName, template: 'tpl' }, async () => {
          created = true;
        }),
      ),
      (error) => isLanesError(error, 'RUN_ID_CONFLICT'),
    );
    assert.equal(created, false);
  });
});
