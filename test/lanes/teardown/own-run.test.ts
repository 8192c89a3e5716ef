import assert from 'node:assert/strict';
import { test } from 'node:test';
import { laneLedger, type LaneEntry } from '../../../src/lanes/records/lane-ledger.js';
import { tearDownOwnRun } from '../../../src/lanes/teardown/own-run.js';
import { PortAllocator } from '../../../src/ports/index.js';
import { isPidAlive, newOwner } from '../../../src/state/index.js';
import { startMarked } from '../../helpers/marked.js';
import { tempDir } from '../../helpers/tmp.js';

test("an owner's teardown stops its lanes' servers and those of lanes it did not use, releases ports and entries, and goes on past a failure", { skip: process.platform !== 'linux' && 'needs /proc' }, async (t) => {
  const stateDir = await tempDir(t);
  const runId = `own-run-${process.pid}`;
  const ledger = laneLedger(stateDir);
  const ports = new PortAllocator({ stateDir, runId, names: ['api'], range: [36_300, 36_399] });
  const allocated = await ports.allocatePortsForProject('shop');
  const unused = await startMarked(t, { server: 'api', runId, ownerPid: process.pid });
  const entry = (project: string, servers: LaneEntry['servers']): LaneEntry => ({ runId, project, owner: newOwner(runId), status: 'up', ports: allocated.ports, servers, logDir: '/tmp/none' });
  await ledger.update((doc) => void doc.entries.push(entry('shop', []), entry('reused-not-used', [{ name: 'api', pid: unused, logFile: '', stopTimeout: 1_000 }])));
  const stops: string[] = [];
  let gone = false;
  await assert.rejects(
    tearDownOwnRun({
      runId,
      ledger,
      ports,
      databases: undefined,
      prepared: true,
      servers: [{ stopAll: async () => void stops.push('shop') }, { stopAll: async () => Promise.reject(new Error('stop failed')) }],
      isUp: (one) => one.project === 'shop',
      lanesGone: () => (gone = true),
    }),
    /stop failed/,
  );
  assert.deepEqual(stops, ['shop']);
  assert.equal(isPidAlive(unused), false, 'the server of the lane it did not use is stopped by its marks');
  assert.ok(gone);
  assert.deepEqual((await ledger.read()).entries, []);
  assert.deepEqual((await ports.list()).filter((item) => item.runId === runId), []);
});
