/**
 * One test per resetting lane, by construction: two workers sharing a lane whose tests reset it
 * (the race of a slow-starting backend, where both workers ask at once) never reset it under each
 * other, with and without ready copies; and a project with `laneReset: 'test'` in its `use` on
 * several workers gets a lane per worker, or is refused with `laneIsolation: 'project'`.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { assertNothingLeft, expectExit, reportTests, sandbox, startPlaywright, SUITES_DIR, useSharedPostgres } from './helpers.ts';

const PORTS = [7900, 7999] as const;
const RACE = join(SUITES_DIR, 'reset-gate/reset-race.config.ts');
const ISOLATION = join(SUITES_DIR, 'reset-gate/isolation.config.ts');
const ROUNDS = 3;

useSharedPostgres();

describe('one test per resetting lane', { concurrency: false }, () => {
  for (const pool of [0, 2]) {
    test(`two workers on one lane whose tests reset it, ${pool ? 'with ready copies' : 'without a pool'}, ${ROUNDS} runs: no test loses its row or its session`, { timeout: 400_000 }, async (t) => {
      const box = await sandbox(t, { ports: PORTS });
      for (let round = 1; round <= ROUNDS; round++) {
        const run = startPlaywright(box, { config: RACE, env: { FAULTS_POOL: String(pool), FAULTS_START_DELAY_MS: '1500', FAULTS_RACE_TESTS: '6' } });
        const exit = await run.exit;
        const tests = reportTests(await run.report());
        const failures = tests.flatMap((item) => item.results.filter((result) => result.status !== 'passed').map((result) => `${item.title}: ${result.errors.map((error) => error.message).join(' | ')}`));
        assert.deepEqual(failures, [], `run ${round}:\n${run.output()}`);
        assert.equal(tests.length, 6);
        expectExit(exit, 0, run.output());
        assert.doesNotMatch(run.output(), /one lane per worker/, 'laneReset set in the spec file: the lane stays shared, the gate serializes its tests');
        await assertNothingLeft(box, [run.runId], { output: run.output() });
      }
    });
  }

  test("laneReset: 'test' in a project's use on two workers: a lane per worker with one line; laneIsolation: 'project' stops the run at setup", { timeout: 300_000 }, async (t) => {
    const box = await sandbox(t, { ports: PORTS });
    const derived = startPlaywright(box, { config: ISOLATION });
    expectExit(await derived.exit, 0, derived.output());
    assert.deepEqual(reportTests(await derived.report()).map((item) => item.results[0]?.status), ['passed', 'passed', 'passed', 'passed'], derived.output());
    assert.match(derived.output(), /project "resetting": laneReset 'test' on 2 workers, so one lane per worker/);
    await assertNothingLeft(box, [derived.runId], { output: derived.output() });

    const refused = startPlaywright(box, { config: ISOLATION, env: { FAULTS_LANE_ISOLATION: 'project' } });
    expectExit(await refused.exit, 'nonzero', refused.output());
    assert.match(refused.output(), /\[INVALID_OPTION\] Project "resetting" has laneReset: 'test' and laneIsolation: 'project' on 2 workers/);
    assert.match(refused.output(), /Hint: Remove laneIsolation from project "resetting"/);
    assert.doesNotMatch(refused.output(), /passed/);
    await assertNothingLeft(box, [refused.runId], { output: refused.output() });

    const explicit = startPlaywright(box, { config: ISOLATION, env: { FAULTS_LANE_ISOLATION: 'worker' } });
    expectExit(await explicit.exit, 0, explicit.output());
    assert.doesNotMatch(explicit.output(), /one lane per worker/, 'set explicitly: nothing to say');
    await assertNothingLeft(box, [explicit.runId], { output: explicit.output() });

    // A project with one worker of its own keeps its one lane, whatever the config's workers.
    const single = startPlaywright(box, { config: ISOLATION, env: { FAULTS_LANE_ISOLATION: 'project', FAULTS_PROJECT_WORKERS: '1' } });
    expectExit(await single.exit, 0, single.output());
    assert.doesNotMatch(single.output(), /one lane per worker|INVALID_OPTION/);
    await assertNothingLeft(box, [single.runId], { output: single.output() });
  });
});
