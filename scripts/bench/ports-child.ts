/**
 * One of the processes of part 3, forked once by ports.ts and reused for every round: on each
 * "go" it allocates the ports of `lanes` lanes (two ports each) one after another, with
 * PortAllocator or with plain get-port, and reports each lane's latency and ports. Never binds
 * anything. Its PortAllocator entries are owned by the bench process (E2E_LANES_OWNER_PID, and the
 * `owner` option, so that the child keeps no heartbeat of a round the bench process releases).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import getPort, { clearLockedPorts, portNumbers } from 'get-port';
import { PortAllocator } from '../../src/ports/index.ts';
import { newOwner } from '../../src/state/index.ts';

export interface Go {
  type: 'go';
  mode: 'toolkit' | 'get-port';
  lanes: number;
  range: [number, number];
  stateDir: string;
  runId: string;
}

export type ChildMessage =
  | { type: 'ready' }
  | { type: 'done'; latencies: number[]; lanes: number[][] }
  | { type: 'error'; message: string };

const index = process.argv[2];
/** Ports of the warm-up, away from the rounds' range. */
const WARM_RANGE: [number, number] = [41000, 41999];

function send(message: ChildMessage): Promise<void> {
  return new Promise((resolve) => process.send!(message, () => resolve()));
}

async function round(go: Go): Promise<ChildMessage> {
  const allocator = go.mode === 'toolkit' ? new PortAllocator({ range: go.range, stateDir: go.stateDir, runId: go.runId, names: ['backend', 'frontend'] }) : undefined;
  clearLockedPorts(); // get-port's memory of earlier rounds
  const latencies: number[] = [];
  const lanes: number[][] = [];
  for (let lane = 0; lane < go.lanes; lane++) {
    const started = performance.now();
    // Owned by the bench process, which releases the round: no heartbeat timer per round in this child.
    if (allocator) lanes.push(Object.values((await allocator.allocatePortsForProject(`proc-${index}-lane-${lane}`, { owner: newOwner(go.runId) })).ports));
    else lanes.push([await getPort({ port: portNumbers(...go.range) }), await getPort({ port: portNumbers(...go.range) })]);
    latencies.push(performance.now() - started);
  }
  return { type: 'done', latencies, lanes };
}

/**
 * Two allocations of each kind in a folder, host folder and range of this process's own, before
 * "ready": the rounds time allocation, not the first use of Node's sockets and file calls.
 */
async function warmUp(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'e2e-lanes-bench-warm-'));
  const previous = process.env.E2E_LANES_HOST_STATE_DIR;
  process.env.E2E_LANES_HOST_STATE_DIR = join(dir, 'host');
  try {
    const allocator = new PortAllocator({ range: WARM_RANGE, stateDir: join(dir, 'state'), runId: 'warm', names: ['backend', 'frontend'] });
    for (let lane = 0; lane < 2; lane++) await allocator.allocatePortsForProject(`warm-${lane}`, { owner: newOwner('warm') });
    await allocator.releaseRun('warm');
    for (let port = 0; port < 2; port++) await getPort({ port: portNumbers(...WARM_RANGE) });
    clearLockedPorts();
  } finally {
    if (previous === undefined) delete process.env.E2E_LANES_HOST_STATE_DIR;
    else process.env.E2E_LANES_HOST_STATE_DIR = previous;
    await rm(dir, { recursive: true, force: true });
  }
}

process.on('message', (go: Go) => {
  round(go).then(send, (error: unknown) => send({ type: 'error', message: (error as Error).message }));
});
process.on('disconnect', () => process.exit(0));

void warmUp().then(
  () => send({ type: 'ready' }),
  (error: unknown) => send({ type: 'error', message: `warm-up: ${(error as Error).message}` }),
);
