import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { mkdir, readdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { isLanesError } from '../../src/errors.js';
import { LaneManager } from '../../src/lanes/lane-manager.js';
import type { LanesOptions } from '../../src/lanes/options/lane-options.js';
import { processGroupOf } from '../../src/lanes/reaping/process-marks.js';
import { laneLedger } from '../../src/lanes/records/lane-ledger.js';
import { isPidAlive, newOwner } from '../../src/state/index.js';
import { FIXTURES, query, useTestDatabases } from '../databases/helpers.js';
import { tempDir } from '../helpers/tmp.js';

const SERVER = new URL('../fixtures/servers/http-server.mjs', import.meta.url).pathname;
const ESCAPE_CHILD = new URL('../fixtures/servers/escape-child.mjs', import.meta.url).pathname;

/** The pid a fixture wrote to `file`, waiting for it at most 5 s. */
async function waitForPid(file: string): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const pid = Number(await readFile(file, 'utf8').catch(() => ''));
    if (Number.isInteger(pid) && pid > 0) return pid;
    await sleep(50);
  }
  throw new Error(`no pid in ${file} after 5 s`);
}
const db = useTestDatabases('lanes');

function options(stateDir: string, extra: Partial<LanesOptions> = {}): LanesOptions & { runId: string } {
  return {
    runId: `lanes-${Math.random().toString(36).slice(2, 8)}`,
    stateDir,
    portRange: [35_000, 35_199],
    servers: [
      { name: 'api', command: [process.execPath, SERVER], health: '/health' },
      // The web server refuses to start unless the api answers: dependsOn must order them.
      { name: 'web', command: [process.execPath, SERVER], health: '/health', dependsOn: ['api'], env: ({ urls }) => ({ REQUIRE_URL: `${urls.api}/health` }) },
    ],
    database: { adminUrl: db.adminUrl, migrations: join(FIXTURES, 'basic/migrations'), seed: join(FIXTURES, 'basic/seed.ts'), prefix: db.prefix },
    ...extra,
  };
}

async function databaseExists(name: string): Promise<boolean> {
  return (await query(db.adminUrl, 'SELECT 1 FROM pg_database WHERE datname = $1', [name])).length === 1;
}

test('boots a lane once however many workers ask at the same time, and tears it all down', { timeout: 90_000 }, async (t) => {
  const stateDir = await tempDir(t);
  const manager = new LaneManager(options(stateDir));
  t.after(() => manager.teardown({ keep: false }));
  await manager.prepare();
  const lanes = await Promise.all([manager.ensureLane('checkout'), manager.ensureLane('checkout'), manager.ensureLane('checkout')]);
  assert.deepEqual(lanes[1], lanes[0]);
  assert.deepEqual(lanes[2], lanes[0]);
  const lane = lanes[0]!;
  assert.equal(lane.baseURL, lane.urls.web, 'the last server with a health check is the base');
  assert.equal((await fetch(`${lane.urls.web}/health`)).status, 200);
  const env = (await (await fetch(`${lane.urls.api}/env`)).json()) as Record<string, string>;
  assert.equal(env.PORT, String(lane.ports.api));
  assert.equal(env.WEB_URL, lane.urls.web);
  assert.equal(env.DATABASE_URL, lane.databaseUrl);
  assert.equal(env.E2E_LANES_SERVER, 'api');
  const items = await query<{ name: string }>(lane.databaseUrl!, 'SELECT name FROM "Item" ORDER BY id');
  assert.deepEqual(items.map((row) => row.name), ['alpha', 'beta']);

  const ledger = JSON.parse(await readFile(join(stateDir, 'allocated-lanes.json'), 'utf8')) as { entries: Array<{ status: string; servers: Array<{ pid: number }> }> };
  assert.equal(ledger.entries.length, 1);
  assert.equal(ledger.entries[0]!.status, 'up');
  const pids = ledger.entries[0]!.servers.map((server) => server.pid);

  await manager.teardown({ keep: false });
  assert.ok(pids.every((pid) => !isPidAlive(pid)), 'servers survived teardown');
  assert.equal(await databaseExists(lane.databaseName!), false);
  for (const file of ['allocated-lanes.json', 'allocated-ports.json', 'allocated-databases.json']) {
    const doc = JSON.parse(await readFile(join(stateDir, file), 'utf8')) as { entries: Array<{ runId: string }> };
    assert.deepEqual(doc.entries.filter((entry) => entry.runId === manager.runId), [], file);
  }
});

