import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { dropOldTemplates, ensureTemplate, listTemplates } from '../../../src/databases/index.js';
import { tryAdvisoryLock } from '../../../src/databases/sql/advisory-lock.js';
import { templateLockKey } from '../../../src/databases/template/housekeeping.js';
import { FIXTURES, query, useTestDatabases } from '../helpers.js';

const server = useTestDatabases('hk');

async function dropTemplatesOf(prefix: string): Promise<void> {
  for (const { name } of await listTemplates(server.adminUrl, prefix)) {
    await query(server.adminUrl, `ALTER DATABASE ${pg.escapeIdentifier(name)} IS_TEMPLATE false`);
    await query(server.adminUrl, `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)}`);
  }
}

describe('housekeeping of templates', () => {
  it('lists templates newest first and drops all but the newest few', async (t) => {
    const prefix = `${server.prefix}o`;
    t.after(() => dropTemplatesOf(prefix));
    const built = [];
    for (const file of ['basic/seed.ts', 'basic/failing-seed.ts', 'allocate.ts']) {
      built.push(await ensureTemplate({ adminUrl: server.adminUrl, prefix, migrations: false, hashInputs: [`${FIXTURES}${file}`] }));
    }
    const listed = await listTemplates(server.adminUrl, prefix);
    assert.deepEqual(listed.map((l) => l.name), built.map((b) => b.name).reverse());
    assert.ok(listed.every((l) => typeof l.builtAt === 'string' && l.hash.length === 12));
    const dropped = await dropOldTemplates(server.adminUrl, prefix, 1, { exclude: [built[0]!.name] });
    assert.deepEqual(dropped, [built[1]!.name]);
    assert.deepEqual((await listTemplates(server.adminUrl, prefix)).map((l) => l.name), [built[2]!.name, built[0]!.name]);
  });
  it('never drops a template whose lock a builder holds', async (t) => {
    const prefix = `${server.prefix}l`;
    t.after(() => dropTemplatesOf(prefix));
    const older = await ensureTemplate({ adminUrl: server.adminUrl, prefix, migrations: false, hashInputs: [`${FIXTURES}basic/seed.ts`] });
    const newer = await ensureTemplate({ adminUrl: server.adminUrl, prefix, migrations: false, hashInputs: [`${FIXTURES}allocate.ts`] });
    const builder = new pg.Client({ connectionString: server.adminUrl });
    await builder.connect();
    try {
      assert.equal(await tryAdvisoryLock(builder, templateLockKey(older.name)), true);
      assert.deepEqual(await dropOldTemplates(server.adminUrl, prefix, 0), [newer.name]);
      assert.deepEqual((await listTemplates(server.adminUrl, prefix)).map((l) => l.name), [older.name], 'the locked one is left');
    } finally {
      await builder.end();
    }
    assert.deepEqual(await dropOldTemplates(server.adminUrl, prefix, 0), [older.name], 'dropped once its lock is free');
  });
});
