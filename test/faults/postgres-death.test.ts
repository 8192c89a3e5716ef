/**
 * The embedded PostgreSQL dies in the middle of a run: the run says so at once, with the tail of the
 * server's log, and the lanes that boot after it fail at once with the same error instead of
 * waiting out the connect deadline each.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { expectExit, ledger, lanePortEntries, reportTests, sandbox, serverProcesses, startPlaywright, suite, waitFor } from './helpers.js';

const PORTS = [7500, 7599] as const;

test('a killed embedded PostgreSQL is reported at once and fails the remaining lane boots at once', async (t) => {
  const box = await sandbox(t, { ports: PORTS, databases: false });
  const dataDir = join(box.dir, 'pg');
  await mkdir(dataDir);
  await chmod(box.dir, 0o755); // the user `postgres` (we are root) must reach the data folder
  const release = join(box.dir, 'release');
  t.after(async () => {
    // The server of this test's own data folder, if anything is left of it.
    const pidFile = join(dataDir, 'postmaster.pid');
    if (existsSync(pidFile)) {
      try {
        process.kill(Number(readFileSync(pidFile, 'utf8').split('\n')[0]), 'SIGKILL');
      } catch {
        // gone
      }
    }
  });

  const run = startPlaywright(box, {
    config: suite('postgres-death'),
    env: { E2E_LANES_EMBEDDED_DIR: dataDir, FAULTS_PREFETCH: '0', FAULTS_RELEASE_FILE: release },
    timeoutMs: 180_000,
  });
  await waitFor('the first lane to hold', () => run.output().includes('holding lane of alpha'), { timeoutMs: 90_000, abortIf: () => (run.done() ? run.output() : undefined) });
  const postmaster = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  process.kill(postmaster, 'SIGKILL');
  const killedAt = Date.now();
  await waitFor('the death to be reported', () => /EMBEDDED_POSTGRES_DIED|The embedded PostgreSQL server \(pid \d+/.test(run.output()), {
    timeoutMs: 10_000,
    abortIf: () => (run.done() ? run.output() : undefined),
  });
  assert.match(run.output(), new RegExp(`The embedded PostgreSQL server \\(pid ${postmaster}, port \\d+, .*\\) died during the run`));
  await writeFile(release, '');

  const exit = await run.exit;
  expectExit(exit, 'nonzero', run.output());
  // Before, every later lane boot waited out its 10 s connect deadline (and a run took minutes).
  assert.ok(Date.now() - killedAt < 60_000, `the run ended ${Date.now() - killedAt} ms after the kill:\n${run.output()}`);
  const tests = reportTests(await run.report());
  const byProject = new Map(tests.map((item) => [item.project, item.results[0]]));
  assert.equal(byProject.get('alpha')?.status, 'passed');
  for (const project of ['beta', 'gamma']) {
    const result = byProject.get(project);
    assert.equal(result?.status, 'failed', `${project} failed`);
    const message = result?.errors.map((error) => error.message ?? '').join('\n') ?? '';
    assert.match(message, /EMBEDDED_POSTGRES_DIED/, `${project}: ${message}`);
    assert.doesNotMatch(message, /POSTGRES_UNREACHABLE|28P01/);
  }
  assert.doesNotMatch(run.output(), /password authentication failed/);
  // The run's servers are stopped and its ports released; its databases wait for the next run's reaping.
  assert.deepEqual(serverProcesses({ runIds: [run.runId] }), []);
  assert.deepEqual(lanePortEntries(box.stateDir, [run.runId]), []);
  assert.deepEqual(ledger(box.stateDir, 'allocated-lanes.json').filter((entry) => entry.runId === run.runId), []);
});
