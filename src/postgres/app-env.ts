import { ENV_PREFIX } from '../env-vars.js';
import { passwordOf } from '../redact.js';
import { targetOf } from './url.js';

/**
 * The environment an app and its tools read their database from. Lane servers, workers and the
 * processes they spawn get one database only: their lane's, in `DATABASE_URL`, in the `PG*`
 * variables that node-postgres, libpq and `psql` fall back on, and in every other variable that
 * held a PostgreSQL URL (`DIRECT_URL`, `POSTGRES_URL`… loaded from an app's `.env`). Until a
 * worker knows its lane, the same variables name an address that cannot connect.
 */

/** The host of {@link LANE_NOT_READY_URL}: `.invalid` never resolves (RFC 2606), so nothing is ever reached. */
export const LANE_NOT_READY_HOST = 'e2e-lanes-lane-not-ready.invalid';

/**
 * What `DATABASE_URL` holds where the lane is not known yet. A client created with it fails at its
 * first query (`getaddrinfo ENOTFOUND e2e-lanes-lane-not-ready.invalid`), before reaching any database.
 */
export const LANE_NOT_READY_URL = `postgresql://lane-not-ready@${LANE_NOT_READY_HOST}:5432/create_the_client_in_a_fixture`;

/** The app's own variable for its database. */
const APP_URL_ENV = 'DATABASE_URL';

/** libpq variables that would take a connection elsewhere whatever PGHOST says. */
const PG_REDIRECTING_ENV = ['PGHOSTADDR', 'PGSERVICE', 'PGSERVICEFILE'] as const;

const POSTGRES_URL = /^\s*postgres(ql)?:\/\//i;

/** Changes that point an environment at one database. */
export interface DatabaseEnv {
  /** Variables to set. */
  set: Record<string, string>;
  /** Variables to remove. */
  unset: string[];
  /** Variables other than `DATABASE_URL` that held a PostgreSQL URL and now hold `url` (names only). */
  redirected: string[];
}

/**
 * The changes that make `env` name only `url`: `DATABASE_URL`, the `PG*` parts, and every other
 * variable holding a PostgreSQL URL (the toolkit's own `E2E_LANES_*` excepted). With the
 * not-ready URL, the `PG*` parts name its host and the password is left alone (it reaches nothing).
 */
export function databaseEnv(url: string, env: NodeJS.ProcessEnv): DatabaseEnv {
  const set: Record<string, string> = { [APP_URL_ENV]: url };
  const redirected = otherUrlVariables(env);
  for (const name of redirected) set[name] = url;
  const target = targetOf(url);
  set.PGHOST = target.host;
  set.PGPORT = String(target.port);
  set.PGDATABASE = target.database;
  if (target.user !== undefined) set.PGUSER = target.user;
  const password = passwordOf(url);
  if (password !== undefined) set.PGPASSWORD = password;
  const unset = PG_REDIRECTING_ENV.filter((name) => env[name] !== undefined);
  return { set, unset, redirected };
}

/**
 * Names of the variables other than `DATABASE_URL` (and the toolkit's own `E2E_LANES_*`) that hold
 * a PostgreSQL URL, sorted.
 */
export function otherUrlVariables(env: NodeJS.ProcessEnv): string[] {
  return Object.entries(env)
    .filter(([name, value]) => name !== APP_URL_ENV && !name.startsWith(ENV_PREFIX) && value !== undefined && POSTGRES_URL.test(value))
    .map(([name]) => name)
    .sort();
}

/** Applies {@link databaseEnv} to `env` in place and returns what it did. */
export function pointEnvAt(url: string, env: NodeJS.ProcessEnv = process.env): DatabaseEnv {
  const changes = databaseEnv(url, env);
  for (const name of changes.unset) delete env[name];
  Object.assign(env, changes.set);
  return changes;
}

/** True when `url` is {@link LANE_NOT_READY_URL}. */
export function isLaneNotReadyUrl(url: string | undefined): boolean {
  return url === LANE_NOT_READY_URL;
}

/** True when an error's text shows a client that used the not-ready address. */
export function mentionsLaneNotReady(text: string | undefined): boolean {
  return text !== undefined && text.includes(LANE_NOT_READY_HOST);
}

/**
 * Runs `fn` with this process's environment pointed at `url` (see {@link databaseEnv}), then puts
 * every changed variable back: for code that runs in-process and reads `DATABASE_URL` itself,
 * such as a seed module that creates its client when it is imported.
 */
export async function withEnvPointedAt<T>(url: string, fn: () => Promise<T>): Promise<T> {
  const changes = databaseEnv(url, process.env);
  const saved = new Map([...Object.keys(changes.set), ...changes.unset].map((name) => [name, process.env[name]]));
  pointEnvAt(url);
  try {
    return await fn();
  } finally {
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}

/** The `PG*` variables that name where libpq and node-postgres connect, and as whom. */
export const PG_CONNECTION_ENV = ['PGHOST', 'PGPORT', 'PGUSER', 'PGPASSWORD', 'PGDATABASE'] as const;

/**
 * `url` with the parts it leaves out taken from the `PG*` variables of `env` (user, password,
 * port, database; the host when the URL has none), as libpq and node-postgres would take them: the
 * admin URL keeps working once the runner's `PG*` variables point away from every database.
 */
export function completeUrlFromPgEnv(url: string, env: Partial<Record<(typeof PG_CONNECTION_ENV)[number], string>>): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return url; // reported where the URL is used, with its password redacted
  }
  if (!parsed.hostname && !parsed.searchParams.has('host') && env.PGHOST) parsed.searchParams.set('host', env.PGHOST);
  const hasHost = parsed.hostname !== '';
  if (hasHost && !parsed.username && env.PGUSER) parsed.username = encodeURIComponent(env.PGUSER);
  if (hasHost && !parsed.password && env.PGPASSWORD) parsed.password = encodeURIComponent(env.PGPASSWORD);
  if (hasHost && !parsed.port && !parsed.searchParams.has('port') && env.PGPORT) parsed.port = env.PGPORT;
  if ((parsed.pathname === '' || parsed.pathname === '/') && env.PGDATABASE) parsed.pathname = `/${encodeURIComponent(env.PGDATABASE)}`;
  return parsed.toString();
}
