/**
 * The app's own database variables never take a spec, a spawned process or the toolkit outside the
 * lanes: a `.env` loaded by `dotenv/config` in the config names the developer's database (holding a
 * row that must survive), and the specs create their clients when they are loaded.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import { withDatabase } from '../../src/postgres/index.js';
import { assertNothingLeft, expectExit, REPO_ROOT, reportTests, sandbox, startPlaywright, suite, useSharedPostgres, type Sandbox, type SharedPostgres } from './helpers.js';

const PORTS = [7600, 7699] as const;
const DEMO_MIGRATIONS = join(REPO_ROOT, 'prisma/migrations');
const held = useSharedPostgres();

/** The developer's own database: the demo schema and one row, created for a test and dropped after it. */
async function developerDatabase(t: test.TestContext, server: SharedPostgres): Promise<{ url: string; rows(): Promise<string[]>; objects(): Promise<number> }> {
  const name = `app_dev_${randomBytes(4).toString('hex')}`;
  await server.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  t.after(() => server.dropDatabases([name]));
  const url = withDatabase(server.adminUrl, name);
  const run = async <R extends pg.QueryResultRow>(sql: string): Promise<R[]> => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return (await client.query<R>(sql)).rows;
    } finally {
      await client.end();
    }
  };
  for (const folder of readdirSync(DEMO_MIGRATIONS).filter((entry) => /^\d+_/.test(entry)).sort()) {
    await run(readFileSync(join(DEMO_MIGRATIONS, folder, 'migration.sql'), 'utf8'));
  }
  await run(`INSERT INTO "User" (email, name) VALUES ('developer@example.com', 'Developer')`);
  return {
    url,
    rows: async () => (await run<{ email: string }>('SELECT email FROM "User" ORDER BY email')).map((row) => row.email),
    // Schemas and relations: the toolkit must create nothing in a database it did not create.
    objects: async () => (await run<{ n: number }>(`SELECT (SELECT count(*) FROM pg_namespace) + (SELECT count(*) FROM pg_class) AS n`))[0]!.n,
  };
}

/** A `.env` naming the developer's database in every variable an app or a tool may read. */
async function writeDotenv(box: Sandbox, url: string): Promise<string> {
  const target = new URL(url);
  const file = join(box.dir, '.env');
  const lines = [
    `DATABASE_URL=${url}`,
    `DIRECT_URL=${url}`,
    `PGHOST=${target.hostname}`,
    `PGPORT=${target.port}`,
    `PGUSER=${decodeURIComponent(target.username)}`,
    `PGPASSWORD=${decodeURIComponent(target.password)}`,
    `PGDATABASE=${target.pathname.slice(1)}`,
  ];
  await writeFile(file, `${lines.join('\n')}\n`);
  return file;
}

function envFor(dotenv: string, extra: Record<string, string> = {}): Record<string, string> {
  return { DOTENV_CONFIG_PATH: dotenv, DOTENV_CONFIG_QUIET: 'true', FAULTS_MIGRATIONS: DEMO_MIGRATIONS, FAULTS_WORKERS: '2', ...extra };
}

for (const isolation of ['project', 'worker'] as const) {
  test(`with a lane per ${isolation}, clients created at import time and spawned processes reach the lane, and the .env's database is untouched`, async (t) => {
    const box = await sandbox(t, { ports: PORTS });
    const developer = await developerDatabase(t, held.server);
    const objectsBefore = await developer.objects();
    const dotenv = await writeDotenv(box, developer.url);

    const run = startPlaywright(box, { config: suite('app-env'), env: envFor(dotenv, isolation === 'worker' ? { FAULTS_ISOLATION: 'worker' } : {}) });
    const exit = await run.exit;
    expectExit(exit, 0, run.output());
    const tests = reportTests(await run.report());
    assert.deepEqual(tests.map((item) => `${item.project}:${item.results[0]?.status}`).sort(), ['alpha:passed', 'beta:passed']);
    assert.match(run.output(), /DATABASE_URL is set \(127\.0\.0\.1:\d+\/app_dev_[0-9a-f]+\) and not used/);
    assert.match(run.output(), /DIRECT_URL held PostgreSQL URLs/);

    assert.deepEqual(await developer.rows(), ['developer@example.com'], "the developer's database kept its one row");
    assert.equal(await developer.objects(), objectsBefore, "nothing was created in the developer's database");
    await assertNothingLeft(box, [run.runId], { output: run.output() });
  });
}

test('a spec that loads the .env again with override fails before its query, and the .env database is untouched', async (t) => {
  const box = await sandbox(t, { ports: PORTS });
  const developer = await developerDatabase(t, held.server);
  const dotenv = await writeDotenv(box, developer.url);

  const run = startPlaywright(box, { config: suite('app-env'), env: envFor(dotenv, { FAULTS_SPECS: 'env-override.spec.ts' }) });
  expectExit(await run.exit, 'nonzero', run.output());
  const tests = reportTests(await run.report());
  assert.equal(tests.length, 2);
  for (const item of tests) {
    const message = item.results[0]?.errors.map((error) => error.message ?? '').join('\n') ?? '';
    assert.equal(item.results[0]?.status, 'failed');
    assert.match(message, /\[DATABASE_URL_CHANGED\] DATABASE_URL in this worker was changed to postgres:\/\/[^:]+:\*\*\*@127\.0\.0\.1:\d+\/app_dev_/);
    assert.match(message, /override: true/);
  }
  assert.deepEqual(await developer.rows(), ['developer@example.com']);
  await assertNothingLeft(box, [run.runId], { output: run.output() });
});

test('a client that kept the not-ready address fails its test with LANE_NOT_READY and the fix', async (t) => {
  const box = await sandbox(t, { ports: PORTS });
  const developer = await developerDatabase(t, held.server);
  const dotenv = await writeDotenv(box, developer.url);

  const run = startPlaywright(box, { config: suite('app-env'), env: envFor(dotenv, { FAULTS_SPECS: 'not-ready-client.spec.ts' }), args: ['--project', 'alpha'] });
  expectExit(await run.exit, 'nonzero', run.output());
  const [only] = reportTests(await run.report());
  const message = only?.results[0]?.errors.map((error) => error.message ?? '').join('\n') ?? '';
  assert.match(message, /ENOTFOUND e2e-lanes-lane-not-ready\.invalid/);
  assert.match(message, /\[LANE_NOT_READY\] A database client in this test used postgresql:\/\/lane-not-ready@e2e-lanes-lane-not-ready\.invalid/);
  assert.match(message, /Create the client in a fixture/);
  assert.deepEqual(await developer.rows(), ['developer@example.com']);
  await assertNothingLeft(box, [run.runId], { output: run.output() });
});
