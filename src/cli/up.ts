import { LanesError } from '../errors.js';
import { LaneManager, type Lane } from '../lanes/lane-manager.js';
import type { LanesOptions } from '../lanes/options.js';
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
  const stop = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  let lane: Lane;
  try {
    lane = await Promise.race([manager.ensureLane(project), stop.then((signal) => Promise.reject(new LanesError('INTERRUPTED', `Interrupted by ${signal} while the lane was starting; what was started has been stopped.`)))]);
  } catch (error) {
    await manager.teardown({ keep: false });
    throw error;
  }
  console.log(describeLane(lane, out.showSecrets));
  console.log(`\nPress Ctrl-C to stop the lane (run ${manager.runId}).`);
  // The servers are unref'd children and signal listeners do not keep Node alive: hold it open.
  const hold = setInterval(() => undefined, 60_000);
  await stop.finally(() => clearInterval(hold));
  console.log('\nStopping…');
  await manager.teardown({ keep: false });
}

function describeLane(lane: Lane, showSecrets: boolean): string {
  const lines = [bold(`Lane of project ${JSON.stringify(lane.project)} is up`)];
  for (const [name, url] of Object.entries(lane.urls)) lines.push(`  ${name.padEnd(12)} ${url}`);
  if (lane.databaseUrl) lines.push(`  ${'DATABASE_URL'.padEnd(12)} ${showSecrets ? lane.databaseUrl : redactUrl(lane.databaseUrl)}`);
  for (const [name, file] of Object.entries(lane.logFiles)) lines.push(`  ${`${name} log`.padEnd(12)} ${file}`);
  return lines.join('\n');
}
