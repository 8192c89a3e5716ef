import { DATABASE_URL_ENV } from '../env-vars.js';
import { LanesError } from '../errors.js';

/**
 * The app's own variable. It names the app's database, not a server the toolkit may use: it is
 * never read as the admin URL (lanes and servers get their lane's database in it instead).
 */
export const APP_DATABASE_URL_ENV = 'DATABASE_URL';

/**
 * The admin URL of an existing server: the option, else `E2E_LANES_DATABASE_URL`; undefined when
 * neither is set (then the embedded server is used). Empty strings count as unset. `DATABASE_URL`
 * is never used: it names the app's database (see {@link ignoredAppDatabaseUrl}).
 */
export function resolveAdminUrl(explicit?: string): string | undefined {
  return resolveAdminUrlSource(explicit)?.url;
}

/** The admin URL as {@link resolveAdminUrl} finds it, and where it came from (an option, or the variable's name). */
export function resolveAdminUrlSource(explicit?: string): { url: string; source: string } | undefined {
  const candidates: Array<[string | undefined, string]> = [
    [explicit, 'option adminUrl'],
    [process.env[DATABASE_URL_ENV], DATABASE_URL_ENV],
  ];
  for (const [candidate, source] of candidates) {
    if (candidate !== undefined && candidate.trim() !== '') return { url: candidate.trim(), source };
  }
  return undefined;
}

/**
 * One line for people when the app's `DATABASE_URL` (value `appUrl`) is set but no admin URL is:
 * it is not taken as the server for the lanes. Undefined when there is nothing to say.
 */
export function ignoredAppDatabaseUrl(appUrl: string | undefined, explicit?: string): string | undefined {
  if (appUrl === undefined || appUrl.trim() === '' || resolveAdminUrlSource(explicit) !== undefined) return undefined;
  return (
    `${APP_DATABASE_URL_ENV} is set (${describeTarget(appUrl.trim())}) and not used: it names your app's database, ` +
    `so the lanes live on the embedded PostgreSQL. To put them on a server of yours, set ${DATABASE_URL_ENV}.`
  );
}

/** The parts of a connection URL that may be shown to people (never the password). */
export interface PostgresTarget {
  /** Host name, IP address, or socket folder (from `?host=`). */
  host: string;
  port: number;
  database: string;
  user: string | undefined;
}

/** Parses a `postgres://` or `postgresql://` URL, throwing `INVALID_OPTION` (password redacted) if it is not one. */
export function parsePostgresUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // The TypeError of `new URL` carries the input (with its password): it is not kept as cause.
    throw invalidUrl(url, 'it is not a URL');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw invalidUrl(url, `its scheme is ${JSON.stringify(parsed.protocol)}`);
  }
  return parsed;
}

/** Host, port, database and user of a connection URL, with libpq's defaults filled in. */
export function targetOf(url: string): PostgresTarget {
  const parsed = parsePostgresUrl(url);
  const user = parsed.username ? decodeURIComponent(parsed.username) : undefined;
  const path = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1') || parsed.searchParams.get('host') || 'localhost';
  return {
    host,
    port: parsed.port ? Number(parsed.port) : Number(parsed.searchParams.get('port') ?? 5432),
    database: path || user || 'postgres',
    user,
  };
}

/** The same server and credentials as `url`, but the database `database`. Query parameters are kept. */
export function withDatabase(url: string, database: string): string {
  if (database === '') throw new LanesError('INVALID_OPTION', 'withDatabase() needs a non-empty database name.');
  const parsed = parsePostgresUrl(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
}

/** `host:port/database` of a connection URL, for messages: never contains the password. */
export function describeTarget(url: string): string {
  try {
    const { host, port, database } = targetOf(url);
    const shownHost = host.includes(':') ? `[${host}]` : host;
    return `${shownHost}:${port}/${database}`;
  } catch {
    return '(invalid PostgreSQL URL)';
  }
}

function invalidUrl(url: string, problem: string): LanesError {
  // The value itself is not shown: a malformed URL cannot be trusted to have its password redacted.
  return new LanesError('INVALID_OPTION', `Invalid PostgreSQL URL (${url.length} characters): ${problem}.`, {
    hint: `Use the form postgres://user:password@127.0.0.1:5432/postgres (option adminUrl or ${DATABASE_URL_ENV}).`,
  });
}
