import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { LaneManager } from '../../../src/lanes/lane-manager.js';
import type { LanesOptions } from '../../../src/lanes/options/lane-options.js';
import { endedSessionIn, MAX_RESTARTS } from '../../../src/lanes/boot/restart.js';
import { isPidAlive } from '../../../src/state/index.js';
import { FIXTURES, useTestDatabases } from '../../databases/helpers.js';
import { tempDir } from '../../helpers/tmp.js';

const CRASHING = new URL('../../fixtures/servers/crashing-server.mjs', import.meta.url).pathname;
const SERVER = new URL('../../fixtures/servers/http-server.mjs', import.meta.url).pathname;
const db = useTestDatabases('restart');

const user = (testId: string) => ({ pid: process.pid, testId, title: testId });

/** The pids the lanes ledger records for the servers of the run's lanes, by name. */
async function recordedPids(stateDir: string, runId: string): Promise<Record<string, number>> {
  const doc = JSON.parse(await readFile(join(stateDir, 'allocated-lanes.json'), 'utf8')) as { entries: Array<{ runId: string; servers: Array<{ name: string; pid: number }> }> };
  return Object.fromEntries(doc.entries.filter((entry) => entry.runId === runId).flatMap((entry) => entry.servers.map((server) => [server.name, server.pid])));
}

/** Asks the server to crash (it exits before it answers). */
async function crash(url: string): Promise<void> {
  await fetch(`${url}/crash`).then(
    () => assert.fail('the server answered /crash'),
    () => undefined,
  );
}

/** Captures the warning lines printed while the test runs. */
function captureWarnings(t: { after(fn: () => void): void }): string[] {
  const lines: string[] = [];
  const original = console.warn;
  console.warn = (...args: unknown[]) => {
    lines.push(args.map(String).join(' '));
    original(...args);
  };
  t.after(() => void (console.warn = original));
  return lines;
}

test('a lane server that dies during the run is restarted on the same port with the same environment, its dependent keeps running and the ledger records the new pid', { timeout: 90_000 }, async (t) => {
  const stateDir = await tempDir(t);
  const runId = `restart-${Math.random().toString(36).slice(2, 8)}`;
  const options: LanesOptions & { runId: string } = {
    runId,
    stateDir,
    portRange: [35_800, 35_849],
    servers: [
      { name: 'api', command: [process.execPath, CRASHING], health: '/health' },
      { name: 'web', command: [process.execPath, SERVER], health: '/health', dependsOn: ['api'], env: ({ urls }) => ({ REQUIRE_URL: `${urls.api}/health` }) },
    ],
    database: { adminUrl: db.adminUrl, migrations: join(FIXTURES, 'basic/migrations'), seed: join(FIXTURES, 'basic/seed.ts'), prefix: db.prefix },
  };
  const manager = new LaneManager(options);
  t.after(() => manager.teardown({ keep: false }));
  await manager.prepare();
  const lane = await manager.ensureLane('shop');
  const before = await recordedPids(stateDir, runId);

  await manager.beginTest('shop', undefined, user('first'));
  await crash(lane.urls.api!);
  manager.endTest('shop', undefined, user('first'), true);
  // The next test waits for the restart rather than starting on a dead server.
  await manager.beginTest('shop', undefined, user('second'));
  manager.endTest('shop', undefined, user('second'));

  const after = await recordedPids(stateDir, runId);
  assert.notEqual(after.api, before.api, 'the ledger still records the dead process');
  assert.ok(isPidAlive(after.api!), 'the recorded api process is not alive');
  assert.equal(after.web, before.web, 'the dependent was restarted too');
  assert.ok(isPidAlive(before.web!), 'the dependent died');
  assert.equal((await fetch(`${lane.urls.api}/health`)).status, 200, 'the restarted api does not answer on its port');
  const env = (await (await fetch(`${lane.urls.api}/env`)).json()) as Record<string, string>;
  assert.equal(env.PORT, String(lane.ports.api));
  assert.equal(env.DATABASE_URL, lane.databaseUrl);
  assert.equal(env.E2E_LANES_SERVER, 'api');
  assert.equal(env.E2E_LANES_RUN_ID, runId);

  // The death stays visible (for the test that was running), with the log of the process that died.
  const status = (await manager.serverStatus('shop'))!;
  const current = status.find((server) => server.name === 'api' && !server.exit)!;
  assert.equal(current.pid, after.api);
  assert.equal(current.restarts, 1);
  const death = status.find((server) => server.name === 'api' && server.exit)!;
  assert.equal(death.pid, before.api);
  assert.deepEqual(death.exit, { code: 3, signal: null });
  assert.equal(death.restarted, true);
  assert.ok(death.diedAt && Date.parse(death.diedAt) <= Date.now());
  assert.match(await readFile(death.logFile, 'utf8'), /crashing on request/);
  assert.notEqual(death.logFile, lane.logFiles.api);

  await manager.teardown({ keep: false });
  assert.ok(!isPidAlive(after.api!), 'the restarted server survived teardown');
  assert.ok(!isPidAlive(before.web!), 'the dependent survived teardown');
});

