/**
 * The watchdog of a warm run (option `reuse`): a detached process that the run's teardown starts
 * with its settings in `E2E_LANES_WATCHDOG` (see {@link spawnWatchdog}), and what it does
 * ({@link runWatchdog}). It owns the run's entries while they wait warm. When the run's lanes are
 * still its own at their deadline it tears them down as `e2e-lanes down` does (servers by their
 * marks only, databases, ports, the hold on the embedded server); it exits as soon as another run
 * reuses them or they are gone. Bounded: it never outlives the deadline by more than the teardown.
 *
 * The same process, with `afterExit` in its settings, is the exit reaper (exit-reaper.ts): it waits
 * at most 30 s for the run's process to be gone, then tears that run down.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { DatabaseAllocator } from '../../databases/index.js';
import { OWNER_IDENTITY_ENV, OWNER_PID_ENV, RUN_ID_ENV, SERVER_MARK_ENV, WATCHDOG_ENV } from '../../env-vars.js';
import { PortAllocator } from '../../ports/index.js';
import { resolveAdminUrl } from '../../postgres/index.js';
import { PRIVATE_RUNNER_ENV } from '../../servers/index.js';
import { judgeProcess, resolveLeaseMs, resolveStateDir } from '../../state/index.js';
import type { ProcessIdentity } from '../../state/identity.js';
import { lanePortNames, type LanesOptions } from '../options/lane-options.js';
import { findRunProcesses } from '../reaping/orphans.js';
import { laneLedger } from '../records/lane-ledger.js';
import { tearDownRuns, type RunStores } from '../teardown/run-records.js';

/** What a watchdog process is told (JSON in {@link WATCHDOG_ENV}). */
export interface WatchdogSettings {
  stateDir: string;
  runId: string;
  /** The run's process, which hands the lanes over to the watchdog once it runs. */
  fromPid: number;
  leaseMs: number;
  /** The lanes' database options (what `down` needs to reach the server; no functions). */
  database: LanesOptions['database'];
  portRange?: [number, number];
  /**
   * Set when the run's process exits without its teardown (see reuse/exit-reaper.ts): the
   * identity of `fromPid`. The process then waits until that process is provably gone and tears
   * the run down, instead of watching warm lanes.
   */
  afterExit?: ProcessIdentity;
}

/** A run's watchdog settings but the process it starts from: its lanes options as plain data (no functions). */
export type RunWatchdogSettings = Omit<WatchdogSettings, 'fromPid' | 'afterExit'>;

/** The settings of the watchdog of run `runId`, from its lanes options. */
export function runWatchdogSettings(options: LanesOptions, run: { stateDir: string; runId: string; leaseMs: number }): RunWatchdogSettings {
  const database = options.database === false ? false : (JSON.parse(JSON.stringify(options.database ?? {})) as LanesOptions['database']);
  return { stateDir: run.stateDir, runId: run.runId, leaseMs: run.leaseMs, database, ...(options.portRange ? { portRange: options.portRange } : {}) };
}

/** How often the ledger is read (a small JSON file) to see whether the lanes were reused. */
const POLL_MS = 2_000;
/** How long to wait for the run to hand its lanes over after starting this process. */
const HANDOVER_WAIT_MS = 60_000;
/** The run id of the watchdog's allocators, as the CLI's: it never allocates anything for itself. */
const STORES_RUN_ID = 'e2e-lanes-cli';

/**
 * Starts the detached watchdog of a warm run: it outlives this process and the terminal (its own
 * session), and when the run's lanes are still its own at their deadline it tears them down as
 * `e2e-lanes down` does; it exits as soon as another run reuses them or they are gone.
 * @returns its pid
 */
