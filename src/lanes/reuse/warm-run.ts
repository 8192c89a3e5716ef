/**
 * Warm runs (option `reuse`): finding and reserving the newest warm run of a config for this
 * process, the owner of a run's entries while they wait warm (its watchdog), and what a reuse and
 * a warm teardown report.
 */
import { currentHost, handOverRunEntries, judgeOwner, newOwner, resolveOwnerPid, type Owner } from '../../state/index.js';
import { identityOf } from '../../state/identity.js';
import type { Lane } from '../lane.js';
import type { LanesOptions } from '../options/lane-options.js';
import { laneLedger, type LaneEntry } from '../records/lane-ledger.js';
import { keepRunRecords, type RunStores } from '../teardown/run-records.js';
import { runWatchdogSettings, spawnWatchdog } from './watchdog.js';

/** A reuse must leave at least this long before the warm lanes' deadline. */
const REUSE_MARGIN_MS = 5_000;

/** A warm run this process reuses: its id and its lanes as they were recorded. */
export interface ReusedRun {
  runId: string;
  entries: LaneEntry[];
}

/** What `reuseWarmLanes()` did with the lanes of the warm run this manager reuses. */
export interface ReuseReport {
  /** The warm run reused (this manager's run id), if any. */
  runId?: string;
  /** Lanes reused, their data put back to the template. */
  reused: Lane[];
  /** @deprecated use `reused` (the same lanes) */
  adopted: Lane[];
  /** Lanes torn down instead, and why (`the backend's command changed`). */
  replaced: Array<{ project: string; worker?: number; reason: string }>;
  /** How long the lanes had waited warm, in ms. */
  idleMs?: number;
}

/** A report of a reuse with nothing reused yet (both names of its lanes are the same list). */
export function emptyReuseReport(runId?: string): ReuseReport {
  const reused: Lane[] = [];
  return { ...(runId !== undefined ? { runId } : {}), reused, adopted: reused, replaced: [] };
}

/** Where a run's lanes went at teardown when they stay warm: until when, and which lanes. */
export interface WarmReport {
  lanes: Lane[];
  until: string;
  watchdogPid: number;
}

/**
 * Reserves the newest warm run of `configKey` in the state folder for reuse, if any: under the
 * lanes ledger's lock its lanes become this process's (so no other run can reuse them), and it
 * resolves them; the caller hands the run's ports and databases over next. Runs whose watchdog is
 * gone or whose deadline is (about to be) past are not reused.
 */
export async function reuseWarmRun(stateDir: string, configKey: string, leaseMs: number, now = Date.now()): Promise<ReusedRun | undefined> {
  return laneLedger(stateDir).update((doc) => {
    const runs = new Map<string, { until: number; entries: LaneEntry[] }>();
    const unfit = new Set<string>();
    for (const entry of doc.entries) {
      const until = entry.owner.warmUntil === undefined ? Number.NaN : Date.parse(entry.owner.warmUntil);
      const fit = entry.fingerprint?.config === configKey && until - now >= REUSE_MARGIN_MS && judgeOwner(entry.owner, leaseMs, now).alive;
      if (!fit) {
        unfit.add(entry.runId);
        continue;
      }
      const run = runs.get(entry.runId) ?? { until, entries: [] };
      run.entries.push(entry);
      runs.set(entry.runId, run);
    }
    // Every lane of a run is handed over at once: a run with any other lane is not warm.
    const [runId] = [...runs].filter(([id]) => !unfit.has(id)).sort((a, b) => b[1].until - a[1].until)[0] ?? [];
    if (runId === undefined) return undefined;
    const entries = structuredClone(runs.get(runId)!.entries);
    handOverRunEntries(doc.entries, runId, newOwner(runId));
    for (const entry of doc.entries) if (entry.runId === runId) delete entry.warmSince;
    return { runId, entries };
  });
}

/** The owner of a warm run's entries: its watchdog, until `idleMs` from now. */
export function warmOwner(runId: string, watchdogPid: number, idleMs: number, now = new Date()): Owner {
  const owner: Owner = { runId, pid: watchdogPid, host: currentHost(), createdAt: now.toISOString(), heartbeatAt: now.toISOString(), warmUntil: new Date(now.getTime() + idleMs).toISOString() };
  return Object.assign(owner, identityOf(watchdogPid));
}

/** What leaving a run warm needs of it. */
export interface WarmRunEnd {
  runId: string;
  stores: RunStores;
  options: LanesOptions;
  leaseMs: number;
  idleMs: number;
  /** The lanes up now. */
  lanes: Lane[];
  /** Lets the run's servers outlive this process. */
  release(): void;
}

/**
 * Leaves a run's lanes up for the next run: a detached watchdog becomes the owner of every entry
 * of the run (lanes, ports, databases, the hold on the embedded server) until the idle deadline.
 * Undefined when the run has no lane recorded.
 */
export async function leaveRunWarm(run: WarmRunEnd): Promise<WarmReport | undefined> {
  // Lanes reserved for reuse for projects this run did not select are recorded but not up here.
  if (!(await run.stores.lanes.read()).entries.some((entry) => entry.runId === run.runId)) return undefined;
  const pid = spawnWatchdog({ ...runWatchdogSettings(run.options, { stateDir: run.stores.stateDir, runId: run.runId, leaseMs: run.leaseMs }), fromPid: resolveOwnerPid() });
  const owner = warmOwner(run.runId, pid, run.idleMs);
  // Warm servers outlive this process.
  run.release();
  await keepRunRecords(run.stores, run.runId, owner);
  return { lanes: run.lanes, until: owner.warmUntil!, watchdogPid: pid };
}
