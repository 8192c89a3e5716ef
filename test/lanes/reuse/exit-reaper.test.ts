import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { DatabaseAllocator } from '../../../src/databases/index.js';
import { DATABASE_URL_ENV, OWNER_PID_ENV } from '../../../src/env-vars.js';
import { reapDeadDatabases, reapDeadRuns } from '../../../src/lanes/reaping/dead-runs.js';
import { laneLedger, type LaneEntry } from '../../../src/lanes/records/lane-ledger.js';
import { spawnWatchdog } from '../../../src/lanes/reuse/watchdog.js';
import { PortAllocator } from '../../../src/ports/index.js';
import { identityOf } from '../../../src/state/identity.js';
import { isPidAlive, newOwner } from '../../../src/state/index.js';
import { FIXTURES, query, useTestDatabases } from '../../databases/helpers.js';
import { exitReaperDone, exitReaperLog } from '../../helpers/exit-reaper.js';
import { until } from '../../helpers/marked.js';
import { killGroupsAfter } from '../../helpers/processes.js';
import { tempDir } from '../../helpers/tmp.js';

const linux = process.platform === 'linux';
const db = useTestDatabases('exitrp');
const RANGE: [number, number] = [36_300, 36_399];

/** A run with one lane (a ledger entry and its ports) in `stateDir`. */
async function recordedRun(stateDir: string, runId: string): Promise<PortAllocator> {
  const ports = new PortAllocator({ stateDir, runId, names: ['api'], range: RANGE });
  const allocated = await ports.allocatePortsForProject('shop');
  const entry: LaneEntry = { runId, project: 'shop', owner: newOwner(runId), status: 'up', ports: allocated.ports, servers: [], logDir: '/tmp/none' };
  await laneLedger(stateDir).update((doc) => void doc.entries.push(entry));
  return ports;
}

/** A process standing for the run's process (the one whose exit hook starts the reaper). */
function standIn(t: test.TestContext): { pid: number; exited: Promise<void> } {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore', detached: true });
  killGroupsAfter(t, () => [child.pid!]);
  return { pid: child.pid!, exited: new Promise((resolve) => child.once('exit', () => resolve())) };
}

async function runLeft(stateDir: string, ports: PortAllocator, runId: string): Promise<{ lanes: number; ports: number }> {
  return {
    lanes: (await laneLedger(stateDir).read()).entries.filter((entry) => entry.runId === runId).length,
    ports: (await ports.list()).filter((entry) => entry.runId === runId).length,
  };
}

test("the exit reaper leaves the run alone while the run's process lives, and tears it down once that process is gone", { skip: !linux && 'needs /proc', timeout: 60_000 }, async (t) => {
  const stateDir = await tempDir(t);
  const runId = `exit-reaper-${process.pid}`;
  const ports = await recordedRun(stateDir, runId);
  const run = standIn(t);
  const reaper = spawnWatchdog({ stateDir, runId, fromPid: run.pid, afterExit: identityOf(run.pid), leaseMs: 60_000, database: false, portRange: RANGE });
  killGroupsAfter(t, () => [reaper]);
  await sleep(1_500);
  assert.equal(isPidAlive(reaper), true, 'the reaper waits for the process');
  assert.deepEqual(await runLeft(stateDir, ports, runId), { lanes: 1, ports: 1 }, 'nothing is torn down while the process lives');
  process.kill(run.pid, 'SIGKILL');
  await run.exited;
  await until('the reaper is done', () => !isPidAlive(reaper), 20_000);
  assert.deepEqual(await runLeft(stateDir, ports, runId), { lanes: 0, ports: 0 });
  const log = await readFile(join(stateDir, 'lanes', runId, 'exit-reaper.log'), 'utf8');
  assert.match(log, new RegExp(`run ${runId} ended without its teardown \\(owner pid ${run.pid} is gone\\): tore down 0 server process\\(es\\), 0 database\\(s\\), 1 port entr`), log);
});

