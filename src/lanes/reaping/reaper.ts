/** The reap of stale lanes: the servers and ledger entries of lanes whose owner is gone, and unrecorded orphans. */
import { resolve } from 'node:path';
import { debugLogger } from '../../log.js';
import { killProcessGroup } from '../../servers/index.js';
import { currentHost, describeLane, splitByLiveness } from '../../state/index.js';
import { pidNotJudgeable } from '../../state/identity.js';
import { laneLedger, type LaneEntry } from '../records/lane-ledger.js';
import { findOrphanServers, findRunProcesses } from './orphans.js';
import { isServerOfRun } from './process-marks.js';

const debug = debugLogger('reaper');

/** What a reap removed. */
export interface ReapReport {
  /** Lanes whose owner was dead or whose lease expired. */
  lanes: Array<{ entry: LaneEntry; reason: string }>;
  /** Server processes that were killed (recorded ones and unrecorded orphans), one per process group. */
  killedPids: number[];
  /** The same, each with what it was and why it was killed (for `gc`'s output). */
  killed: Array<{ pid: number; why: string }>;
  /** Whose leftovers these were: per dead run, its state folder (when known) and what of it was reaped. */
  runs: Array<{ runId: string; stateDir?: string; lanes: number; servers: number }>;
}

/**
 * One line for a run's start: how much was reaped, and whose it was, e.g. `reaped 0 lane(s) and 1
 * server process(es) left by dead runs: run 1a2b of /app/test-results (1 server process)`.
 */
export function describeReap(report: ReapReport): string {
  const whose = report.runs.map((run) => {
    const parts = [
      ...(run.lanes > 0 ? [`${run.lanes} lane${run.lanes === 1 ? '' : 's'}`] : []),
      ...(run.servers > 0 ? [`${run.servers} server process${run.servers === 1 ? '' : 'es'}`] : []),
    ];
    return `run ${run.runId} of ${run.stateDir ?? 'an unknown state folder'} (${parts.join(', ')})`;
  });
  return `reaped ${report.lanes.length} lane(s) and ${report.killedPids.length} server process(es) left by dead runs${whose.length > 0 ? `: ${whose.join('; ')}` : ''}`;
}

/**
 * Stops the servers of every lane whose owner is gone (dead pid on this host, or expired lease) and
 * removes those lanes from the ledger; then kills unrecorded lane servers whose owner died (Linux).
 * Lanes kept for debugging, and warm lanes within their idle time, are left alone (their owners count as alive). With `dryRun`, nothing is changed.
 */
export async function reapStaleLanes(stateDir: string, leaseMs: number, options: { dryRun?: boolean } = {}): Promise<ReapReport> {
  const file = laneLedger(stateDir);
  const report: ReapReport = { lanes: [], killedPids: [], killed: [], runs: [] };
  const folder = resolve(stateDir);
  const runOf = (runId: string, at: string | undefined) => {
    let run = report.runs.find((found) => found.runId === runId && found.stateDir === at);
    if (!run) {
      run = { runId, ...(at !== undefined ? { stateDir: at } : {}), lanes: 0, servers: 0 };
      report.runs.push(run);
    }
    return run;
  };
  const pick = (entries: LaneEntry[]): Array<{ entry: LaneEntry; reason: string }> =>
    splitByLiveness(entries, leaseMs).stale;

  const stale = options.dryRun ? pick((await file.read()).entries) : await file.update((doc) => {
    const found = pick(doc.entries);
    doc.entries = doc.entries.filter((entry) => !found.some((item) => item.entry === entry));
    return found;
  });
  report.lanes = stale;
  // What to kill is decided before anything is killed, so a dry run counts what a real one kills:
  // one entry per process group (a server and everything in its group count once).
  const groups = new Set<number>();
  const plan: Array<{ pgid: number; pid: number; why: string }> = [];
  for (const { entry, reason } of stale) {
    debug('reaping %s: %s', describeLane(entry), reason);
    const run = runOf(entry.runId, folder);
    run.lanes++;
    for (const server of recordedServers(entry)) {
      if (groups.has(server.pgid)) continue;
      groups.add(server.pgid);
      report.killedPids.push(server.pid);
      run.servers++;
      plan.push({ ...server, why: `server ${server.name} (pid ${server.pid}) of ${describeLane(entry)}: ${reason}` });
    }
  }
  for (const orphan of findOrphanServers()) {
    if (groups.has(orphan.pgid) || report.killedPids.includes(orphan.pid)) continue;
    groups.add(orphan.pgid);
    report.killedPids.push(orphan.pid);
    runOf(orphan.runId, orphan.stateDir).servers++;
    plan.push({ pgid: orphan.pgid, pid: orphan.pid, why: `unrecorded server ${orphan.server} (pid ${orphan.pid}) of run ${orphan.runId}${orphan.stateDir ? ` (state folder ${orphan.stateDir})` : ''}: ${orphan.reason ?? `owner pid ${orphan.ownerPid} is gone`}` });
  }
  report.killed = plan.map(({ pid, why }) => ({ pid, why }));
  if (options.dryRun) return report;
  for (const { pgid, pid, why } of plan) {
    debug('killing %s', why);
    await killProcessGroup(pgid, { timeout: 3_000 }).catch((error: unknown) => {
      // A group this process may not signal as a whole (its own): the process alone.
      debug('could not kill group %d (%O); killing pid %d', pgid, error, pid);
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    });
  }
  return report;
}

/**
 * The live servers of a stale lane, each with its process group. Recorded pids are numbers of the
 * owner's PID namespace: used where the owner's pid can be judged here (this host, boot and
 * namespace), and only while they still carry the run's marks. Elsewhere the lane's servers are
 * found by their marks (the group leaders that carry the run id). @internal
 */
function recordedServers(entry: LaneEntry): Array<{ pid: number; pgid: number; name: string }> {
  if (entry.owner.host === currentHost() && pidNotJudgeable(entry.owner) === undefined) {
    return entry.servers.filter((server) => isServerOfRun(server.pid, entry.runId)).map((server) => ({ pid: server.pid, pgid: server.pid, name: server.name }));
  }
  return findRunProcesses(entry.runId)
    .filter((found) => found.pgid === found.pid)
    .map((found) => ({ pid: found.pid, pgid: found.pgid, name: found.server }));
}
