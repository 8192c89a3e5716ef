import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { stateFilesOf } from '../../../src/cli/context.js';
import { collectStatus, formatStatus } from '../../../src/cli/status.js';
import { LaneManager } from '../../../src/lanes/lane-manager.js';
import { processEnv } from '../../../src/state/proc.js';
import { reapStaleLanes } from '../../../src/lanes/reaping/reaper.js';
import { RUN_ID_ENV, WATCHDOG_ENV } from '../../../src/env-vars.js';
import { isPidAlive } from '../../../src/state/index.js';
import { warmOptions, type WarmSetup } from '../../fixtures/warm/options.js';
import { query, useTestDatabases } from '../../databases/helpers.js';
import { tempDir } from '../../helpers/tmp.js';
import { databaseExists, downAfter, laneEntries, newRun, startWarm, until, warmRun } from '../../helpers/warm.js';

const db = useTestDatabases('warm');

function setupFor(stateDir: string, extra: Partial<WarmSetup> = {}): WarmSetup {
  return { stateDir, adminUrl: db.adminUrl, prefix: db.prefix, ...extra };
}

async function itemCount(url: string): Promise<number> {
  return (await query<{ n: number }>(url, 'SELECT count(*)::int AS n FROM "Item"'))[0]!.n;
}



test('a warm run outlives its process, and the next run of the same config reuses it: no server boots, the data is back to the seed', { timeout: 120_000 }, async (t) => {
  const { stateDir, setup, first, entry } = await startWarm(t, db, {}, { dirty: true });
  const pids = entry.servers.map((server) => server.pid);
  assert.ok(pids.every(isPidAlive), 'warm servers outlive their run');
  assert.equal(entry.owner.pid, first.watchdogPid, 'the watchdog owns the warm lane');
  assert.ok(entry.owner.warmUntil && Date.parse(entry.owner.warmUntil) > Date.now() + 100_000);
  assert.ok(processEnv(first.watchdogPid)?.has(WATCHDOG_ENV), 'the watchdog carries its mark');
  assert.equal(await databaseExists(db.adminUrl, entry.databaseName!), true, 'the warm database stays');
  assert.match(formatStatus(await collectStatus(stateFilesOf(warmOptions(setup), {}))), /warm, idle \d+ s, stops in ((1|2) min|1[01]\d s)/);

  const second = await newRun(setup);
  assert.equal(second.runId, first.runId, 'the warm run is reused');
  await second.prepare();
  const report = await second.reuseWarmLanes(['shop']);
  assert.equal(report.reused.length, 1);
  assert.deepEqual(report.replaced, []);
  const lane = await second.ensureLane('shop');
  assert.deepEqual(lane.ports, entry.ports);
  assert.equal(lane.databaseName, entry.databaseName);
  assert.deepEqual((await laneEntries(stateDir))[0]!.servers.map((server) => server.pid), pids, 'no server was booted again');
  assert.equal(await itemCount(lane.databaseUrl!), 2, 'the data is back to the seed (its two items, not the dirty one)');
  assert.equal((await fetch(`${lane.urls.web}/health`)).status, 200);
  await until('the first watchdog exits once its lanes are reused', () => !isPidAlive(first.watchdogPid));
  assert.equal((await laneEntries(stateDir))[0]!.owner.pid, process.pid);

  await second.teardown({ warm: false });
  assert.ok(pids.every((pid) => !isPidAlive(pid)), 'a teardown without warm stops the reused servers');
  assert.deepEqual(await laneEntries(stateDir), []);
  assert.equal(await databaseExists(db.adminUrl, entry.databaseName!), false);
});

