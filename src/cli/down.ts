import { killProcessGroup } from '../servers/index.js';
import { isServerOfRun, killRunStragglers, processEnv } from '../lanes/orphans.js';
import type { LaneEntry } from '../lanes/lane-ledger.js';
import { WATCHDOG_ENV } from '../lanes/warm.js';
import type { LanesOptions } from '../lanes/options.js';
import { releaseEmbeddedRuns } from '../postgres/index.js';
import { debugLogger } from '../log.js';

const debug = debugLogger('cli');
import type { CliState } from './context.js';

type State = CliState;

/** What `down` removed. */
export interface DownReport {
  runs: string[];
  killedPids: number[];
  databases: string[];
  ports: number;
}

/**
 * Tears down the lanes of the given runs (or of every run with `all`), whether their owner is
 * alive, dead or kept: servers, databases, ports, and the lanes' records.
 */
export async function tearDownRuns(state: State, which: { runs?: string[]; all?: boolean; ownerPid?: number }, options: LanesOptions = {}): Promise<DownReport> {
  const known = new Set<string>();
  for (const entry of (await state.lanes.read()).entries) known.add(entry.runId);
  for (const entry of (await state.ports.file.read()).entries) known.add(entry.runId);
  for (const entry of (await state.databases?.list()) ?? []) known.add(entry.runId);
  const runs = which.all ? [...known] : (which.runs ?? []).filter((run) => known.has(run));
  const report: DownReport = { runs: [], killedPids: [], databases: [], ports: 0 };
  for (const runId of runs) {
    // With `ownerPid` (a warm run's watchdog): only while every lane of the run is still that owner's.
    const lanes = await state.lanes.update((doc) => {
      const mine = doc.entries.filter((entry) => entry.runId === runId);
      if (which.ownerPid !== undefined && (mine.length === 0 || mine.some((entry) => entry.owner.pid !== which.ownerPid))) return undefined;
      doc.entries = doc.entries.filter((entry) => entry.runId !== runId);
      return mine;
    });
    if (!lanes) continue;
    report.runs.push(runId);
    stopWatchdogs(lanes, which.ownerPid);
    for (const server of lanes.flatMap((lane) => lane.servers)) {
      if (!isServerOfRun(server.pid, runId)) continue;
      await killProcessGroup(server.pid, { timeout: 3_000 });
      report.killedPids.push(server.pid);
    }
    // Processes of the run that left their server's process group (they carry its marks).
    report.killedPids.push(...(await killRunStragglers(runId, { timeout: 3_000 })));
    if (state.databases) report.databases.push(...(await state.databases.releaseRun(runId)).map((entry) => entry.databaseName));
    report.ports += (await state.ports.releaseRun(runId)).length;
  }
  await state.databases?.close();
  // A kept run also kept its hold on the embedded server: let go of it (the last user stops it).
  // (Named runs count even when this state folder does not know them: their state may be gone.)
  const holders = which.all ? runs : which.ownerPid !== undefined ? report.runs : (which.runs ?? []);
  if (holders.length > 0 && options.database !== false && state.databases?.registryKind() === 'file') {
    await releaseEmbeddedRuns(holders, { ...options.database?.embedded, stateDir: state.stateDir }).catch((error: unknown) => {
      debug('releasing the embedded server for %o failed: %O', holders, error);
    });
  }
  return report;
}

/** Ends the watchdogs of warm lanes being torn down (but the caller): by their mark only, never another process. */
function stopWatchdogs(lanes: readonly LaneEntry[], caller: number | undefined): void {
  const pids = new Set(lanes.filter((lane) => lane.owner.warmUntil !== undefined).map((lane) => lane.owner.pid));
  for (const pid of pids) {
    if (pid === caller || pid === process.pid || !processEnv(pid)?.has(WATCHDOG_ENV)) continue;
    try {
      process.kill(pid, 'SIGTERM');
    } catch (error) {
      debug('could not stop the watchdog %d: %O', pid, error);
    }
  }
}
