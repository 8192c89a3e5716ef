import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { isLanesError } from '../../src/errors.js';
import { LaneManager } from '../../src/lanes/lane-manager.js';
import type { LanesOptions } from '../../src/lanes/options/lane-options.js';
import { lanePortEntries, ledger, newRunId, sandbox, serverProcesses, SUITES_DIR, waitFor } from './helpers.ts';

// Ports 6700-6799: this file's block. These races are driven in-process through the LaneManager,
// without Postgres (database: false) and without Playwright, so they can be timed exactly.
const PORTS = [6700, 6799] as const;

function lanes(stateDir: string, extra: Partial<LanesOptions> = {}): LanesOptions & { runId: string } {
  return {
    runId: newRunId('race'),
    stateDir,
    portRange: [...PORTS],
    database: false,
    servers: [{ name: 'backend', command: [process.execPath, join(SUITES_DIR, 'backend.mjs')], health: '/health' }],
    ...extra,
  };
}

test('a lane asked for once teardown has begun is refused, and the lane booting meanwhile is stopped', { timeout: 60_000 }, async (t) => {
  const box = await sandbox(t, { ports: PORTS, databases: false });
  const options = lanes(box.stateDir, {
    servers: [{ name: 'backend', command: [process.execPath, join(SUITES_DIR, 'backend.mjs')], health: '/health', env: { FAULTS_START_DELAY_MS: '1500' } }],
  });
  box.runIds.push(options.runId);
  const manager = new LaneManager(options);
  box.defer(() => manager.teardown({ keep: false }));

  const booting = manager.ensureLane('first');
  await waitFor('the first backend to be spawned', () => serverProcesses({ runIds: [options.runId] }).length === 1, { timeoutMs: 20_000 });
  const teardown = manager.teardown({ keep: false });
  await assert.rejects(manager.ensureLane('second'), (error) => isLanesError(error, 'INTERRUPTED') && /is being torn down/.test(error.message));
  await teardown;
  await booting.catch(() => undefined);

  assert.deepEqual(serverProcesses({ runIds: [options.runId] }), [], 'no server of the run is left');
  assert.deepEqual(lanePortEntries(box.stateDir, [options.runId]), [], 'no port entry of the run is left');
  assert.deepEqual(ledger(box.stateDir, 'allocated-lanes.json').filter((entry) => entry.runId === options.runId), []);
});

test('a port taken by a foreign process between allocation and start: the lane boots on new ports', { timeout: 60_000 }, async (t) => {
  const box = await sandbox(t, { ports: PORTS, databases: false });
  let thief: Server | undefined;
  box.defer(() => thief?.close());
  // The definition's env is computed after the ports were handed out and before the port check:
  // the moment a process outside this state folder could bind the port.
  const options = lanes(box.stateDir, {
    servers: [
      {
        name: 'backend',
        command: [process.execPath, join(SUITES_DIR, 'backend.mjs')],
        health: '/health',
        env: ({ ports }) => {
          thief ??= createServer().listen(ports.backend, '127.0.0.1');
          return {};
        },
      },
    ],
  });
  box.runIds.push(options.runId);
  const manager = new LaneManager(options);
  box.defer(() => manager.teardown({ keep: false }));

  const lane = await manager.ensureLane('victim');
  const stolen = (thief!.address() as { port: number }).port;
  assert.notEqual(lane.ports.backend, stolen, 'the lane moved to another port');
  assert.equal((await fetch(`${lane.urls.backend}/health`)).status, 200);
  assert.deepEqual(lanePortEntries(box.stateDir, [options.runId]).map((entry) => entry.ports), [lane.ports], 'the ledger records the new port');
  assert.deepEqual(ledger(box.stateDir, 'allocated-lanes.json').find((entry) => entry.runId === options.runId)?.ports, lane.ports);

  await manager.teardown({ keep: false });
  assert.deepEqual(serverProcesses({ runIds: [options.runId] }), []);
});
