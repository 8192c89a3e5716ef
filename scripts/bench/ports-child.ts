/**
 * One of the processes of part 3, forked once by ports.ts and reused for every round: on each
 * "go" it allocates the ports of `lanes` lanes (two ports each) one after another, with
 * PortAllocator or with plain get-port, and reports each lane's latency and ports. Never binds
 * anything. Its PortAllocator entries are owned by the bench process (E2E_LANES_OWNER_PID, and the
 * `owner` option, so that the child keeps no heartbeat of a round the bench process releases).
 */
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

process.on('message', (go: Go) => {
  round(go).then(send, (error: unknown) => send({ type: 'error', message: (error as Error).message }));
});
process.on('disconnect', () => process.exit(0));

void send({ type: 'ready' });