test('a server that crashes at every start after the first is given up on after the bound, with one line saying so', { timeout: 90_000 }, async (t) => {
  const stateDir = await tempDir(t);
  const runId = `restart-${Math.random().toString(36).slice(2, 8)}`;
  const warnings = captureWarnings(t);
  const manager = new LaneManager({
    runId,
    stateDir,
    portRange: [35_850, 35_899],
    database: false,
    servers: [{ name: 'api', command: [process.execPath, CRASHING], health: '/health', env: { CRASH_MARKER: join(stateDir, 'started-once') } }],
  });
  t.after(() => manager.teardown({ keep: false }));
  await manager.prepare();
  const lane = await manager.ensureLane('shop');
  await crash(lane.urls.api!);
  await manager.beginTest('shop', undefined, user('after'));
  manager.endTest('shop', undefined, user('after'));

  const given = warnings.filter((line) => line.includes('is not restarted again'));
  assert.equal(given.length, 1, `expected one give-up line, got: ${warnings.join('\n')}`);
  assert.match(given[0]!, new RegExp(`restarted ${MAX_RESTARTS} times in this run`));
  assert.match(given[0]!, /exited with code 4|crashing at start/);
  const api = (await manager.serverStatus('shop'))!.find((server) => server.name === 'api')!;
  assert.equal(api.givenUp, true);
  assert.deepEqual(api.exit, { code: 3, signal: null });
  assert.equal(api.restarts, MAX_RESTARTS);
  await assert.rejects(fetch(`${lane.urls.api}/health`), 'nothing should answer on the port');
});

test('a server stopped by the teardown is not restarted', { timeout: 60_000 }, async (t) => {
  const stateDir = await tempDir(t);
  const runId = `restart-${Math.random().toString(36).slice(2, 8)}`;
  const manager = new LaneManager({ runId, stateDir, portRange: [35_850, 35_899], database: false, servers: [{ name: 'api', command: [process.execPath, CRASHING], health: '/health' }] });
  t.after(() => manager.teardown({ keep: false }));
  await manager.prepare();
  const lane = await manager.ensureLane('shop');
  const before = await recordedPids(stateDir, runId);
  await manager.teardown({ keep: false });
  assert.ok(!isPidAlive(before.api!));
  await assert.rejects(fetch(`${lane.urls.api}/health`), 'a server answers after teardown');
});

test("a dead server's log is read for the cause of its death: an ended database session only when the log ends with its error", async (t) => {
  const dir = await tempDir(t);
  const stamp = (lines: string[]): string => lines.map((line, index) => `2026-01-01T00:00:0${index % 10}.000Z ${line}`).join('\n') + '\n';
  const cases: Array<[string, string[], boolean]> = [
    [
      'an unhandled error of an ended session, as Node prints it',
      [
        'GET /api/slow',
        '/app/server/index.js:12',
        "error: terminating connection due to administrator command",
        '    at /app/node_modules/pg-pool/index.js:45:11',
        '    at async /app/server/index.js:12:17 {',
        '  length: 116,',
        "  code: '57P01',",
        '}',
        '',
        'Node.js v20.20.2',
      ],
      true,
    ],
    [
      "a pool's 'error' listener that logs the ended session and goes on, then an exit of the app's own",
      ['idle database connection lost: terminating connection due to administrator command', 'GET /api/crash', 'crash requested: exiting with code 1'],
      false,
    ],
    ['a crash with no ended session', ['GET /', 'TypeError: undefined is not a function', '    at /app/server.js:3:1', '', 'Node.js v20.20.2'], false],
  ];
  for (const [what, lines, expected] of cases) {
    const file = join(dir, `${cases.findIndex((entry) => entry[0] === what)}.log`);
    await writeFile(file, stamp(lines));
    assert.equal(await endedSessionIn(file), expected, what);
  }
  assert.equal(await endedSessionIn(join(dir, 'missing.log')), false, 'a log that is gone');
});
