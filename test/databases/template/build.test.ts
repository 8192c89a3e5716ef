import assert from 'node:assert/strict';
import { appendFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import pg from 'pg';
import type { LanesError } from '../../../src/errors.js';
import { computeTemplateHash, ensureTemplate, templateDatabaseName } from '../../../src/databases/index.js';
import { serverVersionNum, withClient, withDatabase } from '../../../src/postgres/index.js';
import { runFixture } from '../../helpers/processes.js';
import { tempDir } from '../../helpers/tmp.js';
import { FIXTURES, copyFixture, databasesStartingWith, query, useTestDatabases } from '../helpers.js';

const server = useTestDatabases('tpl');
const basic = { migrations: `${FIXTURES}basic/migrations`, seed: `${FIXTURES}basic/seed.ts` };

describe('template', () => {
  it('is built once and reused while the migrations are unchanged', async () => {
    const first = await ensureTemplate({ adminUrl: server.adminUrl, prefix: server.prefix, ...basic });
    const second = await ensureTemplate({ adminUrl: server.adminUrl, prefix: server.prefix, ...basic });
    assert.equal(first.built, true);
    assert.equal(second.built, false);
    assert.equal(second.name, first.name);
    assert.match(first.name, new RegExp(`^${server.prefix}_tpl_[0-9a-f]{12}$`));
    const [row] = await query<{ datistemplate: boolean; datallowconn: boolean }>(server.adminUrl, 'SELECT datistemplate, datallowconn FROM pg_database WHERE datname = $1', [first.name]);
    assert.deepEqual(row, { datistemplate: true, datallowconn: false });
  });

  it('gets a new hash when a migration file is edited', async (t) => {
    const dir = await copyFixture('basic', await tempDir(t));
    const options = { adminUrl: server.adminUrl, prefix: server.prefix, migrations: `${dir}/migrations` };
    const before = await ensureTemplate(options);
    await appendFile(`${dir}/migrations/20250102000000_add_notes/migration.sql`, 'CREATE INDEX "Item_note_idx" ON "Item"("note");\n');
    const after = await ensureTemplate(options);
    assert.notEqual(after.hash, before.hash);
    assert.notEqual(after.name, before.name);
    assert.equal(after.built, true);
  });

  it('lets exactly one of two racing processes build it; both get clones', async (t) => {
    const stateDir = await tempDir(t);
    const options = JSON.stringify({ prefix: server.prefix, ...basic, hashInputs: [`${FIXTURES}allocate.ts`], stateDir, runId: 'race' });
    const env = { FIXTURE_ADMIN_URL: server.adminUrl, SEED_DELAY_MS: '1500', E2E_LANES_OWNER_PID: '' };
    const outputs = await Promise.all(['one', 'two'].map((project) => runFixture(`${FIXTURES}allocate.ts`, [options, project, 'exit'], { env })));
    const results = outputs.map((out) => JSON.parse(out.trim().split('\n').at(-1) ?? '') as { built: boolean; template: string; databaseName: string });
    assert.equal(results.filter((r) => r.built).length, 1, JSON.stringify(results));
    // The seed takes 1.5 s, so the second process met the lock and waited for the first.
    const waiter = outputs.find((out) => out.includes('"built":false'));
    assert.match(waiter ?? '', /waiting for another process to finish building template/);
    assert.equal(results[0]?.template, results[1]?.template);
    assert.notEqual(results[0]?.databaseName, results[1]?.databaseName);
    for (const { databaseName, template } of results) {
      const items = await query(withDatabase(server.adminUrl, databaseName), 'SELECT name FROM "Item" ORDER BY name');
      assert.deepEqual(items, [{ name: 'alpha' }, { name: 'beta' }]);
      assert.deepEqual(await databasesStartingWith(server.adminUrl, `${template}_build_`), []);
    }
  });

  it('fails with MIGRATION_FAILED naming the file and leaves no template or half-built database', async () => {
    const options = { adminUrl: server.adminUrl, prefix: server.prefix, migrations: `${FIXTURES}syntax-error/migrations` };
    await assert.rejects(ensureTemplate(options), (error: LanesError) => {
      assert.equal(error.code, 'MIGRATION_FAILED');
      assert.match(error.message, /20250102000000_broken\/migration\.sql:4:8/);
      return true;
    });
    const version = await withClient(server.adminUrl, serverVersionNum);
    const name = templateDatabaseName(server.prefix, await computeTemplateHash({ ...options, serverVersion: version }));
    assert.deepEqual(await databasesStartingWith(server.adminUrl, name), []);
  });

  it('fails with SEED_FAILED when the seed throws, and leaves nothing behind', async () => {
    const options = { adminUrl: server.adminUrl, prefix: server.prefix, migrations: basic.migrations, seed: `${FIXTURES}basic/failing-seed.ts` };
    await assert.rejects(ensureTemplate(options), (error: LanesError) => {
      assert.equal(error.code, 'SEED_FAILED');
      assert.match(error.message, /seed exploded on purpose/);
      return true;
    });
    const version = await withClient(server.adminUrl, serverVersionNum);
    const name = templateDatabaseName(server.prefix, await computeTemplateHash({ ...options, serverVersion: version }));
    assert.deepEqual(await databasesStartingWith(server.adminUrl, name), []);
  });

  it('drops the leftovers of a crashed builder and rebuilds once per run when asked', async () => {
    const options = { adminUrl: server.adminUrl, prefix: server.prefix, migrations: basic.migrations, hashInputs: [`${FIXTURES}basic/failing-seed.ts`] };
    const version = await withClient(server.adminUrl, serverVersionNum);
    const name = templateDatabaseName(server.prefix, await computeTemplateHash({ ...options, serverVersion: version }));
    await query(server.adminUrl, `CREATE DATABASE ${pg.escapeIdentifier(`${name}_build_deadbeef`)}`);
    assert.equal((await ensureTemplate(options)).built, true);
    assert.deepEqual(await databasesStartingWith(server.adminUrl, name), [name]);
    assert.equal((await ensureTemplate({ ...options, rebuild: true })).built, true);
    assert.equal((await ensureTemplate({ ...options, rebuild: true })).built, false, 'rebuilt only once per run');
  });

});
