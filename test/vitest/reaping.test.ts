import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { runCli } from '../helpers/cli.ts';
import { exitReaperDone } from '../helpers/exit-reaper.ts';
import { getTestPostgres } from '../helpers/postgres.ts';
import { tempDir } from '../helpers/tmp.ts';
import { freshRunId, leftoversOf, runVitest, startVitest, SUITE_CONFIG } from './helpers.ts';

let postgres: Awaited<ReturnType<typeof getTestPostgres>>;
before(async () => {
  postgres = await getTestPostgres();
});

/**
 * A database prefix of this file's own: another test file's Vitest run (on the same server, at the
 * same time) reaps the marked databases of dead runs under its prefix, and would take these first.
 */
const PREFIX = `vitestrp${randomBytes(3).toString('hex')}`;
// What is left under it goes (whatever a failed test left), then the server is released.
after(async () => {
  const client = new pg.Client({ connectionString: postgres.adminUrl });
  await client.connect();
  try {
    for (const { name } of (await client.query<{ name: string }>('SELECT datname AS name FROM pg_database WHERE left(datname, $2) = $1', [`${PREFIX}_`, PREFIX.length + 1])).rows) {
      await client.query(`ALTER DATABASE ${pg.escapeIdentifier(name)} WITH IS_TEMPLATE false`);
      await client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
    }
    for (const { name } of (await client.query<{ name: string }>('SELECT rolname AS name FROM pg_roles WHERE left(rolname, $2) = $1', [`${PREFIX}_`, PREFIX.length + 1])).rows) {
      await client.query(`DROP OWNED BY ${pg.escapeIdentifier(name)}; DROP ROLE IF EXISTS ${pg.escapeIdentifier(name)}`).catch(() => undefined);
    }
  } finally {
    await client.end();
    await postgres.release();
  }
});

/**
 * Starts a Vitest run whose test holds its database, and sends `signal` once the test runs: SIGKILL
 * to the run's process group (Vitest and its workers: nothing of the run's teardown runs), or
 * another signal to the Vitest process alone, as a terminal's Ctrl-C or a CI's cancel does.
 * Resolves its run id.
 */
async function signalledRun(t: test.TestContext, stateDir: string, signal: NodeJS.Signals): Promise<{ runId: string; pid: number }> {
  const out = await tempDir(t);
  const runId = freshRunId();
  const ready = join(out, 'ready');
  const env = { E2E_LANES_DATABASE_URL: postgres.adminUrl, E2E_LANES_STATE_DIR: stateDir, E2E_LANES_RUN_ID: runId, FIXTURE_OUT: out, FIXTURE_TESTS: 'hold', FIXTURE_WORKERS: '1', FIXTURE_PREFIX: PREFIX };
  const run = startVitest(t, ['--config', SUITE_CONFIG], env, { timeoutMs: 60_000 });
  for (let i = 0; i < 600 && !existsSync(ready); i++) await sleep(50);
  assert.ok(existsSync(ready), `the held test started: ${existsSync(ready) ? '' : (await Promise.race([run.finished, sleep(1).then(() => undefined)]))?.output ?? ''}`);
  const live = await leftoversOf(postgres.adminUrl, runId);
  assert.deepEqual([live.databases.length, live.roles.length], [1, 1], `the run has its database and lane role: ${JSON.stringify(live)}`);
  process.kill(signal === 'SIGKILL' ? -run.pid : run.pid, signal);
  const ended = await run.finished;
  if (signal === 'SIGKILL') assert.equal(ended.signal, 'SIGKILL');
  return { runId, pid: run.pid };
}

/** A run SIGKILLed with its workers: it leaves its database and role. */
async function killedRun(t: test.TestContext, stateDir: string): Promise<string> {
  const { runId } = await signalledRun(t, stateDir, 'SIGKILL');
  await sleep(1_000);
  const left = await leftoversOf(postgres.adminUrl, runId);
  assert.equal(left.databases.length, 1, `the killed run left its database: ${JSON.stringify(left)}`);
  assert.equal(left.roles.length, 1, `and its lane role: ${JSON.stringify(left)}`);
  return runId;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  test(`a Vitest run ended by ${signal} mid-test (no global teardown runs) has its database and role dropped as it exits, with no gc`, async (t) => {
    const stateDir = join(await tempDir(t), 'state');
    const { runId, pid } = await signalledRun(t, stateDir, signal);
    const log = await exitReaperDone(stateDir, runId);
    assert.match(log, new RegExp(`run ${runId} ended without its teardown \\(owner pid ${pid} is gone\\): tore down 0 server process\\(es\\), 1 database\\(s\\), 1 port entr`));
    assert.deepEqual(await leftoversOf(postgres.adminUrl, runId), { databases: [], roles: [] }, log);
  });
}

test('a SIGKILLed Vitest run leaves its database and role, and `e2e-lanes gc --config vitest.config.ts` drops them', async (t) => {
  const stateDir = join(await tempDir(t), 'state');
  const runId = await killedRun(t, stateDir);
  const gc = await runCli(['gc', '--config', SUITE_CONFIG], { E2E_LANES_DATABASE_URL: postgres.adminUrl, E2E_LANES_STATE_DIR: stateDir, FIXTURE_PREFIX: PREFIX });
  assert.equal(gc.code, 0, gc.stderr);
  assert.match(gc.stdout, /removed 1 lane\(s\).* 1 database\(s\)/, gc.stdout);
  assert.match(gc.stdout, new RegExp(`database ${PREFIX}_`), gc.stdout);
  assert.deepEqual(await leftoversOf(postgres.adminUrl, runId), { databases: [], roles: [] });
});

test('the next Vitest run reaps what a SIGKILLed one left', async (t) => {
  const stateDir = join(await tempDir(t), 'state');
  const killed = await killedRun(t, stateDir);
  const out = await tempDir(t);
  const next = freshRunId();
  const run = await runVitest(t, ['--config', SUITE_CONFIG], { E2E_LANES_DATABASE_URL: postgres.adminUrl, E2E_LANES_STATE_DIR: stateDir, E2E_LANES_RUN_ID: next, FIXTURE_OUT: out, FIXTURE_TESTS: 'record-a', FIXTURE_WORKERS: '1', FIXTURE_PREFIX: PREFIX });
  assert.equal(run.code, 0, run.output);
  assert.match(run.output, new RegExp(`reaped 1 lane\\(s\\).*run ${killed}`), run.output);
  assert.deepEqual(await leftoversOf(postgres.adminUrl, killed), { databases: [], roles: [] });
  assert.deepEqual(await leftoversOf(postgres.adminUrl, next), { databases: [], roles: [] });
});
