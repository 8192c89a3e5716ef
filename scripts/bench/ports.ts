/**
 * Part 3: 32 and 100 processes allocating lane ports at the same moment, with PortAllocator (one
 * shared state folder, entries owned by the bench process so they persist) and with plain get-port
 * used the same way, alternating, in one run. Counts ports handed to more than one process, errors,
 * and compares the slowest lanes (p95) against get-port's: the target is within 3×.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';
import { PortAllocator } from '../../src/index.ts';
import { childEnv, type BenchContext } from './context.ts';
import { fmtMs, fmtRatio, median, percentile, range, table, type PartResult, type TargetResult } from './measure.ts';
import type { ChildMessage, Go } from './ports-child.ts';

const CHILD = fileURLToPath(new URL('./ports-child.ts', import.meta.url));
/** Processes allocating at once, and the lanes each allocates one after another (full, quick). */
const SIZES = [
  { processes: 32, lanes: { full: 8, quick: 4 } },
  { processes: 100, lanes: { full: 4, quick: 2 } },
] as const;
const RANGE: [number, number] = [40000, 40999];
/** The target: PortAllocator's p95 lane within this factor of get-port's p95 in the same run. */
const P95_FACTOR = 3;

type Mode = 'toolkit' | 'get-port';

interface Round {
  wallMs: number;
  latencies: number[];
  /** Per process, per lane, its ports. */
  handed: number[][][];
  /** Processes that answered with an error, and the first error. */
  failed: number;
  firstError?: string;
  /** Ports recorded in the state file afterwards (toolkit only). */
  recorded?: number[];
}