test('a lane whose definition changed is not reused: it says why and boots afresh; a run of another config leaves it alone', { timeout: 120_000 }, async (t) => {
  const stateDir = await tempDir(t);
  const setup = setupFor(stateDir);
  downAfter(t, setup);
  const first = await warmRun(setup, ['shop']);
  const pids = (await laneEntries(stateDir))[0]!.servers.map((server) => server.pid);

  delete process.env[RUN_ID_ENV];
  const other = await LaneManager.reusing(warmOptions(setup), { configFile: '/other/playwright.config.ts' });
  assert.notEqual(other.runId, first.runId, 'a run of another config does not take the lanes');
  assert.ok(pids.every(isPidAlive));

  const second = await newRun(setupFor(stateDir, { apiEcho: 'v2' }));
  assert.equal(second.runId, first.runId);
  await second.prepare();
  const report = await second.reuseWarmLanes(['shop']);
  assert.deepEqual(report.reused, []);
  assert.equal(report.replaced.length, 1);
  assert.match(report.replaced[0]!.reason, /the api's env changed/);
  await until('the old servers are stopped', () => pids.every((pid) => !isPidAlive(pid)));
  const lane = await second.ensureLane('shop');
  assert.ok((await laneEntries(stateDir))[0]!.servers.every((server) => !pids.includes(server.pid)), 'new servers');
  assert.equal((await fetch(`${lane.urls.api}/health`)).status, 200);
  assert.equal(await itemCount(lane.databaseUrl!), 2);
  await second.teardown({ warm: false });
  await other.teardown({ warm: false });
});

test('two runs at once: one reuses the warm run, the other boots its own; gc and other runs never reap warm lanes', { timeout: 120_000 }, async (t) => {
  const { stateDir, setup, first, entry } = await startWarm(t, db);

  // What the next run and `gc` reap first: nothing of a warm run within its idle time.
  assert.deepEqual((await reapStaleLanes(stateDir, 120_000)).lanes, []);
  const bystander = new LaneManager({ ...warmOptions(setup), reuse: false, runId: 'bystander' });
  await bystander.prepare();
  await bystander.teardown();
  assert.equal(await databaseExists(db.adminUrl, entry.databaseName!), true, 'the warm database survives');
  assert.ok(entry.servers.every((server) => isPidAlive(server.pid)));

  const runs = await Promise.all(
    [0, 1].map(() => {
      delete process.env[RUN_ID_ENV];
      return newRun(setup);
    }),
  );
  const takers = runs.filter((run) => run.runId === first.runId);
  assert.equal(takers.length, 1, `exactly one run reuses the warm run: ${runs.map((run) => run.runId).join(', ')}`);
  const taker = takers[0]!;
  const other = runs.find((run) => run !== taker)!;
  await Promise.all([taker.prepare(), other.prepare()]);
  const taken = await taker.reuseWarmLanes(['shop']);
  assert.equal(taken.reused.length, 1, `the warm lane is reused: ${JSON.stringify(taken.replaced)}`);
  assert.equal((await other.reuseWarmLanes(['shop'])).reused.length, 0);
  const [mine, theirs] = await Promise.all([taker.ensureLane('shop'), other.ensureLane('shop')]);
  assert.notEqual(mine.databaseName, theirs.databaseName);
  assert.notDeepEqual(mine.ports, theirs.ports);
  await Promise.all([taker.teardown({ warm: false }), other.teardown({ warm: false })]);
});

test('warm lanes unused for idleMs are torn down by their watchdog, with no run after', { timeout: 120_000 }, async (t) => {
  const { stateDir, setup, first, entry } = await startWarm(t, db, { idleMs: 2_000 });
  const pids = entry.servers.map((server) => server.pid);
  await until('the watchdog tears the lanes down and exits', async () => !isPidAlive(first.watchdogPid) && (await laneEntries(stateDir)).length === 0, 30_000);
  assert.ok(pids.every((pid) => !isPidAlive(pid)), 'the servers are stopped');
  assert.equal(await databaseExists(db.adminUrl, entry.databaseName!), false, 'the database is dropped');
  const ports = JSON.parse(await readFile(join(stateDir, 'allocated-ports.json'), 'utf8')) as { entries: unknown[] };
  assert.deepEqual(ports.entries, [], 'the ports are released');
  const log = await readFile(join(stateDir, 'lanes', first.runId, 'watchdog.log'), 'utf8');
  assert.match(log, /idle limit reached: tore down run .*: 2 server process\(es\), 1 database\(s\)/);
});

test('`down` stops warm lanes now, and their watchdog', { timeout: 120_000 }, async (t) => {
  const { stateDir, setup, first, entry } = await startWarm(t, db);
  const { stateOf } = await import('../../../src/cli/context.js');
  const { tearDownRuns } = await import('../../../src/lanes/teardown/run-records.js');
  const report = await tearDownRuns(await stateOf(warmOptions(setup), {}), { runs: [first.runId] }, warmOptions(setup));
  assert.deepEqual(report.runs, [first.runId]);
  await until('the watchdog is gone', () => !isPidAlive(first.watchdogPid), 5_000);
  assert.ok(entry.servers.every((server) => !isPidAlive(server.pid)));
  assert.equal(await databaseExists(db.adminUrl, entry.databaseName!), false);
});

test('UI mode: a new set of worker processes starts a new round of the lane, its data reset first', { timeout: 60_000 }, async (t) => {
  const stateDir = await tempDir(t);
  const manager = new LaneManager({ ...warmOptions(setupFor(stateDir)), reuse: false }, { resetEachRound: true });
  t.after(() => manager.teardown());
  const gone = await exitedPid();
  assert.equal(manager.startsRound('shop', undefined, gone), false, 'the first worker of the session starts from the fresh lane');
  assert.equal(manager.startsRound('shop', undefined, gone), false);
  assert.equal(manager.startsRound('shop', undefined, process.pid), true, 'a worker after all earlier ones are gone: a new run');
  assert.equal(manager.startsRound('shop', undefined, process.ppid), false, 'a second worker while the first lives: the same run');
  const plain = new LaneManager({ ...warmOptions(setupFor(stateDir)), reuse: false });
  assert.equal(plain.startsRound('shop', undefined, gone), false);
  assert.equal(plain.startsRound('shop', undefined, process.pid), false, 'only in UI mode');
});

/** The pid of a process that has exited. */
async function exitedPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid!;
}

