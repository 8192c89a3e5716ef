import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  assertDistinctDatabases,
  assertNothingLeft,
  assertStateFilesValid,
  expectExit,
  sandbox,
  startPlaywright,
  useSharedPostgres,
  watchForCollisions,
} from './helpers.ts';

// Ports 6600-6699: this file's block.
const PORTS = [6600, 6699] as const;

useSharedPostgres();

test("the repository's demo suite twice at the same time (one state folder, distinct --output): both pass, nothing of either run remains", async (t) => {
  const box = await sandbox(t, { ports: PORTS });
  const watch = watchForCollisions(box.stateDir);
  // The repository's own playwright.config.ts, with the list and JSON reporters only: its HTML
  // reporter would write into the repository's test-results/report.
  const runs = [0, 1].map(() => startPlaywright(box, { prefix: 'e2e', reporter: 'list,json', timeoutMs: 240_000 }));
  const exits = await Promise.all(runs.map((run) => run.exit));
  const { snapshots, collisions } = await watch.stop();
  assert.deepEqual(collisions, [], `no port or database is ever held twice (${snapshots} snapshots)`);
  exits.forEach((exit, index) => expectExit(exit, 0, runs[index]!.output()));
  for (const run of runs) {
    const report = await run.report();
    assert.equal(report.stats.unexpected, 0);
    assert.ok(report.stats.expected > 0);
  }
  assertDistinctDatabases(runs);
  assertStateFilesValid(box.stateDir, runs.map((run) => run.output()).join('\n'));
  // After the demo suite: no server process, lane database or port entry of either run remains.
  await assertNothingLeft(box, runs.map((run) => run.runId), { prefix: 'e2e' });
});