test('gives each project, and each worker with worker isolation (`{ worker }`, as the allocators take it), a lane of its own, and resets the one asked for', { timeout: 90_000 }, async (t) => {
  const manager = new LaneManager(options(await tempDir(t), { servers: [] }));
  t.after(() => manager.teardown({ keep: false }));
  const [a, b, w0, w1] = await Promise.all([
    manager.ensureLane('a'),
    manager.ensureLane('b'),
    manager.ensureLane('a', { worker: 0 }),
    manager.ensureLane('a', { worker: 1 }),
  ]);
  const names = [a, b, w0, w1].map((lane) => lane.databaseName);
  assert.equal(new Set(names).size, 4);
  assert.match(w1.databaseName!, /_w1$/);
  // The deprecated form, a worker index alone, names the same lane.
  assert.equal((await manager.ensureLane('a', 1)).databaseName, w1.databaseName);
  await query(a.databaseUrl!, `INSERT INTO "Item" (name) VALUES ('only in a')`);
  const inB = await query<{ name: string }>(b.databaseUrl!, 'SELECT name FROM "Item"');
  assert.ok(!inB.some((row) => row.name === 'only in a'));
  // resetLane takes the worker with the strategy, as DatabaseAllocator.resetDatabaseForProject does.
  await query(w1.databaseUrl!, `INSERT INTO "Item" (name) VALUES ('only in w1')`);
  await query(w0.databaseUrl!, `INSERT INTO "Item" (name) VALUES ('only in w0')`);
  assert.equal((await manager.resetLane('a', { worker: 1, strategy: 'truncate' })).strategy, 'truncate');
  assert.ok(!(await query<{ name: string }>(w1.databaseUrl!, 'SELECT name FROM "Item"')).some((row) => row.name === 'only in w1'));
  assert.ok((await query<{ name: string }>(w0.databaseUrl!, 'SELECT name FROM "Item"')).some((row) => row.name === 'only in w0'), "worker 0's lane is left alone");
  await manager.resetLane('a', 0, { strategy: 'truncate' }); // the deprecated form
  assert.ok(!(await query<{ name: string }>(w0.databaseUrl!, 'SELECT name FROM "Item"')).some((row) => row.name === 'only in w0'));
});

test('a lane whose server never gets healthy fails with its log and leaves nothing behind', { timeout: 90_000 }, async (t) => {
  const stateDir = await tempDir(t);
  const manager = new LaneManager(
    options(stateDir, { servers: [{ name: 'api', command: [process.execPath, SERVER], health: '/health', timeout: 1_500, env: { HEALTH_STATUS: '503' } }] }),
  );
  t.after(() => manager.teardown({ keep: false }));
  await assert.rejects(manager.ensureLane('broken'), (error) => {
    assert.ok(isLanesError(error, 'SERVER_START_TIMEOUT'));
    assert.match(error.message, /listening on \d+/);
    return true;
  });
  for (const file of ['allocated-lanes.json', 'allocated-ports.json', 'allocated-databases.json']) {
    const doc = JSON.parse(await readFile(join(stateDir, file), 'utf8')) as { entries: Array<{ runId: string; project: string }> };
    assert.deepEqual(doc.entries.filter((entry) => entry.project === 'broken'), [], file);
  }
  // Templates and their ready copies stay (caches); no lane database does.
  const left = await query(db.adminUrl, "SELECT datname FROM pg_database WHERE datname LIKE $1 AND datname NOT LIKE '%\\_tpl\\_%' AND datname NOT LIKE '%\\_pool\\_%'", [`${db.prefix}_%`]);
  assert.deepEqual(left, []);
});

