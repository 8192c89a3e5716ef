/**
 * The last resort of a run whose process exits while its servers run (a second Ctrl-C cut the
 * teardown short, an uncaught error): an 'exit' hook that SIGKILLs their process groups and what
 * left them with the run's marks. Databases and ports stay recorded; the next run or `gc` reaps
 * them (dead owner).
 */
import type { StartedServer } from '../../servers/index.js';
import { resolveOwnerPid } from '../../state/index.js';
import { killRunStragglersNow } from './stragglers.js';

/** The process groups of a run's servers, SIGKILLed if this process exits before they are stopped. */
export class ExitGuard {
  readonly #runId: string;
  readonly #groups = new Set<number>();
  readonly #onExit = (): void => {
    for (const pgid of this.#groups) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    // And what left those groups but carries this run's marks.
    killRunStragglersNow(this.#runId, resolveOwnerPid());
  };

  constructor(runId: string) {
    this.#runId = runId;
  }

  /** Guards `server`'s process group until it exits. */
  watch(server: Pick<StartedServer, 'pid' | 'exited'>): void {
    if (this.#groups.size === 0) process.on('exit', this.#onExit);
    this.#groups.add(server.pid);
    void server.exited.then(() => {
      this.#groups.delete(server.pid);
      if (this.#groups.size === 0) process.off('exit', this.#onExit);
    });
  }

  /** Lets every guarded group outlive this process (kept and warm lanes). */
  release(): void {
    this.#groups.clear();
    process.off('exit', this.#onExit);
  }

  /** The process groups guarded now. */
  groups(): number[] {
    return [...this.#groups];
  }
}
