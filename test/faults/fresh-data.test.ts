/**
 * Fresh data for every test, on the repository's demo app: the `fresh` project's tests each assert
 * the exact set "seed + own rows" one after another in one lane, repeated. They pass with
 * `laneReset: 'test'` (the demo config's setting) and fail without it, so the check can fail.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { withDatabase } from '../../src/postgres/index.ts';
import { assertNothingLeft, expectExit, reportTests, runLanesCli, sandbox, sharedPostgres, startPlaywright, suite, useSharedPostgres, waitFor } from './helpers.ts';

const PORTS = [7700, 7799] as const;

useSharedPostgres();

test('the fresh project passes with laneReset and fails without it', async (t) => {
  const box = await sandbox(t, { ports: PORTS });
  const withResets = startPlaywright(box, { prefix: 'e2e', reporter: 'list,json', args: ['--project', 'fresh'], timeoutMs: 180_000 });
  expectExit(await withResets.exit, 0, withResets.output());
  const passed = reportTests(await withResets.report()).flatMap((item) => item.results.map((result) => result.status));
  assert.ok(passed.length >= 6, `every test ran (${passed.length})`);
  assert.ok(passed.every((status) => status === 'passed'), passed.join(', '));

  const without = startPlaywright(box, { prefix: 'e2e', reporter: 'list,json', args: ['--project', 'fresh'], env: { DEMO_LANE_RESET: 'never' }, timeoutMs: 180_000 });
  expectExit(await without.exit, 'nonzero', without.output());
  const statuses = reportTests(await without.report()).flatMap((item) => item.results.map((result) => result.status));
  assert.ok(statuses.includes('failed'), `without resets a test fails (${statuses.join(', ')})`);
  await assertNothingLeft(box, [withResets.runId, without.runId], { prefix: 'e2e' });
});

test("a server whose database client dies when its session is ended fails the test after a swap with SERVER_EXITED and the hint to truncate; with truncate it lives", async (t) => {
  const box = await sandbox(t, { ports: PORTS });
  const swap = startPlaywright(box, { config: suite('reset-crash') });
  expectExit(await swap.exit, 'nonzero', swap.output());
  const [result] = reportTests(await swap.report()).flatMap((item) => item.results);
  const message = result?.errors.map((error) => error.message ?? '').join('\n') ?? '';
  assert.equal(result?.status, 'failed');
  assert.match(message, /\[SERVER_EXITED\] The lane of project "alpha" lost a server/);
  assert.match(message, /after the lane's database was swapped/);
  assert.match(message, /database\.reset: 'truncate'/);

  const truncate = startPlaywright(box, { config: suite('reset-crash'), env: { FAULTS_RESET_STRATEGY: 'truncate' } });
  expectExit(await truncate.exit, 0, truncate.output());
  await assertNothingLeft(box, [swap.runId, truncate.runId]);
});

test('per-worker lanes, tests in parallel and their retries each start from the seed with laneReset', async (t) => {
  const box = await sandbox(t, { ports: PORTS });
  const run = startPlaywright(box, { config: suite('fresh-parallel') });
  expectExit(await run.exit, 0, run.output());
  const report = await run.report();
  assert.equal(report.stats.unexpected, 0, run.output());
  assert.equal(report.stats.expected + report.stats.flaky, 6);
  assert.equal(report.stats.flaky, 3, 'the three tests that fail once pass on their retry, from the seed');
  assert.match(run.output(), /lane project "alpha" \(worker 0\)/);
  assert.match(run.output(), /lane project "alpha" \(worker 1\)/);
  await assertNothingLeft(box, [run.runId]);
});

test('a runner SIGKILLed while it fills the ready pool leaves only whole copies (marked but the one interrupted there), which gc drops with their template', async (t) => {
  const box = await sandbox(t, { ports: PORTS });
  const prefix = `fpool${Math.random().toString(36).slice(2, 8).replace(/[^a-z0-9]/g, 'a')}`;
  const pgServer = await sharedPostgres();
  t.after(async () => {
    await pgServer.dropDatabases(await pgServer.databasesStartingWith(`${prefix}_`));
    await pgServer.release();
  });
  const copies = (): Promise<string[]> => pgServer.databasesStartingWith(`${prefix}_pool_`);
  const run = startPlaywright(box, { config: suite('pool'), env: { FAULTS_PREFIX: prefix }, prefix });
  const finished = async (): Promise<string[]> => (await pgServer.query<{ name: string }>('SELECT datname AS name FROM pg_database WHERE datallowconn AND left(datname, $2) = $1', [`${prefix}_pool_`, prefix.length + 6])).map((row) => row.name);
  await waitFor('the first finished ready copy', async () => (await finished()).length > 0, { timeoutMs: 60_000, intervalMs: 5, abortIf: () => (run.done() ? run.output() : undefined) });
  run.signal('SIGKILL', 'group');
  await run.exit;
  const left = await copies();
  assert.ok(left.length > 0 && left.length <= 24, `copies: ${left.length}`);
  const whole = await finished();
  let unfinished = 0;
  for (const name of left) {
    const [row] = await pgServer.query<{ comment: string; open: boolean }>(`SELECT shobj_description(oid, 'pg_database') AS comment, datallowconn AS open FROM pg_database WHERE datname = $1`, [name]);
    if (!whole.includes(name)) {
      // The copy the kill interrupted between its clone and its opening: closed, unmarked, never handed out.
      unfinished++;
      assert.deepEqual(row, { comment: null, open: false }, `${name} was never opened`);
      continue;
    }
    // A whole copy: it accepts connections and holds the template's one row.
    const client = new pg.Client({ connectionString: withDatabase(pgServer.adminUrl, name) });
    await client.connect();
    try {
      assert.equal((await client.query<{ n: number }>('SELECT count(*)::int AS n FROM "Item"')).rows[0]!.n, 1, `${name} is a whole copy`);
    } finally {
      await client.end();
    }
    // The mark is written in the transaction that opens the copy.
    assert.equal((JSON.parse(row!.comment) as { kind: string }).kind, 'pool', `${name} carries the toolkit's mark`);
  }
  assert.ok(unfinished <= 1, `${unfinished} copies never opened`);
  // They belong to their template, not to the dead run: gc keeps the whole ones with it (and drops
  // one never finished), and drops them with it.
  const gc = await runLanesCli(box, ['--config', suite('pool'), 'gc'], { env: { FAULTS_PREFIX: prefix } });
  expectExit(gc, 0, gc.output);
  assert.deepEqual((await copies()).sort(), whole.sort(), 'the whole ready copies of a live template stay; one never finished is dropped');
  const all = await runLanesCli(box, ['--config', suite('pool'), 'gc', '--keep-templates', '0'], { env: { FAULTS_PREFIX: prefix } });
  expectExit(all, 0, all.output);
  assert.deepEqual(await copies(), [], 'with their template gone, gc leaves no ready copy');
  await assertNothingLeft(box, [run.runId], { prefix });
});