export async function runPorts(ctx: BenchContext): Promise<PartResult> {
  const reps = ctx.reps();
  const most = Math.max(...SIZES.map((size) => size.processes));
  // One bundle of the child, so that 100 processes start in plain Node instead of each compiling TypeScript.
  const bundle = join(await ctx.dir('ports-child'), 'ports-child.cjs');
  buildSync({ entryPoints: [CHILD], bundle: true, platform: 'node', format: 'cjs', target: 'node20', outfile: bundle, logLevel: 'error' });
  // Forked and loaded once, before any round: the rounds time allocation, not Node's start-up.
  const children = range(most).map((index) =>
    fork(bundle, [String(index)], { env: childEnv({ E2E_LANES_OWNER_PID: String(process.pid) }), stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
  );
  const sections: string[] = [];
  const rows: string[][] = [];
  const targets: TargetResult[] = [];
  try {
    await Promise.all(children.map((child) => next(child, 'ready')));
    for (const { processes, lanes: lanesBy } of SIZES) {
      const lanes = lanesBy[ctx.options.quick ? 'quick' : 'full'];
      const group = children.slice(0, processes);
      const rounds: Record<Mode, Round[]> = { toolkit: [], 'get-port': [] };
      for (let rep = 0; rep < reps; rep++) {
        for (const mode of rep % 2 === 0 ? (['toolkit', 'get-port'] as const) : (['get-port', 'toolkit'] as const)) {
          rounds[mode].push(await round(ctx, group, mode, lanes));
        }
      }
      const toolkit = summary(rounds.toolkit, 'toolkit', processes, lanes);
      const getPort = summary(rounds['get-port'], 'get-port', processes, lanes);
      rows.push(toolkit.row, getPort.row);
      const ratio = toolkit.p95 / getPort.p95;
      targets.push(
        {
          name: `PortAllocator p95 lane vs get-port p95, ${processes} processes`,
          goal: `≤ ${P95_FACTOR}×`,
          measured: `${fmtRatio(ratio)} (${fmtMs(toolkit.p95)} vs ${fmtMs(getPort.p95)})`,
          pass: toolkit.failed === 0 && ratio <= P95_FACTOR,
        },
        { name: `PortAllocator collisions and errors, ${processes} processes`, goal: '0 and 0', measured: `${toolkit.collisions} and ${toolkit.failed}`, pass: toolkit.collisions === 0 && toolkit.failed === 0 },
      );
      if (toolkit.firstError) sections.push(`PortAllocator error at ${processes} processes: ${toolkit.firstError}`);
    }
  } finally {
    for (const child of children) child.connected ? child.disconnect() : child.kill();
    await Promise.all(children.map((child) => exited(child)));
  }
  const alone = await uncontended(ctx);
  targets.push({
    name: 'one PortAllocator lane uncontended (one process), p50',
    goal: '< 10 ms',
    measured: `${fmtMs(median(alone))} (p95 ${fmtMs(percentile(alone, 95))})`,
    pass: median(alone) < 10,
  });

  const markdown = [
    table(
      ['allocator', 'processes × lanes', 'lanes/s', 'median latency', 'p95 latency', 'ports handed out', 'errors', 'collisions (worst round)', 'state file = handed out'],
      rows,
    ),
    '',
    ...(sections.length > 0 ? [...sections, ''] : []),
    `${reps} round(s) per allocator and size, alternating; the processes are forked and loaded once, before any round (each`,
    'allocates twice with each allocator in folders and a range of its own first, so that no round pays for the first use of',
    "Node's sockets and file calls), and every round starts them together on one signal. Each process allocates its lanes of two ports (backend, frontend)",
    `one after another in the range ${RANGE[0]}-${RANGE[1]}, without binding them (as lanes do before their servers start).`,
    '',
    '- **lanes/s**: lanes allocated by all processes ÷ the wall time from the start signal to the last answer (median of rounds).',
    "- **latency**: one lane's `allocatePortsForProject` (or its two `getPort` calls), over every lane of every round.",
    '- **errors**: processes whose allocation failed (all rounds).',
    '- **collisions**: ports handed to more than one process (or lane) in one round, and how many allocations got such a port.',
    '  PortAllocator shares one state folder (`allocated-ports.json`) and one host-wide claims folder (one file per port,',
    '  created exclusively) and every entry is owned by the bench process (`E2E_LANES_OWNER_PID`), so entries persist after',
    '  each child exits. get-port only remembers ports inside one process (sindresorhus/get-port#23), so processes asking at',
    '  the same time get the same free ports.',
    '- **state file = handed out**: the ports recorded in `allocated-ports.json` afterwards are exactly the ones handed out.',
    '',
    `Uncontended, one process alone (this one) allocating ${alone.length} lanes of two ports one after another in a state folder of its own: median ${fmtMs(median(alone))}, p95 ${fmtMs(percentile(alone, 95))} per lane (after two unmeasured lanes).`,
  ].join('\n');
  return { id: 'ports', title: `3. Ports: ${SIZES.map((size) => size.processes).join(' and ')} processes allocating at once`, markdown, targets };
}

/** One lane's allocation, one process alone: latencies of `allocatePortsForProject` for lanes of two ports, after two unmeasured ones. */
async function uncontended(ctx: BenchContext): Promise<number[]> {
  const ports = new PortAllocator({ stateDir: await ctx.dir('ports-alone'), runId: ctx.fresh('p'), range: [RANGE[0], RANGE[1]] });
  const latencies: number[] = [];
  await ctx.quiet();
  for (const index of range(ctx.options.quick ? 8 : 32)) {
    const started = performance.now();
    await ports.allocatePortsForProject(`alone-${index}`, { names: ['backend', 'frontend'] });
    if (index >= 2) latencies.push(performance.now() - started);
  }
  await ports.releaseRun();
  return latencies;
}

function summary(all: Round[], mode: Mode, processes: number, lanes: number): { row: string[]; collisions: number; failed: number; p95: number; firstError?: string } {
  const latencies = all.flatMap((r) => r.latencies);
  const perSecond = median(all.map((r) => (processes * lanes) / (r.wallMs / 1000)));
  const collisions = all.map((r) => collisionsOf(r.handed));
  const worst = collisions.reduce((a, b) => (b.ports > a.ports ? b : a));
  const failed = all.reduce((sum, r) => sum + r.failed, 0);
  const stateCheck = mode === 'toolkit' ? all.every((r) => sameMultiset(r.recorded ?? [], r.handed.flat(2))) : undefined;
  const p95 = percentile(latencies, 95);
  const handedOut = processes * lanes * 2;
  const firstError = all.find((r) => r.firstError)?.firstError;
  return {
    row: [
      mode === 'toolkit' ? 'PortAllocator' : 'get-port (`portNumbers` range)',
      `${processes} × ${lanes}`,
      perSecond.toFixed(0),
      fmtMs(median(latencies)),
      fmtMs(p95),
      String(handedOut),
      String(failed),
      `${worst.ports} ports, ${worst.allocations} allocations (${((worst.allocations / handedOut) * 100).toFixed(0)} %)`,
      stateCheck === undefined ? '–' : stateCheck ? 'yes' : 'NO',
    ],
    collisions: Math.max(...collisions.map((c) => c.ports)),
    failed,
    p95,
    ...(firstError ? { firstError } : {}),
  };
}

async function round(ctx: BenchContext, children: ChildProcess[], mode: Mode, lanes: number): Promise<Round> {
  const go: Go = { type: 'go', mode, lanes, range: RANGE, stateDir: await ctx.dir('ports'), runId: ctx.fresh('p') };
  const allocator = new PortAllocator({ stateDir: go.stateDir, runId: go.runId, range: RANGE });
  await ctx.quiet();
  try {
    const answers = children.map((child) => next(child, 'done').catch((error: unknown) => error as Error));
    const started = performance.now();
    for (const child of children) child.send(go);
    const results = await Promise.all(answers);
    const wallMs = performance.now() - started;
    const done = results.filter((r): r is Extract<ChildMessage, { type: 'done' }> => !(r instanceof Error));
    const errors = results.filter((r): r is Error => r instanceof Error);
    const result: Round = { wallMs, latencies: done.flatMap((r) => r.latencies), handed: done.map((r) => r.lanes), failed: errors.length };
    if (errors[0]) result.firstError = errors[0].message;
    if (mode === 'toolkit') result.recorded = (await allocator.list()).filter((entry) => entry.runId === go.runId).flatMap((entry) => Object.values(entry.ports));
    return result;
  } finally {
    await allocator.releaseRun();
  }
}

/** The next message of `type` from `child`; rejects on an error message or an early exit. */
function next<T extends ChildMessage['type']>(child: ChildProcess, type: T): Promise<Extract<ChildMessage, { type: T }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: ChildMessage): void => {
      if (message.type === type) finish(() => resolve(message as Extract<ChildMessage, { type: T }>));
      else if (message.type === 'error') finish(() => reject(new Error(`ports child ${child.pid}: ${message.message}`)));
    };
    const onExit = (code: number | null): void => finish(() => reject(new Error(`ports child ${child.pid} exited (${code}) before "${type}"`)));
    const finish = (settle: () => void): void => {
      child.off('message', onMessage);
      child.off('exit', onExit);
      settle();
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Ports handed to more than one holder (process, or lane within a process), and the allocations that got one. */
function collisionsOf(handed: number[][][]): { ports: number; allocations: number } {
  const holders = new Map<number, number>();
  for (const holder of handed) for (const lane of holder) for (const port of lane) holders.set(port, (holders.get(port) ?? 0) + 1);
  const shared = [...holders.values()].filter((count) => count > 1);
  return { ports: shared.length, allocations: shared.reduce((sum, count) => sum + count, 0) };
}

function sameMultiset(a: readonly number[], b: readonly number[]): boolean {
  const sorted = (values: readonly number[]): string => [...values].sort((x, y) => x - y).join(',');
  return sorted(a) === sorted(b);
}
