import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { exitReaperDone } from '../helpers/exit-reaper.ts';
import {
  assertNothingLeft,
  describeLeftovers,
  expectExit,
  groupMembers,
  ledger,
  leftovers,
  runLanesCli,
  sandbox,
  serverProcesses,
  startPlaywright,
  suite,
  SUITES_DIR,
  useSharedPostgres,
  waitFor,
  waitForLanesUp,
} from './helpers.ts';

// Ports 6000-6099: this file's block.
const PORTS = [6000, 6099] as const;
/** Database prefix of the templates this file builds on purpose (dropped after each test). */
const SLOW_PREFIX = 'ftslow';

/** Everything the lanes' servers logged so far. */
function readLogs(stateDir: string): string {
  const dir = join(stateDir, 'lanes');
  if (!existsSync(dir)) return '';
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.log'))
    .map((name) => readFileSync(join(dir, name), 'utf8'))
    .join('\n');
}

const shared = useSharedPostgres();

describe('a killed or interrupted run leaves nothing behind', { concurrency: false }, () => {
  test('SIGKILL of the runner mid-suite: `e2e-lanes gc` reaps its servers, databases and ports', async (t) => {
    const box = await sandbox(t, { ports: PORTS });
    const run = startPlaywright(box, { config: suite('hold'), env: { FAULTS_WORKERS: '2' } });
    await waitForLanesUp(box, run, 2);
    const before = await leftovers(box, [run.runId]);
    assert.equal(before.servers.length, 2, `two lane servers run before the kill: ${describeLeftovers(before)}`);
    assert.equal(before.databases.length, 2);
    assert.equal(before.ports.length, 2);

    run.signal('SIGKILL');
    await run.exit;
    // The workers follow their runner; the lane servers (own process groups) do not. (Their count
    // is not asserted here: any run starting on this host meanwhile may already reap them.)
    await waitFor('the workers to exit', () => groupMembers(run.pid).length === 0, { timeoutMs: 10_000 });
    const stale = await leftovers(box, [run.runId]);
    assert.deepEqual([stale.lanes.length, stale.ports.length, stale.databaseEntries.length], [2, 2, 2], 'no teardown ran: everything is still recorded');

    const gc = await runLanesCli(box, ['--config', suite('hold'), 'gc', '--keep-templates', '1000']);
    expectExit(gc, 0, gc.output);
    await assertNothingLeft(box, [run.runId], { what: 'gc left', output: gc.output });
  });

  test('SIGKILL of the runner before its lanes are recorded: the next run reaps the unrecorded servers', async (t) => {
    const box = await sandbox(t, { ports: PORTS });
    // A slow backend: the runner is killed while the lanes are still 'starting' (servers spawned, no pids recorded).
    // Both lanes start their servers at once (not one after the other, as on 2 cores by default).
    const run = startPlaywright(box, { config: suite('hold'), env: { FAULTS_WORKERS: '2', FAULTS_START_DELAY_MS: '60000', FAULTS_BOOT_CONCURRENCY: '2' } });
    await waitFor('both backends to be spawned', () => serverProcesses({ runIds: [run.runId] }).length === 2, {
      timeoutMs: 60_000,
      abortIf: () => (run.done() ? run.output() : undefined),
    });
    assert.ok(ledger(box.stateDir, 'allocated-lanes.json').every((entry) => entry.status === 'starting'));
    run.signal('SIGKILL');
    await run.exit;

    const next = startPlaywright(box, { config: suite('basic') });
    expectExit(await next.exit, 0, next.output());
    await assertNothingLeft(box, [run.runId, next.runId], { what: 'the next run left', output: next.output() });
  });

  test('SIGINT (Ctrl-C) during the tests: teardown stops the servers, drops the databases, releases the ports', async (t) => {
    const box = await sandbox(t, { ports: PORTS });
    const run = startPlaywright(box, { config: suite('hold'), env: { FAULTS_WORKERS: '2' } });
    await waitForLanesUp(box, run, 2);
    await waitFor('both tests to hold their lanes', () => (run.output().match(/holding lane of/g) ?? []).length >= 2 || undefined, { timeoutMs: 30_000 }).catch(() => undefined);
    run.signal('SIGINT', 'group');
    const exit = await run.exit;
    assert.ok(!exit.timedOut && exit.ms < 60_000, `the interrupted run ended in ${exit.ms} ms`);
    await assertNothingLeft(box, [run.runId], { what: 'the interrupted run left', output: run.output() });
  });

  test('SIGINT (Ctrl-C) during global setup, while eager lanes boot: nothing of the run remains', async (t) => {
    const box = await sandbox(t, { ports: PORTS });
    const run = startPlaywright(box, { config: suite('hold'), env: { FAULTS_EAGER: '1', FAULTS_START_DELAY_MS: '2000' } });
    await waitFor('both backends to be spawned by global setup', () => serverProcesses({ runIds: [run.runId] }).length === 2, {
      timeoutMs: 60_000,
      abortIf: () => (run.done() ? run.output() : undefined),
    });
    run.signal('SIGINT', 'group');
    const exit = await run.exit;
    assert.ok(!exit.timedOut && exit.ms < 60_000, `the interrupted run ended in ${exit.ms} ms`);
    // Give a straggling boot a moment to show itself, then count.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    await assertNothingLeft(box, [run.runId], { what: 'the interrupted run left', output: run.output() });
  });

  test('SIGINT (Ctrl-C) while global setup builds the template: no lane boots after the teardown', async (t) => {
    const box = await sandbox(t, { ports: PORTS });
    // A migration that takes seconds and is new to the server (random comment: a template hash never seen).
    const migrations = join(box.dir, 'migrations');
    await mkdir(join(migrations, '20250301000000_slow'), { recursive: true });
    const sql = await readFile(join(SUITES_DIR, 'migrations/ok/20250301000000_init/migration.sql'), 'utf8');
    await writeFile(join(migrations, '20250301000000_slow/migration.sql'), `${sql}\nSELECT pg_sleep(3);\n-- ${randomUUID()}\n`);
    t.after(async () => {
      await shared.server.dropDatabases(await shared.server.databasesStartingWith(`${SLOW_PREFIX}_`));
    });

    const run = startPlaywright(box, {
      config: suite('hold'),
      prefix: SLOW_PREFIX,
      env: { FAULTS_EAGER: '1', FAULTS_WORKERS: '2', FAULTS_PREFIX: SLOW_PREFIX, FAULTS_MIGRATIONS: migrations },
    });
    await waitFor('the template build to start', async () => (await shared.server.databasesStartingWith(`${SLOW_PREFIX}_tpl_`)).some((name) => name.includes('_build_')), {
      timeoutMs: 60_000,
      intervalMs: 50,
      abortIf: () => (run.done() ? run.output() : undefined),
    });
    run.signal('SIGINT', 'group');
    const exit = await run.exit;
    assert.ok(!exit.timedOut && exit.ms < 60_000, `the interrupted run ended in ${exit.ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    await assertNothingLeft(box, [run.runId], { prefix: SLOW_PREFIX, what: 'the interrupted run left', output: run.output() });
    assert.deepEqual(
      (await shared.server.databasesStartingWith(`${SLOW_PREFIX}_tpl_`)).filter((name) => name.includes('_build_')),
      [],
      'no half-built template is left',
    );
  });

  test('a second Ctrl-C cuts the teardown short: no server outlives the runner, and the rest is torn down as it exits', async (t) => {
    const box = await sandbox(t, { ports: PORTS });
    // Backends that ignore SIGTERM: the teardown waits 5 s (stopTimeout) before it SIGKILLs them.
    const run = startPlaywright(box, { config: suite('hold'), env: { FAULTS_WORKERS: '2', FAULTS_IGNORE_SIGTERM: '1' } });
    await waitForLanesUp(box, run, 2);
    run.signal('SIGINT', 'group');
    await waitFor('the teardown to signal the servers', () => /backend: ignoring SIGTERM/.test(readLogs(box.stateDir)), { timeoutMs: 30_000, intervalMs: 50 });
    // Playwright ignores a second SIGINT within 1 s of the first.
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    run.signal('SIGINT', 'group');
    const exit = await run.exit;
    assert.ok(!exit.timedOut, run.output());
    assert.deepEqual(serverProcesses({ runIds: [run.runId] }), [], `no server outlives the runner:\n${run.output()}`);
    // The exit hook's process drops the databases and releases the ports, with no `gc`.
    const log = await exitReaperDone(box.stateDir, run.runId, () => run.output());
    await assertNothingLeft(box, [run.runId], { what: 'after the runner exited', output: `${run.output()}\n${log}` });
    assert.match(log, new RegExp(`run ${run.runId} ended without its teardown \\(owner pid \\d+ is gone\\): tore down \\d+ server process\\(es\\), 2 database\\(s\\)`));
  });

  test('a second SIGTERM cuts the teardown short: the runner exits at once, no server outlives it, and the rest is torn down as it exits', async (t) => {
    const box = await sandbox(t, { ports: PORTS });
    const run = startPlaywright(box, { config: suite('hold'), env: { FAULTS_WORKERS: '2', FAULTS_IGNORE_SIGTERM: '1' } });
    await waitForLanesUp(box, run, 2);
    run.signal('SIGTERM');
    await waitFor('the teardown to signal the servers', () => /backend: ignoring SIGTERM/.test(readLogs(box.stateDir)), { timeoutMs: 30_000, intervalMs: 50 });
    run.signal('SIGTERM');
    const exit = await run.exit;
    assert.ok(!exit.timedOut, run.output());
    assert.deepEqual(serverProcesses({ runIds: [run.runId] }), [], `no server outlives the runner:\n${run.output()}`);
    const log = await exitReaperDone(box.stateDir, run.runId, () => run.output());
    await assertNothingLeft(box, [run.runId], { what: 'after the runner exited', output: `${run.output()}\n${log}` });
  });

  for (const [signal, why] of [['SIGTERM', 'a kill, a CI timeout'], ['SIGHUP', 'the terminal closed']] as const) {
    test(`${signal} of the runner during the tests (${why}): its handler tears the run down`, async (t) => {
      const box = await sandbox(t, { ports: PORTS });
      const run = startPlaywright(box, { config: suite('hold'), env: { FAULTS_WORKERS: '2' } });
      await waitForLanesUp(box, run, 2);
      run.signal(signal);
      const exit = await run.exit;
      assert.ok(!exit.timedOut && exit.ms < 60_000, `the run ended in ${exit.ms} ms`);
      assert.equal(exit.signal, signal, 'the runner dies of the signal, as it would without e2e-lanes');
      await assertNothingLeft(box, [run.runId], { what: 'the run left', output: run.output() });
    });
  }
});
