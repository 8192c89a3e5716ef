/**
 * The teardown of a run whose process exits before its own teardown ran: Vitest, on SIGINT and
 * SIGTERM, exits at once without running global teardowns. While armed, an exit hook starts a
 * detached process (the watchdog's, in its after-exit mode: see watchdog.ts) that waits
 * until this process is provably gone, then tears the run down as `e2e-lanes down --run` does. Its
 * log is `<stateDir>/lanes/<runId>/exit-reaper.log`. A SIGKILL runs no hook: then `gc` and the
 * next run reap, as before.
 *
 * The hook is signal-exit's: a process that loaded signal-exit (execa, write-file-atomic and
 * proper-lockfile do) is ended by the signal itself once no listener of its own is left, and
 * Node's 'exit' event is then never emitted. So a handler that cleans up on a signal must stay
 * registered (`process.on`, not `once`) until its work is done, or the signal ends the process
 * when the handler starts.
 */
import { onExit } from 'signal-exit';
import { debugLogger } from '../../log.js';
import { identityOf } from '../../state/identity.js';
import { spawnWatchdog, type RunWatchdogSettings, type runWatchdogSettings } from './watchdog.js';

const debug = debugLogger('lanes');

/** Tears the run down after this process exits, unless disarmed first (by the run's own teardown). */
export class ExitReaper {
  readonly #settings: RunWatchdogSettings;
  #remove: (() => void) | undefined;
  readonly #onExit = (): void => {
    this.#remove = undefined;
    try {
      const pid = spawnWatchdog({ ...this.#settings, fromPid: process.pid, afterExit: identityOf(process.pid) });
      debug('run %s exits without its teardown: process %d tears it down', this.#settings.runId, pid);
    } catch (error) {
      // Nothing more can be done in an 'exit' hook: `gc` and the next run reap.
      debug('the exit reaper of run %s could not start: %O', this.#settings.runId, error);
    }
  };

  /** @param settings see {@link runWatchdogSettings} */
  constructor(settings: RunWatchdogSettings) {
    this.#settings = settings;
  }

  arm(): void {
    this.#remove ??= onExit(this.#onExit);
  }

  disarm(): void {
    this.#remove?.();
    this.#remove = undefined;
  }
}
