import type { PlaywrightTestConfig } from '@playwright/test';
import { DATABASE_URL_ENV, LANE_DATABASES_ENV, PROJECT_ISOLATION_ENV } from '../env-vars.js';
import { laneDatabaseUrl } from '../databases/sql/roles.js';
import { LanesError } from '../errors.js';
import type { LanesOptions } from '../lanes/options/lane-options.js';
import { LANE_NOT_READY_URL, PG_CONNECTION_ENV, completeUrlFromPgEnv, isLaneNotReadyUrl, otherUrlVariables, pointEnvAt } from '../postgres/app-env.js';
import { isRunnerDatabaseUrl, runnerDatabaseEnv, runnerDatabaseUrl } from './runner-database.js';
import { redactUrl } from '../redact.js';

/**
 * A worker's database environment before its spec files load.
 *
 * Playwright evaluates the config in every worker before it loads a spec file, and a spec (or the
 * app module it imports) often creates its database client right then, reading `DATABASE_URL`.
 * So `withLanes` points that variable at the worker's own lane already at config time: global
 * setup publishes where lane databases live ({@link LANE_DATABASES_ENV}), lane database names
 * depend on (prefix, run, project, worker) alone, and a tiny preload in every worker records which
 * project and parallel slot Playwright gave it. Where that cannot be known, the variables name an
 * address that cannot connect ({@link LANE_NOT_READY_URL}), whatever `.env` or the parent said.
 */

/** What a worker needs to name its lane's database. */
export interface LaneDatabases {
  /** The server's URL: without credentials with lane roles, else the admin URL (holds the password). */
  baseUrl: string;
  /** The run's lane role key (lane roles): lane URLs carry their role's password, derived from it. */
  roleKey?: string;
  prefix: string;
  runId: string;
}

/** Which project and slot Playwright gave this worker process, as its `__init__` message said. */
interface WorkerIdentity {
  projectId: string;
  parallelIndex: number;
}

/** What the worker was pointed at, kept for the `lane` fixture. */
interface WorkerDatabaseState {
  identity?: WorkerIdentity;
  /** The URL set at config time: the lane's, or the not-ready one. */
  expected?: string;
}

const IDENTITY_KEY = 'e2e-lanes.worker-identity';
const STATE_KEY = Symbol.for('e2e-lanes.worker-database');

/**
 * Runs first in every process the runner forks (`--import`), and only acts in Playwright's worker
 * processes: it notes the worker's project id and parallel index from the runner's first message,
 * then stops listening. No file to resolve, so it works from source and from the package alike.
 */
const PRELOAD_SOURCE = `
if (/[\\\\/]playwright[\\\\/]lib[\\\\/]worker[\\\\/]workerProcessEntry\\.js$/.test(process.argv[1] ?? '')) {
  const onMessage = (message) => {
    if (message?.method !== '__init__') return;
    process.off('message', onMessage);
    const params = message.params?.runnerParams ?? {};
    if (typeof params.projectId === 'string') {
      globalThis[Symbol.for(${JSON.stringify(IDENTITY_KEY)})] = { projectId: params.projectId, parallelIndex: Number(params.parallelIndex) };
    }
  };
  process.on('message', onMessage);
}
`;

/** The `--import` argument of the preload. */
export const WORKER_PRELOAD = `data:text/javascript,${encodeURIComponent(PRELOAD_SOURCE.trim())}`;

/** Makes the workers this runner forks run the preload (they inherit `process.execArgv`). Idempotent. */
export function installWorkerPreload(): void {
  if (!process.execArgv.includes(WORKER_PRELOAD)) process.execArgv.push('--import', WORKER_PRELOAD);
}

function state(): WorkerDatabaseState {
  const holder = globalThis as unknown as Record<symbol, WorkerDatabaseState | undefined>;
  return (holder[STATE_KEY] ??= {});
}

