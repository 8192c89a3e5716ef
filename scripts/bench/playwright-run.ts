/**
 * Runs one `playwright test` for part 4 and reads what it did: wall time, test counts (JSON
 * reporter) and the toolkit's progress lines, each stamped with when it was printed.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { DatabaseAllocator, PortAllocator } from '../../src/index.ts';
import { reapStaleLanes } from '../../src/lanes/reaping/reaper.ts';
import { procStat } from '../../src/state/proc.ts';
import { childEnv, ROOT } from './context.ts';
import { GREP_INVERT } from './shared-mode.ts';

const PLAYWRIGHT = join(ROOT, 'node_modules/@playwright/test/cli.js');

/** A lane as its `[e2e-lanes] lane … up in N ms` line tells it. */
export interface LaneUp {
  project: string;
  /** Boot time the toolkit printed. */
  bootMs: number;
  /** When the line appeared, since `playwright test` started. */
  upAtMs: number;
}

export interface SuiteRun {
  /** Wall time of `playwright test` (plus what the caller adds, e.g. preparing a database). */
  wallMs: number;
  passed: number;
  failed: number;
  flaky: number;
  lanes: LaneUp[];
  /** Global setup of a lanes run, from `[e2e-lanes] ready in N ms`. */
  setupMs?: number;
  /** Workers Playwright used (from `Running N tests using M workers`). */
  workers?: number;
  /** When Playwright printed `Running N tests`, since start. */
  testsStartAtMs?: number;
  /** When the list reporter printed the first test's result (`✓  1 [project] › …`), since start. */
  firstResultAtMs?: number;
  teardownMs?: number;
  /** `built` or `cached`. */
  template?: string;
  /**
   * The toolkit's end-of-run line on where the time went (`[e2e-lanes] time: …`, without the
   * prefix); undefined when it printed none (no lane was booted, e.g. all taken over warm).
   */
  timeLine?: string;
  /** CPU use (0-1) of the machine just before the run (set by the caller). */
  busyBefore?: number;
  /**
   * CPU time (user + system) the run's whole process tree used: runner, workers, browsers and
   * servers (every process the run started and waited for). The shared PostgreSQL is not in it.
   */
  cpuMs?: number;
}

/**
 * CPU time of this process's children that have ended and been waited for, in ms; undefined
 * without /proc. A finished `playwright test` adds the CPU of every process of its tree that was
 * waited for down the line.
 */
function childrenCpuMs(): number | undefined {
  const ticks = procStat('self')?.childrenCpuTicks;
  return ticks !== undefined && Number.isFinite(ticks) ? (ticks * 1000) / CLOCK_TICKS_PER_S : undefined;
}

/** USER_HZ: 100 on every Linux architecture Node runs on. */
const CLOCK_TICKS_PER_S = 100;

/**
 * Whether every run passed the same tests as the first (none failed or flaky), and how many: the
 * condition of every comparison of whole runs.
 */
export function allRunsPassed(runs: readonly SuiteRun[]): { expected: number; allPassed: boolean } {
  const expected = runs[0]?.passed ?? 0;
  return { expected, allPassed: expected > 0 && runs.every((run) => run.failed === 0 && run.flaky === 0 && run.passed === expected) };
}

/** The run under way, so that an interrupted bench can stop it (Playwright then tears its lanes down). */
let current: ResultPromise | undefined;

export async function stopCurrentRun(): Promise<void> {
  current?.kill('SIGINT'); // as Ctrl-C: Playwright stops its workers and runs the global teardown
  await current;
}

/** `playwright test <args>` in the repo, with `env` on top of the user's; JSON report and output under `dir`. */
/**
 * A test runner's process for a measured run: Node with `args`, from the repository root, in the
 * user's environment plus `env` (no colours), stdout and stderr together, at most 5 minutes.
 */
export function runSuiteProcess(args: string[], env: Record<string, string>) {
  return execa(process.execPath, args, {
    cwd: ROOT,
    env: childEnv({ ...env, FORCE_COLOR: '0' }),
    extendEnv: false,
    stdin: 'ignore',
    all: true,
    reject: false,
    timeout: 300_000,
    forceKillAfterDelay: 10_000,
  });
}

