import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ensureTemplate } from '../../../src/databases/index.js';
import { PoolKeeper } from '../../../src/databases/fresh/pool-keeper.js';
import { ServerAccess } from '../../../src/databases/sql/server-access.js';
import type { TemplateInfo } from '../../../src/databases/types.js';
import { tempDir } from '../../helpers/tmp.js';
import { FIXTURES, query, useTestDatabases } from '../helpers.js';

const server = useTestDatabases('keep');

async function keeperFor(t: import('node:test').TestContext, size: number | undefined, template: () => Promise<TemplateInfo | undefined>): Promise<PoolKeeper> {
  const session = new ServerAccess({ adminUrl: server.adminUrl, stateDir: await tempDir(t), runId: 'keep-run', connectTimeoutMs: 10_000 });
  const keeper = new PoolKeeper({ session, prefix: server.prefix, cloneStrategy: 'wal_log', size, template });
  // Closed when its test ends, before the file's databases are dropped (no background fill races that).
  t.after(async () => {
    await keeper.close();
    await session.release();
  });
  return keeper;
}

describe('the keeper of ready copies', () => {
  it('tops the copies of the template up to the size in the background, one per lane expected up to 4 by default', async (t) => {
    const template = await ensureTemplate({ adminUrl: server.adminUrl, prefix: server.prefix, migrations: `${FIXTURES}basic/migrations` });
    const keeper = await keeperFor(t, undefined, async () => template);
    keeper.expectLanes(3);
    keeper.refill();
    await keeper.settled();
    assert.equal(await keeper.countOf(template), 3);
    assert.equal((await keeper.copiesOf([template.hash])).length, 3);
    assert.deepEqual(await keeper.copiesOf(['000000000000']), []);
    keeper.expectLanes(10);
    keeper.refill();
    await keeper.settled();
    assert.equal(await keeper.countOf(template), 4, 'at most 4 by default');
  });

  it('fills nothing before the template is prepared, and drops the old databases swaps discarded when closed', async (t) => {
    const keeper = await keeperFor(t, 2, async () => undefined);
    const copies = await keeper.copiesOf();
    keeper.refill();
    await keeper.settled();
    assert.deepEqual(await keeper.copiesOf(), copies, 'no template, no new copy');
    const trash = `${server.prefix}_trash_0badc0de`;
    await query(server.adminUrl, `CREATE DATABASE ${trash}`);
    keeper.discard(trash);
    await keeper.close();
    assert.deepEqual(await query(server.adminUrl, 'SELECT datname FROM pg_database WHERE datname = $1', [trash]), []);
  });
});