test('the exit reaper tears nothing down for a process it cannot judge (another PID namespace), and says so', { skip: !linux && 'needs /proc', timeout: 60_000 }, async (t) => {
  const stateDir = await tempDir(t);
  const runId = `exit-reaper-ns-${process.pid}`;
  const ports = await recordedRun(stateDir, runId);
  const run = standIn(t);
  process.kill(run.pid, 'SIGKILL');
  await run.exited;
  // The pid is gone here, but the record says it lives in another PID namespace: it proves nothing.
  const identity = { ...identityOf(process.pid), pidNs: 1 };
  const reaper = spawnWatchdog({ stateDir, runId, fromPid: run.pid, afterExit: identity, leaseMs: 60_000, database: false, portRange: RANGE });
  killGroupsAfter(t, () => [reaper]);
  await until('the reaper is done', () => !isPidAlive(reaper), 20_000);
  assert.deepEqual(await runLeft(stateDir, ports, runId), { lanes: 1, ports: 1 });
  const log = await readFile(join(stateDir, 'lanes', runId, 'exit-reaper.log'), 'utf8');
  assert.match(log, /cannot be judged here .*leaving its run to `e2e-lanes gc` and the next run/, log);
  await ports.releaseRun(runId);
});

test('the exit reaper drops the run\'s databases and roles on a server given only by E2E_LANES_DATABASE_URL (a secret its environment does not get)', { skip: !linux && 'needs /proc', timeout: 90_000 }, async (t) => {
  const stateDir = await tempDir(t);
  const runId = `exit-reaper-db-${process.pid}`;
  const saved = process.env[DATABASE_URL_ENV];
  process.env[DATABASE_URL_ENV] = db.adminUrl;
  t.after(() => (saved === undefined ? delete process.env[DATABASE_URL_ENV] : (process.env[DATABASE_URL_ENV] = saved)));
  const database = { prefix: db.prefix, migrations: join(FIXTURES, 'basic/migrations'), registry: 'file' as const, pool: 0 };
  const databases = new DatabaseAllocator({ ...database, stateDir, runId });
  t.after(async () => {
    await databases.releaseRun(runId).catch(() => undefined);
    await databases.close();
  });
  await databases.prepare();
  const lane = await databases.allocateDatabaseForProject('shop');
  const named = async (): Promise<string[]> =>
    (await query<{ name: string }>(db.adminUrl, 'SELECT datname AS name FROM pg_database WHERE datname = $1 UNION ALL SELECT rolname FROM pg_roles WHERE rolname = $1', [lane.databaseName])).map((row) => row.name);
  assert.equal((await named()).length, 2, 'the lane has its database and its role');
  const run = standIn(t);
  process.kill(run.pid, 'SIGKILL');
  await run.exited;
  const reaper = spawnWatchdog({ stateDir, runId, fromPid: run.pid, afterExit: identityOf(run.pid), leaseMs: 60_000, database });
  killGroupsAfter(t, () => [reaper]);
  await until('the reaper is done', () => !isPidAlive(reaper), 30_000);
  assert.deepEqual(await named(), [], await readFile(join(stateDir, 'lanes', runId, 'exit-reaper.log'), 'utf8'));
});

