import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { isPidAlive } from '../../src/state/index.js';
import { killGroupsAfter } from './processes.js';

/** The marks a lane server carries (see lanes/reaping/process-marks.ts), by variable. */
export interface Marks {
  server?: string;
  runId?: string;
  ownerPid?: number;
  stateDir?: string;
  keep?: boolean;
  /** Other variables. */
  env?: NodeJS.ProcessEnv;
}

/**
 * Starts an idle node process in a process group of its own with `marks` in its environment
 * (none of this process's marks), SIGKILLed with its group when the test ends.
 */
export async function startMarked(t: TestContext, marks: Marks): Promise<number> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...marks.env };
  for (const name of Object.keys(env)) if (name.startsWith('E2E_LANES_')) delete env[name];
  if (marks.server !== undefined) env.E2E_LANES_SERVER = marks.server;
  if (marks.runId !== undefined) env.E2E_LANES_RUN_ID = marks.runId;
  if (marks.ownerPid !== undefined) env.E2E_LANES_OWNER_PID = String(marks.ownerPid);
  if (marks.stateDir !== undefined) env.E2E_LANES_STATE_DIR = marks.stateDir;
  if (marks.keep) env.E2E_LANES_KEEP = '1';
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { env, detached: true, stdio: 'ignore' });
  child.unref();
  const pid = child.pid!;
  killGroupsAfter(t, () => [pid]);
  // Its marks are in /proc once it has started node (a moment after the fork).
  if (marks.server !== undefined) await until('the marked process runs', () => environOf(pid).includes('E2E_LANES_SERVER='));
  return pid;
}

/** A pid that no process has now (a child that already exited). */
export async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  const pid = child.pid!;
  await new Promise((resolve) => child.once('exit', resolve));
  return pid;
}

/** Waits until `check` holds, at most `ms`. */
export async function until(what: string, check: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not after ${ms} ms`);
    await sleep(25);
  }
}

function environOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'utf8');
  } catch {
    return 'E2E_LANES_SERVER='; // no /proc: nothing to wait for
  }
}
