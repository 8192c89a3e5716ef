import { LanesError } from '../../errors.js';
import { isPidAlive } from '../../state/index.js';

/**
 * The tests that use each lane right now, as the workers report them (a test's start and end), and
 * the one gate every use of a lane's data goes through:
 *
 * - a test that resets the lane (`laneReset: 'test'`) holds it alone from its reset to its end: it
 *   enters once no other test uses the lane, and no other test enters until it ends;
 * - other tests share the lane, but none enters while a reset of the lane runs;
 * - a reset asked from a test (`lane.resetDatabase()`) or from a hook is refused while another
 *   test uses the lane, and holds the lane until it is done.
 *
 * Each check and its claim are one synchronous step, so no reset ever ends a session of a test
 * that is running. Tests waiting to enter are served in order. A test whose worker died is
 * forgotten (its pid is gone), and so is an earlier test of a worker that begins another one (a
 * worker runs one test at a time).
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

/** How a test enters a lane. */
export interface BeginOptions {
  /** The test resets the lane and holds it alone until it ends. */
  exclusive?: boolean;
  /** Stops waiting (the worker went away, the run is torn down). */
  signal?: AbortSignal;
  /** The longest wait for the lane, in ms. @default 600_000 */
  timeoutMs?: number;
}

/** How often waiting tests look again at users whose worker may have died. */
const RECHECK_MS = 250;
const DEFAULT_WAIT_MS = 600_000;

interface Use {
  user: LaneUser;
  exclusive: boolean;
}

interface Waiter {
  user: LaneUser;
  exclusive: boolean;
  enter(): void;
}

interface LaneState {
  uses: Map<string, Use>;
  /** Resets running now. */
  resets: number;
  queue: Waiter[];
  timer?: NodeJS.Timeout;
}

export class LaneUsers {
  readonly #lanes = new Map<string, LaneState>();

  /**
   * Records that `user` uses the lane `laneId`, once it may: at once when nothing stands in the way,
   * else when the tests and resets in its way are done (in the order the tests asked).
   * @throws {LanesError} `LANE_RESET_CONFLICT` when the lane stayed taken for `timeoutMs`;
   *   `INTERRUPTED` when `signal` aborts the wait.
   */
  async begin(laneId: string, laneName: string, user: LaneUser, options: BeginOptions = {}): Promise<void> {
    const lane = this.#lane(laneId);
    const exclusive = options.exclusive ?? false;
    if (lane.queue.length === 0 && this.#mayEnter(lane, user, exclusive)) {
      this.#record(lane, user, exclusive);
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const timeoutMs = options.timeoutMs ?? DEFAULT_WAIT_MS;
      const leave = (error: LanesError): void => {
        clearTimeout(deadline);
        options.signal?.removeEventListener('abort', onAbort);
        lane.queue.splice(lane.queue.indexOf(waiter), 1);
        this.#drain(laneId);
        reject(error);
      };
      const onAbort = (): void => leave(new LanesError('INTERRUPTED', `The test ${describeUser(user)} stopped waiting for ${laneName}.`));
      const deadline = setTimeout(() => leave(busy(laneName, this.#holders(lane, user), timeoutMs)), timeoutMs);
      const waiter: Waiter = {
        user,
        exclusive,
        enter: () => {
          clearTimeout(deadline);
          options.signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      lane.queue.push(waiter);
      if (options.signal?.aborted) return onAbort();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.#watch(laneId, lane);
    });
  }

  /** Records that `user` is done with the lane; the next tests waiting for it enter. */
  end(laneId: string, user: LaneUser): void {
    const lane = this.#lanes.get(laneId);
    if (!lane) return;
    lane.uses.delete(userKey(user));
    this.#drain(laneId);
  }

  /** Lets other tests share the lane with `user` again (after a reset it held the lane alone for). */
  share(laneId: string, user: LaneUser): void {
    const use = this.#lanes.get(laneId)?.uses.get(userKey(user));
    if (!use) return;
    use.exclusive = false;
    this.#drain(laneId);
  }

  /**
   * Claims the lane for a reset asked by `user` (undefined: asked from outside a test), in the same
   * step as the check that no other live test uses it: no test enters until `release()`.
   * @throws {LanesError} `LANE_RESET_CONFLICT` naming the other test and how to give each test a lane.
   */
  claimReset(laneId: string, laneName: string, user: LaneUser | undefined): { release(): void } {
    const lane = this.#lane(laneId);
    this.#prune(lane, user);
    const other = [...lane.uses.values()].find((use) => !user || userKey(use.user) !== userKey(user));
    if (other) {
      throw new LanesError(
        'LANE_RESET_CONFLICT',
        `The data of ${laneName} cannot be reset: another test uses the lane right now (${describeUser(other.user)}, worker pid ${other.user.pid}).`,
        {
          hint: "Tests that reset their lane's data must not share the lane with tests running at the same time: give them a lane per worker (use: { laneIsolation: 'worker' }), or run the project with one worker (test.describe.configure({ mode: 'serial' }) or workers: 1).",
          details: { other: other.user },
        },
      );
    }
    lane.resets += 1;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        lane.resets -= 1;
        this.#drain(laneId);
      },
    };
  }

  /** The tests using the lane now (for messages and tests). */
  users(laneId: string): LaneUser[] {
    return [...(this.#lanes.get(laneId)?.uses.values() ?? [])].map((use) => use.user);
  }

  #lane(laneId: string): LaneState {
    let lane = this.#lanes.get(laneId);
    if (!lane) this.#lanes.set(laneId, (lane = { uses: new Map(), resets: 0, queue: [] }));
    return lane;
  }

  #record(lane: LaneState, user: LaneUser, exclusive: boolean): void {
    lane.uses.set(userKey(user), { user, exclusive });
  }

  /** Forgets uses of dead workers, and earlier tests of the worker of `user`. */
  #prune(lane: LaneState, user: LaneUser | undefined): void {
    for (const [key, use] of lane.uses) {
      const earlierOfSameWorker = user !== undefined && use.user.pid === user.pid && use.user.testId !== user.testId;
      if (earlierOfSameWorker || !isPidAlive(use.user.pid)) lane.uses.delete(key);
    }
  }

  #mayEnter(lane: LaneState, user: LaneUser, exclusive: boolean): boolean {
    this.#prune(lane, user);
    if (lane.resets > 0) return false;
    const others = [...lane.uses.values()].filter((use) => userKey(use.user) !== userKey(user));
    return exclusive ? others.length === 0 : !others.some((use) => use.exclusive);
  }

