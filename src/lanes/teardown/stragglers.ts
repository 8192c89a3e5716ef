/**
 * What is left of a run after its servers' process groups were stopped: processes that carry the
 * run's marks but left their server's group. Killed at teardown, and by the exit hook.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { killProcessGroup } from '../../servers/index.js';
import { isPidAlive } from '../../state/index.js';
import { findRunProcesses } from '../reaping/orphans.js';
import { processGroupOf } from '../reaping/process-marks.js';

/**
 * Kills what is left of run `runId` after its servers' process groups were stopped: processes
 * that carry the run's marks but left their server's group (a child started in a session of its
 * own, `setsid`, a daemonising `npm` script). A process's whole group is killed only when the
 * group's leader carries the same marks; otherwise the process alone. SIGTERM, then SIGKILL after
 * `timeout` ms.
 *
 * @returns the pids that were found (and killed).
 */
export async function killRunStragglers(runId: string, options: { ownerPid?: number; timeout?: number } = {}): Promise<number[]> {
  const stragglers = findRunProcesses(runId, options.ownerPid);
  if (stragglers.length === 0) return [];
  const marked = new Set(stragglers.map((item) => item.pid));
  const own = processGroupOf(process.pid);
  const groups = new Set<number>();
  const loners: number[] = [];
  for (const item of stragglers) {
    if (item.pgid > 1 && item.pgid !== own && marked.has(item.pgid)) groups.add(item.pgid);
    else loners.push(item.pid);
  }
  const timeout = options.timeout ?? 2_000;
  await Promise.all([
    ...[...groups].map((pgid) => killProcessGroup(pgid, { timeout }).catch(() => false)),
    ...loners.map((pid) => killProcess(pid, timeout)),
  ]);
  return stragglers.map((item) => item.pid);
}

/** The synchronous last resort (an `exit` hook): SIGKILL every process of run `runId` of this owner. */
export function killRunStragglersNow(runId: string, ownerPid: number): void {
  for (const item of findRunProcesses(runId, ownerPid)) {
    try {
      process.kill(item.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** SIGTERM, then SIGKILL once `timeout` ms passed. @internal */
async function killProcess(pid: number, timeout: number): Promise<void> {
  const signal = (name: NodeJS.Signals): void => {
    try {
      process.kill(pid, name);
    } catch {
      // already gone
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + timeout;
  while (isPidAlive(pid) && Date.now() < deadline) await sleep(50);
  if (isPidAlive(pid)) signal('SIGKILL');
}
