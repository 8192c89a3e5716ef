/**
 * A state file is a cache of what the processes and databases carry themselves: with a warm run's
 * `allocated-lanes.json` truncated, its watchdog keeps watching its servers (found by their marks),
 * `status` still shows its servers, `gc` reaps nothing of it while its idle time runs, and `down --all` still finds and stops its
 * servers (which carry `E2E_LANES_KEEP=1` and this state folder's mark).
 */
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { stateFilesOf, stateOf } from '../../src/cli/context.js';
import { collectStatus } from '../../src/cli/status.js';
import { collectGarbage } from '../../src/cli/gc.js';
import { tearDownRuns } from '../../src/lanes/teardown/run-records.js';
import { warmOptions } from '../fixtures/warm/options.js';
import { useTestDatabases } from '../databases/helpers.js';
import { databaseExists, startWarm, until } from '../helpers/warm.js';
import { killGroupsAfter, runFixture } from '../helpers/processes.js';
import { tempDir } from '../helpers/tmp.js';
import { isPidAlive } from '../../src/state/index.js';

const KEEP_LANE = fileURLToPath(new URL('../fixtures/down/keep-lane.ts', import.meta.url));
const HTTP_SERVER = fileURLToPath(new URL('../fixtures/servers/http-server.mjs', import.meta.url));

const db = useTestDatabases('lostledger');

/** Whether a process runs (exists and is not a zombie). */
const runs = isPidAlive;

test('a warm run whose allocated-lanes.json is truncated: its watchdog stays, gc reaps nothing of it within its idle time, and down --all stops its servers', { timeout: 120_000 }, async (t) => {
  const { stateDir, setup, first, entry } = await startWarm(t, db, { idleMs: 120_000 });
  const servers = entry.servers.map((server) => server.pid);
  assert.equal(servers.length, 2);
  assert.ok(entry.databaseName);
  writeFileSync(join(stateDir, 'allocated-lanes.json'), '{"kind":"e2e-lanes/lanes","vers');
  await sleep(3_000); // the watchdog reads the ledger every 2 s
  assert.ok(runs(first.watchdogPid), 'the watchdog still watches the warm run');

  const options = warmOptions(setup);
  const rows = await collectStatus(stateFilesOf(options, {}));
  const shown = rows.filter((row) => row.runId === first.runId).flatMap((row) => row.servers.map((server) => server.pid));
  assert.deepEqual(shown.sort(), [...servers].sort(), `status shows the warm servers no ledger lists: ${JSON.stringify(rows)}`);
  const gc = await collectGarbage(await stateOf(options, {}), options, { dryRun: false, keepTemplates: 3 });
  assert.deepEqual(gc.killedPids, [], `gc killed nothing: ${gc.killed.join('; ')}`);
  assert.deepEqual(gc.databases, [], `watchdog ${first.watchdogPid}, lane owner ${JSON.stringify(entry.owner)}`);
  assert.deepEqual(gc.ports, []);
  assert.ok(await databaseExists(db.adminUrl, entry.databaseName!), 'the warm database is still there');
  assert.ok(servers.every(runs), 'the warm servers still run');

  const down = await tearDownRuns(await stateOf(options, {}), { all: true }, options);
  assert.ok(down.runs.includes(first.runId), `down --all found the run: ${JSON.stringify(down)}`);
  assert.deepEqual(servers.filter(runs), [], 'down --all stopped the warm servers');
  assert.ok(!(await databaseExists(db.adminUrl, entry.databaseName!)), 'down --all dropped the warm database');
  await until('the watchdog to exit', () => !runs(first.watchdogPid), 10_000);
});

test('a kept run whose three state files are lost: down --all finds its server by its marks and its database by its mark, and removes both', { timeout: 120_000 }, async (t) => {
  const stateDir = await tempDir(t);
  const line = await runFixture(KEEP_LANE, [JSON.stringify({ stateDir, portRange: [34_770, 34_789], server: HTTP_SERVER, database: { adminUrl: db.adminUrl, prefix: db.prefix } })], {
    env: { E2E_LANES_QUIET: '1', E2E_LANES_OWNER_PID: '', E2E_LANES_RUN_ID: '' },
    timeoutMs: 90_000,
  });
  const kept = JSON.parse(line.trim().split('\n').pop()!) as { runId: string; pids: number[]; databaseName: string };
  killGroupsAfter(t, () => kept.pids);
  assert.equal(kept.pids.length, 1);
  assert.ok(await databaseExists(db.adminUrl, kept.databaseName));
  for (const file of ['allocated-lanes.json', 'allocated-databases.json', 'allocated-ports.json']) rmSync(join(stateDir, file), { force: true });

  const options = { stateDir, portRange: [34_770, 34_789] as [number, number], database: { adminUrl: db.adminUrl, prefix: db.prefix, registry: 'file' as const } };
  const down = await tearDownRuns(await stateOf(options, {}), { all: true }, options);
  assert.deepEqual(down.runs, [kept.runId], 'down --all found the run by its server');
  assert.deepEqual(down.databases, [kept.databaseName], 'down --all found its database by its mark');
  assert.deepEqual(kept.pids.filter(runs), [], 'down --all stopped the kept server');
  assert.ok(!(await databaseExists(db.adminUrl, kept.databaseName)), 'the kept database is dropped');
});