export async function runPlaywright(dir: string, args: string[], env: Record<string, string>): Promise<SuiteRun> {
  const report = join(dir, 'report.json');
  const stamped: Array<{ atMs: number; line: string }> = [];
  const cpuBefore = childrenCpuMs();
  const started = performance.now();
  const subprocess = runSuiteProcess([PLAYWRIGHT, 'test', ...args, '--grep-invert', GREP_INVERT, '--output', join(dir, 'output'), '--reporter', 'list,json'], { ...env, PLAYWRIGHT_JSON_OUTPUT_FILE: report });
  current = subprocess;
  let pending = '';
  subprocess.all?.on('data', (chunk: Buffer) => {
    const lines = (pending + chunk.toString('utf8')).split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) stamped.push({ atMs: performance.now() - started, line });
  });
  const result = await subprocess;
  const wallMs = performance.now() - started;
  const cpuAfter = childrenCpuMs();
  current = undefined;

  const stats = await readFile(report, 'utf8')
    .then((text) => (JSON.parse(text) as { stats?: { expected?: number; unexpected?: number; flaky?: number } }).stats ?? {})
    .catch(() => ({}) as { expected?: number; unexpected?: number; flaky?: number });
  const run: SuiteRun = { wallMs, passed: stats.expected ?? 0, failed: stats.unexpected ?? 0, flaky: stats.flaky ?? 0, lanes: [] };
  if (cpuBefore !== undefined && cpuAfter !== undefined) run.cpuMs = cpuAfter - cpuBefore;
  for (const { atMs, line } of stamped) {
    let match = /\[e2e-lanes\] lane project "(.+?)" of run \S+ up in (\d+) ms/.exec(line);
    if (match) run.lanes.push({ project: match[1]!, bootMs: Number(match[2]), upAtMs: atMs });
    if ((match = /\[e2e-lanes\] ready in (\d+) ms/.exec(line))) run.setupMs = Number(match[1]);
    if ((match = /\[e2e-lanes\] lanes of run \S+ torn down in (\d+) ms/.exec(line))) run.teardownMs = Number(match[1]);
    if ((match = /\[e2e-lanes\] .*\btemplate \S+ (built|cached)/.exec(line))) run.template = match[1]!;
    if ((match = /\[e2e-lanes\] (time: .*)$/.exec(line))) run.timeLine = match[1]!.trim();
    if (run.firstResultAtMs === undefined && /^\s*[✓✘]\s+\d+\s/.test(line)) run.firstResultAtMs = atMs;
    if (run.testsStartAtMs === undefined && (match = /^Running \d+ tests? using (\d+) workers?/.exec(line.trim()))) {
      run.testsStartAtMs = atMs;
      run.workers = Number(match[1]);
    }
  }
  if (result.failed || run.failed > 0 || run.passed === 0) {
    const output = String(result.all ?? '');
    console.error(`  playwright ${args.join(' ')} ended with ${result.shortMessage ?? `exit code ${result.exitCode}`}; last lines:\n${output.split('\n').slice(-40).join('\n')}`);
  }
  return run;
}

/**
 * When package.json serves `e2e-lanes/playwright` from a build (not from src/), builds it first if
 * it is older than src/ (not timed), so the lanes runs measure the code the other parts measure.
 */
export async function ensureBuilt(): Promise<void> {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { exports?: Record<string, { default?: string }>; scripts?: Record<string, string> };
  const entry = pkg.exports?.['./playwright']?.default;
  if (!entry || entry.startsWith('./src/') || !pkg.scripts?.build) return;
  const builtAt = statSync(join(ROOT, entry), { throwIfNoEntry: false })?.mtimeMs ?? 0;
  const sources = readdirSync(join(ROOT, 'src'), { recursive: true, withFileTypes: true }).filter((file) => file.isFile());
  if (sources.every((file) => statSync(join(file.parentPath, file.name)).mtimeMs <= builtAt)) return;
  console.log(`  ${entry} is older than src/: running \`npm run build\` first (not timed)`);
  await execa('npm', ['run', 'build'], { cwd: ROOT, env: childEnv(), extendEnv: false, stdin: 'ignore' });
}

/** After a lanes run: reaps whatever a crashed run left in its own state folder (servers, databases, ports). */
export async function reapLeftovers(stateDir: string): Promise<void> {
  await reapStaleLanes(stateDir, 120_000).catch(() => undefined);
  await new PortAllocator({ stateDir, runId: 'e2e-lanes-bench-reaper' }).reapStale().catch(() => undefined);
  const databases = new DatabaseAllocator({ stateDir, runId: 'e2e-lanes-bench-reaper' });
  try {
    await databases.reapStale();
  } finally {
    await databases.close();
  }
}
