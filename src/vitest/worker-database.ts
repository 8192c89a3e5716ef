/**
 * A Vitest worker's database: asked from the lane service of the Vitest process when a test file
 * starts (before the file is imported), pointed at by `DATABASE_URL`, the other URL variables and
 * `PG*`, and put back to the seed on request. Kept on `globalThis`, since the setup file and the
 * test files may load this package through different module loaders.
 */
import type { DatabaseReset, ResetStrategy } from '../databases/index.js';
import { LanesError } from '../errors.js';
import { debugLogger } from '../log.js';
import { pointEnvAt } from '../postgres/app-env.js';
import { requestLane, requestReset } from '../playwright/control-client.js';
import { showCode } from '../playwright/show-code.js';
import type { ProvidedLanes } from './options.js';

const debug = debugLogger('vitest');

/** The database of a Vitest worker, as tests see it. */
export interface WorkerDatabase {
  /** Connection URL, as the worker's lane role (holds its password: do not log it). Also `DATABASE_URL`. */
  url: string;
  /** The database's name; it stays the same through every reset. */
  name: string;
  /** The worker's slot, `VITEST_POOL_ID - 1` (0 to `maxWorkers - 1`). */
  worker: number;
  /** Puts the database back to exactly the seed now (see {@link resetDatabase}). */
  reset(options?: { strategy?: ResetStrategy }): Promise<DatabaseReset>;
}

interface WorkerState {
  provided: ProvidedLanes;
  worker: number;
  name: string;
  url: string;
  /** Sessions of this worker's database were ended by a swap (for the hint on their errors). */
  swapped: boolean;
  /** Tests of this file that reset, one after another (`test.concurrent` included). */
  gate: Promise<void>;
}

const STATE_KEY = Symbol.for('e2e-lanes.vitest.worker-database');

function held(): { state?: WorkerState; explaining?: boolean } {
  const holder = globalThis as unknown as Record<symbol, { state?: WorkerState; explaining?: boolean } | undefined>;
  return (holder[STATE_KEY] ??= {});
}

/** The worker's slot from `VITEST_POOL_ID` (1 to `maxWorkers`), 0-based. */
export function workerSlot(env: NodeJS.ProcessEnv = process.env): number {
  const id = Number(env.VITEST_POOL_ID);
  if (!Number.isInteger(id) || id < 1) {
    throw new LanesError('CONFIG_INVALID', `This Vitest worker has no pool id (VITEST_POOL_ID=${JSON.stringify(env.VITEST_POOL_ID)}): its database cannot be known.`, {
      hint: "Run the tests with Vitest's `threads` or `forks` pool (the default), in Node (not the browser mode).",
    });
  }
  return id - 1;
}

/**
 * In the worker, before the test file is imported: gets the worker's database from the lane
 * service (cloned on its first use in the run, or put back to the seed with `reset: 'file'`) and
 * points the environment at it.
 * @throws {LanesError} `CONFIG_INVALID` when the global setup of `withDatabases` did not run.
 */
export async function enterWorkerDatabase(provided: ProvidedLanes | undefined): Promise<WorkerDatabase> {
  if (!provided || typeof provided.url !== 'string') {
    throw showCode(
      new LanesError('CONFIG_INVALID', "The e2e-lanes setup file ran in a Vitest worker, but the e2e-lanes global setup did not run (nothing was provided under 'e2e-lanes').", {
        hint: "Wrap your config with `withDatabases(config, options)` from 'e2e-lanes/vitest' in vitest.config.ts: it adds both.",
      }),
    );
  }
  const worker = workerSlot();
  const endpoint = { url: provided.url, token: provided.token };
  const lane = await requestLane({ project: provided.project, worker }, endpoint).catch((error: unknown) => Promise.reject(showCode(error)));
  if (!lane.databaseUrl || !lane.databaseName) throw showCode(new LanesError('INTERNAL', `The lane of Vitest worker ${worker} has no database.`));
  const found = held();
  const state: WorkerState = found.state?.url === lane.databaseUrl ? found.state : { provided, worker, name: lane.databaseName, url: lane.databaseUrl, swapped: false, gate: Promise.resolve() };
  found.state = state;
  pointEnvAt(lane.databaseUrl);
  explainEndedSessions();
  if (provided.reset === 'file') await resetWorkerDatabase();
  return workerDatabase(state);
}