test('a lane booted ahead is the one its project then gets, booted once', { timeout: 90_000 }, async (t) => {
  const stateDir = await tempDir(t);
  const manager = new LaneManager(options(stateDir));
  t.after(() => manager.teardown({ keep: false }));
  manager.prefetchLane('ahead');
  manager.prefetchLane('ahead'); // booting already: nothing more
  const [booted] = await manager.lanes(); // waits for the boot under way
  assert.equal(booted?.project, 'ahead');
  assert.equal((await fetch(`${booted.urls.web}/health`)).status, 200);
  const lane = await manager.ensureLane('ahead');
  assert.deepEqual(lane, booted);
  const ledger = JSON.parse(await readFile(join(stateDir, 'allocated-lanes.json'), 'utf8')) as { entries: Array<{ project: string }> };
  assert.deepEqual(ledger.entries.map((entry) => entry.project), ['ahead']);
});

test('a lane whose boot ahead failed is not booted again: every request gets that boot\'s error, marked as remembered', { timeout: 90_000 }, async (t) => {
  const stateDir = await tempDir(t);
  const starts = join(stateDir, 'starts.txt');
  const failing = [process.execPath, '-e', "require('node:fs').appendFileSync(process.env.STARTS, 'x'); process.exit(3)"];
  const manager = new LaneManager(options(stateDir, { servers: [{ name: 'api', command: failing, health: '/health', env: { STARTS: starts } }] }));
  t.after(() => manager.teardown({ keep: false }));
  manager.prefetchLane('doomed');
  assert.deepEqual(await manager.lanes(), []); // the boot ended, in failure, with nobody asking
  for (let request = 1; request <= 3; request++) {
    const started = Date.now();
    await assert.rejects(
      manager.ensureLane('doomed'),
      (error) => isLanesError(error, 'SERVER_EXITED') && /failed to boot at \d\d:\d\d:\d\d UTC and is not booted again in this run; this is the remembered error of that first boot:\nServer "api" for project "doomed" exited with code 3/.test(error.message) && error.hint !== undefined,
    );
    assert.ok(Date.now() - started < 500, `request ${request} failed at once`);
  }
  assert.equal(await readFile(starts, 'utf8'), 'x', 'the server was started once');
});

test('a lane whose first requested boot failed fails every later request at once, with the same code', { timeout: 90_000 }, async (t) => {
  const stateDir = await tempDir(t);
  const starts = join(stateDir, 'starts.txt');
  const failing = [process.execPath, '-e', "require('node:fs').appendFileSync(process.env.STARTS, 'x'); process.exit(3)"];
  const manager = new LaneManager(options(stateDir, { servers: [{ name: 'api', command: failing, health: '/health', env: { STARTS: starts } }] }));
  t.after(() => manager.teardown({ keep: false }));
  const first = await Promise.allSettled([manager.ensureLane('broken-once'), manager.ensureLane('broken-once')]);
  for (const result of first) {
    assert.ok(result.status === 'rejected' && isLanesError(result.reason, 'SERVER_EXITED') && !/remembered/.test(result.reason.message), 'the first requests get the error itself');
  }
  await assert.rejects(manager.ensureLane('broken-once'), (error) => isLanesError(error, 'SERVER_EXITED') && error.details.remembered === true);
  await assert.rejects(manager.ensureLane('broken-once', 0), (error) => isLanesError(error, 'SERVER_EXITED') && error.details.remembered === undefined, 'another lane boots on its own');
  assert.equal(await readFile(starts, 'utf8'), 'xx', 'one start for each lane');
});

test('teardown while a lane boots ahead leaves nothing of it behind', { timeout: 90_000 }, async (t) => {
  const stateDir = await tempDir(t);
  const manager = new LaneManager(options(stateDir));
  t.after(() => manager.teardown({ keep: false }));
  await manager.prepare();
  manager.prefetchLane('late');
  await manager.teardown({ keep: false });
  manager.prefetchLane('later'); // after teardown: ignored
  assert.deepEqual(await manager.lanes(), []);
  for (const file of ['allocated-lanes.json', 'allocated-ports.json', 'allocated-databases.json']) {
    const doc = JSON.parse(await readFile(join(stateDir, file), 'utf8')) as { entries: Array<{ runId: string }> };
    assert.deepEqual(doc.entries.filter((entry) => entry.runId === manager.runId), [], file);
  }
  // Templates and their ready copies stay (caches); no lane database does.
  const left = await query(db.adminUrl, "SELECT datname FROM pg_database WHERE datname LIKE $1 AND datname NOT LIKE '%\\_tpl\\_%' AND datname NOT LIKE '%\\_pool\\_%'", [`${db.prefix}_%`]);
  assert.deepEqual(left, []);
});

