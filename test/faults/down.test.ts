/**
 * `e2e-lanes down` stops a run's servers as the run's own teardown does: each server's
 * `stopSignal`, up to its `stopTimeout`, then SIGKILL of its process group, and returns only once
 * every group is gone.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { stateOf } from '../../src/cli/context.js';
import { tearDownRuns } from '../../src/lanes/teardown/run-records.js';
import { killGroupsAfter, runFixture } from '../helpers/processes.js';
import { tempDir } from '../helpers/tmp.js';
import { isPidAlive } from '../../src/state/index.js';

const KEEP_LANE = fileURLToPath(new URL('../fixtures/down/keep-lane.ts', import.meta.url));
const SLOW_STOP = fileURLToPath(new URL('../fixtures/servers/slow-stop.mjs', import.meta.url));

/** Whether a process runs (exists and is not a zombie). */
const runs = isPidAlive;

test('down waits for a kept server that stops slowly within its stopTimeout, and returns only once it is gone', { timeout: 60_000 }, async (t) => {
  const stateDir = await tempDir(t);
  const stopped = join(stateDir, 'stopped.txt');
  const line = await runFixture(KEEP_LANE, [JSON.stringify({ stateDir, portRange: [34_750, 34_769], server: SLOW_STOP, env: { SLOW_STOP_MS: '3500', STOPPED_FILE: stopped }, stopTimeout: 8_000 })], { env: { E2E_LANES_QUIET: '1', E2E_LANES_OWNER_PID: '', E2E_LANES_RUN_ID: '' } });
  const kept = JSON.parse(line.trim().split('\n').pop()!) as { runId: string; pids: number[] };
  killGroupsAfter(t, () => kept.pids);
  assert.equal(kept.pids.length, 1);
  assert.ok(runs(kept.pids[0]!), 'the kept server runs after its run ended');

  const options = { stateDir, database: false as const };
  const started = Date.now();
  const report = await tearDownRuns(await stateOf(options, {}), { all: true }, options);
  const took = Date.now() - started;
  assert.deepEqual(report.runs, [kept.runId]);
  assert.deepEqual(report.killedPids, kept.pids);
  assert.ok(!runs(kept.pids[0]!), `the server is gone when down returns (after ${took} ms)`);
  assert.ok(existsSync(stopped), `down gave the server its stopTimeout to stop by itself (no SIGKILL after ${took} ms)`);
});
