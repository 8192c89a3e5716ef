import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RunningLane } from '../../src/lanes/boot/restart.js';
import { LaneTable } from '../../src/lanes/lane-table.js';

const lane = (project: string): RunningLane => ({ lane: { runId: 'r', project, ports: {}, urls: {}, logFiles: {} }, servers: Object.assign([], { stopAll: async () => undefined, [Symbol.asyncDispose]: async () => undefined }), deaths: new Map() });

test('one record per lane: its boot, failure, failed tests and last reset in one place', async () => {
  const table = new LaneTable();
  assert.equal(table.get('a'), undefined);
  table.record('a').testFailed = true;
  assert.equal(table.record('a').testFailed, true, 'the same record');
  assert.ok(table.anyTestFailed());
  assert.equal(table.isRunning('a'), false);
  const running = Promise.resolve(lane('a'));
  table.setRunning('a', running);
  assert.ok(table.isRunning('a'));
  assert.equal((await table.up('a'))?.lane.project, 'a');
  assert.equal(table.get('a')?.testFailed, true, 'setting the boot keeps the rest of the record');
});

test('lanes are listed in the order their boots began; a failed boot is not up; forgetting boots keeps the records', async () => {
  const table = new LaneTable();
  table.record('late').testFailed = true;
  table.setRunning('first', Promise.resolve(lane('first')));
  const failed = Promise.reject(new Error('boot failed'));
  failed.catch(() => undefined);
  table.setRunning('late', failed);
  assert.deepEqual(table.runningEntries().map((entry) => entry.id), ['first', 'late']);
  assert.equal(await table.up('late'), undefined);
  assert.equal(table.running().length, 2);
  table.forgetRunning();
  assert.deepEqual(table.running(), []);
  assert.equal(table.get('late')?.testFailed, true);
});
