import { LanesError } from '../errors.js';
import { isPidAlive } from '../state/index.js';

/**
 * The tests that use each lane right now, as the workers report them (a test's start and end). A
 * reset of a lane's data is refused while another live test uses the lane: it would pull the data
 * from under that test. A test whose worker died is forgotten (its pid is gone).
 */

/** Who uses a lane: one test of one worker process. */
export interface LaneUser {
  /** The worker process. */
  pid: number;
  /** Playwright's test id (with the retry and repeat). */
  testId: string;
  /** For messages. */
  title?: string;
}

export class LaneUsers {
  readonly #byLane = new Map<string, Map<string, LaneUser>>();

  /** Records that `user` uses the lane `laneId`. */
  begin(laneId: string, user: LaneUser): void {
    let users = this.#byLane.get(laneId);
    if (!users) this.#byLane.set(laneId, (users = new Map()));
    users.set(userKey(user), user);
  }

  /** Records that `user` is done with the lane. */
  end(laneId: string, user: LaneUser): void {
    const users = this.#byLane.get(laneId);
    users?.delete(userKey(user));
    if (users?.size === 0) this.#byLane.delete(laneId);
  }

  /**
   * Refuses a reset asked for by `user` (undefined: asked from outside a test) while another live
   * test uses the lane.
   * @throws {LanesError} `LANE_RESET_CONFLICT` naming the other test and how to give each test a lane.
   */
  assertAlone(laneId: string, laneName: string, user: LaneUser | undefined): void {
    const users = this.#byLane.get(laneId);
    if (!users) return;
    for (const [key, other] of users) {
      if (user && key === userKey(user)) continue;
      if (!isPidAlive(other.pid)) {
        users.delete(key);
        continue;
      }
      throw new LanesError(
        'LANE_RESET_CONFLICT',
        `The data of ${laneName} cannot be reset: another test uses the lane right now (${other.title ? JSON.stringify(other.title) : other.testId}, worker pid ${other.pid}).`,
        {
          hint: "Tests that reset their lane's data must not share the lane with tests running at the same time: give them a lane per worker (use: { laneIsolation: 'worker' }), or run the project with one worker (test.describe.configure({ mode: 'serial' }) or workers: 1).",
          details: { other },
        },
      );
    }
  }
}

function userKey(user: LaneUser): string {
  return `${user.pid}\0${user.testId}`;
}
