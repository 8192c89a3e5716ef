/**
 * The options of e2e-lanes in Vitest, checked once where the config names them, and what the
 * global setup gives the workers.
 */
import type { ResetStrategy } from '../databases/types.js';
import { LanesError } from '../errors.js';
import type { LaneDatabaseOptions, LanesOptions } from '../lanes/options/lane-options.js';

/** When a worker's database is put back to the seed. */
export type ResetMode = 'test' | 'file' | 'never';

/** The reset modes, for option checks. */
export const RESET_MODES: readonly ResetMode[] = ['test', 'file', 'never'];

/** Options of {@link withDatabases} (and of the global setup it adds). */
export interface VitestLanesOptions {
  /**
   * The template every worker's database is cloned from: the same options as `database` of
   * `withLanes` (migrations, seed, admin URL, prefix, `reset` strategy, pool…). Here the reset
   * strategy defaults to `'truncate'`: tests reset far more often than lanes do, and a truncate
   * costs a few milliseconds and ends no session, where a `swap` ends the worker's sessions and
   * has the ready pool clone the template again after every reset.
   * @default { migrations: 'prisma/migrations', reset: 'truncate' } on an embedded PostgreSQL
   */
  database?: LaneDatabaseOptions;
  /**
   * When a worker's database is put back to exactly the seed: before every test (`'test'`), before
   * every test file (`'file'`), or only when a watch-mode re-run starts (`'never'`). How it is put
   * back is `database.reset` (`'swap'` or `'truncate'`).
   * @default 'never'
   */
  reset?: ResetMode;
  /**
   * Folder of the state files (ledgers of databases and ports), shared with `e2e-lanes status`
   * and `gc`. Also `E2E_LANES_STATE_DIR`.
   * @default './test-results'
   */
  stateDir?: string;
}

/** What the global setup gives every worker (`inject`): no admin credentials. @internal */
export interface ProvidedLanes {
  /** The lane service of the Vitest process, and its token. */
  url: string;
  token: string;
  /** The lane name the workers' lanes are kept under (the Vitest project's name, or `vitest`). */
  project: string;
  reset: ResetMode;
  strategy: ResetStrategy;
}

/** The key of {@link ProvidedLanes} in Vitest's `provide` / `inject`. @internal */
export const PROVIDED_KEY = 'e2e-lanes';

/**
 * Checks the options, naming the one that is wrong.
 * @throws {LanesError} `INVALID_OPTION`.
 */
export function validateVitestLanesOptions(options: VitestLanesOptions): void {
  if (typeof options !== 'object' || options === null) {
    throw new LanesError('INVALID_OPTION', `withDatabases() takes an options object, got ${JSON.stringify(options)}.`, { hint: "Pass e.g. { database: { migrations: 'prisma/migrations', seed: 'prisma/seed.ts' }, reset: 'test' }." });
  }
  if (options.reset !== undefined && !RESET_MODES.includes(options.reset)) {
    throw new LanesError('INVALID_OPTION', `Invalid reset ${JSON.stringify(options.reset)}.`, {
      hint: "Use 'test' (every test starts from the seed), 'file' (every test file does) or 'never'. How the data is put back is database.reset ('swap' or 'truncate').",
    });
  }
  if (options.database !== undefined && (typeof options.database !== 'object' || options.database === null)) {
    throw new LanesError('INVALID_OPTION', `Invalid database ${JSON.stringify(options.database)}.`, {
      hint: "Option `database` takes the database options of withLanes, e.g. { migrations: 'prisma/migrations', seed: 'prisma/seed.ts' }; the workers of Vitest always get a database.",
    });
  }
}

/** The lanes options the workers' lanes are run with: a database each, no servers. @internal */
export function lanesOptionsOf(options: VitestLanesOptions): LanesOptions {
  return {
    database: { ...options.database, reset: options.database?.reset ?? 'truncate' },
    servers: [],
    // A lane holds at least one port: a worker's lane holds one, which nothing of the toolkit uses.
    ports: ['port'],
    isolation: 'worker',
    ...(options.stateDir !== undefined ? { stateDir: options.stateDir } : {}),
  };
}
