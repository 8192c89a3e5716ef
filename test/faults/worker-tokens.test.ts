/**
 * Tokens scoped to a lane, in a real Playwright run: each worker's token (as any process of the same
 * OS user reads it, from /proc/<pid>/environ) opens its own project's lane, and only its own slot's
 * per-worker lane; every other lane of the run is refused with UNAUTHORIZED and not booted by it.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { announcedLanes, assertNothingLeft, expectExit, reportTests, sandbox, startPlaywright, SUITES_DIR, useSharedPostgres } from './helpers.ts';

const PORTS = [8100, 8199] as const;
useSharedPostgres();

test("a worker's token opens its own project's lanes only; another project's lane is UNAUTHORIZED", { timeout: 200_000 }, async (t) => {
  const box = await sandbox(t, { ports: PORTS });
  const run = startPlaywright(box, { config: join(SUITES_DIR, 'worker-tokens/worker-tokens.config.ts') });
  expectExit(await run.exit, 0, run.output());
  assert.deepEqual(reportTests(await run.report()).map((item) => `${item.project}:${item.results[0]?.status}`).sort(), ['alpha:passed', 'beta:passed', 'gamma:passed'], run.output());
  // gamma's test ran on one worker: only its own slot's lane was booted, not the one its token was refused.
  assert.deepEqual(announcedLanes(run).filter((lane) => lane.project === 'gamma').length, 1, run.output());
  await assertNothingLeft(box, [run.runId], { output: run.output() });
});
