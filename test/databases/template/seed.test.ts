import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import pg from 'pg';
import { runSeed } from '../../../src/databases/template/seed.js';
import { isLanesError } from '../../../src/errors.js';
import { withDatabase } from '../../../src/postgres/index.js';
import { tempDir } from '../../helpers/tmp.js';
import { query, useTestDatabases } from '../helpers.js';

const server = useTestDatabases('seed');

async function freshDatabase(name: string): Promise<string> {
  const database = `${server.prefix}_${name}`;
  await query(server.adminUrl, `CREATE DATABASE ${pg.escapeIdentifier(database)}`);
  await query(withDatabase(server.adminUrl, database), 'CREATE TABLE item (name text)');
  return withDatabase(server.adminUrl, database);
}

describe('a seed', () => {
  it('module is called in a process of its own with the database, in its argument and in DATABASE_URL', async (t) => {
    const url = await freshDatabase('module');
    const dir = await tempDir(t);
    const seed = join(dir, 'seed.mjs');
    const pgEntry = import.meta.resolve('pg');
    await writeFile(
      seed,
      `import pg from ${JSON.stringify(pgEntry)};
export default async ({ databaseUrl }) => {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  await client.query('INSERT INTO item VALUES ($1), ($2)', [String(process.pid !== ${process.pid}), String(process.env.DATABASE_URL === databaseUrl)]);
  await client.end();
};
`,
    );
    await runSeed(seed, url, { timeoutMs: 60_000 });
    assert.deepEqual((await query<{ name: string }>(url, 'SELECT name FROM item')).map((row) => row.name), ['true', 'true']);
  });

  it('command runs with DATABASE_URL, and a failing one fails with SEED_FAILED and its output', async (t) => {
    const url = await freshDatabase('command');
    const dir = await tempDir(t);
    const script = join(dir, 'seed.cjs');
    await writeFile(
      script,
      `const pg = require(${JSON.stringify(createRequire(import.meta.url).resolve('pg'))});
const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
client.connect().then(() => client.query("INSERT INTO item VALUES ('from the command')")).then(() => client.end());
`,
    );
    await runSeed({ command: 'node seed.cjs', cwd: dir }, url, { timeoutMs: 60_000 });
    assert.deepEqual((await query<{ name: string }>(url, 'SELECT name FROM item')).map((row) => row.name), ['from the command']);
    await assert.rejects(runSeed({ command: 'echo seeding went wrong; exit 4' }, url, { timeoutMs: 60_000 }), (error) => isLanesError(error, 'SEED_FAILED') && /seeding went wrong/.test(error.message));
  });

  it('module that throws fails with SEED_FAILED carrying its message, without the password', async (t) => {
    const url = await freshDatabase('throws');
    const dir = await tempDir(t);
    const seed = join(dir, 'seed.mjs');
    await writeFile(seed, 'export default async ({ databaseUrl }) => { throw new Error(`no rows for ${databaseUrl}`); };\n');
    const password = new URL(url).password;
    await assert.rejects(runSeed(seed, url, { timeoutMs: 60_000 }), (error) => isLanesError(error, 'SEED_FAILED') && /no rows for/.test(`${error.message} ${String((error.cause as Error | undefined)?.message)}`) && (password === '' || !error.message.includes(password)));
  });
});

