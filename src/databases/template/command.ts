import { isAbsolute, relative } from 'node:path';
import { loadExeca } from '../../lazy-execa.js';
import { pointEnvAt } from '../../postgres/app-env.js';
import { descendantsOf, procStat } from '../../state/proc.js';
import { passwordOf, redactText } from '../../redact.js';
import { reportProgress } from './deadline.js';
import type { CommandStep } from '../types.js';

/** How a command run for a database ended. @internal */
export interface CommandOutcome {
  ok: boolean;
  /** e.g. `exit code 1`, `signal SIGKILL`, `timed out after 600 s`. */
  reason: string;
  /** True when it was killed for running past its deadline. */
  timedOut: boolean;
  /** The last lines of stdout + stderr, passwords removed. */
  tail: string;
  durationMs: number;
}

const DEFAULT_TIMEOUT_MS = 600_000;
/** From SIGTERM to SIGKILL for a command past its deadline. */
const KILL_DELAY_MS = 5_000;
const TAIL_LINES = 30;

/**
 * Runs `step.command` through the shell with `DATABASE_URL` (and the other variables of
 * pointEnvAt) set to `databaseUrl`, the rest of the environment inherited, killed after
 * `step.timeoutMs` (else `defaultTimeoutMs`, else 10 minutes); while it runs, a progress line
 * `<label>: <n> s…` is printed every 10 s. Never throws for a failing command: the caller turns the
 * outcome into its own error code. @internal
 */
export async function runDatabaseCommand(
  step: CommandStep,
  databaseUrl: string,
  options: { defaultTimeoutMs?: number; label?: string } = {},
): Promise<CommandOutcome> {
  const execa = await loadExeca();
  const started = performance.now();
  const timeoutMs = step.timeoutMs ?? options.defaultTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  const stop = reportProgress(options.label ?? `running \`${step.command}\``);
  // The database being built, in every variable a tool may read it from (psql reads PG*).
  const env: NodeJS.ProcessEnv = { ...process.env };
  pointEnvAt(databaseUrl, env);
  const subprocess = execa(step.command, {
    shell: true,
    cwd: step.cwd ?? process.cwd(),
    env,
    extendEnv: false,
    stdin: 'ignore',
    all: true,
    reject: false,
    forceKillAfterDelay: KILL_DELAY_MS,
  });
  // Past the deadline, the shell and everything it started go (a child that keeps the output open
  // would otherwise hold the command open after the shell is gone): SIGTERM, then SIGKILL.
  let timedOut = false;
  let killing: NodeJS.Timeout | undefined;
  const deadline = setTimeout(() => {
    timedOut = true;
    // The shell first (so it runs nothing more), then what it started, as seen before either signal.
    const tree = subprocess.pid === undefined ? [] : [...descendantsOf(subprocess.pid)];
    subprocess.kill('SIGTERM');
    signalAll(tree, 'SIGTERM');
    killing = setTimeout(() => signalAll(tree, 'SIGKILL'), KILL_DELAY_MS);
  }, timeoutMs);
  const result = await subprocess.finally(() => {
    clearTimeout(deadline);
    clearTimeout(killing);
    stop();
  });
  const password = passwordOf(databaseUrl);
  const tail = redactText(lastLines(String(result.all ?? ''), TAIL_LINES), password ? [password] : []);
  let reason = `exit code ${result.exitCode ?? '?'}`;
  if (timedOut) reason = `timed out after ${Math.round(timeoutMs / 1000)} s`;
  else if (result.signal) reason = `signal ${result.signal}`;
  else if (result.failed && result.exitCode === undefined) reason = redactText(result.shortMessage ?? 'could not start', password ? [password] : []);
  return { ok: !result.failed && !timedOut, reason, timedOut, tail, durationMs: performance.now() - started };
}

/** Sends `signal` to each process of `tree` that is still the one seen (same start time). */
function signalAll(tree: ReadonlyArray<{ pid: number; startTime: number }>, signal: NodeJS.Signals): void {
  for (const { pid, startTime } of tree) {
    if (procStat(pid)?.startTime !== startTime) continue;
    try {
      process.kill(pid, signal);
    } catch {
      // gone meanwhile
    }
  }
}

function lastLines(text: string, count: number): string {
  const lines = text.replace(/\s+$/, '').split(/\r?\n/);
  return lines.slice(-count).join('\n');
}

/** `path` relative to the current folder when inside it, for messages. @internal */
export function displayPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
}
