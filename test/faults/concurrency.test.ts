import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  announcedLanes,
  assertDistinctDatabases,
  assertNothingLeft,
  assertStateFilesValid,
  expectExit,
  reportTests,
  sandbox,
  startPlaywright,
  suite,
  useSharedPostgres,
  watchForCollisions,
} from './helpers.ts';

// Ports 6500-6599: this file's block.
const PORTS = [6500, 6599] as const;

useSharedPostgres();

test('eight invocations of a small suite sharing one state folder: all pass, nothing collides, nothing remains', async (t) => {
  const box = await sandbox(t, { ports: PORTS });
  const watch = watchForCollisions(box.stateDir);
  const runs = Array.from({ length: 8 }, () => startPlaywright(box, { config: suite('basic'), timeoutMs: 180_000 }));
  const exits = await Promise.all(runs.map((run) => run.exit));
  const { snapshots, collisions } = await watch.stop();
  assert.deepEqual(collisions, [], `no port or database is ever held twice (${snapshots} snapshots)`);
  exits.forEach((exit, index) => expectExit(exit, 0, runs[index]!.output()));
  for (const run of runs) {
    const tests = reportTests(await run.report());
    assert.deepEqual(tests.map((item) => [item.project, item.results[0]?.status]).sort(), [['alpha', 'passed'], ['beta', 'passed']]);
    assert.equal(announcedLanes(run).length, 2, run.output());
  }
  assertDistinctDatabases(runs);
  assertStateFilesValid(box.stateDir, runs.map((run) => run.output()).join('\n'));
  await assertNothingLeft(box, runs.map((run) => run.runId));
});