test('teardown also kills a child that left its server\'s process group, and only processes of this run', { timeout: 60_000 }, async (t) => {
  const stateDir = await tempDir(t);
  const childPidFile = join(stateDir, 'child.pid');
  const escaping = { name: 'api', command: [process.execPath, ESCAPE_CHILD], health: '/', stopTimeout: 500, env: { CHILD_PID_FILE: childPidFile } };
  const manager = new LaneManager(options(stateDir, { servers: [escaping], database: false }));
  // A process with the marks of another run (same owner): teardown must leave it alone.
  const other = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], {
    detached: true,
    stdio: 'ignore',
    env: { ...process.env, E2E_LANES_SERVER: 'api', E2E_LANES_RUN_ID: `${manager.runId}-other`, E2E_LANES_OWNER_PID: String(process.pid) },
  });
  other.unref();
  let child: number | undefined;
  t.after(() => {
    for (const pid of [child, other.pid]) {
      try {
        if (pid) process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    return manager.teardown({ keep: false });
  });
  const lane = await manager.ensureLane('escape');
  assert.equal((await fetch(lane.urls.api!)).status, 200);
  child = await waitForPid(childPidFile);
  const [server] = JSON.parse(await readFile(join(stateDir, 'allocated-lanes.json'), 'utf8')).entries[0].servers as Array<{ pid: number }>;
  assert.notEqual(processGroupOf(child), server!.pid, 'the child left the server\'s process group');
  await manager.teardown({ keep: false });
  assert.equal(isPidAlive(server!.pid), false, 'the server is gone');
  assert.equal(isPidAlive(child), false, 'the child that left the group is gone too');
  assert.equal(isPidAlive(other.pid!), true, 'a process of another run is left alone');
});

test('a port taken after the check, while the server was still starting (EADDRINUSE in its log), is retried with new ports', { timeout: 60_000 }, async (t) => {
  const squatters: net.Server[] = [];
  t.after(() => Promise.all(squatters.map((squatter) => new Promise((resolve) => squatter.close(resolve)))));
  const taken: number[] = [];
  // The server listens 1 s after it starts; on the first attempt a foreign process takes its port 300 ms in.
  const slow = {
    name: 'api',
    command: [process.execPath, SERVER],
    health: '/health',
    env: ({ ports }: { ports: Record<string, number> }) => {
      if (taken.length === 0) {
        const port = ports.api!;
        taken.push(port);
        setTimeout(() => {
          const squatter = net.createServer((socket) => socket.destroy());
          squatter.listen(port, '127.0.0.1');
          squatters.push(squatter);
        }, 300);
      }
      return { LISTEN_DELAY_MS: '1000' };
    },
  };
  const manager = new LaneManager(options(await tempDir(t), { servers: [slow], database: false }));
  t.after(() => manager.teardown({ keep: false }));
  const warnings: string[] = [];
  t.mock.method(console, 'warn', (message: string) => void warnings.push(message));
  const lane = await manager.ensureLane('squatted');
  assert.equal(taken.length, 1);
  assert.notEqual(lane.ports.api, taken[0], 'the lane got a new port');
  assert.equal((await fetch(`${lane.urls.api}/health`)).status, 200);
  assert.match(warnings.join(''), new RegExp(`Port ${taken[0]} of server "api" for project "squatted" was taken by another process after it was checked: .*EADDRINUSE.* Trying new ports for project "squatted" .*\\(attempt 2 of 3\\)`));
});

