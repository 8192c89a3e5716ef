import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { resolve } from 'node:path';
import { KEEP_ENV, OWNER_IDENTITY_ENV, OWNER_PID_ENV, RUN_ID_ENV, SERVER_MARK_ENV, STATE_DIR_ENV } from '../env-vars.js';
import { killProcessGroup } from '../servers/index.js';
import { isPidAlive } from '../state/index.js';
import { parseIdentityMark, pidNamespaceOf, type ProcessRecord } from '../state/identity.js';
import { judgeProcess } from '../state/owner.js';
import { procStat } from '../state/proc.js';

/** The environment of a process (Linux `/proc/<pid>/environ`), or undefined where it cannot be read. */
export function processEnv(pid: number): Map<string, string> | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/environ`, 'utf8');
    const env = new Map<string, string>();
    for (const pair of raw.split('\0')) {
      const eq = pair.indexOf('=');
      if (eq > 0) env.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    return env;
  } catch {
    return undefined;
  }
}

/**
 * Whether `pid` is still a server process of `runId`. Where the process environment cannot be read
 * (not Linux), the recorded pid is trusted.
 */
export function isServerOfRun(pid: number, runId: string): boolean {
  if (!isPidAlive(pid)) return false;
  const env = processEnv(pid);
  if (!env) return true;
  return env.has(SERVER_MARK_ENV) && env.get(RUN_ID_ENV) === runId;
}

/** A lane server process whose run's owner is gone. */
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
 * The owner a server process's marks name: its pid with the identity recorded with it. A mark
 * without an identity (an older version) takes the PID namespace of the process itself, so a
 * process of another namespace is never judged by a pid of that namespace.
 */
export function markedOwner(pid: number, env: Map<string, string>): ProcessRecord | undefined {
  const ownerPid = Number(env.get(OWNER_PID_ENV));
  if (!Number.isInteger(ownerPid) || ownerPid <= 0) return undefined;
  const identity = parseIdentityMark(env.get(OWNER_IDENTITY_ENV));
  if (identity.pidNs === undefined) {
    const ns = pidNamespaceOf(pid);
    if (ns !== undefined) identity.pidNs = ns;
  }
  return { pid: ownerPid, ...identity };
}

/** The process group of a process (Linux `/proc/<pid>/stat` field 5), or the pid itself elsewhere. */
export function processGroupOf(pid: number): number {
  const pgrp = procStat(pid)?.pgrp;
  return pgrp !== undefined && pgrp > 0 ? pgrp : pid;
}

/**
 * Lane server processes on this host whose owner process is provably dead (Linux only; empty
 * elsewhere): the owner named by their marks is judged by {@link judgeProcess}, so a server whose
 * owner lives in another PID namespace or boot (it cannot be judged here) is never one. Kept
 * servers (`E2E_LANES_KEEP=1`) are left alone. This catches servers that a killed run started
 * but never got to record.
 */
export function findOrphanServers(): OrphanProcess[] {
  let pids: number[];
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name)).map(Number);
  } catch {
    return [];
  }
  const orphans: OrphanProcess[] = [];
  for (const pid of pids) {
    if (pid === process.pid) continue;
    const env = processEnv(pid);
    const server = env?.get(SERVER_MARK_ENV);
    if (!env || !server || env.get(KEEP_ENV) === '1') continue;
    const owner = markedOwner(pid, env);
    if (!owner) continue;
    const verdict = judgeProcess(owner);
    if (verdict.state !== 'gone') continue;
    const stateDir = env.get(STATE_DIR_ENV);
    orphans.push({ pid, runId: env.get(RUN_ID_ENV) ?? '?', server, ownerPid: owner.pid, pgid: processGroupOf(pid), reason: verdict.reason, ...(stateDir ? { stateDir } : {}) });
  }
  return orphans;
}

/** Pids of live processes on this host (Linux `/proc`; empty elsewhere). @internal */
function livePids(): number[] {
  try {
    return readdirSync('/proc').filter((name) => /^\d+$/.test(name)).map(Number);
  } catch {
    return [];
  }
}

/**
 * Every live process on this host that carries the marks of run `runId` in its environment (the
 * marks every lane server gets and its children inherit), optionally only those of one owner pid.
 * Linux only; empty elsewhere. Zombies are left out: they run nothing.
 */
export function findRunProcesses(runId: string, ownerPid?: number): OrphanProcess[] {
  const found: OrphanProcess[] = [];
  for (const pid of livePids()) {
    if (pid === process.pid || !isPidAlive(pid)) continue;
    const env = processEnv(pid);
    const server = env?.get(SERVER_MARK_ENV);
    if (!env || !server || env.get(RUN_ID_ENV) !== runId) continue;
    const owner = Number(env.get(OWNER_PID_ENV));
    if (ownerPid !== undefined && owner !== ownerPid) continue;
    found.push({ pid, runId, server, ownerPid: owner, pgid: processGroupOf(pid) });
  }
  return found;
}

/**
 * Every live lane server process on this host whose marks name the state folder `stateDir`, of
 * any run, kept and warm ones included: what its state files should list, found even when they
 * are lost (Linux only; empty elsewhere).
 */
export function findStateProcesses(stateDir: string): OrphanProcess[] {
  const wanted = resolve(stateDir);
  const found: OrphanProcess[] = [];
  for (const pid of livePids()) {
    if (pid === process.pid || !isPidAlive(pid)) continue;
    const env = processEnv(pid);
    const server = env?.get(SERVER_MARK_ENV);
    if (!env || !server || env.get(STATE_DIR_ENV) !== wanted) continue;
    const owner = markedOwner(pid, env);
    found.push({ pid, runId: env.get(RUN_ID_ENV) ?? '?', server, ownerPid: Number(env.get(OWNER_PID_ENV)), pgid: processGroupOf(pid), ...(owner ? { owner } : {}) });
  }
  return found;
}

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
