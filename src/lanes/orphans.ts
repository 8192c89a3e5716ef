import { readdirSync, readFileSync } from 'node:fs';
import { isPidAlive } from '../state/index.js';
import { procStat } from '../state/proc.js';

/** Environment variable that marks a process as a lane server (its value is the server name). */
export const SERVER_MARK_ENV = 'E2E_LANES_SERVER';

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
  return env.has(SERVER_MARK_ENV) && env.get('E2E_LANES_RUN_ID') === runId;
}

/** A lane server process whose run's owner is gone. */
export interface OrphanProcess {
  pid: number;
  runId: string;
  server: string;
  ownerPid: number;
  /** Its process group, to kill with it. */
  pgid: number;
}

/** The process group of a process (Linux `/proc/<pid>/stat` field 5), or the pid itself elsewhere. */
export function processGroupOf(pid: number): number {
  const pgrp = procStat(pid)?.pgrp;
  return pgrp !== undefined && pgrp > 0 ? pgrp : pid;
}

/**
 * Lane server processes on this host whose owner process is dead (Linux only; empty elsewhere).
 * This catches servers that a killed run started but never got to record.
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
    if (!env || !server || env.get('E2E_LANES_KEEP') === '1') continue;
    const ownerPid = Number(env.get('E2E_LANES_OWNER_PID'));
    if (!Number.isInteger(ownerPid) || ownerPid <= 0 || isPidAlive(ownerPid)) continue;
    orphans.push({ pid, runId: env.get('E2E_LANES_RUN_ID') ?? '?', server, ownerPid, pgid: processGroupOf(pid) });
  }
  return orphans;
}
