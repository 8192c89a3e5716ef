/**
 * A reset of a lane's data asked while its servers run (`laneReset`, `lane.resetDatabase()`): only
 * once no other test uses the lane (see lane-users.ts), one reset of a lane after another.
 */
import type { DatabaseAllocator, DatabaseReset, ResetStrategy } from '../../databases/index.js';
import { LanesError } from '../../errors.js';
import { debugLogger } from '../../log.js';
import { describeLane, type LaneKey } from '../../state/index.js';
import type { LaneUser, LaneUsers } from './lane-users.js';

const debug = debugLogger('lanes');

/** The lane whose data is reset, as its run holds it. */
export interface ResetTarget {
  key: LaneKey;
  id: string;
  databases: DatabaseAllocator | undefined;
  users: LaneUsers;
  /** Where the lane's last reset is kept (resets of a lane run one after another). */
  resets: { lastReset?: Promise<unknown> };
  /** The lane once up (marked `swapped` after a swap), or undefined. */
  up(): Promise<{ swapped?: boolean } | undefined>;
}

/** How `LaneManager.resetLane` resets: the strategy, and the test asking (for the lane's gate). */
export interface LaneResetOptions {
  strategy?: ResetStrategy;
  user?: LaneUser;
}

/**
 * Puts the lane's database back to exactly the template while its servers keep running (see
 * DatabaseAllocator.resetDatabaseForProject).
 * @throws {LanesError} `INVALID_OPTION` for lanes without a database, `LANE_RESET_CONFLICT` while
 *   another live test uses the lane, `LANE_NOT_FOUND` before the lane booted, `DATABASE_RESET_FAILED`.
 */
export async function resetLaneData(target: ResetTarget, options: LaneResetOptions = {}): Promise<DatabaseReset> {
  const { key, databases } = target;
  if (!databases) {
    throw new LanesError('INVALID_OPTION', `laneReset / resetDatabase() on ${describeLane(key)}, but its lanes have no database (option \`database: false\`).`, {
      hint: 'Remove laneReset from the project (or give the lanes a database).',
    });
  }
  const running = await target.up();
  if (!running) throw new LanesError('LANE_NOT_FOUND', `${describeLane(key)} is not up: its data cannot be reset.`, { hint: 'Ask for the lane (the `lane` fixture) first.' });
  // The check that no other test uses the lane and the claim that keeps them out: one step.
  const claim = target.users.claimReset(target.id, describeLane(key), options.user);
  const reset = (target.resets.lastReset ?? Promise.resolve()).catch(() => undefined).then(() => databases.resetDatabaseForProject(key.project, { ...(key.worker !== undefined ? { worker: key.worker } : {}), ...(options.strategy ? { strategy: options.strategy } : {}) }));
  target.resets.lastReset = reset;
  const result = await reset.finally(() => claim.release());
  if (result.strategy === 'swap') running.swapped = true;
  debug('reset %s (%s from %s) in %d ms', describeLane(key), result.strategy, result.source, Math.round(result.durationMs));
  return result;
}
