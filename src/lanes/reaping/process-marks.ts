/**
 * The marks every lane server carries in its environment (its name, the run, the run's owner and
 * its identity, the state folder, the keep mark), read from `/proc` by one scan that every search
 * for lane server processes goes through. Linux only: elsewhere the scan finds nothing and a
 * recorded pid is trusted.
 */
import { resolve } from 'node:path';
import { KEEP_ENV, OWNER_IDENTITY_ENV, OWNER_PID_ENV, RUN_ID_ENV, SERVER_MARK_ENV, STATE_DIR_ENV } from '../../env-vars.js';
import { isPidAlive } from '../../state/index.js';
import { parseIdentityMark, pidNamespaceOf, type ProcessRecord } from '../../state/identity.js';
import { listPids, processEnv, procStat } from '../../state/proc.js';

/** A live process of this host that carries a lane server's marks, as its environment names them. */
export interface MarkedProcess {
  pid: number;
  /** Its process group. */
  pgid: number;
  /** The server's name ({@link SERVER_MARK_ENV}). */
  server: string;
  /** The run id its marks name, if any. */
  runId: string | undefined;
  /** The owner pid its marks name, as a number (NaN when missing). */
  ownerPid: number;
  /** The state folder its marks name (absent on servers of older versions). */
  stateDir: string | undefined;
  /** Whether it carries the keep mark (a kept or warm lane's server). */
  kept: boolean;
  /** Its whole environment. */
  env: Map<string, string>;
}

/**
 * Every live process on this host but this one that carries a lane server's marks (zombies left
 * out: they run nothing). Linux only; empty elsewhere.
 */
export function markedProcesses(): MarkedProcess[] {
  const found: MarkedProcess[] = [];
  for (const pid of listPids() ?? []) {
    if (pid === process.pid) continue;
    const env = processEnv(pid);
    const server = env?.get(SERVER_MARK_ENV);
    if (!env || !server || !isPidAlive(pid)) continue;
    found.push({
      pid,
      pgid: processGroupOf(pid),
      server,
      runId: env.get(RUN_ID_ENV),
      ownerPid: Number(env.get(OWNER_PID_ENV)),
      stateDir: env.get(STATE_DIR_ENV),
      kept: env.get(KEEP_ENV) === '1',
      env,
    });
  }
  return found;
}

/** True when `stateDir` is the state folder a marked process names. */
export function marksStateDir(found: MarkedProcess, stateDir: string): boolean {
  return found.stateDir === resolve(stateDir);
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