export function spawnWatchdog(settings: WatchdogSettings): number {
  // Synchronous throughout: an 'exit' hook starts it (reuse/exit-reaper.ts).
  const here = fileURLToPath(import.meta.url);
  const fromSource = here.endsWith('.ts');
  const script = join(here, '..', fromSource ? 'watchdog-process.ts' : 'watchdog-process.js');
  const loader = fromSource ? ['--import', import.meta.resolve('tsx')] : [];
  const logDir = join(settings.stateDir, 'lanes', settings.runId);
  mkdirSync(logDir, { recursive: true });
  const log = openSync(join(logDir, settings.afterExit ? 'exit-reaper.log' : 'watchdog.log'), 'a');
  // The admin URL goes in the settings: `E2E_LANES_DATABASE_URL` is one of the runner's secrets
  // removed below, and without it the process would look for the run on the embedded server.
  const adminUrl = settings.database === false ? undefined : resolveAdminUrl(settings.database?.adminUrl);
  const given = adminUrl === undefined || settings.database === false ? settings : { ...settings, database: { ...settings.database, adminUrl } };
  const env: NodeJS.ProcessEnv = { ...process.env, [WATCHDOG_ENV]: JSON.stringify(given) };
  // Not a server of the run, and none of the runner's secrets.
  for (const name of [...PRIVATE_RUNNER_ENV, RUN_ID_ENV, OWNER_PID_ENV, OWNER_IDENTITY_ENV, SERVER_MARK_ENV, 'NODE_OPTIONS']) delete env[name];
  try {
    const child = spawn(process.execPath, [...loader, script], { detached: true, stdio: ['ignore', log, log], env, cwd: process.cwd() });
    if (child.pid === undefined) throw new Error(`the watchdog process could not be started (${process.execPath} ${script})`);
    child.unref();
    return child.pid;
  } finally {
    closeSync(log);
  }
}

const log = (line: string): void => console.log(`${new Date().toISOString()} [e2e-lanes watchdog ${process.pid}] ${line}`);

/**
 * The watchdog's work, in its own process: watches the warm run its settings name until its
 * deadline, then tears it down unless it was reused. Resolves the process's exit code.
 */
export async function runWatchdog(): Promise<number> {
  const settings = JSON.parse(process.env[WATCHDOG_ENV] ?? 'null') as WatchdogSettings | null;
  if (!settings) {
    log(`${WATCHDOG_ENV} is not set: nothing to watch`);
    return 2;
  }
  // Not a child of any terminal session: a closed terminal does not end the warm lanes' deadline.
  process.on('SIGHUP', () => undefined);
  if (settings.afterExit) return reapAfterExit(settings, settings.afterExit);
  const ledger = laneLedger(settings.stateDir);
  const started = Date.now();
  let seen = false;
  /** Whether the lanes ledger lost the run's lanes (see {@link lostRunDeadline}). */
  let lost = false;
  for (;;) {
    const run = (await ledger.read()).entries.filter((entry) => entry.runId === settings.runId);
    const mine = run.filter((entry) => entry.owner.pid === process.pid);
    if (mine.length === 0) {
      // The lanes ledger lost them (a lost or corrupt file), but the run's ports are still this
      // process's and its servers still run: watch on until the deadline the ports record.
      const lostUntil = run.length === 0 ? await lostRunDeadline(settings) : undefined;
      if (lostUntil !== undefined) {
        if (!lost) log(`the lanes ledger no longer lists run ${settings.runId}, whose servers still run: watching them until ${new Date(lostUntil).toISOString()}`);
        lost = true;
        const left = lostUntil - Date.now();
        if (left <= 0) break;
        await sleep(Math.min(POLL_MS, left));
        continue;
      }
      // Still the run's own (it hands them over right after starting this process), or not any more.
      const handing = !seen && run.length > 0 && run.every((entry) => entry.owner.pid === settings.fromPid);
      if (!handing) {
        log(`the lanes of run ${settings.runId} were reused or torn down: exiting`);
        return 0;
      }
      if (Date.now() - started > HANDOVER_WAIT_MS) {
        log(`run ${settings.runId} never handed its lanes over: exiting`);
        return 0;
      }
      await sleep(250);
      continue;
    }
    if (!seen) log(`watching ${mine.length} warm lane(s) of run ${settings.runId} until ${mine[0]!.owner.warmUntil}`);
    seen = true;
    lost = false;
    const until = Math.min(...mine.map((entry) => Date.parse(entry.owner.warmUntil ?? '')).filter(Number.isFinite));
    const left = until - Date.now();
    if (!Number.isFinite(until) || left <= 0) break;
    await sleep(Math.min(POLL_MS, left));
  }
  const options = storesOptions(settings);
  const report = await tearDownRuns(openStores(options), { runs: [settings.runId], ownerPid: process.pid }, options);
  log(
    report.runs.length === 0
      ? `run ${settings.runId} was reused at its deadline: nothing torn down`
      : `idle limit reached: tore down run ${settings.runId}: ${report.killedPids.length} server process(es), ${report.databases.length} database(s), ${report.ports} port entr(ies)`,
  );
  return 0;
}