test('reserving a warm run for reuse takes the newest fit run of the config, once, and makes its entries this process\'s', async (t) => {
  const { reuseWarmRun, warmOwner } = await import('../../../src/lanes/reuse/warm-run.js');
  const { laneLedger } = await import('../../../src/lanes/records/lane-ledger.js');
  const stateDir = await tempDir(t);
  const entry = (runId: string, config: string, idleMs: number) => ({
    runId,
    project: 'shop',
    owner: warmOwner(runId, process.pid, idleMs),
    status: 'up' as const,
    ports: {},
    servers: [],
    logDir: '/tmp/none',
    fingerprint: { config, servers: {}, ports: '' },
    warmSince: new Date().toISOString(),
  });
  await laneLedger(stateDir).update((doc) => void doc.entries.push(entry('older', 'cfg', 60_000), entry('newer', 'cfg', 120_000), entry('closing', 'cfg', 1_000), entry('other', 'other.cfg', 600_000)));
  const reused = await reuseWarmRun(stateDir, 'cfg', 60_000);
  assert.equal(reused?.runId, 'newer');
  assert.equal(reused.entries.length, 1);
  const recorded = (await laneLedger(stateDir).read()).entries.find((one) => one.runId === 'newer')!;
  assert.equal(recorded.owner.warmUntil, undefined, 'no longer warm: this process owns it');
  assert.equal(recorded.warmSince, undefined);
  assert.equal((await reuseWarmRun(stateDir, 'cfg', 60_000))?.runId, 'older', 'a run is reused once; a deadline too close is not reused');
  assert.equal(await reuseWarmRun(stateDir, 'cfg', 60_000), undefined);
  assert.equal(await reuseWarmRun(stateDir, 'unknown.cfg', 60_000), undefined);
});
