/**
 * Deadlines and progress lines for the steps of a template build that run user code or wait on the
 * server (migrations, seed, the wait for another builder): none of them may wait forever, and one
 * that runs long prints a line every few seconds so it never looks like a hang.
 * @internal
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { PROGRESS_INTERVAL_ENV } from '../../env-vars.js';
import { progress } from '../../log.js';

const DEFAULT_PROGRESS_INTERVAL_MS = 10_000;

/** The interval of progress lines: `E2E_LANES_PROGRESS_INTERVAL_MS` when it is a positive number, else 10 s. */
export function progressIntervalMs(): number {
  const fromEnv = Number(process.env[PROGRESS_INTERVAL_ENV]);
  return Number.isFinite(fromEnv) && fromEnv > 0 ? fromEnv : DEFAULT_PROGRESS_INTERVAL_MS;
}

/**
 * Prints `<label>: <n> s…` every progress interval until the returned function is called.
 * `label` may be a function, re-evaluated at each line.
 */
export function reportProgress(label: string | (() => string), intervalMs = progressIntervalMs()): () => void {
  const started = performance.now();
  const timer = setInterval(() => {
    const text = typeof label === 'function' ? label() : label;
    progress(`${text}: ${formatSeconds(performance.now() - started)}…`);
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * Waits for `work` at most `timeoutMs`, printing progress lines meanwhile. Resolves
 * `{ done: true, value }`, or `{ done: false }` when the deadline passed first (`work` goes on: the
 * caller ends it). A rejection of `work` is passed on. The deadline keeps the process alive: a step
 * whose work holds no handle still ends in its error, not in a silent exit.
 */
export async function withinDeadline<T>(work: Promise<T>, timeoutMs: number, label: string | (() => string)): Promise<{ done: true; value: T } | { done: false }> {
  const stop = reportProgress(label);
  const abort = new AbortController();
  try {
    return await Promise.race([
      work.then((value) => ({ done: true as const, value })),
      sleep(timeoutMs, undefined, { signal: abort.signal }).then(() => ({ done: false as const })),
    ]);
  } finally {
    abort.abort();
    stop();
  }
}

/** `12 s`, `1.5 s`, `3 min` for messages. */
export function formatSeconds(ms: number): string {
  if (ms >= 120_000 && ms % 60_000 === 0) return `${ms / 60_000} min`;
  const seconds = ms / 1000;
  return `${seconds >= 10 || Number.isInteger(seconds) ? Math.round(seconds) : seconds.toFixed(1)} s`;
}