function workerIdentity(): WorkerIdentity | undefined {
  const found = (globalThis as unknown as Record<symbol, WorkerIdentity | undefined>)[Symbol.for(IDENTITY_KEY)];
  return found && typeof found.projectId === 'string' && Number.isInteger(found.parallelIndex) ? found : undefined;
}

/** The published lane databases of the run, or undefined. */
function readLaneDatabases(): LaneDatabases | undefined {
  const raw = process.env[LANE_DATABASES_ENV];
  if (!raw) return undefined;
  try {
    const parsed = JSON.parse(raw) as Partial<LaneDatabases>;
    if (typeof parsed.baseUrl === 'string' && typeof parsed.prefix === 'string' && typeof parsed.runId === 'string' && (parsed.roleKey === undefined || typeof parsed.roleKey === 'string')) return parsed as LaneDatabases;
  } catch {
    // fall through: not ours to trust
  }
  return undefined;
}

/** The JSON global setup publishes in {@link LANE_DATABASES_ENV}. */
export function formatLaneDatabases(databases: LaneDatabases): string {
  return JSON.stringify(databases);
}

/** The lanes of each project as global setup resolved them ({@link PROJECT_ISOLATION_ENV}). */
export function publishedIsolation(project: string): 'project' | 'worker' | undefined {
  const raw = process.env[PROJECT_ISOLATION_ENV];
  if (!raw) return undefined;
  try {
    const found = (JSON.parse(raw) as Record<string, unknown>)[project];
    return found === 'project' || found === 'worker' ? found : undefined;
  } catch {
    return undefined;
  }
}

type ProjectLike = { name?: string; use?: { laneIsolation?: 'project' | 'worker' } };

/**
 * The project of a Playwright project id: ids are the names, with a number added to repeated
 * names (as Playwright assigns them).
 */
function projectOfId(config: PlaywrightTestConfig<unknown, unknown>, projectId: string): ProjectLike | undefined {
  const projects = (config.projects as ProjectLike[] | undefined) ?? [{}];
  const used = new Set<string>();
  for (const project of projects) {
    const name = project.name ?? '';
    for (let i = 0; i < projects.length; i++) {
      const candidate = name + (i ? String(i) : '');
      if (used.has(candidate)) continue;
      used.add(candidate);
      if (candidate === projectId) return project;
      break;
    }
  }
  return undefined;
}

/**
 * In a worker, at config time: points `DATABASE_URL` (and the other variables of
 * {@link pointEnvAt}) at this worker's lane database, or at the not-ready address when the lane
 * cannot be known yet. No-op for lanes without databases.
 */
export function pointWorkerAtLane(config: PlaywrightTestConfig<unknown, unknown>, options: LanesOptions): void {
  if (options.database === false) return;
  const identity = workerIdentity();
  const databases = readLaneDatabases();
  const project = identity ? projectOfId(config, identity.projectId) : undefined;
  let url = LANE_NOT_READY_URL;
  if (identity && databases && project?.name) {
    const topUse = config.use as ProjectLike['use'];
    const isolation = publishedIsolation(project.name) ?? project.use?.laneIsolation ?? topUse?.laneIsolation ?? options.isolation ?? 'project';
    const key = { runId: databases.runId, project: project.name, ...(isolation === 'worker' ? { worker: identity.parallelIndex } : {}) };
    url = laneDatabaseUrl(databases, databases.prefix, key);
  }
  pointEnvAt(url);
  const held = state();
  held.expected = url;
  if (identity) held.identity = identity;
}

/**
 * In the runner, at config time: the app's database variables (`DATABASE_URL`, every variable
 * holding a PostgreSQL URL, the `PG*` parts) name the runner's endpoint that refuses every client
 * with a message saying where a lane's URL is (runner-database.ts), so that nothing started from
 * the runner (a user's global setup or teardown, a spec loaded to list its tests, a leftover
 * `webServer`) reaches the database a `.env` file or the shell named. The admin URL (the option or
 * `E2E_LANES_DATABASE_URL`) keeps the `PG*` parts it left out. Returns the value `DATABASE_URL`
 * had (for the line that says it is not used), the other variables pointed away, and the admin
 * URL option completed.
 */
