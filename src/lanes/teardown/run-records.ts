/**
 * A run's records across its stores (lanes, ports, databases) at its end: keeping a run (kept or
 * warm lanes), stopping recorded servers, and tearing a run down from its records (`e2e-lanes
 * down`, a warm run's watchdog, lanes a run does not reuse).
 */
import type { DatabaseAllocator } from '../../databases/index.js';
import { debugLogger } from '../../log.js';
import type { PortAllocator } from '../../ports/index.js';
import { releaseEmbeddedRuns } from '../../postgres/index.js';
import { killProcessGroup, SERVER_DEFAULTS, type ServerDefinition } from '../../servers/index.js';
import { handOverRunEntries, keepRunEntries, sameLane, stopKeepingAlive, type LaneKey, type LedgerDocument, type Owner, type StateFile } from '../../state/index.js';
import type { LaneEntry, LaneServerRecord } from '../records/lane-ledger.js';
import type { LanesOptions } from '../options/lane-options.js';
import { WATCHDOG_ENV } from '../../env-vars.js';
import { processEnv } from '../../state/proc.js';
import { findStateProcesses } from '../reaping/orphans.js';
import { isServerOfRun } from '../reaping/process-marks.js';
import { killRunStragglers } from './stragglers.js';

const debug = debugLogger('lanes');

/** The stores of a state folder that a run's records live in. */
export interface RunStores {
  stateDir: string;
  lanes: StateFile<LedgerDocument<LaneEntry>>;
  ports: PortAllocator;
  databases?: DatabaseAllocator | undefined;
}

/**
 * Releases one lane's records in every store (its database, its ports, its ledger entry), each
 * whatever happens to the others.
 */
export async function releaseLane(stores: Pick<RunStores, 'lanes' | 'ports' | 'databases'>, key: LaneKey): Promise<void> {
  const worker = key.worker !== undefined ? { worker: key.worker } : {};
  await Promise.allSettled([
    stores.databases?.releaseDatabaseForProject(key.project, worker),
    stores.ports.releasePortsForProject(key.project, worker),
    stores.lanes.update((doc) => void (doc.entries = doc.entries.filter((entry) => !sameLane(entry, key)))),
  ]);
}

/**
 * Keeps a run's records after its process exits, in every store: kept for debugging (alive until
 * `e2e-lanes down`), or, with `owner`, handed to a warm run's watchdog (alive until its deadline,
 * each lane noting since when it waits warm).
 */
export async function keepRunRecords(stores: RunStores, runId: string, owner?: Owner): Promise<void> {
  const since = new Date().toISOString();
  await stores.lanes.update((doc) => {
    if (!owner) return void keepRunEntries(doc.entries, runId);
    handOverRunEntries(doc.entries, runId, owner);
    for (const entry of doc.entries) if (entry.runId === runId) entry.warmSince = since;
  });
  stopKeepingAlive(stores.lanes, runId);
  if (owner) await stores.ports.handOverRun(runId, owner);
  else await stores.ports.keepRun(runId);
  await stores.databases?.keepRun(runId, owner);
}

/**
 * Stops the recorded servers of a run that still carry its marks (a recycled pid is left alone),
 * each with its whole process group, as the run's teardown does: its `stopSignal`, up to its
 * `stopTimeout` (as recorded, else as `definitions` say), then SIGKILL; all at once, and resolves
 * only once every group is gone. Resolves the pids stopped.
 */
export async function stopRecordedServers(servers: readonly LaneServerRecord[], runId: string, definitions: readonly ServerDefinition[] = []): Promise<number[]> {
  const live = servers.filter((server) => isServerOfRun(server.pid, runId));
  await Promise.all(
    live.map((server) => {
      const def = definitions.find((candidate) => candidate.name === server.name);
      const signal = server.stopSignal ?? def?.stopSignal ?? SERVER_DEFAULTS.stopSignal;
      const timeout = server.stopTimeout ?? def?.stopTimeout ?? SERVER_DEFAULTS.stopTimeout;
      return killProcessGroup(server.pid, { signal, timeout }).catch((error: unknown) => debug('stopping %s (pid %d) failed: %O', server.name, server.pid, error));
    }),
  );
  return live.map((server) => server.pid);
}

/** What {@link tearDownRuns} removed. */
export interface DownReport {
  runs: string[];
  killedPids: number[];
  databases: string[];
  ports: number;
}

/**
 * Tears down the lanes of the given runs (or of every run with `all`), whether their owner is
 * alive, dead, kept or warm: servers, databases, ports, the lanes' records, the hold on the
 * embedded server, and warm runs' watchdogs. `e2e-lanes down` and a warm run's watchdog use it.
 */
export async function tearDownRuns(state: RunStores, which: { runs?: string[]; all?: boolean; ownerPid?: number }, options: LanesOptions = {}): Promise<DownReport> {
  const known = new Set<string>();
  for (const entry of (await state.lanes.read()).entries) known.add(entry.runId);
  for (const runId of await state.ports.runIds()) known.add(runId);
  for (const entry of (await state.databases?.list()) ?? []) known.add(entry.runId);
  // The state files are a cache: runs whose servers carry this state folder's marks count too (records lost).
  for (const found of findStateProcesses(state.stateDir)) known.add(found.runId);
  const runs = which.all ? [...known] : (which.runs ?? []).filter((run) => known.has(run));
  const report: DownReport = { runs: [], killedPids: [], databases: [], ports: 0 };
  for (const runId of runs) {
    // With `ownerPid` (a warm run's watchdog): only while every lane of the run is still that owner's.
    // (With no lane left in the ledger, the run is still that owner's while its ports are: the lanes ledger was lost.)
    const ports = which.ownerPid !== undefined ? (await state.ports.list()).filter((entry) => entry.runId === runId) : [];
    const portsMine = ports.length > 0 && ports.every((entry) => entry.owner.pid === which.ownerPid);
    const lanes = await state.lanes.update((doc) => {
      const mine = doc.entries.filter((entry) => entry.runId === runId);
      if (which.ownerPid !== undefined && (mine.length === 0 ? !portsMine : mine.some((entry) => entry.owner.pid !== which.ownerPid))) return undefined;
      doc.entries = doc.entries.filter((entry) => entry.runId !== runId);
      return mine;
    });
    if (!lanes) continue;
    report.runs.push(runId);
    stopWatchdogs(lanes, which.ownerPid);
    report.killedPids.push(...(await stopRecordedServers(lanes.flatMap((lane) => lane.servers), runId, options.servers)));
    // Processes of the run that left their server's process group (they carry its marks).
    report.killedPids.push(...(await killRunStragglers(runId, { timeout: 3_000 })));
    if (state.databases) {
      report.databases.push(...(await state.databases.releaseRun(runId)).map((entry) => entry.databaseName));
      // Its lane databases that no record lists any more (lost state files), found by their marks.
      report.databases.push(...(await state.databases.releaseUnrecorded([runId])).map((entry) => entry.databaseName));
    }
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