  /** Lets in the waiting tests that may enter now, first come first served. */
  #drain(laneId: string): void {
    const lane = this.#lanes.get(laneId);
    if (!lane) return;
    while (lane.queue.length > 0) {
      const next = lane.queue[0]!;
      if (!this.#mayEnter(lane, next.user, next.exclusive)) break;
      lane.queue.shift();
      this.#record(lane, next.user, next.exclusive);
      next.enter();
    }
    if (lane.queue.length === 0) {
      clearInterval(lane.timer);
      delete lane.timer;
      if (lane.uses.size === 0 && lane.resets === 0) this.#lanes.delete(laneId);
    }
  }

  /** While tests wait, looks again now and then: a worker that died never reports its test's end. */
  #watch(laneId: string, lane: LaneState): void {
    if (lane.timer) return;
    lane.timer = setInterval(() => this.#drain(laneId), RECHECK_MS);
    lane.timer.unref();
  }

  #holders(lane: LaneState, user: LaneUser): LaneUser[] {
    return [...lane.uses.values()].map((use) => use.user).filter((other) => userKey(other) !== userKey(user));
  }
}

function busy(laneName: string, holders: LaneUser[], waitedMs: number): LanesError {
  const who = holders.map((other) => `${describeUser(other)} (worker pid ${other.pid})`).join(', ') || 'a reset';
  return new LanesError('LANE_RESET_CONFLICT', `${laneName} stayed in use for ${Math.round(waitedMs / 1000)} s by ${who}: a test that resets the lane's data waits until it is alone on the lane.`, {
    hint: "Give tests that reset their lane's data a lane per worker (use: { laneIsolation: 'worker' }), or run the project with one worker.",
    details: { holders },
  });
}

function describeUser(user: LaneUser): string {
  return user.title ? JSON.stringify(user.title) : user.testId;
}

function userKey(user: LaneUser): string {
  return `${user.pid}\0${user.testId}`;
}
