import assert from 'node:assert/strict';
import { test } from 'node:test';
import { reapDeadRuns } from '../../../src/lanes/reaping/dead-runs.js';
import { laneLedger, type LaneEntry } from '../../../src/lanes/records/lane-ledger.js';
import { PortAllocator } from '../../../src/ports/index.js';
import { newOwner } from '../../../src/state/index.js';
import { deadPid } from '../../helpers/marked.js';
import { tempDir } from '../../helpers/tmp.js';

test("a dead run's lanes are reaped; a dry run only names them; a live run's lanes and ports stay", async (t) => {
  const stateDir = await tempDir(t);
  const gone = await deadPid();
  const live = new PortAllocator({ stateDir, runId: 'live-run', names: ['api'], range: [36_400, 36_499] });
  t.after(() => live.releaseRun('live-run'));
  await live.allocatePortsForProject('shop');
  const entry = (runId: string, pid: number): LaneEntry => ({ runId, project: 'shop', owner: newOwner(runId, pid), status: 'up', ports: {}, servers: [], logDir: '/tmp/none' });
  await laneLedger(stateDir).update((doc) => void doc.entries.push(entry('dead-run', gone), entry('live-run', process.pid)));
  const dry = await reapDeadRuns({ stateDir, ports: live }, 60_000, { dryRun: true });
  assert.deepEqual(dry.lanes.lanes.map((item) => item.entry.runId), ['dead-run']);
  assert.equal((await laneLedger(stateDir).read()).entries.length, 2, 'a dry run changes nothing');
  const report = await reapDeadRuns({ stateDir, ports: live }, 60_000);
  assert.deepEqual(report.lanes.lanes.map((item) => item.entry.runId), ['dead-run']);
  assert.deepEqual((await laneLedger(stateDir).read()).entries.map((one) => one.runId), ['live-run']);
  assert.deepEqual(report.ports, [], 'no port of a dead owner was recorded');
  assert.deepEqual([...new Set((await live.list()).map((item) => item.runId))], ['live-run']);
});
