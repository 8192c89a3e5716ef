/**
 * Searches for lane server processes by their marks (see process-marks.ts): the orphans of dead
 * runs, the processes of one run, and those of one state folder.
 */
import { judgeProcess } from '../../state/owner.js';
import type { ProcessRecord } from '../../state/identity.js';
import { markedOwner, markedProcesses, marksStateDir } from './process-marks.js';

/** A lane server process found by its marks. */
export interface OrphanProcess {
  pid: number;
  runId: string;
  server: string;
  ownerPid: number;
  /** Its process group, to kill with it. */
  pgid: number;
  /** Why it counts as an orphan (its owner is provably gone). */
  reason?: string;
  /** The owner its marks name, with its identity. */
  owner?: ProcessRecord;
  /** The state folder its marks name (absent on servers of older versions). */
  stateDir?: string;
}

/**
 * Lane server processes on this host whose owner process is provably dead (Linux only; empty
 * elsewhere): the owner named by their marks is judged by {@link judgeProcess}, so a server whose
 * owner lives in another PID namespace or boot (it cannot be judged here) is never one. Kept
 * servers (`E2E_LANES_KEEP=1`) are left alone. This catches servers that a killed run started
 * but never got to record.
 */
export function findOrphanServers(): OrphanProcess[] {
  const orphans: OrphanProcess[] = [];
  for (const found of markedProcesses()) {
    if (found.kept) continue;
    const owner = markedOwner(found.pid, found.env);
    if (!owner) continue;
    const verdict = judgeProcess(owner);
    if (verdict.state !== 'gone') continue;
    orphans.push({ pid: found.pid, runId: found.runId ?? '?', server: found.server, ownerPid: owner.pid, pgid: found.pgid, reason: verdict.reason, ...(found.stateDir ? { stateDir: found.stateDir } : {}) });
  }
  return orphans;
}

/**
 * Every live process on this host that carries the marks of run `runId` in its environment (the
 * marks every lane server gets and its children inherit), optionally only those of one owner pid.
 * Linux only; empty elsewhere. Zombies are left out: they run nothing.
 */
export function findRunProcesses(runId: string, ownerPid?: number): OrphanProcess[] {
  return markedProcesses()
    .filter((found) => found.runId === runId && (ownerPid === undefined || found.ownerPid === ownerPid))
    .map((found) => ({ pid: found.pid, runId, server: found.server, ownerPid: found.ownerPid, pgid: found.pgid }));
}

/**
 * Every live lane server process on this host whose marks name the state folder `stateDir`, of
 * any run, kept and warm ones included: what its state files should list, found even when they
 * are lost (Linux only; empty elsewhere).
 */
export function findStateProcesses(stateDir: string): OrphanProcess[] {
  return markedProcesses()
    .filter((found) => marksStateDir(found, stateDir))
    .map((found) => {
      const owner = markedOwner(found.pid, found.env);
      return { pid: found.pid, runId: found.runId ?? '?', server: found.server, ownerPid: found.ownerPid, pgid: found.pgid, ...(owner ? { owner } : {}) };
    });
}
