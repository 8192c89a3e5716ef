import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { isServerOfRun, markedOwner, markedProcesses, marksStateDir, processGroupOf } from '../../../src/lanes/reaping/process-marks.js';
import { processEnv } from '../../../src/state/proc.js';
import { startMarked } from '../../helpers/marked.js';
import { tempDir } from '../../helpers/tmp.js';

const linux = process.platform === 'linux';

test('one scan finds every process with a server mark, with the run, owner, state folder and keep mark its marks name', { skip: !linux && 'needs /proc' }, async (t) => {
  const stateDir = await tempDir(t);
  const runId = `marks-${process.pid}`;
  const server = await startMarked(t, { server: 'api', runId, ownerPid: 4242, stateDir: resolve(stateDir), keep: true });
  const unmarked = await startMarked(t, { runId });
  const found = markedProcesses();
  const mine = found.find((item) => item.pid === server);
  assert.ok(mine, 'the marked process is found');
  assert.equal(mine.server, 'api');
  assert.equal(mine.runId, runId);
  assert.equal(mine.ownerPid, 4242);
  assert.equal(mine.kept, true);
  assert.equal(mine.pgid, server, 'it leads a group of its own');
  assert.ok(marksStateDir(mine, stateDir));
  assert.equal(found.some((item) => item.pid === unmarked), false, 'a process without the server mark is not one');
  assert.equal(found.some((item) => item.pid === process.pid), false, 'this process is never one');
});

test("a process's environment and group are read from /proc; a server is its run's only while it carries the run's marks", { skip: !linux && 'needs /proc' }, async (t) => {
  const pid = await startMarked(t, { server: 'web', runId: 'run-a', ownerPid: 99 });
  assert.equal(processEnv(pid)?.get('E2E_LANES_SERVER'), 'web');
  assert.equal(processGroupOf(pid), pid);
  assert.equal(isServerOfRun(pid, 'run-a'), true);
  assert.equal(isServerOfRun(pid, 'run-b'), false);
  assert.deepEqual(markedOwner(pid, processEnv(pid)!)?.pid, 99);
  assert.equal(markedOwner(pid, new Map([['E2E_LANES_OWNER_PID', 'x']])), undefined, 'no owner without a pid');
});
