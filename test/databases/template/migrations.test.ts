import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import pg from 'pg';
import { isLanesError, type LanesError } from '../../../src/errors.js';
import { applyMigrations, checksumMatches, lineAndColumn, readMigrations, runMigrations } from '../../../src/databases/index.js';
import { withDatabase } from '../../../src/postgres/index.js';
import { tempDir } from '../../helpers/tmp.js';
import { FIXTURES, copyFixture, query, useTestDatabases } from '../helpers.js';

const server = useTestDatabases('mig');

/** A fresh empty database for one test, dropped afterwards. */
async function freshDatabase(t: { after(fn: () => Promise<void>): void }, suffix: string): Promise<string> {
  const name = `${server.prefix}_${suffix}`;
  await query(server.adminUrl, `CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  t.after(() => query(server.adminUrl, `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`).then(() => undefined));
  return withDatabase(server.adminUrl, name);
}

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

describe('migrations runner', () => {
  it('reads the migration folders in order and ignores migration_lock.toml and stray files', async () => {
    const migrations = await readMigrations(`${FIXTURES}basic/migrations`);
    assert.deepEqual(migrations.map((m) => m.name), ['20250101000000_init', '20250102000000_add_notes']);
    const bytes = await readFile(`${FIXTURES}basic/migrations/20250101000000_init/migration.sql`);
    assert.equal(migrations[0]?.checksum, sha256(bytes));
  });

  it('records _prisma_migrations rows the way prisma migrate deploy does', async (t) => {
    const url = await freshDatabase(t, 'rows');
    const before = new Date();
    const result = await applyMigrations(url, await readMigrations(`${FIXTURES}basic/migrations`));
    assert.deepEqual(result.applied, ['20250101000000_init', '20250102000000_add_notes']);

    const columns = await query<{ column_name: string; data_type: string; character_maximum_length: number | null; is_nullable: string; column_default: string | null }>(
      url,
      `SELECT column_name, data_type, character_maximum_length, is_nullable, column_default
         FROM information_schema.columns WHERE table_name = '_prisma_migrations' ORDER BY ordinal_position`,
    );
    assert.deepEqual(
      columns.map((c) => [c.column_name, c.data_type, c.character_maximum_length, c.is_nullable, c.column_default]),
      [
        ['id', 'character varying', 36, 'NO', null],
        ['checksum', 'character varying', 64, 'NO', null],
        ['finished_at', 'timestamp with time zone', null, 'YES', null],
        ['migration_name', 'character varying', 255, 'NO', null],
        ['logs', 'text', null, 'YES', null],
        ['rolled_back_at', 'timestamp with time zone', null, 'YES', null],
        ['started_at', 'timestamp with time zone', null, 'NO', 'now()'],
        ['applied_steps_count', 'integer', null, 'NO', '0'],
      ],
    );
    const [pk] = await query<{ def: string }>(url, `SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = '_prisma_migrations'::regclass AND contype = 'p'`);
    assert.equal(pk?.def, 'PRIMARY KEY (id)');

    const rows = await query<{ id: string; checksum: string; finished_at: Date | null; migration_name: string; logs: string | null; rolled_back_at: Date | null; started_at: Date; applied_steps_count: number }>(
      url,
      'SELECT * FROM _prisma_migrations ORDER BY started_at',
    );
    assert.deepEqual(rows.map((r) => r.migration_name), ['20250101000000_init', '20250102000000_add_notes']);
    for (const row of rows) {
      const bytes = await readFile(`${FIXTURES}basic/migrations/${row.migration_name}/migration.sql`);
      assert.equal(row.checksum, sha256(bytes));
      assert.match(row.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.equal(row.applied_steps_count, 1);
      assert.equal(row.logs, null);
      assert.equal(row.rolled_back_at, null);
      assert.ok(row.finished_at instanceof Date && row.finished_at >= row.started_at);
      assert.ok(row.started_at.getTime() >= before.getTime() - 1_000);
    }
    // The schema really is there.
    await query(url, `INSERT INTO "Item" (name, note) VALUES ('x', 'y')`);
  });

  it('skips migrations already applied with the same checksum, even with other line endings', async (t) => {
    const url = await freshDatabase(t, 'skip');
    const dir = await copyFixture('basic', await tempDir(t));
    await applyMigrations(url, await readMigrations(`${dir}/migrations`));
    const file = `${dir}/migrations/20250101000000_init/migration.sql`;
    await writeFile(file, (await readFile(file, 'utf8')).replace(/\n/g, '\r\n'));
    const again = await applyMigrations(url, await readMigrations(`${dir}/migrations`));
    assert.deepEqual(again.applied, []);
    assert.deepEqual(again.skipped, ['20250101000000_init', '20250102000000_add_notes']);
  });

  it('refuses a migration that was changed after it was applied', async (t) => {
    const url = await freshDatabase(t, 'changed');
    const dir = await copyFixture('basic', await tempDir(t));
    await applyMigrations(url, await readMigrations(`${dir}/migrations`));
    await writeFile(`${dir}/migrations/20250102000000_add_notes/migration.sql`, 'ALTER TABLE "Item" ADD COLUMN "other" TEXT;\n');
    await assert.rejects(applyMigrations(url, await readMigrations(`${dir}/migrations`)), (error: LanesError) => {
      assert.equal(error.code, 'MIGRATION_FAILED');
      assert.match(error.message, /20250102000000_add_notes was modified after it was applied/);
      return true;
    });
  });

  it('names the file, line and column of a syntax error and rolls that migration back', async (t) => {
    const url = await freshDatabase(t, 'syntax');
    const migrations = await readMigrations(`${FIXTURES}syntax-error/migrations`);
    await assert.rejects(applyMigrations(url, migrations), (error: LanesError) => {
      assert.equal(error.code, 'MIGRATION_FAILED');
      assert.match(error.message, /syntax-error\/migrations\/20250102000000_broken\/migration\.sql:4:8: syntax error at or near "TABEL"/);
      assert.match(error.message, /> 4 \| CREATE TABEL "Broken" \(/);
      assert.deepEqual([error.details.line, error.details.column, error.details.sqlState], [4, 8, '42601']);
      return true;
    });
    const names = await query<{ migration_name: string }>(url, 'SELECT migration_name FROM _prisma_migrations');
    assert.deepEqual(names.map((r) => r.migration_name), ['20250101000000_init']);
    // The first statement of the failed migration was rolled back with it.
    const note = await query(url, `SELECT 1 FROM information_schema.columns WHERE table_name = 'Item' AND column_name = 'note'`);
    assert.equal(note.length, 0);
  });

  it('runs a migrations command with DATABASE_URL and reports its output tail without the password', async (t) => {
    const url = await freshDatabase(t, 'cmd');
    const script = "import pg from 'pg'; const c = new pg.Client(process.env.DATABASE_URL); await c.connect(); await c.query('CREATE TABLE from_command (id int)'); await c.end();";
    await runMigrations({ command: `node --input-type=module -e "${script}"` }, url);
    assert.equal((await query(url, `SELECT to_regclass('from_command') IS NOT NULL AS ok`))[0]?.ok, true);

    const password = new URL(server.adminUrl).password;
    await assert.rejects(runMigrations({ command: 'echo "connecting to $DATABASE_URL"; echo boom >&2; exit 3' }, url), (error: LanesError) => {
      assert.equal(error.code, 'MIGRATION_FAILED');
      assert.match(error.message, /exit code 3/);
      assert.match(error.message, /boom/);
      assert.match(error.message, /connecting to postgres/);
      if (password) assert.ok(!error.message.includes(password), 'password leaked');
      return true;
    });
  });

  it('fails clearly when the migrations folder does not exist', async () => {
    await assert.rejects(readMigrations(`${FIXTURES}does-not-exist`), (error) => isLanesError(error, 'MIGRATION_FAILED'));
  });

  it('compares checksums like Prisma and computes line and column in characters', () => {
    const sql = 'SELECT 1;\nSELECT 2;\n';
    const crlf = createHash('sha256').update(sql.replace(/\n/g, '\r\n')).digest('hex');
    assert.ok(checksumMatches(sql, crlf));
    assert.ok(!checksumMatches(sql, createHash('sha256').update('other').digest('hex')));
    assert.deepEqual(lineAndColumn('-- ünïcødé\nSELEC 1', 13), { line: 2, column: 2 });
  });
});
