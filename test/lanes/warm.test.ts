import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { stateFilesOf } from '../../src/cli/context.js';
import { collectStatus, formatStatus } from '../../src/cli/status.js';
import { LaneManager } from '../../src/lanes/lane-manager.js';
import { processEnv } from '../../src/lanes/orphans.js';
import { reapStaleLanes } from '../../src/lanes/reaper.js';
import { resolveReuse } from '../../src/lanes/warm.js';
import { RUN_ID_ENV, WATCHDOG_ENV } from '../../src/env-vars.js';
import { isPidAlive } from '../../src/state/index.js';
import { warmOptions, type WarmSetup } from '../fixtures/warm/options.js';
import { query, useTestDatabases } from '../databases/helpers.js';
import { tempDir } from '../helpers/tmp.js';
import { databaseExists, downAfter, laneEntries, newRun, startWarm, until, warmRun } from '../helpers/warm.js';

const db = useTestDatabases('warm');

function setupFor(stateDir: string, extra: Partial<WarmSetup> = {}): WarmSetup {
  return { stateDir, adminUrl: db.adminUrl, prefix: db.prefix, ...extra };
}

async function itemCount(url: string): Promise<number> {
  return (await query<{ n: number }>(url, 'SELECT count(*)::int AS n FROM "Item"'))[0]!.n;
}



test('reuse is off by default and on CI unless forced, with a line that says so; bad values are INVALID_OPTION', () => {
  assert.equal(resolveReuse({}).enabled, false);
  assert.deepEqual(resolveReuse({ reuse: true }, false), { enabled: true, idleMs: 900_000 });
  const onCi = resolveReuse({ reuse: true }, true);
  assert.equal(onCi.enabled, false);
  assert.match(onCi.ignored!, /reuse is ignored on CI.*force: true/);
  assert.equal(resolveReuse({ reuse: { force: true, idleMs: 5_000 } }, true).enabled, true);
  for (const reuse of ['yes', { idleMs: 10 }, { idleMs: 1500.5 }, { force: 'no' }] as unknown[]) {
    assert.throws(() => resolveReuse({ reuse: reuse as never }), (error: Error & { code?: string }) => error.code === 'INVALID_OPTION' && /reuse/.test(error.message), JSON.stringify(reuse));
  }
});

test('a warm run outlives its process, and the next run of the same config takes it over: no server boots, the data is back to the seed', { timeout: 120_000 }, async (t) => {
  const { stateDir, setup, first, entry } = await startWarm(t, db, {}, { dirty: true });
  const pids = entry.servers.map((server) => server.pid);
  assert.ok(pids.every(isPidAlive), 'warm servers outlive their run');
  assert.equal(entry.owner.pid, first.watchdogPid, 'the watchdog owns the warm lane');
  assert.ok(entry.owner.warmUntil && Date.parse(entry.owner.warmUntil) > Date.now() + 100_000);
  assert.ok(processEnv(first.watchdogPid)?.has(WATCHDOG_ENV), 'the watchdog carries its mark');
  assert.equal(await databaseExists(db.adminUrl, entry.databaseName!), true, 'the warm database stays');
  assert.match(formatStatus(await collectStatus(stateFilesOf(warmOptions(setup), {}))), /warm, idle \d+ s, stops in ((1|2) min|1[01]\d s)/);

  const second = await newRun(setup);
  assert.equal(second.runId, first.runId, 'the warm run is taken over');
  await second.prepare();
  const report = await second.adoptWarmLanes(['shop']);
  assert.equal(report.adopted.length, 1);
  assert.deepEqual(report.replaced, []);
  const lane = await second.ensureLane('shop');
  assert.deepEqual(lane.ports, entry.ports);
  assert.equal(lane.databaseName, entry.databaseName);
  assert.deepEqual((await laneEntries(stateDir))[0]!.servers.map((server) => server.pid), pids, 'no server was booted again');
  assert.equal(await itemCount(lane.databaseUrl!), 2, 'the data is back to the seed (its two items, not the dirty one)');
  assert.equal((await fetch(`${lane.urls.web}/health`)).status, 200);
  await until('the first watchdog exits once its lanes are taken over', () => !isPidAlive(first.watchdogPid));
  assert.equal((await laneEntries(stateDir))[0]!.owner.pid, process.pid);

  await second.teardown({ warm: false });
  assert.ok(pids.every((pid) => !isPidAlive(pid)), 'a teardown without warm stops the taken-over servers');
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
  const report = await second.adoptWarmLanes(['shop']);
  assert.deepEqual(report.adopted, []);
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

test('two runs at once: one takes the warm run over, the other boots its own; gc and other runs never reap warm lanes', { timeout: 120_000 }, async (t) => {
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
  assert.equal(takers.length, 1, `exactly one run takes the warm run over: ${runs.map((run) => run.runId).join(', ')}`);
  const taker = takers[0]!;
  const other = runs.find((run) => run !== taker)!;
  await Promise.all([taker.prepare(), other.prepare()]);
  assert.equal((await taker.adoptWarmLanes(['shop'])).adopted.length, 1);
  assert.equal((await other.adoptWarmLanes(['shop'])).adopted.length, 0);
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
  const { stateOf } = await import('../../src/cli/context.js');
  const { tearDownRuns } = await import('../../src/lanes/run.js');
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
