import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { laneLedger, type LaneEntry } from '../../../src/lanes/records/lane-ledger.js';
import { keepRunRecords, stopRecordedServers, tearDownRuns, type RunStores } from '../../../src/lanes/teardown/run-records.js';
import { PortAllocator } from '../../../src/ports/index.js';
import { isPidAlive, newOwner } from '../../../src/state/index.js';
import { startMarked, until } from '../../helpers/marked.js';
import { tempDir } from '../../helpers/tmp.js';

const linux = process.platform === 'linux';

function stores(stateDir: string, runId: string): RunStores {
  return { stateDir, lanes: laneLedger(stateDir), ports: new PortAllocator({ stateDir, runId, names: ['api'], range: [36_200, 36_299] }) };
}

function entry(runId: string, servers: LaneEntry['servers'], ports: Record<string, number>): LaneEntry {
  return { runId, project: 'shop', owner: newOwner(runId), status: 'up', ports, servers, logDir: '/tmp/none' };
}

test("stopping a run's recorded servers stops those that still carry its marks, never a recycled pid", { skip: !linux && 'needs /proc' }, async (t) => {
  const runId = `records-stop-${process.pid}`;
  const ours = await startMarked(t, { server: 'api', runId, ownerPid: process.pid });
  const stranger = await startMarked(t, { server: 'api', runId: 'someone-else', ownerPid: process.pid });
  const stopped = await stopRecordedServers([{ name: 'api', pid: ours, logFile: '' }, { name: 'web', pid: stranger, logFile: '', stopTimeout: 500 }], runId);
  assert.deepEqual(stopped, [ours]);
  assert.equal(isPidAlive(ours), false);
  assert.equal(isPidAlive(stranger), true);
});

test('a kept run stays alive after its owner, in the lanes ledger and the ports', async (t) => {
  const stateDir = await tempDir(t);
  const runId = `records-keep-${process.pid}`;
  const run = stores(stateDir, runId);
  const ports = await run.ports.allocatePortsForProject('shop');
  await run.lanes.update((doc) => void doc.entries.push(entry(runId, [], ports.ports)));
  await keepRunRecords(run, runId);
  assert.equal((await run.lanes.read()).entries[0]!.owner.kept, true);
  assert.ok((await run.ports.list()).every((item) => item.runId !== runId || item.owner.kept === true));
  await run.ports.releaseRun(runId);
});

test("tearing a run down from its records stops its servers, its processes left over, and releases its ports and entries; other runs stay", { skip: !linux && 'needs /proc' }, async (t) => {
  const stateDir = resolve(await tempDir(t));
  const runId = `records-down-${process.pid}`;
  const run = stores(stateDir, runId);
  const server = await startMarked(t, { server: 'api', runId, ownerPid: process.pid, stateDir });
  const straggler = await startMarked(t, { server: 'api', runId, ownerPid: 1, stateDir });
  const ports = await run.ports.allocatePortsForProject('shop');
  await run.lanes.update((doc) => void doc.entries.push(entry(runId, [{ name: 'api', pid: server, logFile: '', stopTimeout: 1_000 }], ports.ports), { ...entry('other-run', [], {}), project: 'admin' }));
  const report = await tearDownRuns(run, { runs: [runId, 'unknown-run'] }, { database: false });
  assert.deepEqual(report.runs, [runId]);
  assert.deepEqual(report.killedPids.sort(), [server, straggler].sort());
  assert.equal(report.ports, 1);
  await until('the straggler is gone', () => !isPidAlive(straggler));
  assert.deepEqual((await run.lanes.read()).entries.map((one) => one.runId), ['other-run']);
});

test("releasing one lane releases its ports and entry, and no other lane's", async (t) => {
  const { releaseLane } = await import('../../../src/lanes/teardown/run-records.js');
  const stateDir = await tempDir(t);
  const runId = `records-lane-${process.pid}`;
  const run = stores(stateDir, runId);
  t.after(() => run.ports.releaseRun(runId));
  const shop = await run.ports.allocatePortsForProject('shop');
  const admin = await run.ports.allocatePortsForProject('admin');
  await run.lanes.update((doc) => void doc.entries.push(entry(runId, [], shop.ports), { ...entry(runId, [], admin.ports), project: 'admin' }));
  await releaseLane(run, { runId, project: 'shop' });
  assert.deepEqual((await run.lanes.read()).entries.map((one) => one.project), ['admin']);
  assert.deepEqual([...new Set((await run.ports.list()).filter((item) => item.runId === runId).map((item) => item.project))], ['admin']);
});
