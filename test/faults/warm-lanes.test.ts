// Faults of warm lanes (option `reuse`): a run killed after it took warm lanes over, a warm
// server that died while idle, a warm database dropped by hand, a warm port taken by a foreign
// process, and a recorded pid that is not a lane server any more when the watchdog strikes.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { LaneManager } from '../../src/lanes/lane-manager.js';
import { laneLedger } from '../../src/lanes/records/lane-ledger.js';
import { isPidAlive } from '../../src/state/index.js';
import { warmOptions, type WarmSetup } from '../fixtures/warm/options.js';
import { expectExit, ledger, runLanesCli, sandbox, serverProcesses, startPlaywright, suite, useSharedPostgres } from './helpers.ts';
import { query, useTestDatabases } from '../databases/helpers.js';
import { tempDir } from '../helpers/tmp.js';
import { databaseExists, downAfter, hangingRun, laneEntries, newRun, startWarm, until, warmRun } from '../helpers/warm.js';

const db = useTestDatabases('warmfault');
// Ports 7800-7899: this file's block for `playwright test` runs.
const PORTS = [7800, 7899] as const;
useSharedPostgres();

function setupFor(stateDir: string, extra: Partial<WarmSetup> = {}): WarmSetup {
  return { stateDir, adminUrl: db.adminUrl, prefix: db.prefix, ...extra };
}



/** The run after a fault takes nothing over: it boots a fresh lane that works. */
async function bootsAfresh(setup: WarmSetup, reason: RegExp, oldPids: number[]): Promise<void> {
  const next = await newRun(setup);
  try {
    await next.prepare();
    const report = await next.adoptWarmLanes(['shop']);
    assert.deepEqual(report.adopted, []);
    assert.match(report.replaced[0]?.reason ?? '(none replaced)', reason);
    await until('the old servers are stopped', () => oldPids.every((pid) => !isPidAlive(pid)));
    const lane = await next.ensureLane('shop');
    assert.equal((await fetch(`${lane.urls.web}/health`)).status, 200);
    assert.equal((await query<{ n: number }>(lane.databaseUrl!, 'SELECT count(*)::int AS n FROM "Item"'))[0]!.n, 2, 'a fresh lane from the seed');
  } finally {
    await next.teardown({ warm: false });
  }
}

test('a run SIGKILLed after it took warm lanes over: its lanes are reaped by the next run like any others', { timeout: 120_000 }, async (t) => {
  const { stateDir, setup, first, entry } = await startWarm(t, db);
  const hanging = await hangingRun(t, setup, ['shop']);
  assert.equal(hanging.runId, first.runId);
  assert.equal(hanging.adopted, 1);
  await until('the first watchdog lets go', () => !isPidAlive(first.watchdogPid));
  process.kill(hanging.pid, 'SIGKILL');
  await until('the killed run is gone', () => !isPidAlive(hanging.pid));
  assert.ok(entry.servers.every((server) => isPidAlive(server.pid)), 'its servers outlive it (they could be warm)');

  // The next run (reuse off) reaps them: the owner is dead and no watchdog holds them.
  const next = new LaneManager({ ...warmOptions(setup), reuse: false, runId: 'after-kill' });
  t.after(() => next.teardown());
  const report = await next.prepare();
  assert.equal(report.reaped.lanes.length, 1, 'the lane of the killed run is reaped');
  await until('its servers are stopped', () => entry.servers.every((server) => !isPidAlive(server.pid)));
  assert.equal(await databaseExists(db.adminUrl, entry.databaseName!), false, 'its database is dropped');
  assert.deepEqual((await laneEntries(stateDir)).filter((lane) => lane.runId === first.runId), []);
});

test('a warm server that died while idle: the lane is not reused, its other server is stopped, a fresh lane boots', { timeout: 120_000 }, async (t) => {
  const { stateDir, setup, first, entry } = await startWarm(t, db);
  const api = entry.servers.find((server) => server.name === 'api')!;
  process.kill(-api.pid, 'SIGKILL');
  await until('the api is gone', () => !isPidAlive(api.pid));
  await bootsAfresh(setup, /its server "api" \(pid \d+\) is gone/, entry.servers.map((server) => server.pid));
  assert.equal(await databaseExists(db.adminUrl, entry.databaseName!), false, 'the old lane database went with it');
});

test('a warm database dropped by hand: the lane is not reused and the run boots a fresh one', { timeout: 120_000 }, async (t) => {
  const { stateDir, setup, first, entry } = await startWarm(t, db);
  await query(db.adminUrl, `DROP DATABASE "${entry.databaseName}" WITH (FORCE)`);
  await bootsAfresh(setup, /its database .* is gone|could not be reset/, entry.servers.map((server) => server.pid));
});

