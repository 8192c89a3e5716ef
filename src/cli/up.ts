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
export async function holdLane(options: LanesOptions, project: string, out: { showSecrets: boolean; stateDir?: string }): Promise<void> {
  claimRunOwnership();
  const manager = new LaneManager({ ...options, ...(out.stateDir ? { stateDir: out.stateDir } : {}), keep: false });
  const stop = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  let lane: Lane;
  try {
    lane = await Promise.race([manager.ensureLane(project), stop.then((signal) => Promise.reject(new LanesError('LANE_NOT_FOUND', `Interrupted by ${signal} while the lane was starting.`)))]);
  } catch (error) {
    await manager.teardown({ keep: false });
    throw error;
  }
  console.log(describeLane(lane, out.showSecrets));
  console.log(`\nPress Ctrl-C to stop the lane (run ${manager.runId}).`);
  await stop;
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
