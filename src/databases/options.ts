/**
 * The allocator's options and the one resolver that gives each its final value: the defaults and
 * checks live beside their feature (fresh/fresh-options.ts, template/template-options.ts,
 * records/registry-options.ts, sql/server-options.ts, the connect timeout in postgres/options.ts),
 * and none of them loads a PostgreSQL client.
 */
import { MIGRATION_TIMEOUT_ENV, REBUILD_ENV, RESET_LOCK_TIMEOUT_ENV, SEED_TIMEOUT_ENV, TEMPLATE_WAIT_TIMEOUT_ENV } from '../env-vars.js';
import { LanesError } from '../errors.js';
import { positiveOption } from '../option-checks.js';
import type { EnsurePostgresOptions } from '../postgres/index.js';
import { DEFAULT_CONNECT_TIMEOUT_MS } from '../postgres/options.js';
import { resolveLeaseMs, resolveRunId, resolveStateDir, type RunScopeOptions } from '../state/index.js';
import { DEFAULT_RESET_LOCK_TIMEOUT_MS, resolvePool, resolveResetGrace, resolveResetStrategy } from './fresh/fresh-options.js';
import { resolveRegistryDatabase, resolveRegistryMode } from './records/registry-options.js';
import { DEFAULT_PREFIX, validatePrefix } from './sql/names.js';
import { resolveCloneStrategy, resolveLaneRoles } from './sql/server-options.js';
import { resolveHashInputs, resolveMigrations, resolveStep, DEFAULT_MIGRATION_TIMEOUT_MS, DEFAULT_SEED_TIMEOUT_MS, DEFAULT_TEMPLATE_WAIT_TIMEOUT_MS } from './template/template-options.js';
import type { CommandStep, RegistryMode, ResetStrategy, ResolvedDatabaseAllocatorOptions, CloneStrategy } from './types.js';

export type { CloneStrategy, CommandStep } from './types.js';
export { DEFAULT_RESET_GRACE_MS } from './fresh/fresh-options.js';
export { DEFAULT_REGISTRY_DATABASE } from './records/registry-options.js';
export { DEFAULT_CLONE_STRATEGY } from './sql/server-options.js';
export { DEFAULT_MIGRATIONS_DIR, DEFAULT_MIGRATION_TIMEOUT_MS, DEFAULT_SEED_TIMEOUT_MS, DEFAULT_TEMPLATE_WAIT_TIMEOUT_MS } from './template/template-options.js';

