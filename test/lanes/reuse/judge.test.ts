import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LanesOptions } from '../../../src/lanes/options/lane-options.js';
import type { LaneEntry } from '../../../src/lanes/records/lane-ledger.js';
import { laneFingerprint } from '../../../src/lanes/reuse/fingerprint.js';
import { judgeWarmLane } from '../../../src/lanes/reuse/judge.js';
import { newOwner } from '../../../src/state/index.js';
import { startMarked } from '../../helpers/marked.js';

const options: LanesOptions = { database: false, servers: [{ name: 'api', command: ['node', 'api.js'], health: false }] };
const key = { runId: 'judge-run', project: 'shop' };
const ports = { api: 3100 };

function entry(extra: Partial<LaneEntry> = {}): LaneEntry {
  return { ...key, owner: newOwner(key.runId), status: 'up', ports, servers: [], logDir: '/tmp/none', fingerprint: laneFingerprint(options, 'cfg', { project: 'shop', ports }), ...extra };
}

const ctx = { runId: key.runId, options, configKey: 'cfg', databases: undefined };

test('a warm lane whose definitions changed, or that never finished booting, is not reused, and says why', async () => {
  const changed = { ...options, servers: [{ name: 'api', command: ['node', 'other.js'], health: false as const }] };
  assert.deepEqual(await judgeWarmLane({ ...ctx, options: changed }, key, entry(), undefined), { reason: "the api's command changed" });
  assert.deepEqual(await judgeWarmLane(ctx, key, entry({ status: 'starting' }), undefined), { reason: 'it never finished booting' });
  assert.deepEqual(await judgeWarmLane({ ...ctx, configKey: 'other' }, key, entry({ fingerprint: undefined }), undefined), { reason: 'it was recorded without a fingerprint' });
});

test('a warm lane whose recorded server is gone is not reused', async () => {
  const judged = await judgeWarmLane(ctx, key, entry({ servers: [{ name: 'api', pid: 999_999_9, logFile: '/tmp/none/api.log' }] }), undefined);
  assert.ok('reason' in judged, 'not reused');
});

test("a warm lane whose servers still run with the run's marks is reused as it was recorded", { skip: process.platform !== 'linux' && 'needs /proc' }, async (t) => {
  const pid = await startMarked(t, { server: 'api', runId: key.runId, ownerPid: process.pid });
  const judged = await judgeWarmLane(ctx, key, entry({ servers: [{ name: 'api', pid, logFile: '/tmp/none/api.log' }] }), undefined);
  assert.ok('lane' in judged, `reused (${'reason' in judged ? judged.reason : ''})`);
  assert.deepEqual(judged.lane.ports, ports);
  assert.equal(judged.lane.runId, key.runId);
  assert.deepEqual(judged.servers.map((server) => server.pid), [pid]);
  await judged.servers.stopAll();
});

test("a warm run's lanes of the selected projects are judged: the fit one reused, the other torn down with its reason; other projects' left alone", { skip: process.platform !== 'linux' && 'needs /proc' }, async (t) => {
  const { reuseWarmRunLanes } = await import('../../../src/lanes/reuse/judge.js');
  const pid = await startMarked(t, { server: 'api', runId: key.runId, ownerPid: process.pid });
  const fit = entry({ servers: [{ name: 'api', pid, logFile: '/tmp/none/api.log' }] });
  const unfit = entry({ project: 'admin', status: 'starting' });
  const other = entry({ project: 'other' });
  const reused: string[] = [];
  const forgotten: string[] = [];
  const report = await reuseWarmRunLanes(ctx, { runId: key.runId, entries: [fit, unfit, other] }, ['shop', 'admin'], undefined, {
    reused: (lane, judged) => void reused.push(lane.project, ...judged.servers.map((server) => String(server.pid))),
    forget: async (lane) => void forgotten.push(lane.project),
  });
  assert.deepEqual(reused, ['shop', String(pid)]);
  assert.deepEqual(forgotten, ['admin']);
  assert.deepEqual(report.reused.map((lane) => lane.project), ['shop']);
  assert.equal(report.adopted, report.reused, 'the deprecated name lists the same lanes');
  assert.deepEqual(report.replaced, [{ project: 'admin', reason: 'it never finished booting' }]);
  assert.equal(report.runId, key.runId);
});
