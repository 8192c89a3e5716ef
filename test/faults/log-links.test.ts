import assert from 'node:assert/strict';
import { lstat, mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { isLanesError } from '../../src/errors.js';
import { LaneManager } from '../../src/lanes/lane-manager.js';
import { laneLedger } from '../../src/lanes/records/lane-ledger.js';
import { pruneLogDirs } from '../../src/lanes/records/log-dir.js';
import { newOwner } from '../../src/state/index.js';
import { tempDir } from '../helpers/tmp.js';

/** Folders of runs' logs, each with one log file, under `root`. */
async function plantRuns(root: string, runs: string[]): Promise<void> {
  for (const run of runs) {
    await mkdir(join(root, run, 'project-abc123'), { recursive: true });
    await writeFile(join(root, run, 'project-abc123', 'backend.log'), `log of ${run}\n`);
  }
}

test('log pruning refuses a lanes folder that links out of the state folder, and deletes nothing through it', async (t) => {
  const stateDir = await tempDir(t);
  const elsewhere = await tempDir(t);
  await plantRuns(elsewhere, ['someone-else-1', 'someone-else-2', 'someone-else-3']);
  await symlink(elsewhere, join(stateDir, 'lanes'));

  await assert.rejects(pruneLogDirs(stateDir, 0, new Set()), (error) => {
    assert.ok(isLanesError(error, 'STATE_NOT_A_FOLDER'), String(error));
    assert.match(error.message, new RegExp(`${join(stateDir, 'lanes')} is a symbolic link to ${elsewhere}`));
    assert.match(error.hint ?? '', /rm .*lanes/);
    return true;
  });
  assert.deepEqual((await readdir(elsewhere)).sort(), ['someone-else-1', 'someone-else-2', 'someone-else-3']);
  assert.ok((await lstat(join(stateDir, 'lanes'))).isSymbolicLink(), 'the link is left as it was');
});

test("a run whose lanes folder links to another state folder's fails with STATE_NOT_A_FOLDER and leaves that folder's live run's log", async (t) => {
  // State folder A: a live run holds a lane and writes its log.
  const first = await tempDir(t);
  const liveRun = 'live-run-a';
  await plantRuns(join(first, 'lanes'), [liveRun]);
  await laneLedger(first).update((doc) => {
    doc.entries.push({ runId: liveRun, project: 'p', owner: newOwner(liveRun), status: 'up', ports: {}, servers: [], logDir: join(first, 'lanes', liveRun) });
  });
  // State folder B shares A's log folder through a link; its ledgers know nothing of A's run.
  const second = await tempDir(t);
  await symlink(join(first, 'lanes'), join(second, 'lanes'));

  const manager = new LaneManager({ runId: 'run-b', stateDir: second, servers: [], database: false, keepLogs: 0, portRange: [35_200, 35_299] });
  t.after(() => manager.teardown({ keep: false }));
  await assert.rejects(manager.prepare(), (error) => isLanesError(error, 'STATE_NOT_A_FOLDER') && error.message.includes(join(second, 'lanes')));
  assert.equal(await readFile(join(first, 'lanes', liveRun, 'project-abc123', 'backend.log'), 'utf8'), `log of ${liveRun}\n`);
});

test('a run entry in the lanes folder that is a link is neither followed nor counted', async (t) => {
  const stateDir = await tempDir(t);
  const elsewhere = await tempDir(t);
  await plantRuns(elsewhere, ['target-run']);
  await plantRuns(join(stateDir, 'lanes'), ['old-run']);
  await symlink(join(elsewhere, 'target-run'), join(stateDir, 'lanes', 'linked-run'));

  assert.deepEqual(await pruneLogDirs(stateDir, 0, new Set()), ['old-run']);
  assert.equal(await readFile(join(elsewhere, 'target-run', 'project-abc123', 'backend.log'), 'utf8'), 'log of target-run\n');
});
