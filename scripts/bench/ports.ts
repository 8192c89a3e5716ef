/**
 * Part 3: 32 processes allocating lane ports at the same moment, with PortAllocator (one shared
 * state folder, entries owned by the bench process so they persist) and with plain get-port used
 * the same way. Counts ports handed to more than one process.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { PortAllocator } from '../../src/index.ts';
import { childEnv, type BenchContext } from './context.ts';
import { fmtMs, median, percentile, range, table, type PartResult } from './measure.ts';
import type { ChildMessage, Go } from './ports-child.ts';

const CHILD = fileURLToPath(new URL('./ports-child.ts', import.meta.url));
const PROCESSES = 32;
const RANGE: [number, number] = [40000, 40999];

type Mode = 'toolkit' | 'get-port';

interface Round {
  wallMs: number;
  latencies: number[];
  /** Per process, per lane, its ports. */
  handed: number[][][];
  /** Ports recorded in the state file afterwards (toolkit only). */
  recorded?: number[];
}

export async function runPorts(ctx: BenchContext): Promise<PartResult> {
  const lanes = ctx.options.quick ? 4 : 8;
  const reps = ctx.reps();
  const rounds: Record<Mode, Round[]> = { toolkit: [], 'get-port': [] };
  // Forked and loaded once, before any round: the rounds time allocation, not Node's start-up.
  const children = range(PROCESSES).map((index) =>
    fork(CHILD, [String(index)], { execArgv: ['--import', 'tsx'], env: childEnv({ E2E_LANES_OWNER_PID: String(process.pid) }), stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
  );
  try {
    await Promise.all(children.map((child) => next(child, 'ready')));
    for (let rep = 0; rep < reps; rep++) {
      for (const mode of rep % 2 === 0 ? (['toolkit', 'get-port'] as const) : (['get-port', 'toolkit'] as const)) {
        rounds[mode].push(await round(ctx, children, mode, lanes));
      }
    }
  } finally {
    for (const child of children) child.connected ? child.disconnect() : child.kill();
    await Promise.all(children.map((child) => exited(child)));
  }

  const summary = (mode: Mode): { row: string[]; collisions: number } => {
    const all = rounds[mode];
    const latencies = all.flatMap((r) => r.latencies);
    const perSecond = median(all.map((r) => (PROCESSES * lanes) / (r.wallMs / 1000)));
    const collisions = all.map((r) => collisionsOf(r.handed));
    const worst = collisions.reduce((a, b) => (b.ports > a.ports ? b : a));
    const stateCheck = mode === 'toolkit' ? all.every((r) => sameMultiset(r.recorded ?? [], r.handed.flat(2))) : undefined;
    return {
      row: [
        mode === 'toolkit' ? 'PortAllocator' : 'get-port (`portNumbers` range)',
        `${PROCESSES} × ${lanes}`,
        perSecond.toFixed(0),
        fmtMs(median(latencies)),
        fmtMs(percentile(latencies, 95)),
        String(PROCESSES * lanes * 2),
        `${worst.ports} ports, ${worst.allocations} allocations (${((worst.allocations / (PROCESSES * lanes * 2)) * 100).toFixed(0)} %)`,
        stateCheck === undefined ? '–' : stateCheck ? 'yes' : 'NO',
      ],
      collisions: Math.max(...collisions.map((c) => c.ports)),
    };
  };
  const toolkit = summary('toolkit');
  const getPort = summary('get-port');
  const markdown = [
    table(
      ['allocator', 'processes × lanes', 'lanes/s', 'median latency', 'p95 latency', 'ports handed out', 'collisions (worst round)', 'state file = handed out'],
      [toolkit.row, getPort.row],
    ),
    '',
    `${reps} round(s) per allocator, alternating; the ${PROCESSES} processes are forked and loaded once, before any round, and`,
    `every round starts them together on one signal. Each process allocates ${lanes} lanes of two ports (backend, frontend)`,
    `one after another in the range ${RANGE[0]}-${RANGE[1]}, without binding them (as lanes do before their servers start).`,
    '',
    '- **lanes/s**: lanes allocated by all processes ÷ the wall time from the start signal to the last answer (median of rounds).',
    '- **latency**: one lane\'s `allocatePortsForProject` (or its two `getPort` calls), over every lane of every round.',
    '- **collisions**: ports handed to more than one process (or lane) in one round, and how many allocations got such a port.',
    '  PortAllocator shares one state folder (`allocated-ports.json` under a cross-process lock) and every entry is owned by the',
    '  bench process (`E2E_LANES_OWNER_PID`), so entries persist after each child exits. get-port only remembers ports inside one',
    '  process (sindresorhus/get-port#23), so processes asking at the same time get the same free ports.',
    '- **state file = handed out**: the ports recorded in `allocated-ports.json` afterwards are exactly the ones handed out.',
  ].join('\n');
  return {
    id: 'ports',
    title: `3. Ports: ${PROCESSES} processes allocating at once`,
    markdown,
    targets: [{ name: `PortAllocator collisions, ${PROCESSES} processes`, goal: '0', measured: String(toolkit.collisions), pass: toolkit.collisions === 0 }],
  };
}

async function round(ctx: BenchContext, children: ChildProcess[], mode: Mode, lanes: number): Promise<Round> {
  const go: Go = { type: 'go', mode, lanes, range: RANGE, stateDir: await ctx.dir('ports'), runId: ctx.fresh('p') };
  const allocator = new PortAllocator({ stateDir: go.stateDir, runId: go.runId, range: RANGE });
  await ctx.quiet();
  try {
    const answers = children.map((child) => next(child, 'done'));
    const started = performance.now();
    for (const child of children) child.send(go);
    const results = await Promise.all(answers);
    const wallMs = performance.now() - started;
    const result: Round = { wallMs, latencies: results.flatMap((r) => r.latencies), handed: results.map((r) => r.lanes) };
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
