/**
 * Fresh data for every test, on the repository's demo app: the `fresh` project's tests each assert
 * the exact set "seed + own rows" one after another in one lane, repeated. They pass with
 * `laneReset: 'test'` (the demo config's setting) and fail without it, so the check can fail.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertNothingLeft, expectExit, reportTests, sandbox, startPlaywright, suite, useSharedPostgres } from './helpers.ts';

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
