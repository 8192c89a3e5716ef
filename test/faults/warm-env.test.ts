import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { LANES_FILE } from '../../src/lanes/records/lane-ledger.js';
import { processEnv } from '../../src/state/proc.js';
import { isPidAlive } from '../../src/state/index.js';
import { useTestDatabases } from '../databases/helpers.js';
import { laneEntries, newRun, startWarm, until } from '../helpers/warm.js';
import { expectExit, ledger, runLanesCli, sandbox, startPlaywright, suite, useSharedPostgres } from './helpers.ts';

const db = useTestDatabases('warmenv');
// Ports 8400-8499: this file's block for `playwright test` runs.
const PORTS = [8400, 8499] as const;
useSharedPostgres();

/** Sets `values` in this process's environment (inherited by the runs it starts) until the test ends. */
function setEnv(t: TestContext, values: Record<string, string>): void {
  const before = Object.fromEntries(Object.keys(values).map((name) => [name, process.env[name]]));
  Object.assign(process.env, values);
  t.after(() => {
    for (const [name, value] of Object.entries(before)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });
}

async function envOf(url: string): Promise<Record<string, string>> {
  return (await (await fetch(`${url}/env`)).json()) as Record<string, string>;
}

test('a warm lane started with A_FLAG=old is not reused by a run with A_FLAG=new: the line names the variable, never its value, and the new servers see new', { timeout: 120_000 }, async (t) => {
  setEnv(t, { A_FLAG: 'old-secret-value-1' });
  const { stateDir, setup, first, entry } = await startWarm(t, db);
  const pids = entry.servers.map((server) => server.pid);
  const ledger = await readFile(join(stateDir, LANES_FILE), 'utf8');
  assert.match(ledger, /"A_FLAG"/, 'the fingerprint has the name');
  assert.doesNotMatch(ledger, /old-secret-value-1/, 'never the value');

  process.env.A_FLAG = 'new-secret-value-2';
  const second = await newRun(setup);
  t.after(() => second.teardown({ warm: false }));
  assert.equal(second.runId, first.runId, 'the warm run is claimed');
  await second.prepare();
  const report = await second.adoptWarmLanes(['shop']);
  assert.deepEqual(report.adopted, []);
  assert.equal(report.replaced.length, 1);
  assert.equal(report.replaced[0]!.reason, "the api's environment changed (A_FLAG)");
  assert.doesNotMatch(report.replaced[0]!.reason, /secret-value/);
  await until('the old servers are stopped', () => pids.every((pid) => !isPidAlive(pid)));

  const lane = await second.ensureLane('shop');
  assert.equal((await envOf(lane.urls.api!)).A_FLAG, 'new-secret-value-2', 'the backend sees the new value');
  assert.equal((await envOf(lane.urls.web!)).A_FLAG, 'new-secret-value-2');
});

test('variables that change every run by nature (shell, terminal, launcher, the toolkit\'s own) do not stop a take-over', { timeout: 120_000 }, async (t) => {
  setEnv(t, { OLDPWD: '/before', _: '/usr/bin/npx', TERM_SESSION_ID: 'w0t0p0:one', npm_lifecycle_event: 'e2e', SSH_AUTH_SOCK: '/tmp/ssh-one/agent.1' });
  const { setup, entry } = await startWarm(t, db);
  const pids = entry.servers.map((server) => server.pid);

  setEnv(t, { OLDPWD: '/after', _: '/usr/bin/node', TERM_SESSION_ID: 'w0t1p0:two', npm_lifecycle_event: 'test', SSH_AUTH_SOCK: '/tmp/ssh-two/agent.2', E2E_LANES_DEBUG: '0' });
  const second = await newRun(setup);
  t.after(() => second.teardown({ warm: false }));
  await second.prepare();
  const report = await second.adoptWarmLanes(['shop']);
  assert.deepEqual(report.replaced, []);
  assert.equal(report.adopted.length, 1);
  await second.ensureLane('shop');
  assert.deepEqual((await laneEntries(setup.stateDir))[0]!.servers.map((server) => server.pid), pids, 'the same servers serve the run');
});

test('`playwright test` with reuse, A_FLAG=old then A_FLAG=new: the second run boots both lanes afresh, saying which variable changed, and its backends see new', { timeout: 180_000 }, async (t) => {
  const box = await sandbox(t, { ports: PORTS });
  t.after(() => runLanesCli(box, ['down', '--all']).then(() => undefined));
  const first = startPlaywright(box, { config: suite('basic'), env: { FAULTS_REUSE: '1', A_FLAG: 'old' } });
  expectExit(await first.exit, 0, first.output());
  const oldPids = ledger(box.stateDir, 'allocated-lanes.json').flatMap((entry) => entry.servers!.map((server) => server.pid));
  assert.equal(oldPids.length, 2);

  const second = startPlaywright(box, { config: suite('basic'), env: { FAULTS_REUSE: '1', A_FLAG: 'new' } });
  expectExit(await second.exit, 0, second.output());
  assert.match(second.output(), /lane project "alpha" of run \S+ not reused: the backend's environment changed \(A_FLAG\); it boots afresh/);
  assert.match(second.output(), /reuse: no warm lane to reuse \(2 not reused\), 2 to boot/);
  assert.doesNotMatch(second.output(), /A_FLAG=|\bold\b.*\bnew\b/, 'no value is printed');
  const servers = ledger(box.stateDir, 'allocated-lanes.json').flatMap((entry) => entry.servers!);
  assert.equal(servers.length, 2);
  for (const server of servers) {
    assert.ok(!oldPids.includes(server.pid), 'new server processes');
    assert.equal(processEnv(server.pid)?.get('A_FLAG'), 'new', `the ${server.name} of the second run sees A_FLAG=new`);
  }
});
