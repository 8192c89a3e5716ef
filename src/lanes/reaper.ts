import { debugLogger } from '../log.js';
import { killProcessGroup } from '../servers/index.js';
import { describeLane, splitByLiveness } from '../state/index.js';
import { laneLedger, type LaneEntry } from './lane-ledger.js';
import { findOrphanServers, isServerOfRun } from './orphans.js';

const debug = debugLogger('reaper');

/** What a reap removed. */
export interface ReapReport {
  /** Lanes whose owner was dead or whose lease expired. */
  lanes: Array<{ entry: LaneEntry; reason: string }>;
  /** Server processes that were killed (recorded ones and unrecorded orphans). */
  killedPids: number[];
}

/**
 * Stops the servers of every lane whose owner is gone (dead pid on this host, or expired lease) and
 * removes those lanes from the ledger; then kills unrecorded lane servers whose owner died (Linux).
 * Lanes kept for debugging are left alone. With `dryRun`, nothing is changed.
 */
export async function reapStaleLanes(stateDir: string, leaseMs: number, options: { dryRun?: boolean } = {}): Promise<ReapReport> {
  const file = laneLedger(stateDir);
  const report: ReapReport = { lanes: [], killedPids: [] };
  const pick = (entries: LaneEntry[]): Array<{ entry: LaneEntry; reason: string }> =>
    splitByLiveness(entries.filter((entry) => !entry.kept), leaseMs).stale;

  const stale = options.dryRun ? pick((await file.read()).entries) : await file.update((doc) => {
    const found = pick(doc.entries);
    doc.entries = doc.entries.filter((entry) => !found.some((item) => item.entry === entry));
    return found;
  });
  report.lanes = stale;
  for (const { entry, reason } of stale) {
    debug('reaping %s: %s', describeLane(entry), reason);
    for (const server of entry.servers) {
      if (!isServerOfRun(server.pid, entry.runId)) continue;
      report.killedPids.push(server.pid);
      if (!options.dryRun) await killProcessGroup(server.pid, { timeout: 3_000 });
    }
  }
  for (const orphan of findOrphanServers()) {
    if (report.killedPids.includes(orphan.pid)) continue;
    debug('killing orphan server %s (pid %d, run %s, owner %d gone)', orphan.server, orphan.pid, orphan.runId, orphan.ownerPid);
    report.killedPids.push(orphan.pid);
    if (!options.dryRun) await killProcessGroup(orphan.pgid, { timeout: 3_000 });
  }
  return report;
}
