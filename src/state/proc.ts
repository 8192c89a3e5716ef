/**
 * The one reader of Linux `/proc` for processes: the pids it lists, a process's `stat` fields and
 * its environment (where the toolkit's marks are). Elsewhere (no `/proc`) each says so.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** The fields of `/proc/<pid>/stat` the toolkit uses (Linux). */
export interface ProcStat {
  /** Command name (without the parentheses). */
  comm: string;
  /** One letter: R, S, D, Z (zombie), X (dead), … */
  state: string;
  /** Parent process. */
  ppid: number;
  /** Process group. */
  pgrp: number;
  /** Kernel start time in clock ticks since boot: tells a recycled pid from the original process. */
  startTime: number;
  /** CPU time (user + system, clock ticks) of the children that ended and were waited for (`cutime` + `cstime`). */
  childrenCpuTicks: number;
}

/** `/proc/<pid>/stat` parsed, or undefined where there is no /proc (not Linux) or the process is gone. */
export function procStat(pid: number | 'self'): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid pgrp …": comm may contain spaces and parentheses, so split after the last ')'.
  const close = text.lastIndexOf(')');
  const fields = text.slice(close + 2).split(' ');
  const state = fields[0];
  const ppid = Number(fields[1]);
  const pgrp = Number(fields[2]);
  const startTime = Number(fields[19]);
  const childrenCpuTicks = Number(fields[13]) + Number(fields[14]);
  if (state === undefined || !Number.isInteger(pgrp) || !Number.isFinite(startTime)) return undefined;
  return { comm: text.slice(text.indexOf('(') + 1, close), state, ppid, pgrp, startTime, childrenCpuTicks };
}

/** The pids `/proc` lists (this process's among them), or undefined where there is no /proc (not Linux). */
export function listPids(): number[] | undefined {
  try {
    return readdirSync('/proc').filter((name) => /^\d+$/.test(name)).map(Number);
  } catch {
    return undefined;
  }
}

/**
 * The processes below `pid` (children, their children…) with their start times, parents before
 * children; empty where there is no /proc.
 */
export function descendantsOf(pid: number): Array<{ pid: number; startTime: number }> {
  const children = new Map<number, Array<{ pid: number; startTime: number }>>();
  for (const candidate of listPids() ?? []) {
    const stat = procStat(candidate);
    if (!stat) continue;
    const siblings = children.get(stat.ppid) ?? [];
    siblings.push({ pid: candidate, startTime: stat.startTime });
    children.set(stat.ppid, siblings);
  }
  const found: Array<{ pid: number; startTime: number }> = [];
  const queue = [pid];
  for (let next = queue.shift(); next !== undefined && found.length < 10_000; next = queue.shift()) {
    for (const child of children.get(next) ?? []) {
      found.push(child);
      queue.push(child.pid);
    }
  }
  return found;
}

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