export interface DatabaseAllocatorOptions extends RunScopeOptions {
  /**
   * Admin connection URL of the PostgreSQL server (a user allowed to create databases).
   * Also `E2E_LANES_DATABASE_URL` (never `DATABASE_URL`: it names the app's database).
   * @default an embedded PostgreSQL shared by the runs on this host
   */
  adminUrl?: string;
  /**
   * Prisma's migrations folder (`<dir>/<timestamp>_<name>/migration.sql`), applied by the built-in
   * runner; or `{ command }` run with `DATABASE_URL` set; or `false` for none.
   * @default 'prisma/migrations'
   */
  migrations?: string | CommandStep | false;
  /**
   * A TS/JS module whose default export is called with `{ databaseUrl }`, or `{ command }` run
   * with `DATABASE_URL` set. Runs once per template, not per lane.
   * @default no seed
   */
  seed?: string | CommandStep;
  /**
   * More files or folders whose content goes into the template hash: what a migrations command
   * reads, or the modules your seed imports. A change to any of them builds a new template.
   * @default []
   */
  hashInputs?: readonly string[];
  /**
   * Prefix of every database created (and the only ones ever dropped): a lowercase letter, then
   * up to 15 lowercase letters or digits.
   * @default 'e2e'
   */
  prefix?: string;
  /**
   * How lanes are cloned from the template. `wal_log` (PostgreSQL's own default) measured
   * 3-4× faster than `file_copy` for small templates with fsync on (file_copy forces a
   * checkpoint); `file_copy` wins for templates of hundreds of MB. Ignored before PostgreSQL 15.
   * @default 'wal_log'
   */
  cloneStrategy?: CloneStrategy;
  /**
   * Drop and rebuild the template even if one with the same hash exists. Also `E2E_LANES_REBUILD=1`.
   * @default false
   */
  rebuild?: boolean;
  /**
   * Deadline for connecting to PostgreSQL, retries included.
   * @default 10_000
   */
  connectTimeoutMs?: number;
  /**
   * Options of the embedded server, used when no admin URL is given (see `ensurePostgres`).
   * @default {}
   */
  embedded?: EnsurePostgresOptions['embedded'];
  /**
   * Your estimate of connections the run will open (lanes × servers × pool size): a warning is
   * printed when it comes near `max_connections` (over 80 %).
   * @default no check
   */
  expectedConnections?: number;
  /**
   * Where lane databases and their owners are recorded. `'postgres'`: in a registry table
   * (`e2e_lanes.lane_databases`) of the server itself, besides the local state file, so machines
   * that share the server (CI shards) see each other's lanes and reap those whose lease expired.
   * `'file'`: in the local state file only (one machine per server). `'auto'`: `'postgres'` for a
   * given admin URL, `'file'` for the embedded server. Also `E2E_LANES_REGISTRY`.
   * @default 'auto'
   */
  registry?: RegistryMode;
  /**
   * How a lane's data is put back to the template (`laneReset`, `lane.resetDatabase()`). `'swap'`:
   * the lane database is dropped (its sessions ended) and a ready copy of the template renamed to
   * its name; the servers' pools reconnect. `'truncate'`: nobody is disconnected; every table is
   * emptied and refilled from the template's rows in one transaction (for clients that die when
   * their connections are ended).
   * @default 'swap'
   */
  reset?: ResetStrategy;
  /**
   * How many ready copies of the template to keep: cloned in the background, kept between runs,
   * taken by a rename whenever a lane needs a database (at boot, and at every `swap` reset).
   * `0` clones on demand.
   * @default the number of lanes the run boots, at most 4 (1 when that is not known)
   */
  pool?: number;
  /**
   * How long a `truncate` reset waits for the lock of any one table (a test's transaction left
   * open) before it is rolled back with `DATABASE_RESET_FAILED`. Also `E2E_LANES_RESET_LOCK_TIMEOUT_MS`.
   * @default 10_000
   */
  resetLockTimeoutMs?: number;
  /**
   * How long a `swap` reset lets the queries in flight on the lane database finish before it ends
   * their sessions (a request the previous test's page left running on the lane's servers). Idle
   * sessions are ended at once, and a busy one as soon as its query is done, so a reset with nothing
   * in flight does not wait at all. A session `idle in transaction` (between two statements of a
   * transaction) is waited for too, then ended. `0` ends every session at once.
   * @default 2_000
   */
  resetGraceMs?: number;
  /**
   * The database of the server's registry (with `registry: 'postgres'`): created by the toolkit
   * (with its mark) when missing, never dropped. Nothing is created in the database of the admin
   * URL. Every machine sharing the server must use the same one. Also `E2E_LANES_REGISTRY_DATABASE`.
   * @default 'e2e_lanes'
   */
  registryDatabase?: string;
  /**
   * Deadline of the seed while the template is built: the seed module's default export, or the seed
   * command when it sets no `timeoutMs` of its own. Past it the build fails with `SEED_TIMEOUT` and
   * is abandoned cleanly. Also `E2E_LANES_SEED_TIMEOUT_MS`.
   * @default 600_000 (10 minutes)
   */
  seedTimeoutMs?: number;
  /**
   * Deadline of each migration file applied by the built-in runner (a statement waiting on a lock
   * included), or of the migrations command when it sets no `timeoutMs` of its own. Past it the
   * build fails with `MIGRATION_TIMEOUT`, naming the lock waited for and who holds it. Also
   * `E2E_LANES_MIGRATION_TIMEOUT_MS`.
   * @default 600_000 (10 minutes)
   */
  migrationTimeoutMs?: number;
  /**
   * How long to wait for another process that builds the same template (on this or another
   * machine) before failing with `TEMPLATE_WAIT_TIMEOUT`, naming that process. Also
   * `E2E_LANES_TEMPLATE_WAIT_TIMEOUT_MS`.
   * @default 1_800_000 (30 minutes)
   */
  templateWaitTimeoutMs?: number;
  /**
   * A role per lane: every lane's servers, workers and spawned processes connect as a login role of
   * that lane alone (random password; not superuser, no CREATEDB, CREATEROLE or BYPASSRLS) that can do
   * everything in its own database, DDL included, and cannot connect to, read or write any other
   * database of the server. Needs an admin role with CREATEROLE (or superuser): setup fails with
   * `LANE_ROLES_UNAVAILABLE` otherwise. `false`: lanes connect as the admin role, as before (setup
   * says so in one line).
   * @default true
   */
  laneRoles?: boolean;
}

