import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';
import { DATABASE_URL_ENV } from '../../src/env-vars.js';
import { completeUrlFromPgEnv } from '../../src/postgres/app-env.js';
import { isRunnerDatabaseUrl, runnerDatabaseUrl } from '../../src/playwright/runner-database.js';
import { guardRunnerEnv } from '../../src/playwright/worker-lane.js';

const run = promisify(execFile);

test("a client in the runner fails at once with the message that says where a lane's URL is, from the URL and from the PG* variables", async () => {
  const url = runnerDatabaseUrl();
  assert.ok(isRunnerDatabaseUrl(url), url);
  assert.equal(runnerDatabaseUrl(), url, 'one endpoint per process');
  for (const client of [new pg.Client({ connectionString: url }), new pg.Client({ connectionString: url, application_name: 'helper' })]) {
    const started = Date.now();
    await assert.rejects(client.connect(), (error: Error & { code?: string }) => {
      assert.equal(error.code, '08004');
      assert.match(error.message, /^e2e-lanes: no database in the Playwright runner \(config, globalSetup, globalTeardown\)/);
      assert.match(error.message, /lane\.databaseUrl of the `lane` fixture/);
      assert.match(error.message, /manager\.ensureLane\(project\)\)\.databaseUrl of a LaneManager/);
      return true;
    });
    assert.ok(Date.now() - started < 2_000);
  }
});

test('withLanes in the runner points DATABASE_URL, URL variables and PG* at the endpoint, and the admin URL keeps the PG* parts it left out', async (t) => {
  const names = ['DATABASE_URL', 'DIRECT_URL', 'PGHOST', 'PGPORT', 'PGUSER', 'PGPASSWORD', 'PGDATABASE', 'PGSERVICE', DATABASE_URL_ENV];
  const saved = Object.fromEntries(names.map((name) => [name, process.env[name]]));
  t.after(() => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });
  Object.assign(process.env, {
    DATABASE_URL: 'postgres://dev:devpass@127.0.0.1:5432/myapp_dev',
    DIRECT_URL: 'postgresql://dev:devpass@127.0.0.1:5432/myapp_dev',
    PGHOST: '127.0.0.1',
    PGPORT: '5433',
    PGUSER: 'admin',
    PGPASSWORD: 's3cret:/@',
    PGDATABASE: 'myapp_dev',
    PGSERVICE: 'dev',
    [DATABASE_URL_ENV]: 'postgres://127.0.0.1/postgres',
  });
  const guarded = guardRunnerEnv({ database: { adminUrl: 'postgresql://root@db.internal/postgres' } });
  assert.equal(guarded.appDatabaseUrl, 'postgres://dev:devpass@127.0.0.1:5432/myapp_dev');
  assert.deepEqual(guarded.redirected, ['DIRECT_URL']);
  assert.equal(guarded.adminUrl, 'postgresql://root:s3cret%3A%2F%40@db.internal:5433/postgres');
  assert.equal(process.env[DATABASE_URL_ENV], 'postgres://admin:s3cret%3A%2F%40@127.0.0.1:5433/postgres');
  const url = runnerDatabaseUrl();
  assert.equal(process.env.DATABASE_URL, url);
  assert.equal(process.env.DIRECT_URL, url);
  assert.equal(process.env.PGHOST, new URL(url).searchParams.get('host'));
  assert.equal(process.env.PGUSER, 'no-database-in-the-runner');
  assert.equal(process.env.PGPASSWORD, undefined);
  assert.equal(process.env.PGSERVICE, undefined);
  await assert.rejects(new pg.Client().connect(), /no database in the Playwright runner/, 'new pg.Client() from the PG* variables');
  const psql = await run('psql', ['-c', 'SELECT 1'], { env: process.env }).then(() => 'connected', (error: { stderr?: string }) => error.stderr ?? '');
  assert.match(psql, /no database in the Playwright runner/, 'psql from the PG* variables');
  assert.deepEqual(guardRunnerEnv({}), { appDatabaseUrl: undefined, redirected: [] }, 'evaluated again (UI mode): nothing more to do');
});

test('the admin URL is completed from PG* only where it leaves a part out', () => {
  assert.equal(completeUrlFromPgEnv('postgres://u:p@h:1/d', { PGUSER: 'x', PGPASSWORD: 'y', PGPORT: '2', PGDATABASE: 'z' }), 'postgres://u:p@h:1/d');
  assert.equal(completeUrlFromPgEnv('postgres://h', { PGUSER: 'x y', PGDATABASE: 'z' }), 'postgres://x%20y@h/z');
  assert.equal(completeUrlFromPgEnv('not a url', { PGUSER: 'x' }), 'not a url');
});

test("the endpoint's folder goes with its runner, and one left by a SIGKILLed runner is removed by the next", { timeout: 30_000 }, async (t) => {
  const script = `import { runnerDatabaseUrl } from ${JSON.stringify(new URL('../../src/playwright/runner-database.ts', import.meta.url).href)};
    console.log(new URL(runnerDatabaseUrl()).searchParams.get('host'));
    if (process.argv.includes('--hold')) setInterval(() => {}, 1000);`;
  const start = (...args: string[]): ChildProcess => spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, '--', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const folderOf = async (child: ChildProcess): Promise<string> => ((await once(child.stdout!, 'data')) as [Buffer])[0].toString().trim();

  const quiet = start();
  const quietFolder = await folderOf(quiet);
  await once(quiet, 'exit');
  assert.equal(existsSync(quietFolder), false, 'removed when the runner exits');

  const killed = start('--hold');
  t.after(() => killed.kill('SIGKILL'));
  const killedFolder = await folderOf(killed);
  assert.ok(existsSync(killedFolder));
  killed.kill('SIGKILL');
  await once(killed, 'exit');
  assert.ok(existsSync(killedFolder), 'SIGKILL leaves it');
  // A runner in another PID namespace sharing the temp folder: its pid means nothing here, so its
  // folder stays, even where that pid is free on this side.
  const elsewhere = mkdtempSync(join(tmpdir(), `e2e-lanes-runner-${FREE_PID}-${OTHER_NAMESPACE}-12345-`));
  t.after(() => rmSync(elsewhere, { recursive: true, force: true }));
  const next = start();
  await folderOf(next);
  await once(next, 'exit');
  assert.equal(existsSync(killedFolder), false, 'the next runner removed it');
  assert.ok(existsSync(elsewhere), "a runner's folder of another PID namespace is left alone");
});

/** A pid no process has here (above the default pid_max of 2^22). */
const FREE_PID = 4_194_400;
/** A PID namespace inode that is not this one's. */
const OTHER_NAMESPACE = 4_026_000_001;
