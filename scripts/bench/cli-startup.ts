/**
 * How long the `e2e-lanes` command takes to answer: `--help`, and `status` in a folder without a
 * Playwright config whose state folder holds a few lanes (one live, two dead). Runs the built CLI
 * (`npm run build` first) 10 times each, interleaved, and prints the medians.
 *
 *   node --import tsx scripts/bench/cli-startup.ts [runs]
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { laneLedger } from '../../src/lanes/records/lane-ledger.js';
import { PortAllocator } from '../../src/ports/index.js';
import { newOwner } from '../../src/state/index.js';

const BIN = new URL('../../bin/e2e-lanes.js', import.meta.url).pathname;
const runs = Number(process.argv[2] ?? 10);
if (!Number.isInteger(runs) || runs < 1 || runs > 1000) throw new Error(`runs must be a whole number from 1 to 1000, got ${process.argv[2]}`);

const dir = await mkdtemp(join(tmpdir(), 'e2e-lanes-bench-cli-'));
try {
  const stateDir = join(dir, 'state');
  const env = { ...process.env, E2E_LANES_HOST_STATE_DIR: join(dir, 'host'), E2E_LANES_RUN_ID: '' };
  process.env.E2E_LANES_HOST_STATE_DIR = env.E2E_LANES_HOST_STATE_DIR;
  await populate(stateDir);

  const commands: Array<[string, string[]]> = [
    ['--help', ['--help']],
    ['status', ['status', '--state-dir', stateDir]],
  ];
  const samples = new Map<string, number[]>(commands.map(([name]) => [name, []]));
  for (let i = 0; i < runs; i++) {
    for (const [name, args] of commands) {
      const start = performance.now();
      const result = spawnSync(process.execPath, [BIN, ...args], { cwd: dir, env, encoding: 'utf8', timeout: 30_000 });
      const ms = performance.now() - start;
      if (result.status !== 0) throw new Error(`e2e-lanes ${args.join(' ')} failed (${result.status ?? result.signal}):\n${result.stderr}`);
      samples.get(name)!.push(ms);
    }
  }
  console.log(`e2e-lanes startup, ${runs} runs each, interleaved; load average ${loadavg().map((n) => n.toFixed(2)).join(' ')}`);
  for (const [name, values] of samples) {
    const sorted = [...values].sort((a, b) => a - b);
    console.log(`  ${name.padEnd(8)} median ${median(sorted).toFixed(0)} ms  (min ${sorted[0]!.toFixed(0)}, max ${sorted.at(-1)!.toFixed(0)})`);
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}

/** A state folder with three lanes: one owned by this process, two by a dead process. */
async function populate(stateDir: string): Promise<void> {
  const dead = spawnSync(process.execPath, ['-e', '0']).pid;
  const range: [number, number] = [34500, 34599];
  await new PortAllocator({ stateDir, runId: 'live-run', range }).allocatePortsForProject('checkout');
  for (const project of ['search', 'cart']) {
    const owner = newOwner('dead-run', dead);
    await new PortAllocator({ stateDir, runId: 'dead-run', range }).allocatePortsForProject(project, { owner });
    await laneLedger(stateDir).update((doc) => {
      doc.entries.push({ runId: 'dead-run', project, owner, status: 'up', ports: {}, servers: [{ name: 'api', pid: dead, logFile: '/dev/null' }], logDir: stateDir });
    });
  }
}

function median(sorted: number[]): number {
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