/** Resolves every option to its final value, in one place, rejecting bad values at the call. */
export function resolveDatabaseAllocatorOptions(options: DatabaseAllocatorOptions = {}): ResolvedDatabaseAllocatorOptions {
  return {
    adminUrl: options.adminUrl,
    migrations: resolveMigrations(options.migrations),
    seed: options.seed === undefined ? undefined : resolveStep('seed', options.seed),
    hashInputs: resolveHashInputs(options.hashInputs),
    stateDir: resolveStateDir(options.stateDir),
    runId: resolveRunId(options.runId),
    prefix: validatePrefix(options.prefix ?? DEFAULT_PREFIX),
    cloneStrategy: resolveCloneStrategy(options.cloneStrategy),
    rebuild: options.rebuild ?? isTruthyEnv(process.env[REBUILD_ENV]),
    leaseMs: resolveLeaseMs(options.leaseMs),
    connectTimeoutMs: positive('connectTimeoutMs', options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS),
    embedded: options.embedded,
    expectedConnections:
      options.expectedConnections === undefined ? undefined : positive('expectedConnections', options.expectedConnections),
    registry: resolveRegistryMode(options.registry),
    reset: resolveResetStrategy(options.reset),
    pool: options.pool === undefined ? undefined : resolvePool(options.pool),
    resetLockTimeoutMs: durationOption('resetLockTimeoutMs', RESET_LOCK_TIMEOUT_ENV, options.resetLockTimeoutMs, DEFAULT_RESET_LOCK_TIMEOUT_MS),
    resetGraceMs: resolveResetGrace(options.resetGraceMs),
    registryDatabase: resolveRegistryDatabase(options.registryDatabase),
    seedTimeoutMs: durationOption('seedTimeoutMs', SEED_TIMEOUT_ENV, options.seedTimeoutMs, DEFAULT_SEED_TIMEOUT_MS),
    migrationTimeoutMs: durationOption('migrationTimeoutMs', MIGRATION_TIMEOUT_ENV, options.migrationTimeoutMs, DEFAULT_MIGRATION_TIMEOUT_MS),
    templateWaitTimeoutMs: durationOption('templateWaitTimeoutMs', TEMPLATE_WAIT_TIMEOUT_ENV, options.templateWaitTimeoutMs, DEFAULT_TEMPLATE_WAIT_TIMEOUT_MS),
    laneRoles: resolveLaneRoles(options.laneRoles),
  };
}

/** A positive number of ms: the option, else its env variable, else the default. */
function durationOption(option: string, env: string, value: number | undefined, fallback: number): number {
  if (value !== undefined) return positive(option, value);
  const raw = process.env[env]?.trim();
  if (!raw) return fallback;
  const parsed = Number(raw);
  if (!Number.isFinite(parsed) || parsed <= 0) {
    throw new LanesError('INVALID_OPTION', `Invalid ${option} ${JSON.stringify(raw)} (from ${env}).`, { hint: `Set ${env} (or option \`${option}\`) to a positive number of milliseconds.` });
  }
  return parsed;
}

const positive = (option: string, value: number): number => positiveOption(option, value);

function isTruthyEnv(value: string | undefined): boolean {
  return value !== undefined && /^(1|true|yes)$/i.test(value.trim());
}

