import { isProcessAlive } from '../../servers/index.js';

/**
 * Tells a new run of a session that keeps its lanes between runs (Playwright's UI mode, the test
 * server of the VS Code extension) from more tests of the same run: a run begins when a worker
 * process starts using a lane whose earlier workers are all gone (every run has new workers). A
 * worker restarted within a run after a failure is one too, which is why only such sessions ask.
 */
export class RoundTracker {
  /** The worker processes that used each lane in its current round. */
  readonly #users = new Map<string, Set<number>>();

  /** Records that worker `pid` uses lane `id`; true when that begins a new round of the lane (not its first). */
  starts(id: string, pid: number): boolean {
    const users = this.#users.get(id);
    if (!users) {
      this.#users.set(id, new Set([pid]));
      return false;
    }
    if (users.has(pid)) return false;
    if ([...users].some((other) => isProcessAlive(other))) {
      users.add(pid);
      return false;
    }
    this.#users.set(id, new Set([pid]));
    return true;
  }
}
