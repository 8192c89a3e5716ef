import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { claimLane, type ClaimContext } from '../../src/databases/claim.js';
import { ensureTemplate } from '../../src/databases/index.js';
import { FileRecords } from '../../src/databases/records/lane-records.js';
import { DatabaseLedger } from '../../src/databases/records/ledger.js';
import { parseMark } from '../../src/databases/sql/marks.js';
import { laneDatabaseName } from '../../src/databases/sql/names.js';
import { ServerAccess } from '../../src/databases/sql/server-access.js';
import { tempDir } from '../helpers/tmp.js';
import { FIXTURES, query, useTestDatabases } from './helpers.js';

const server = useTestDatabases('claim');
const accesses: ServerAccess[] = [];
after(async () => {
  for (const access of accesses) await access.release();
});

async function contextFor(t: import('node:test').TestContext): Promise<ClaimContext & { tookCopies: number }> {
  const stateDir = await tempDir(t);
  const session = new ServerAccess({ adminUrl: server.adminUrl, stateDir, runId: 'claim-run', connectTimeoutMs: 10_000 });
  accesses.push(session);
  const ledger = new DatabaseLedger({ stateDir, prefix: server.prefix, leaseMs: 60_000, shard: undefined });
  t.after(() => ledger.stopKeepingAlive('claim-run'));
  const context = {
    session,
    records: new FileRecords(ledger),
    prefix: server.prefix,
    cloneStrategy: 'wal_log' as const,
    tookCopies: 0,
    tookReadyCopy() {
      context.tookCopies += 1;
    },
  };
  return context;
}

describe('the claim of a lane', () => {
  it('records the lane, clones the template under its name with the lane mark, and gives the same database when asked again', async (t) => {
    const template = await ensureTemplate({ adminUrl: server.adminUrl, prefix: server.prefix, migrations: `${FIXTURES}basic/migrations`, seed: `${FIXTURES}basic/seed.ts` });
    const context = await contextFor(t);
    const key = { runId: 'claim-run', project: 'chromium' };
    const first = await claimLane(context, key, template);
    assert.equal(first.databaseName, laneDatabaseName(server.prefix, key));
    assert.equal(first.template.name, template.name);
    assert.ok((await query(first.databaseUrl, 'SELECT 1 AS one')).length === 1, 'the database answers at its URL');
    const [row] = await query<{ comment: string }>(server.adminUrl, `SELECT shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = $1`, [first.databaseName]);
    const mark = parseMark(row?.comment ?? null);
    assert.equal(mark?.kind, 'lane');
    assert.equal(mark?.project, 'chromium');
    assert.equal(await context.records.ledger.holds(key, first.databaseName), true);
    const again = await claimLane(context, key, template);
    assert.equal(again.databaseName, first.databaseName);
    assert.equal(again.databaseUrl, first.databaseUrl);
    assert.equal(context.tookCopies, 0, 'no ready copy was waiting');
  });

  it('gives each worker of a project a database of its own', async (t) => {
    const template = await ensureTemplate({ adminUrl: server.adminUrl, prefix: server.prefix, migrations: `${FIXTURES}basic/migrations`, seed: `${FIXTURES}basic/seed.ts` });
    const context = await contextFor(t);
    const [a, b] = await Promise.all([claimLane(context, { runId: 'claim-run', project: 'api', worker: 0 }, template), claimLane(context, { runId: 'claim-run', project: 'api', worker: 1 }, template)]);
    assert.notEqual(a.databaseName, b.databaseName);
    assert.deepEqual([a.worker, b.worker], [0, 1]);
  });
});
