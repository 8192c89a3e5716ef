import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { findOrphanServers, findRunProcesses, findStateProcesses } from '../../../src/lanes/reaping/orphans.js';
import { deadPid, startMarked } from '../../helpers/marked.js';
import { tempDir } from '../../helpers/tmp.js';

const linux = process.platform === 'linux';

test('a run\'s processes are found by its marks, optionally of one owner only', { skip: !linux && 'needs /proc' }, async (t) => {
  const runId = `orph-run-${process.pid}`;
  const a = await startMarked(t, { server: 'api', runId, ownerPid: 11 });
  const b = await startMarked(t, { server: 'web', runId, ownerPid: 12 });
  const other = await startMarked(t, { server: 'api', runId: `${runId}-other`, ownerPid: 11 });
  assert.deepEqual(findRunProcesses(runId).map((found) => found.pid).sort(), [a, b].sort());
  assert.deepEqual(findRunProcesses(runId, 12).map((found) => found.pid), [b]);
  assert.equal(findRunProcesses(runId).some((found) => found.pid === other), false);
});

test("a state folder's processes are found by its marks, of any run", { skip: !linux && 'needs /proc' }, async (t) => {
  const stateDir = resolve(await tempDir(t));
  const a = await startMarked(t, { server: 'api', runId: 'r1', ownerPid: process.pid, stateDir });
  const b = await startMarked(t, { server: 'api', runId: 'r2', ownerPid: process.pid, stateDir, keep: true });
  await startMarked(t, { server: 'api', runId: 'r1', ownerPid: process.pid, stateDir: `${stateDir}-elsewhere` });
  const found = findStateProcesses(stateDir);
  assert.deepEqual(found.map((item) => item.pid).sort(), [a, b].sort());
  assert.deepEqual(found.map((item) => item.runId).sort(), ['r1', 'r2']);
});

test('orphans are the marked servers whose owner is gone, kept servers and live owners left alone', { skip: !linux && 'needs /proc' }, async (t) => {
  const gone = await deadPid();
  const runId = `orph-${process.pid}`;
  const orphan = await startMarked(t, { server: 'api', runId, ownerPid: gone });
  const kept = await startMarked(t, { server: 'api', runId, ownerPid: gone, keep: true });
  const owned = await startMarked(t, { server: 'api', runId, ownerPid: process.pid });
  const found = findOrphanServers().filter((item) => item.runId === runId);
  assert.deepEqual(found.map((item) => item.pid), [orphan]);
  assert.equal(found[0]!.ownerPid, gone);
  assert.ok(found[0]!.reason, 'it says why');
  assert.ok(![kept, owned].some((pid) => found.some((item) => item.pid === pid)));
});