test('a warm port taken by a foreign process: the lane is not reused, a fresh lane boots on other ports, the foreign process lives on', { timeout: 120_000 }, async (t) => {
  const { stateDir, setup, first, entry } = await startWarm(t, db);
  const web = entry.servers.find((server) => server.name === 'web')!;
  process.kill(-web.pid, 'SIGKILL');
  await until('the web server is gone', () => !isPidAlive(web.pid));
  // Someone else listens on the web server's port now (as soon as the kernel has let go of it).
  const foreign = net.createServer((socket) => socket.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'));
  await until('the foreign process holds the port', () =>
    new Promise<boolean>((resolve) => {
      foreign.once('error', () => resolve(false));
      foreign.listen(entry.ports.web, '127.0.0.1', () => resolve(true));
    }),
  5_000);
  t.after(() => new Promise<void>((resolve) => foreign.close(() => resolve())));
  await bootsAfresh(setup, /its server "web" \(pid \d+\) is gone/, entry.servers.map((server) => server.pid));
  assert.ok(foreign.listening, 'the foreign listener is untouched');
  const ports = (await laneEntries(stateDir)).flatMap((lane) => Object.values(lane.ports));
  assert.ok(!ports.includes(entry.ports.web!), 'no lane holds the foreign port');
});

test('the watchdog never kills a process that is not a server of its warm run, whatever the ledger says', { timeout: 120_000 }, async (t) => {
  const stateDir = await tempDir(t);
  const setup = setupFor(stateDir, { idleMs: 3_000 });
  downAfter(t, setup);
  const first = await warmRun(setup, ['shop']);
  const stranger = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { detached: true, stdio: 'ignore' });
  t.after(() => {
    try {
      process.kill(-stranger.pid!, 'SIGKILL');
    } catch {
      // gone
    }
  });
  // The ledger now names a process without the run's marks (a recycled pid, a hand-edited file).
  let api = 0;
  await laneLedger(stateDir).update((doc) => {
    const server = doc.entries[0]!.servers.find((candidate) => candidate.name === 'api')!;
    api = server.pid;
    server.pid = stranger.pid!;
  });
  await until('the watchdog tears the run down at its deadline', async () => !isPidAlive(first.watchdogPid) && (await laneEntries(stateDir)).length === 0, 30_000);
  assert.ok(isPidAlive(stranger.pid!), 'the unmarked process survives');
  // The real api server, no longer named by the ledger, still carries the run's marks: found by them, it is stopped.
  await until('the marked api server is stopped', () => !isPidAlive(api), 5_000);
});

test('`playwright test` twice with reuse: the second run says it took the warm lanes over, boots no server, its tests (and the workers DATABASE_URL) reach the taken-over lanes on the same server processes, and `down` stops them', { timeout: 180_000 }, async (t) => {
  const box = await sandbox(t, { ports: PORTS });
  t.after(() => runLanesCli(box, ['down', '--all']).then(() => undefined));
  const env = { FAULTS_REUSE: '1' };
  const first = startPlaywright(box, { config: suite('basic'), env });
  expectExit(await first.exit, 0, first.output());
  assert.match(first.output(), /reuse: no warm lane to reuse, 2 to boot/);
  assert.match(first.output(), /2 lane\(s\) of run \S+ kept warm for the next run/);
  const warm = ledger(box.stateDir, 'allocated-lanes.json');
  assert.equal(warm.length, 2);
  const pids = warm.flatMap((entry) => entry.servers!.map((server) => server.pid)).sort();
  assert.ok(pids.every(isPidAlive), 'the warm servers outlive the run');

  const second = startPlaywright(box, { config: suite('basic'), env });
  expectExit(await second.exit, 0, second.output());
  assert.match(second.output(), new RegExp(`reuse: 2 warm lane\\(s\\) of run ${first.runId} reused \\(idle \\d+ s, data reset\\), 0 to boot`));
  assert.doesNotMatch(second.output(), /\[e2e-lanes\] lane project .* up in/, 'no lane booted');
  // api.spec checks that each test's backend serves the lane's own database (its name, its one seeded row).
  const report = await second.report();
  assert.equal(report.stats.expected, 2, second.output());
  const again = ledger(box.stateDir, 'allocated-lanes.json');
  assert.deepEqual(again.flatMap((entry) => entry.servers!.map((server) => server.pid)).sort(), pids, 'the same server processes');
  assert.ok(again.every((entry) => entry.runId === first.runId));

  const down = await runLanesCli(box, ['down', '--all']);
  expectExit(down, 0, down.output);
  await until('the warm servers are stopped', () => pids.every((pid) => !isPidAlive(pid)), 10_000);
  assert.deepEqual(serverProcesses({ runIds: [first.runId] }), []);
});
