/**
 * No database on the runner side: with a `.env` naming the developer's database (DATABASE_URL,
 * DIRECT_URL, PG*) loaded by `dotenv/config` in the config, the user's globalSetup (in the runner,
 * after withLanes) cannot reach it: every client fails at once with a message saying where a
 * lane's URL is; a pool created while the config was imported (before withLanes) is reported in one
 * line; the developer's database is unchanged.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import { withDatabase } from '../../src/postgres/index.js';
import { assertNothingLeft, expectExit, reportTests, sandbox, startPlaywright, SUITES_DIR, useSharedPostgres } from './helpers.ts';

const PORTS = [8000, 8099] as const;
const CONFIG = join(SUITES_DIR, 'runner-side/runner-side.config.ts');
const held = useSharedPostgres();

test("the user's globalSetup gets a clear error from every database variable of the .env, and the developer's database is unchanged", { timeout: 200_000 }, async (t) => {
  const box = await sandbox(t, { ports: PORTS });
  const name = `app_dev_${randomBytes(4).toString('hex')}`;
  await held.server.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  t.after(() => held.server.dropDatabases([name]));
  const url = withDatabase(held.server.adminUrl, name);
  const rows = async (): Promise<string[]> => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return (await client.query<{ email: string }>('SELECT email FROM "User" ORDER BY email')).rows.map((row) => row.email);
    } finally {
      await client.end();
    }
  };
  const setup = new pg.Client({ connectionString: url });
  await setup.connect();
  await setup.query(`CREATE TABLE "User" (email text NOT NULL); INSERT INTO "User" VALUES ('developer@example.com')`);
  await setup.end();

  const target = new URL(url);
  const dotenv = join(box.dir, '.env');
  await writeFile(
    dotenv,
    [`DATABASE_URL=${url}`, `DIRECT_URL=${url}`, `PGHOST=${target.hostname}`, `PGPORT=${target.port}`, `PGUSER=${decodeURIComponent(target.username)}`, `PGPASSWORD=${decodeURIComponent(target.password)}`, `PGDATABASE=${name}`].join('\n'),
  );
  const report = join(box.dir, 'runner-report.json');
  const run = startPlaywright(box, { config: CONFIG, env: { DOTENV_CONFIG_PATH: dotenv, DOTENV_CONFIG_QUIET: 'true', FAULTS_RUNNER_REPORT: report } });
  expectExit(await run.exit, 0, run.output());
  assert.deepEqual(reportTests(await run.report()).map((item) => item.results[0]?.status), ['passed'], run.output());

  const attempts = JSON.parse(await readFile(report, 'utf8')) as Record<string, { connected: boolean; message?: string; ms: number }>;
  assert.deepEqual(Object.keys(attempts).sort(), ['DATABASE_URL', 'DIRECT_URL', 'PG*']);
  for (const [variable, attempt] of Object.entries(attempts)) {
    assert.equal(attempt.connected, false, `${variable} reached a database`);
    assert.match(attempt.message ?? '', /no database in the Playwright runner \(config, globalSetup, globalTeardown\)/, variable);
    assert.match(attempt.message ?? '', /lane\.databaseUrl of the `lane` fixture .* LaneManager/, variable);
    assert.ok(attempt.ms < 2_000, `${variable} failed at once (${attempt.ms} ms)`);
  }
  assert.match(run.output(), /user globalSetup: e2e-lanes: no database in the Playwright runner/);
  // The pool the config created before withLanes ran: seen, named, not redirected.
  assert.match(run.output(), new RegExp(`warning: the Playwright runner \\(pid \\d+\\) holds 1 connection\\(s\\) to "${name}", not a lane's database: a client created while the config was imported`));
  assert.deepEqual(await rows(), ['developer@example.com'], "the developer's database kept its one row");
  await assertNothingLeft(box, [run.runId], { output: run.output() });
});
