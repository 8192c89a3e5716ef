import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  assertNothingLeft,
  expectExit,
  ledger,
  leftovers,
  runLanesCli,
  sandbox,
  serverProcesses,
  startPlaywright,
  suite,
  useSharedPostgres,
} from './helpers.ts';

/** Users of the shared embedded server (default data folder of this checkout). */
function embeddedUsers(): Array<{ runId: string; kept?: boolean }> {
  try {
    const registry = JSON.parse(readFileSync(new URL('../../node_modules/.cache/e2e-lanes/embedded-postgres.json', import.meta.url), 'utf8')) as {
      servers: Array<{ users: Array<{ runId: string; kept?: boolean }> }>;
    };
    return registry.servers.flatMap((server) => server.users);
  } catch {
    return [];
  }
}

// Ports 6400-6499: this file's block.
const PORTS = [6400, 6499] as const;

useSharedPostgres();

test('keep mode: kept lanes answer after the run ended, and `e2e-lanes down --run` removes them', async (t) => {
  const box = await sandbox(t, { ports: PORTS });
  const run = startPlaywright(box, { config: suite('basic'), env: { E2E_LANES_KEEP: '1' } });
  expectExit(await run.exit, 0, run.output());
  assert.match(run.output(), new RegExp(`remove them with: npx e2e-lanes down --run ${run.runId}`));

  const kept = ledger(box.stateDir, 'allocated-lanes.json').filter((entry) => entry.runId === run.runId);
  assert.deepEqual(kept.map((entry) => [entry.project, entry.status, entry.owner.kept]).sort(), [['alpha', 'up', true], ['beta', 'up', true]]);
  // The runner is gone; its servers write to their logs themselves, so a request (logged) does not kill them.
  await new Promise((resolve) => setTimeout(resolve, 500));
  for (const lane of kept) {
    for (let i = 0; i < 2; i++) {
      const response = await fetch(`http://127.0.0.1:${lane.ports!.backend}/db`);
      assert.equal(response.status, 200, `the kept lane of ${lane.project} answers`);
      assert.deepEqual(await response.json(), { database: lane.databaseName, items: 1 });
    }
    assert.match(readFileSync(lane.servers![0]!.logFile, 'utf8'), /backend: GET \/db\n[^]*backend: GET \/db\n/, 'requests after the run are logged');
  }
  assert.equal(serverProcesses({ runIds: [run.runId] }).length, 2);
  assert.equal((await leftovers(box, [run.runId])).databases.length, 2);

  const down = await runLanesCli(box, ['--config', suite('basic'), 'down', '--run', run.runId]);
  expectExit(down, 0, down.output);
  assert.match(down.output, /tore down 1 run\(s\): 2 server process\(es\), 2 database\(s\), 2 port entr\(ies\)/);
  await assertNothingLeft(box, [run.runId]);
});

test("keep 'on-failure': only the lane in which a test failed stays up, with its URLs and hidden password printed", async (t) => {
  const box = await sandbox(t, { ports: PORTS });
  const run = startPlaywright(box, { config: suite('fail-in-alpha'), env: { E2E_LANES_KEEP: 'on-failure' } });
  expectExit(await run.exit, 'nonzero', run.output());
  assert.match(run.output(), /kept lane of project "alpha" \(a test failed in it\): backend http:\/\/localhost:\d+, DATABASE_URL postgres:\/\/[^:]+:\*\*\*@/);
  assert.doesNotMatch(run.output(), /kept lane of project "beta"/);
  // The run's end says where the time went (before the teardown, kept lanes or not).
  assert.match(run.output(), /\[e2e-lanes\] time: 2 lane boots \(2 servers, \d+ at a time on \d+ cores?\) took \d+\.\d s of server starts; the first lane was up at \d+\.\d s, the last at \d+\.\d s; the run: \d+\.\d s/);
  assert.match(run.output(), new RegExp(`remove them with: npx e2e-lanes down --run ${run.runId}`));
  const lanes = ledger(box.stateDir, 'allocated-lanes.json').filter((entry) => entry.runId === run.runId);
  assert.deepEqual(lanes.map((entry) => [entry.project, entry.owner.kept]), [['alpha', true]]);
  const alpha = lanes[0]!;
  await new Promise((resolve) => setTimeout(resolve, 300));
  const response = await fetch(`http://127.0.0.1:${alpha.ports!.backend}/db`);
  assert.equal(response.status, 200, 'the kept lane answers after the run');
  assert.equal(serverProcesses({ runIds: [run.runId] }).length, 1, "beta's server is gone");
  assert.deepEqual((await leftovers(box, [run.runId])).databases, [alpha.databaseName], "only alpha's database remains");

  const down = await runLanesCli(box, ['--config', suite('fail-in-alpha'), 'down', '--run', run.runId]);
  expectExit(down, 0, down.output);
  await assertNothingLeft(box, [run.runId]);
});

test(
  'keep mode: a kept lane survives a later run on the same state folder',
  { timeout: 240_000 },
  async (t) => {
    const box = await sandbox(t, { ports: PORTS });
    const kept = startPlaywright(box, { config: suite('basic'), env: { E2E_LANES_KEEP: '1' } });
    // Kept lanes (and their hold on the embedded server) stay until `down`, even when the test fails.
    t.after(() => runLanesCli(box, ['--config', suite('basic'), 'down', '--run', kept.runId]));
    expectExit(await kept.exit, 0, kept.output());
    const later = startPlaywright(box, { config: suite('basic') });
    expectExit(await later.exit, 0, later.output());
    for (const lane of ledger(box.stateDir, 'allocated-lanes.json').filter((entry) => entry.runId === kept.runId)) {
      const response = await fetch(`http://127.0.0.1:${lane.ports!.backend}/db`);
      assert.equal(response.status, 200, `the kept lane of ${lane.project} still reaches its database`);
    }
    assert.equal((await leftovers(box, [kept.runId])).databases.length, 2, 'the kept databases still exist');
    const down = await runLanesCli(box, ['--config', suite('basic'), 'down', '--run', kept.runId]);
    expectExit(down, 0, down.output);
    await assertNothingLeft(box, [kept.runId]);
    assert.ok(!embeddedUsers().some((user) => user.runId === kept.runId), 'down let go of the embedded server');
  },
);
