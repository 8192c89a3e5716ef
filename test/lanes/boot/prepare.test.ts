import assert from 'node:assert/strict';
import { mkdir, readdir, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { prepareRun } from '../../../src/lanes/boot/prepare.js';
import { laneLedger, type LaneEntry } from '../../../src/lanes/records/lane-ledger.js';
import { PortAllocator } from '../../../src/ports/index.js';
import { newOwner } from '../../../src/state/index.js';
import { deadPid } from '../../helpers/marked.js';
import { tempDir } from '../../helpers/tmp.js';

test("a run's setup reaps dead runs' lanes and prunes old runs' log folders, never a live run's", async (t) => {
  const stateDir = await tempDir(t);
  const runId = `prepare-${process.pid}`;
  const ledger = laneLedger(stateDir);
  const gone = await deadPid();
  const entry = (run: string, pid: number): LaneEntry => ({ runId: run, project: 'shop', owner: newOwner(run, pid), status: 'up', ports: {}, servers: [], logDir: '/tmp/none' });
  await ledger.update((doc) => void doc.entries.push(entry('dead-run', gone), entry('live-run', process.pid)));
  for (const [index, run] of ['old-1', 'old-2', 'live-run', 'dead-run'].entries()) {
    await mkdir(join(stateDir, 'lanes', run), { recursive: true });
    const at = new Date(Date.UTC(2026, 0, 1 + index));
    await utimes(join(stateDir, 'lanes', run), at, at);
  }
  const ports = new PortAllocator({ stateDir, runId, names: ['api'], range: [36_600, 36_699] });
  const report = await prepareRun({ runId, stateDir, leaseMs: 60_000, ledger, ports, databases: undefined, keepLogs: 1, reusesWarmRun: false });
  assert.deepEqual(report.reaped.lanes.map((item) => item.entry.runId), ['dead-run']);
  assert.equal(report.template, undefined, 'no databases, no template');
  assert.deepEqual((await ledger.read()).entries.map((one) => one.runId), ['live-run']);
  assert.deepEqual((await readdir(join(stateDir, 'lanes'))).sort(), ['dead-run', 'live-run'], 'the newest earlier run and the live one stay');
});
