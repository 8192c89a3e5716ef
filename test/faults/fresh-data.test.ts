/**
 * Fresh data for every test, on the repository's demo app: the `fresh` project's tests each assert
 * the exact set "seed + own rows" one after another in one lane, repeated. They pass with
 * `laneReset: 'test'` (the demo config's setting) and fail without it, so the check can fail.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertNothingLeft, expectExit, reportTests, sandbox, startPlaywright, useSharedPostgres } from './helpers.ts';

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
