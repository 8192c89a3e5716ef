/**
 * The end-of-run line that says where a run's time went: how long its lanes' servers took to start,
 * how many booted at once on how many cores, when the first and the last lane were up, and, when
 * server boots took much of the run, the lever that helps.
 */
import { availableParallelism } from 'node:os';
import type { BootTiming } from './boot-gate.js';

/** What the line is made of. */
export interface RunTimes {
  /** Each lane's boot, as the gate saw it. */
  timings: readonly BootTiming[];
  /** The most lanes that started their servers at once. */
  peak: number;
  /** From the start of global setup until now. */
  runMs: number;
  /** With `reuse` on, lanes stay warm for the next run already. */
  reuse: boolean;
  /** On CI (warm lanes are not kept there). */
  ci: boolean;
  cores?: number;
}

/** The line, or undefined when no lane was booted. */
export function describeRunTimes(times: RunTimes): string | undefined {
  const { timings } = times;
  if (timings.length === 0) return undefined;
  const cores = times.cores ?? availableParallelism();
  const servers = timings.reduce((sum, timing) => sum + timing.servers, 0);
  const bootMs = timings.reduce((sum, timing) => sum + timing.bootMs, 0);
  const firstUp = Math.min(...timings.map((timing) => timing.doneAtMs));
  const lastUp = Math.max(...timings.map((timing) => timing.doneAtMs));
  const lanes = `${timings.length} lane boot${timings.length === 1 ? '' : 's'}`;
  const atOnce = `${times.peak} at a time on ${cores} core${cores === 1 ? '' : 's'}`;
  const when = timings.length === 1 ? `the lane was up at ${seconds(firstUp)}` : `the first lane was up at ${seconds(firstUp)}, the last at ${seconds(lastUp)}`;
  let line = `time: ${lanes} (${servers} server${servers === 1 ? '' : 's'}, ${atOnce}) took ${seconds(bootMs)} of server starts; ${when}; the run: ${seconds(times.runMs)}`;
  // Server boots were a large share of the run: say what helps.
  if (bootMs >= 0.4 * times.runMs) {
    if (!times.reuse && !times.ci) line += '. Most of it is server boots: `reuse: true` keeps the lanes warm for the next local run';
    else if (timings.length > 1) line += `. Most of it is server boots: fewer lanes (fewer \`workers\` with \`isolation: 'worker'\`, fewer projects) boot fewer servers`;
  }
  return line;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
