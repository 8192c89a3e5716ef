import { setTimeout as sleep } from 'node:timers/promises';
import { LanesError } from '../errors.js';
import { laneLedger, LANES_FILE } from '../lanes/records/lane-ledger.js';
import { LaneManager, type Lane } from '../lanes/lane-manager.js';
import type { LanesOptions } from '../lanes/options/lane-options.js';
import { redactUrl } from '../redact.js';
import { claimRunOwnership } from '../state/index.js';
import { bold } from './format.js';

/**
 * Brings up the lane of `project` (from the config's options) and keeps it until Ctrl-C or
 * SIGTERM, then tears it down. Resolves once the lane is down again.
 */
export async function holdLane(
  options: LanesOptions,
  project: string,
  out: { showSecrets: boolean; stateDir?: string; projects?: string[] },
): Promise<void> {
  if (out.projects && !out.projects.includes(project)) {
    throw new LanesError('LANE_NOT_FOUND', `Project ${JSON.stringify(project)} is not in the Playwright config.`, {
      hint: `Use one of: ${out.projects.map((name) => JSON.stringify(name)).join(', ') || '(the config has no named projects)'}.`,
    });
  }
  claimRunOwnership();
  const manager = new LaneManager({ ...options, ...(out.stateDir ? { stateDir: out.stateDir } : {}), keep: false });
  // The handlers stay until the teardown is done: signal-exit (which the lanes' exit hook loads)
  // ends the process with the signal as soon as no other handler is left.
  let onSignal: (signal: NodeJS.Signals) => void = () => undefined;
  const stop = new Promise<NodeJS.Signals>((resolve) => (onSignal = resolve));
  for (const signal of STOP_SIGNALS) process.on(signal, onSignal);
  try {
    await runLane(manager, project, stop, out);
  } finally {
    for (const signal of STOP_SIGNALS) process.off(signal, onSignal);
  }
}

/** The signals that stop `up`. */
const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];

/** Boots the lane, prints it, and tears it down once `stop` resolves (or `down` removed it). */
async function runLane(manager: LaneManager, project: string, stop: Promise<NodeJS.Signals>, out: { showSecrets: boolean }): Promise<void> {
  let lane: Lane;
  try {
    lane = await Promise.race([manager.ensureLane(project), stop.then((signal) => Promise.reject(new LanesError('INTERRUPTED', `Interrupted by ${signal} while the lane was starting; what was started has been stopped.`)))]);
  } catch (error) {
    await manager.teardown({ keep: false });
    throw error;
  }
  console.log(describeLane(lane, out.showSecrets));
  console.log(`\nPress Ctrl-C to stop the lane (run ${manager.runId}).`);
  const removed = new AbortController();
  // Also holds Node open: the servers are unref'd children and signal listeners do not.
  const watching = watchLedger(manager, lane, removed.signal);
  const why = await Promise.race([stop, watching]);
  removed.abort();
  console.log(why === 'removed' ? `\nThe lane was removed from ${LANES_FILE} (e2e-lanes down); stopping what is left of it.` : '\nStopping…');
  await manager.teardown({ keep: false });
}

/** How often `up` checks that its lane is still recorded. */
const LEDGER_POLL_MS = 1_000;

/**
 * Resolves `'removed'` once the lane's entry is gone from the lanes ledger (`e2e-lanes down`
 * removed it), polling every second until `signal` aborts. A ledger that cannot be read counts as
 * unknown, not as removed.
 */
async function watchLedger(manager: LaneManager, lane: Lane, signal: AbortSignal): Promise<'removed' | 'stopped'> {
  const ledger = laneLedger(manager.stateDir);
  while (!signal.aborted) {
    await sleep(LEDGER_POLL_MS, undefined, { signal }).catch(() => undefined);
    if (signal.aborted) break;
    const entries = await ledger.read().then((doc) => doc.entries, () => undefined);
    if (entries && !entries.some((entry) => entry.runId === manager.runId && entry.project === lane.project && entry.worker === undefined)) return 'removed';
  }
  return 'stopped';
}

function describeLane(lane: Lane, showSecrets: boolean): string {
  const lines = [bold(`Lane of project ${JSON.stringify(lane.project)} is up`)];
  for (const [name, url] of Object.entries(lane.urls)) lines.push(`  ${name.padEnd(12)} ${url}`);
  if (lane.databaseUrl) lines.push(`  ${'DATABASE_URL'.padEnd(12)} ${showSecrets ? lane.databaseUrl : redactUrl(lane.databaseUrl)}`);
  for (const [name, file] of Object.entries(lane.logFiles)) lines.push(`  ${`${name} log`.padEnd(12)} ${file}`);
  return lines.join('\n');
}