test('keeps the log folders of the last runs only (keepLogs, default 5), never those of a live run', { timeout: 30_000 }, async (t) => {
  const stateDir = await tempDir(t);
  const lanes = join(stateDir, 'lanes');
  // Ten earlier runs, one minute apart; the oldest one is still alive (it holds a lane).
  const runs = Array.from({ length: 10 }, (_, index) => `old-run-${index}`);
  for (const [index, run] of runs.entries()) {
    await mkdir(join(lanes, run, 'project-abc123'), { recursive: true });
    await writeFile(join(lanes, run, 'project-abc123', 'backend.log'), 'log\n');
    const when = new Date(Date.now() - (runs.length - index) * 60_000);
    await utimes(join(lanes, run), when, when);
  }
  await laneLedger(stateDir).update((doc) => {
    doc.entries.push({ runId: 'old-run-0', project: 'p', owner: newOwner('old-run-0'), status: 'up', ports: {}, servers: [], logDir: join(lanes, 'old-run-0') });
  });
  const left = async (): Promise<string[]> => (await readdir(lanes)).sort();

  await new LaneManager(options(stateDir, { servers: [], database: false })).prepare();
  assert.deepEqual(await left(), ['old-run-0', 'old-run-5', 'old-run-6', 'old-run-7', 'old-run-8', 'old-run-9'], 'the 5 newest and the live one');
  await new LaneManager(options(stateDir, { servers: [], database: false, keepLogs: 2 })).prepare();
  assert.deepEqual(await left(), ['old-run-0', 'old-run-8', 'old-run-9']);
  await new LaneManager(options(stateDir, { servers: [], database: false, keepLogs: 0 })).prepare();
  assert.deepEqual(await left(), ['old-run-0']);
  for (const keepLogs of [-1, 1.5, '3' as never]) {
    assert.throws(() => new LaneManager({ keepLogs }), (error) => isLanesError(error, 'INVALID_OPTION') && error.message.includes('keepLogs'));
  }
});

test("lane URLs, health checks, baseURL and <NAME>_URL variables use localhost by default, 127.0.0.1 with host: '127.0.0.1'", { timeout: 60_000 }, async (t) => {
  const manager = new LaneManager(options(await tempDir(t), { database: false }));
  t.after(() => manager.teardown({ keep: false }));
  const lane = await manager.ensureLane('cookies');
  assert.equal(lane.urls.api, `http://localhost:${lane.ports.api}`);
  assert.equal(lane.urls.web, `http://localhost:${lane.ports.web}`);
  assert.equal(lane.baseURL, lane.urls.web);
  const env = (await (await fetch(`${lane.urls.api}/env`)).json()) as Record<string, string>;
  assert.equal(env.WEB_URL, `http://localhost:${lane.ports.web}`);
  assert.equal(env.REQUIRE_URL, undefined);
  const web = (await (await fetch(`${lane.urls.web}/env`)).json()) as Record<string, string>;
  assert.equal(web.REQUIRE_URL, `http://localhost:${lane.ports.api}/health`, 'a dependent server sees the URL with the host');
  for (const host of ['example.com', '::1', '']) {
    assert.throws(() => new LaneManager({ host: host as never }), (error) => isLanesError(error, 'INVALID_OPTION') && error.message.includes('host'));
  }
  const numeric = new LaneManager(options(await tempDir(t), { database: false, host: '127.0.0.1' }));
  t.after(() => numeric.teardown({ keep: false }));
  const plain = await numeric.ensureLane('plain');
  assert.equal(plain.urls.api, `http://127.0.0.1:${plain.ports.api}`);
  assert.equal(plain.baseURL, `http://127.0.0.1:${plain.ports.web}`);
  const plainWeb = (await (await fetch(`${plain.urls.web}/env`)).json()) as Record<string, string>;
  assert.equal(plainWeb.API_URL, `http://127.0.0.1:${plain.ports.api}`);
});

test('bad lane options are rejected with INVALID_OPTION naming the value', () => {
  for (const prefetch of [-1, 1.5, Number.NaN]) {
    assert.throws(() => new LaneManager({ prefetch }), (error) => isLanesError(error, 'INVALID_OPTION') && error.message.includes('prefetch'));
  }
  assert.throws(() => new LaneManager({ isolation: 'everything' as never }), (error) => isLanesError(error, 'INVALID_OPTION') && error.message.includes('"everything"'));
});