/** How long the run's process may take to be gone after its 'exit' hook started this process. */
const EXIT_WAIT_MS = 30_000;

/**
 * After its process exited without its teardown: once that process is provably gone (its pid gone,
 * or taken by a process that started later), the run is torn down as `e2e-lanes down --run` does.
 * A process still there after {@link EXIT_WAIT_MS}, or one this process cannot judge, is left to
 * `gc` and the next run, which judge it again.
 */
async function reapAfterExit(settings: WatchdogSettings, identity: ProcessIdentity): Promise<number> {
  const owner = { pid: settings.fromPid, ...identity };
  const deadline = Date.now() + EXIT_WAIT_MS;
  let verdict = judgeProcess(owner);
  while (verdict.state === 'alive' && Date.now() < deadline) {
    await sleep(50);
    verdict = judgeProcess(owner);
  }
  if (verdict.state !== 'gone') {
    log(`process ${settings.fromPid} of run ${settings.runId} ${verdict.state === 'alive' ? `still runs after ${EXIT_WAIT_MS / 1000} s` : `cannot be judged here (${verdict.reason})`}: leaving its run to \`e2e-lanes gc\` and the next run`);
    return 0;
  }
  const options = storesOptions(settings);
  const report = await tearDownRuns(openStores(options), { runs: [settings.runId] }, options);
  log(
    report.runs.length === 0
      ? `run ${settings.runId} ended without its teardown, and left nothing to tear down`
      : `run ${settings.runId} ended without its teardown (${verdict.reason}): tore down ${report.killedPids.length} server process(es), ${report.databases.length} database(s), ${report.ports} port entr(ies)`,
  );
  return 0;
}

/** The options the stores of a run are opened with, from the settings. */
function storesOptions(settings: WatchdogSettings): LanesOptions {
  return { stateDir: settings.stateDir, leaseMs: settings.leaseMs, ...(settings.database !== undefined ? { database: settings.database } : {}), ...(settings.portRange ? { portRange: settings.portRange } : {}) };
}

/** The stores of the run's records, as `e2e-lanes down` opens them. */
function openStores(options: LanesOptions): RunStores {
  const stateDir = resolveStateDir(options.stateDir);
  const common = { stateDir, leaseMs: resolveLeaseMs(options.leaseMs), runId: STORES_RUN_ID };
  return {
    stateDir,
    lanes: laneLedger(stateDir),
    ports: new PortAllocator({ ...common, names: lanePortNames(options), ...(options.portRange ? { range: options.portRange } : {}) }),
    databases: options.database === false ? undefined : new DatabaseAllocator({ ...options.database, ...common }),
  };
}

/**
 * The deadline of a run that the lanes ledger no longer lists although it is still this process's:
 * its port entries are owned by this process (with their deadline) and processes with its marks
 * still run. Undefined when it was reused or torn down.
 */
async function lostRunDeadline(settings: WatchdogSettings): Promise<number | undefined> {
  const ports = (await new PortAllocator({ stateDir: settings.stateDir, runId: settings.runId }).list()).filter((entry) => entry.runId === settings.runId);
  if (ports.length === 0 || ports.some((entry) => entry.owner.pid !== process.pid)) return undefined;
  if (findRunProcesses(settings.runId).length === 0) return undefined;
  const until = Math.min(...ports.map((entry) => Date.parse(entry.owner.warmUntil ?? '')).filter(Number.isFinite));
  return Number.isFinite(until) ? until : undefined;
}
