/**
 * Owners in another PID namespace: a run inside `unshare --pid --fork --mount-proc` (a container
 * that shares the host name and the kernel) records pids of its own namespace. `gc` on the host,
 * from another state folder, must judge them by lease only: it neither drops the run's lane
 * database (recorded in the server's owner table, marked with its owner) nor kills its server
 * (found in /proc by its environment marks).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { databasesStartingWith, dropDatabasesStartingWith, query } from '../databases/helpers.js';
import { runCli } from '../helpers/cli.js';
import { getTestPostgres } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from './helpers.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/namespaces/hold-lane.ts', import.meta.url));
const GC_CONFIG = 'test/fixtures/cli/gc-databases.config.ts';

/** Why PID namespaces cannot be made here, or undefined when they can. */
function namespacesUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'PID namespaces are Linux only';
  if (process.getuid?.() !== 0) return 'unshare --pid needs root';
  const probe = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'true'], { timeout: 10_000 });
  if (probe.error || probe.status !== 0) return `unshare --pid --fork --mount-proc is unavailable (${probe.error?.message ?? probe.stderr.toString().trim()})`;
  return undefined;
}

/** A pid number with no process on this host (nor the next few), for the namespaced owner to take. */
function deadHostPid(): number {
  for (let pid = 400; pid < 30_000; pid += 7) {
    if ([0, 1, 2, 3, 4, 5].every((offset) => !existsSync(`/proc/${pid + offset}`))) return pid;
  }
  throw new Error('no free pid number found');
}

/** Host pids of the lane servers that carry the run's marks. */
function markedServers(runId: string): number[] {
  const pids: number[] = [];
  for (const name of spawnSync('ls', ['/proc']).stdout.toString().split('\n')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const env = readFileSync(`/proc/${name}/environ`, 'utf8').split('\0');
      if (env.includes(`E2E_LANES_RUN_ID=${runId}`) && env.some((pair) => pair.startsWith('E2E_LANES_SERVER='))) pids.push(Number(name));
    } catch {
      // gone, or not readable
    }
  }
  return pids;
}

const unavailable = namespacesUnavailable();

test('gc on the host, from another state folder, neither drops the lane database of a live run in another PID namespace nor kills its server', { timeout: 90_000, skip: unavailable }, async (t) => {
  const server = await getTestPostgres();
  const prefix = `ns${randomBytes(3).toString('hex')}`;
  const runId = `ns-${randomBytes(4).toString('hex')}`;
  t.after(async () => {
    await dropDatabasesStartingWith(server.adminUrl, `${prefix}_`).catch(() => undefined);
    await query(server.adminUrl.replace(/\/[^/?]*(\?|$)/, '/e2e_lanes$1'), 'DELETE FROM e2e_lanes.lane_databases WHERE prefix = $1', [prefix]).catch(() => undefined);
    await server.release();
  });
  const inside = await tempDir(t);
  const outside = await tempDir(t);
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('E2E_LANES_') && key !== 'NODE_TEST_CONTEXT') env[key] = value;
  const input = { stateDir: inside, adminUrl: server.adminUrl, prefix, runId, portRange: [34_600, 34_649], pidAtLeast: deadHostPid() };
  const run = spawn('unshare', ['--pid', '--fork', '--mount-proc', process.execPath, '--import', 'tsx', FIXTURE, JSON.stringify(input)], { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  run.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  run.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  // Killing the namespace's first process ends every process of the namespace.
  t.after(() => {
    try {
      process.kill(-run.pid!, 'SIGKILL');
    } catch {
      // gone
    }
  });
  const line = await waitFor('the namespaced run to hold its lane', () => output.split('\n').find((text) => text.startsWith('{"runId"')), {
    timeoutMs: 60_000,
    abortIf: () => (run.exitCode !== null ? `it exited:\n${output}` : undefined),
  });
  const lane = JSON.parse(line) as { ownerPid: number; databaseName: string };
  assert.ok(lane.ownerPid >= input.pidAtLeast, `the owner's pid in its namespace (${lane.ownerPid}) is one without a process on the host`);
  assert.ok(!existsSync(`/proc/${lane.ownerPid}`), `no process ${lane.ownerPid} on the host`);
  const servers = markedServers(runId);
  assert.equal(servers.length, 1, 'the lane server is seen on the host by its marks');

  const gc = await runCli(['--config', GC_CONFIG, '--state-dir', outside, 'gc'], { GC_TEST_PREFIX: prefix, E2E_LANES_DATABASE_URL: server.adminUrl, E2E_LANES_REGISTRY: 'postgres', E2E_LANES_OWNER_PID: '' });
  assert.equal(gc.code, 0, gc.stderr);
  assert.deepEqual(await databasesStartingWith(server.adminUrl, lane.databaseName), [lane.databaseName], `gc left the lane database alone:\n${gc.stdout}`);
  assert.ok(existsSync(`/proc/${servers[0]}`), `gc left the lane server alone:\n${gc.stdout}`);
  assert.doesNotMatch(gc.stdout, new RegExp(`database ${lane.databaseName}|killed`));
  assert.equal(run.exitCode, null, `the namespaced run still runs:\n${output}`);
});