/** The worker's database. @throws {LanesError} `CONFIG_INVALID` outside a worker of `withDatabases`. */
export function currentWorkerDatabase(): WorkerDatabase {
  const state = held().state;
  if (!state) {
    throw showCode(
      new LanesError('CONFIG_INVALID', 'No e2e-lanes database in this process: useDatabase() and resetDatabase() work in the tests of a Vitest config wrapped with withDatabases().', {
        hint: "Wrap your config with `withDatabases(config, options)` from 'e2e-lanes/vitest' in vitest.config.ts, and call them from tests or hooks.",
      }),
    );
  }
  return workerDatabase(state);
}

function workerDatabase(state: WorkerState): WorkerDatabase {
  return { url: state.url, name: state.name, worker: state.worker, reset: (options) => resetWorkerDatabase(options) };
}

/**
 * Puts the worker's database back to exactly the seed, under the same name and URL, by the
 * strategy of `database.reset` (or `options.strategy`). With `swap`, the sessions on it are ended:
 * a `pg.Pool` with an `'error'` listener and Prisma reconnect on their next query.
 * @throws {LanesError} `DATABASE_RESET_FAILED` naming the step that failed.
 */
export async function resetWorkerDatabase(options: { strategy?: ResetStrategy } = {}): Promise<DatabaseReset> {
  const state = currentState();
  const { provided, worker } = state;
  const strategy = options.strategy ?? provided.strategy;
  if (strategy === 'swap') state.swapped = true;
  const reset = await requestReset({ project: provided.project, worker, ...(options.strategy ? { strategy: options.strategy } : {}) }, { url: provided.url, token: provided.token }).catch((error: unknown) => Promise.reject(showCode(error)));
  debug('reset %s (%s from %s) in %d ms', reset.databaseName, reset.strategy, reset.source, Math.round(reset.durationMs));
  return reset;
}

/**
 * With `reset: 'test'`: waits until no other test of this worker holds its database (tests of a
 * file run one after another then, `test.concurrent` too), resets it, and holds it until
 * `release()` (after the test).
 */
export async function enterTest(): Promise<{ release(): void }> {
  const state = currentState();
  let release!: () => void;
  const previous = state.gate;
  state.gate = new Promise<void>((resolve) => (release = resolve));
  await previous;
  try {
    await resetWorkerDatabase();
  } catch (error) {
    release();
    throw error;
  }
  return { release };
}

function currentState(): WorkerState {
  currentWorkerDatabase();
  return held().state!;
}

/** The hint added to an error of a session that a swap ended. @internal */
export const ENDED_SESSION_HINT =
  "[e2e-lanes] This database session was ended by a swap reset of the worker's database (reset: 'test' or 'file', or resetDatabase()). Give a pg.Pool kept across tests an 'error' listener (it then reconnects on its next query, as Prisma with @prisma/adapter-pg does), create a pg.Client per test, or set database.reset: 'truncate', which ends no session.";

/** True for PostgreSQL's "terminating connection due to administrator command" (57P01). */
export function isEndedSession(error: unknown): boolean {
  const found = error as { code?: unknown; message?: unknown } | null;
  return typeof found === 'object' && found !== null && (found.code === '57P01' || (typeof found.message === 'string' && found.message.includes('terminating connection due to administrator command')));
}

/**
 * Adds {@link ENDED_SESSION_HINT} to the uncaught errors of sessions a swap ended (a `pg.Pool`
 * without an `'error'` listener throws them), before Vitest reports them. Once per worker.
 *
 * Vitest reports an uncaught error only when its own listener is the only one (any other counts as
 * user code handling it): so the listener takes itself off before Vitest's runs, and comes back
 * right after.
 */
function explainEndedSessions(): void {
  const found = held();
  if (found.explaining) return;
  found.explaining = true;
  // One event name type for both (their listeners take the error first).
  for (const event of ['uncaughtException', 'unhandledRejection'] as 'uncaughtException'[]) {
    const explain = (error: unknown): void => {
      process.off(event, explain);
      setImmediate(() => process.prependListener(event, explain));
      if (!found.state?.swapped || !isEndedSession(error)) return;
      const failure = error as Error;
      if (!failure.message.includes(ENDED_SESSION_HINT)) failure.message = `${failure.message}\n${ENDED_SESSION_HINT}`;
      // node-postgres hangs the dead client on the error; Vitest would print it, lane password included.
      if ('client' in failure) (failure as { client?: unknown }).client = '(the ended pg client: not shown, it holds the lane role password)';
    };
    process.prependListener(event, explain);
  }
}