export function guardRunnerEnv(options: LanesOptions): { appDatabaseUrl: string | undefined; redirected: string[]; adminUrl?: string } {
  const env = process.env;
  const appDatabaseUrl = env.DATABASE_URL;
  if (options.database === false || isRunnerDatabaseUrl(appDatabaseUrl)) return { appDatabaseUrl: undefined, redirected: [] };
  const adminUrl = completeAdminUrls(options.database?.adminUrl);
  const url = runnerDatabaseUrl();
  const redirected = otherUrlVariables(env);
  for (const name of ['DATABASE_URL', ...redirected]) env[name] = url;
  const changes = runnerDatabaseEnv(url);
  for (const name of changes.unset) delete env[name];
  Object.assign(env, changes.set);
  return { appDatabaseUrl, redirected, ...(adminUrl !== undefined ? { adminUrl } : {}) };
}

/**
 * Before the `PG*` variables are pointed away from every database: completes the admin URL
 * (`E2E_LANES_DATABASE_URL`, in place, and the `adminUrl` option given, returned) with the parts it
 * leaves out from the `PG*` variables, as libpq would take them, so that it keeps working after.
 */
export function completeAdminUrls(adminUrl: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const pgEnv = Object.fromEntries(PG_CONNECTION_ENV.filter((name) => env[name] !== undefined).map((name) => [name, env[name]!]));
  if (env[DATABASE_URL_ENV]) env[DATABASE_URL_ENV] = completeUrlFromPgEnv(env[DATABASE_URL_ENV], pgEnv);
  return adminUrl ? completeUrlFromPgEnv(adminUrl, pgEnv) : undefined;
}

/**
 * In the `lane` fixture, once the worker's lane is known: points the environment at it (for
 * clients created from now on, and processes a spec spawns) and makes sure nothing created at
 * import time can reach another database.
 *
 * @throws {LanesError} `DATABASE_URL_CHANGED` when `DATABASE_URL` was set to another value after
 *   `withLanes` set it (e.g. `dotenv.config({ override: true })` in a spec), or when the worker was
 *   pointed at another lane than the one it got (`laneIsolation` set with `test.use` in a file).
 */
export function adoptLaneDatabase(lane: { project: string; worker?: number; databaseUrl?: string }): void {
  if (!lane.databaseUrl) return;
  const held = state();
  const current = process.env.DATABASE_URL;
  if (held.expected !== undefined) {
    if (current !== held.expected && current !== lane.databaseUrl) {
      throw changed(
        `DATABASE_URL in this worker was changed to ${current === undefined ? 'nothing' : redactUrl(current)} after e2e-lanes pointed it at the lane of project ${JSON.stringify(lane.project)}.`,
        'Something in the spec files replaced it (e.g. dotenv.config({ override: true }) or an assignment): remove that; e2e-lanes sets DATABASE_URL for every worker.',
      );
    }
    if (!isLaneNotReadyUrl(held.expected) && held.expected !== lane.databaseUrl) {
      throw changed(
        `This worker's spec files were loaded with DATABASE_URL pointing at ${redactUrl(held.expected)}, but its lane is ${redactUrl(lane.databaseUrl)}: a client created at import time would reach the wrong database.`,
        'Set `laneIsolation` in the project\'s `use` in playwright.config.ts (not with test.use in a spec file), so the worker knows its lane before its spec files load.',
      );
    }
  }
  pointEnvAt(lane.databaseUrl);
  held.expected = lane.databaseUrl;
}

function changed(message: string, hint: string): LanesError {
  return new LanesError('DATABASE_URL_CHANGED', message, { hint });
}
