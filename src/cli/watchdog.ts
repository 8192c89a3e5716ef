/**
 * The watchdog of a warm run (option `reuse`), started detached by the run's teardown with its
 * settings in `E2E_LANES_WATCHDOG`. It owns the run's entries while they wait warm. When the run's
 * lanes are still its own at their deadline it tears them down as `e2e-lanes down` does (servers
 * by their marks only, databases, ports, the hold on the embedded server); it exits as soon as
 * another run takes them over or they are gone. Bounded: it never outlives the deadline by more
 * than the teardown.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { laneLedger } from '../lanes/lane-ledger.js';
import type { LanesOptions } from '../lanes/options.js';
import { WATCHDOG_ENV } from '../env-vars.js';
import type { WatchdogSettings } from '../lanes/warm.js';
import { stateOf } from './context.js';
import { tearDownRuns } from '../lanes/run.js';
import { findRunProcesses } from '../lanes/orphans.js';
import { PortAllocator } from '../ports/index.js';

/** How often the ledger is read (a small JSON file) to see whether the lanes were taken over. */
const POLL_MS = 2_000;
/** How long to wait for the run to hand its lanes over after starting this process. */
const HANDOVER_WAIT_MS = 60_000;

const log = (line: string): void => console.log(`${new Date().toISOString()} [e2e-lanes watchdog ${process.pid}] ${line}`);

async function main(): Promise<number> {
  const settings = JSON.parse(process.env[WATCHDOG_ENV] ?? 'null') as WatchdogSettings | null;
  if (!settings) {
    log(`${WATCHDOG_ENV} is not set: nothing to watch`);
    return 2;
  }
  // Not a child of any terminal session: a closed terminal does not end the warm lanes' deadline.
  process.on('SIGHUP', () => undefined);
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
        log(`the lanes of run ${settings.runId} were taken over or torn down: exiting`);
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
  const options: LanesOptions = { stateDir: settings.stateDir, leaseMs: settings.leaseMs, ...(settings.database !== undefined ? { database: settings.database } : {}), ...(settings.portRange ? { portRange: settings.portRange } : {}) };
  const state = await stateOf(options, {});
  const report = await tearDownRuns(state, { runs: [settings.runId], ownerPid: process.pid }, options);
  log(
    report.runs.length === 0
      ? `run ${settings.runId} was taken over at its deadline: nothing torn down`
      : `idle limit reached: tore down run ${settings.runId}: ${report.killedPids.length} server process(es), ${report.databases.length} database(s), ${report.ports} port entr(ies)`,
  );
  return 0;
}

/**
 * The deadline of a run that the lanes ledger no longer lists although it is still this process's:
 * its port entries are owned by this process (with their deadline) and processes with its marks
 * still run. Undefined when it was taken over or torn down.
 */
async function lostRunDeadline(settings: WatchdogSettings): Promise<number | undefined> {
  const ports = (await new PortAllocator({ stateDir: settings.stateDir, runId: settings.runId }).list()).filter((entry) => entry.runId === settings.runId);
  if (ports.length === 0 || ports.some((entry) => entry.owner.pid !== process.pid)) return undefined;
  if (findRunProcesses(settings.runId).length === 0) return undefined;
  const until = Math.min(...ports.map((entry) => Date.parse(entry.owner.warmUntil ?? '')).filter(Number.isFinite));
  return Number.isFinite(until) ? until : undefined;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    log(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  },
);
