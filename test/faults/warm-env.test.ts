import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { LANES_FILE } from '../../src/lanes/lane-ledger.js';
import { isPidAlive } from '../../src/state/index.js';
import { useTestDatabases } from '../databases/helpers.js';
import { laneEntries, newRun, startWarm, until } from '../helpers/warm.js';

const db = useTestDatabases('warmenv');

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

test('a warm lane started with A_FLAG=old is not taken over by a run with A_FLAG=new: the line names the variable, never its value, and the new servers see new', { timeout: 120_000 }, async (t) => {
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