test('an exit reaper SIGKILLed at any step of its teardown leaves nothing `gc` does not reap', { skip: !linux && 'needs /proc', timeout: 180_000 }, async (t) => {
  // Where it is killed, by what its log (debug lines) shows: at once, connected, the database dropped.
  for (const step of [undefined, /using PostgreSQL/, /dropped role/]) {
    const stateDir = await tempDir(t);
    const runId = `exit-reaper-kill-${process.pid}-${randomBytes(2).toString('hex')}`;
    const database = { adminUrl: db.adminUrl, prefix: db.prefix, migrations: join(FIXTURES, 'basic/migrations'), registry: 'file' as const, pool: 0 };
    const run = standIn(t);
    const databases = new DatabaseAllocator({ ...database, stateDir, runId });
    const ports = new PortAllocator({ stateDir, runId, names: ['api'], range: RANGE });
    t.after(async () => {
      await databases.releaseRun(runId).catch(() => undefined);
      await databases.close();
      await ports.releaseRun(runId).catch(() => undefined);
    });
    await databases.prepare();
    // The run's records are owned by the stand-in process, as a run's by its runner.
    const saved = { owner: process.env[OWNER_PID_ENV], debug: process.env['DEBUG'] };
    process.env[OWNER_PID_ENV] = String(run.pid);
    const owner = newOwner(runId);
    const lane = await databases.allocateDatabaseForProject('shop');
    const allocated = await ports.allocatePortsForProject('shop');
    await laneLedger(stateDir).update((doc) => void doc.entries.push({ runId, project: 'shop', owner, status: 'up', ports: allocated.ports, servers: [], logDir: '/tmp/none' }));
    assert.equal(owner.pid, run.pid);
    const identity = identityOf(run.pid);
    process.kill(run.pid, 'SIGKILL');
    await run.exited;
    process.env['DEBUG'] = 'e2e-lanes:*';
    const reaper = spawnWatchdog({ stateDir, runId, fromPid: run.pid, afterExit: identity, leaseMs: 60_000, database, portRange: RANGE });
    for (const [name, value] of [[OWNER_PID_ENV, saved.owner], ['DEBUG', saved.debug]] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    killGroupsAfter(t, () => [reaper]);
    const log = join(stateDir, 'lanes', runId, 'exit-reaper.log');
    const seen = async (): Promise<string> => readFile(log, 'utf8').catch(() => '');
    for (let i = 0; i < 4_000 && step && !step.test(await seen()); i++) await sleep(5);
    if (step) assert.match(await seen(), step, 'the reaper got that far');
    process.kill(reaper, 'SIGKILL');
    await until('the reaper is gone', () => !isPidAlive(reaper), 10_000);
    const what = `killed ${step ? `at ${step}` : 'at once'}`;
    assert.doesNotMatch(await seen(), /ended without its teardown/, `${what}: the reaper had not finished`);
    // What the next run and `gc` do first.
    await reapDeadRuns({ stateDir, ports }, 60_000);
    await reapDeadDatabases(databases);
    const left = await query<{ name: string }>(db.adminUrl, 'SELECT datname AS name FROM pg_database WHERE datname = $1 UNION ALL SELECT rolname FROM pg_roles WHERE rolname = $1', [lane.databaseName]);
    assert.deepEqual(left, [], `${what}: the database and role are reaped`);
    assert.deepEqual(await runLeft(stateDir, ports, runId), { lanes: 0, ports: 0 }, `${what}: the records are reaped`);
  }
});

test("a LaneManager's process that dies of an uncaught error has its run torn down; one whose teardown finished starts no reaper", { skip: !linux && 'needs /proc', timeout: 120_000 }, async (t) => {
  const script = new URL('../../fixtures/exit-reaper/manager-exit.ts', import.meta.url).pathname;
  for (const mode of ['throw', 'teardown'] as const) {
    const stateDir = await tempDir(t);
    const runId = `exit-reaper-manager-${mode}-${process.pid}`;
    const options = { stateDir, runId, portRange: RANGE, database: { adminUrl: db.adminUrl, prefix: db.prefix, migrations: join(FIXTURES, 'basic/migrations'), registry: 'file' } };
    const child = spawn(process.execPath, ['--import', 'tsx', script, mode, JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    killGroupsAfter(t, () => [child.pid!]);
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    const database = /lane (\S+)/.exec(output)?.[1];
    assert.ok(database, output);
    const named = async (): Promise<number> =>
      (await query<{ n: number }>(db.adminUrl, 'SELECT (SELECT count(*) FROM pg_database WHERE datname = $1) + (SELECT count(*) FROM pg_roles WHERE rolname = $1) AS n', [database]))[0]!.n;
    if (mode === 'throw') {
      assert.notEqual(code, 0, output);
      const log = await exitReaperDone(stateDir, runId, () => output);
      assert.match(log, new RegExp(`run ${runId} ended without its teardown \\(owner pid ${child.pid} is gone\\): tore down 0 server process\\(es\\), 1 database\\(s\\), 1 port entr`));
      assert.equal(Number(await named()), 0, 'its database and role are dropped');
    } else {
      assert.equal(code, 0, output);
      await sleep(1_000);
      assert.equal(await exitReaperLog(stateDir, runId), '', 'no reaper after a finished teardown');
      assert.equal(Number(await named()), 0, 'the teardown dropped them');
    }
  }
});
