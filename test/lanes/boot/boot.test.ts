import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bootLane, type BootContext } from '../../../src/lanes/boot/boot.js';
import type { LaneEntry } from '../../../src/lanes/records/lane-ledger.js';
import { PortAllocator } from '../../../src/ports/index.js';
import { isPidAlive } from '../../../src/state/index.js';
import { killGroupsAfter } from '../../helpers/processes.js';
import { tempDir } from '../../helpers/tmp.js';

const SERVER = new URL('../../fixtures/servers/http-server.mjs', import.meta.url).pathname;

test("a lane boots its servers on its ports with the run's marks, recording each step before the next", { timeout: 60_000 }, async (t) => {
  const stateDir = await tempDir(t);
  const runId = `boot-${process.pid}`;
  const ports = new PortAllocator({ stateDir, runId, names: ['api'], range: [36_500, 36_599] });
  t.after(() => ports.releaseRun(runId));
  const recorded: LaneEntry[] = [];
  const ctx: BootContext = {
    runId,
    stateDir,
    options: { database: false, servers: [{ name: 'api', command: [process.execPath, SERVER], health: '/health' }] },
    configKey: 'cfg',
    ports,
    databases: undefined,
    outlives: false,
    record: async (entry) => void recorded.push(structuredClone(entry)),
    closing: () => false,
  };
  const { lane, servers } = await bootLane(ctx, { runId, project: 'shop' });
  killGroupsAfter(t, () => servers.map((server) => server.pid));
  assert.deepEqual(recorded.map((entry) => entry.status), ['starting', 'up']);
  assert.deepEqual(recorded[0]!.servers, [], 'the lane is recorded before any server starts');
  assert.deepEqual(recorded[1]!.servers.map((server) => server.pid), servers.map((server) => server.pid));
  assert.equal(recorded[1]!.fingerprint?.config, 'cfg');
  assert.equal(lane.baseURL, `http://localhost:${lane.ports.api}`);
  const env = (await (await fetch(`${lane.urls.api}/env`)).json()) as Record<string, string>;
  assert.equal(env.E2E_LANES_SERVER, 'api');
  assert.equal(env.E2E_LANES_RUN_ID, runId);
  assert.equal(env.PORT, String(lane.ports.api));
  assert.equal(env.E2E_LANES_KEEP, undefined, 'a lane that does not outlive the run has no keep mark');
  await servers.stopAll();
  assert.ok(servers.every((server) => !isPidAlive(server.pid)));
});
