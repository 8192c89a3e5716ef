import assert from 'node:assert/strict';
import { mkdir, readdir, symlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { isLanesError } from '../../../src/errors.js';
import { laneLogDir, pruneLogDirs } from '../../../src/lanes/records/log-dir.js';
import { tempDir } from '../../helpers/tmp.js';

test("a lane's log folder is under lanes/<run id>, named by a safe slug of its project (and worker)", () => {
  assert.match(laneLogDir('/s', { runId: 'r1', project: 'shop' }), /^\/s\/lanes\/r1\/shop-[0-9a-f]{6}$/);
  assert.match(laneLogDir('/s', { runId: 'r1', project: 'shop', worker: 2 }), /^\/s\/lanes\/r1\/shop-[0-9a-f]{6}-w2$/);
  const hostile = laneLogDir('/s', { runId: 'r1', project: '../../etc' });
  assert.ok(hostile.startsWith('/s/lanes/r1/') && !hostile.slice('/s/lanes/r1/'.length).includes('/'), hostile);
  assert.notEqual(laneLogDir('/s', { runId: 'r', project: 'a b' }), laneLogDir('/s', { runId: 'r', project: 'a-b' }));
});

test('pruning keeps the newest runs and the protected ones, and refuses a link', async (t) => {
  const stateDir = await tempDir(t);
  for (const [index, run] of ['old', 'mid', 'new', 'live'].entries()) {
    await mkdir(join(stateDir, 'lanes', run), { recursive: true });
    const at = new Date(Date.UTC(2026, 0, 1 + index));
    await utimes(join(stateDir, 'lanes', run), at, at);
  }
  // Newest first: live, new, mid ('old' is protected and does not count).
  assert.deepEqual((await pruneLogDirs(stateDir, 1, new Set(['old']))).sort(), ['mid', 'new']);
  assert.deepEqual((await readdir(join(stateDir, 'lanes'))).sort(), ['live', 'old']);
  const linked = await tempDir(t);
  await symlink(join(stateDir, 'lanes'), join(linked, 'lanes'));
  await assert.rejects(pruneLogDirs(linked, 0, new Set()), (error) => isLanesError(error, 'STATE_NOT_A_FOLDER'));
});
