import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { test, type TestContext } from 'node:test';
import { OWNER_PID_ENV, RUN_ID_ENV, SERVER_MARK_ENV, STATE_DIR_ENV } from '../../../src/env-vars.js';
import { laneLedger } from '../../../src/lanes/records/lane-ledger.js';
import { describeReap, reapStaleLanes } from '../../../src/lanes/reaping/reaper.js';
import { isPidAlive, newOwner } from '../../../src/state/index.js';
import { exited } from '../../helpers/processes.js';
import { tempDir } from '../../helpers/tmp.js';

/** A pid that is certainly dead: a child that already exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await exited(child);
  return child.pid!;
}

/** A process that carries the marks of a lane server of `runId` in `stateDir`, owned by `ownerPid`; killed after the test. */
function markedServer(t: TestContext, runId: string, stateDir: string, ownerPid: number): number {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], {
    detached: true,
    stdio: 'ignore',
    env: { ...process.env, [SERVER_MARK_ENV]: 'api', [RUN_ID_ENV]: runId, [STATE_DIR_ENV]: resolve(stateDir), [OWNER_PID_ENV]: String(ownerPid) },
  });
  child.unref();
  const pid = child.pid!;
  t.after(() => {
    if (isPidAlive(pid)) process.kill(-pid, 'SIGKILL');
  });
  return pid;
}

test('a reap says whose leftovers it removed: the run and state folder of each dead lane and of each unrecorded server', { timeout: 60_000 }, async (t) => {
  const here = await tempDir(t);
  const elsewhere = await tempDir(t);
  const dead = await deadPid();
  // A recorded lane of this folder whose owner died, with its server.
  const recorded = markedServer(t, 'crashed-run', here, process.pid);
  const owner = newOwner('crashed-run', dead);
  await laneLedger(here).update((doc) => {
    doc.entries.push({ runId: 'crashed-run', project: 'cart', owner, status: 'up', ports: {}, servers: [{ name: 'api', pid: recorded, logFile: '/dev/null' }], logDir: here });
  });
  // A server of another state folder that no ledger lists, whose owner died.
  const orphan = markedServer(t, 'lost-run', elsewhere, dead);

  const report = await reapStaleLanes(here, 120_000);
  assert.equal(isPidAlive(recorded), false);
  assert.equal(isPidAlive(orphan), false);
  assert.deepEqual(report.runs.find((run) => run.runId === 'crashed-run'), { runId: 'crashed-run', stateDir: resolve(here), lanes: 1, servers: 1 });
  assert.deepEqual(report.runs.find((run) => run.runId === 'lost-run'), { runId: 'lost-run', stateDir: resolve(elsewhere), lanes: 0, servers: 1 });

  const line = describeReap(report);
  assert.match(line, /^reaped 1 lane\(s\) and \d+ server process\(es\) left by dead runs: /);
  assert.ok(line.includes(`run crashed-run of ${resolve(here)} (1 lane, 1 server process)`), line);
  assert.ok(line.includes(`run lost-run of ${resolve(elsewhere)} (1 server process)`), line);
});

test('a reap that removed nothing has no one to name', () => {
  assert.equal(describeReap({ lanes: [], killedPids: [], killed: [], runs: [] }), 'reaped 0 lane(s) and 0 server process(es) left by dead runs');
});
