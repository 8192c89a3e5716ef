import { setTimeout as sleep } from 'node:timers/promises';
import createDebug from 'debug';
import { LanesError } from '../errors.js';
import { isPidAlive } from '../state/owner.js';
import { listPids, procStat } from '../state/proc.js';
import type { KillProcessGroupOptions } from './types.js';

const log = createDebug('e2e-lanes:servers');

const POLL_MS = 50;
/** How long to wait for the group to vanish after SIGKILL before giving up. */
const AFTER_KILL_MS = 2_000;

/**
 * True when a process with this pid exists and is not a zombie. A process owned by another user
 * (EPERM) counts as alive.
 */
export function isProcessAlive(pid: number): boolean {
  return isPidAlive(pid);
}

/**
 * True when any live (non-zombie) process is in process group `pgid`.
 *
 * `kill(-pgid, 0)` alone is not enough: where PID 1 does not reap orphans (containers without an
 * init), killed grandchildren stay zombies forever and keep the group "existing". On Linux the
 * group's members are therefore checked in /proc.
 */
export function isProcessGroupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (error) {
    return errnoOf(error) === 'EPERM';
  }
  const members = procGroupStates(pgid);
  return members === undefined || members.some((state) => state !== 'Z' && state !== 'X');
}

/**
 * Ends a whole process group: sends `signal` to `-pid`, waits up to `timeout` for every member to
 * be gone, then SIGKILLs the group. A group that is already gone (ESRCH) is fine.
 * Meant for a server whose pid a dead run recorded; the caller must make sure the pid was not
 * reused since (e.g. by comparing its recorded start time).
 *
 * @returns true when the group is gone, false when it still exists (e.g. it belongs to another user).
 */
export async function killProcessGroup(pid: number, options: KillProcessGroupOptions = {}): Promise<boolean> {
  assertSafeGroup(pid);
  const signal = options.signal ?? 'SIGTERM';
  const timeout = options.timeout ?? 5_000;
  if (!Number.isFinite(timeout) || timeout < 0) {
    throw new LanesError('INVALID_OPTION', `killProcessGroup: timeout must be a number of milliseconds ≥ 0, got ${String(timeout)}.`);
  }

  if (!signalGroup(pid, signal)) return !isProcessGroupAlive(pid);
  if (await waitForGroupGone(pid, timeout)) {
    log('process group %d ended after %s', pid, signal);
    return true;
  }
  log('process group %d still alive %d ms after %s; sending SIGKILL', pid, timeout, signal);
  signalGroup(pid, 'SIGKILL');
  const gone = await waitForGroupGone(pid, AFTER_KILL_MS);
  if (!gone) log('process group %d still alive after SIGKILL', pid);
  return gone;
}

/** Sends `signal` to group `pgid`. Returns false when there is nothing to signal (ESRCH, EPERM). */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (error) {
    const code = errnoOf(error);
    if (code === 'ESRCH' || code === 'EPERM') {
      log('cannot send %s to process group %d: %s', signal, pgid, code);
      return false;
    }
    throw error;
  }
}

/** Polls until group `pgid` has no live member, for at most `timeout` ms. */
export async function waitForGroupGone(pgid: number, timeout: number): Promise<boolean> {
  const deadline = Date.now() + timeout;
  const maxPolls = Math.ceil(timeout / POLL_MS) + 1;
  for (let poll = 0; poll <= maxPolls; poll++) {
    if (!isProcessGroupAlive(pgid)) return true;
    const left = deadline - Date.now();
    if (left <= 0) break;
    await sleep(Math.min(POLL_MS, left));
  }
  return !isProcessGroupAlive(pgid);
}

/** Refuses pids whose negation would signal far more than one server: 0, 1, our own group. @internal */
function assertSafeGroup(pid: number): void {
  const own = procStat('self');
  if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid || (own !== undefined && own.pgrp === pid)) {
    throw new LanesError('INVALID_OPTION', `killProcessGroup: ${String(pid)} is not a process group this toolkit may kill.`, {
      hint: 'Pass the pid recorded for a server (its process-group leader), never 0, 1 or the current process.',
    });
  }
}

/** States of the members of group `pgid`, or undefined when /proc is not available. @internal */
function procGroupStates(pgid: number): string[] | undefined {
  const pids = listPids();
  if (!pids) return undefined;
  const states: string[] = [];
  for (const pid of pids) {
    const stat = procStat(pid);
    if (stat?.pgrp === pgid) states.push(stat.state);
  }
  return states;
}

/** @internal */
function errnoOf(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}
