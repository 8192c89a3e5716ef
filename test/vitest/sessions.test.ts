import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { getTestPostgres } from '../helpers/postgres.ts';
import { tempDir } from '../helpers/tmp.ts';
import { freshRunId, leftoversOf, runVitest, SUITE_CONFIG } from './helpers.ts';

let postgres: Awaited<ReturnType<typeof getTestPostgres>>;
before(async () => {
  postgres = await getTestPostgres();
});
after(() => postgres.release());

async function runSuite(t: test.TestContext, tests: string, pool: 'threads' | 'forks', env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; output: string; runId: string }> {
  const out = await tempDir(t);
  const runId = freshRunId();
  const run = await runVitest(t, ['--config', SUITE_CONFIG, `--pool=${pool}`], {
    E2E_LANES_DATABASE_URL: postgres.adminUrl,
    E2E_LANES_STATE_DIR: join(out, 'state'),
    E2E_LANES_RUN_ID: runId,
    FIXTURE_OUT: out,
    FIXTURE_TESTS: tests,
    FIXTURE_WORKERS: '1',
    ...env,
  });
  return { ...run, runId };
}

for (const pool of ['threads', 'forks'] as const) {
  test(`a client kept open across resetDatabase() reconnects to the fresh database after a swap, and keeps its session after a truncate (${pool})`, async (t) => {
    const run = await runSuite(t, 'swap', pool);
    assert.equal(run.code, 0, run.output);
    assert.match(run.output, /2 passed/);
    assert.deepEqual(await leftoversOf(postgres.adminUrl, run.runId), { databases: [], roles: [] });
  });
}

test('a pool without an error listener kept open across a swap fails the run, its error saying what ended the session and how to fix it', async (t) => {
  const run = await runSuite(t, 'swap-bare', 'forks');
  assert.notEqual(run.code, 0, run.output);
  assert.match(run.output, /terminating connection due to administrator command/);
  assert.match(run.output, /ended by a swap reset of the worker's database/);
  assert.match(run.output, /'error' listener/);
  assert.doesNotMatch(run.output, /password: '/, 'the dead client (with the lane role password) is not printed');
  assert.deepEqual(await leftoversOf(postgres.adminUrl, run.runId), { databases: [], roles: [] });
});

test("test.concurrent tests of a file with reset: 'test' each start from the seed: they hold the database one after another", async (t) => {
  const run = await runSuite(t, 'concurrent', 'threads', { FIXTURE_RESET: 'test' });
  assert.equal(run.code, 0, run.output);
  assert.match(run.output, /3 passed/);
});

test('an admin URL that takes its user and password from PGUSER and PGPASSWORD keeps working after the Vitest process points PG* away (resets run there)', async (t) => {
  const admin = new URL(postgres.adminUrl);
  const bare = new URL(postgres.adminUrl);
  bare.username = '';
  bare.password = '';
  const run = await runSuite(t, 'record-a', 'forks', {
    E2E_LANES_DATABASE_URL: bare.toString(),
    PGUSER: decodeURIComponent(admin.username),
    PGPASSWORD: decodeURIComponent(admin.password),
    FIXTURE_RESET: 'test',
  });
  assert.equal(run.code, 0, run.output);
  assert.match(run.output, /2 passed/);
  assert.deepEqual(await leftoversOf(postgres.adminUrl, run.runId), { databases: [], roles: [] });
});

test('a config whose projects would each run the global setup is refused with CONFIG_INVALID, and leaves nothing', async (t) => {
  const out = await tempDir(t);
  const runId = freshRunId();
  const config = new URL('./fixtures/suite/projects.config.ts', import.meta.url).pathname;
  const run = await runVitest(t, ['--config', config], { E2E_LANES_DATABASE_URL: postgres.adminUrl, E2E_LANES_STATE_DIR: join(out, 'state'), E2E_LANES_RUN_ID: runId, FIXTURE_OUT: out });
  assert.equal(run.code, 1, run.output);
  assert.match(run.output, /\[CONFIG_INVALID\] The e2e-lanes global setup for Vitest ran for project "second" while project "first" holds the run's databases/);
  assert.match(run.output, /Hint: Run the suites that need databases as separate Vitest runs/);
  assert.deepEqual(await leftoversOf(postgres.adminUrl, runId), { databases: [], roles: [] });
});
