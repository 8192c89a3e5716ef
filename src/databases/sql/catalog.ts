/**
 * SQL on the maintenance connection: look up, clone and drop databases. Every name goes through
 * `escapeIdentifier`. Private to the databases module.
 * @internal
 */
import pRetry, { AbortError } from 'p-retry';
import { escapeIdentifier, type Client, type DatabaseError } from 'pg';
import { debugLogger, warn } from '../../log.js';
import type { CloneStrategy } from '../types.js';

const debug = debugLogger('databases');

/** A row of `pg_database` as the module needs it. */
export interface DatabaseRow {
  name: string;
  oid: number;
  isTemplate: boolean;
  allowConnections: boolean;
  /** `COMMENT ON DATABASE`, where the toolkit keeps template metadata. */
  comment: string | null;
}

const SELECT_DATABASES = `SELECT datname AS name, oid::int8::text AS oid, datistemplate AS "isTemplate",
  datallowconn AS "allowConnections", shobj_description(oid, 'pg_database') AS comment FROM pg_database`;

/** The database called `name`, if it exists. */
export async function findDatabase(client: Client, name: string): Promise<DatabaseRow | undefined> {
  const { rows } = await client.query<RawRow>(`${SELECT_DATABASES} WHERE datname = $1`, [name]);
  return rows[0] && toRow(rows[0]);
}

/** Every database whose name starts with `start` (compared as text, no LIKE wildcards). */
export async function databasesStartingWith(client: Client, start: string): Promise<DatabaseRow[]> {
  const { rows } = await client.query<RawRow>(`${SELECT_DATABASES} WHERE left(datname, $2) = $1 ORDER BY oid`, [start, start.length]);
  return rows.map(toRow);
}

/** Ends every other session connected to `name`; resolves how many there were. */
export async function terminateSessions(client: Client, name: string): Promise<number> {
  const { rows } = await client.query<{ ended: boolean }>(
    'SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
    [name],
  );
  if (rows.length > 0) debug('terminated %d session(s) on %s', rows.length, name);
  return rows.length;
}

/**
 * Runs `sql`, a statement that PostgreSQL refuses while other sessions use database `name`, and
 * while it answers "object in use" (55006: "source database … is being accessed by other users"
 * and friends), ends those sessions and runs it again, a few times with backoff (bounded, about 3 s
 * in all). Sessions are ended before the first attempt only with `endFirst`.
 */
export async function retryEndingSessions(client: Client, sql: string, name: string, options: { endFirst?: boolean } = {}): Promise<void> {
  let end = options.endFirst === true;
  await pRetry(
    async () => {
      if (end) await terminateSessions(client, name);
      try {
        await client.query(sql);
      } catch (error) {
        if (!isInUse(error)) throw new AbortError(error as Error);
        end = true;
        throw error;
      }
    },
    { retries: 5, factor: 2, minTimeout: 100, maxTimeout: 1_000, randomize: true, onFailedAttempt: ({ attemptNumber }) => debug('%s in use (attempt %d)', name, attemptNumber) },
  );
}

/**
 * `CREATE DATABASE name TEMPLATE template [STRATEGY …]`, created closed to connections, then in one
 * transaction closed to PUBLIC, given `then` (statements such as a grant or a mark) and opened: no
 * role but its owner (and whom `then` grants) may connect to it at any moment, even the first
 * milliseconds (PostgreSQL gives a new database PUBLIC's CONNECT; it copies no privilege from its
 * template). While the template is in use, its sessions are ended and the clone retried (see
 * {@link retryEndingSessions}). The first attempt ends nobody: a sealed template refuses
 * connections, so there is normally no one to end. Resolves false when the new database was
 * dropped (by another process) before it could be opened.
 */
export async function cloneDatabase(client: Client, name: string, template: string, strategy: CloneStrategy, serverVersion: number, options: { then?: string } = {}): Promise<boolean> {
  const clause = serverVersion >= 150000 ? ` STRATEGY ${strategy === 'file_copy' ? 'FILE_COPY' : 'WAL_LOG'}` : '';
  await retryEndingSessions(client, `CREATE DATABASE ${escapeIdentifier(name)} TEMPLATE ${escapeIdentifier(template)}${clause} ALLOW_CONNECTIONS false`, template);
  return openDatabase(client, name, options.then);
}

/**
 * Runs {@link openDatabaseSql} for `name` (again while another session updates the same catalog
 * row). Resolves false when the database is gone (dropped by another process meanwhile).
 */
export async function openDatabase(client: Client, name: string, then?: string): Promise<boolean> {
  try {
    await retryConcurrentUpdate(() => client.query(openDatabaseSql(name, then)));
    return true;
  } catch (error) {
    if ((error as Partial<DatabaseError>).code === '3D000') return false;
    throw error;
  }
}

/**
 * Runs `fn` again, a few times within about a second, while PostgreSQL answers "tuple concurrently
 * updated" (XX000): another session changed the same catalog row (a database's rights or settings,
 * e.g. two claims of one lane opening its new database) at the same moment. `fn` must be idempotent
 * (its transaction was rolled back).
 */
export async function retryConcurrentUpdate<T>(fn: () => Promise<T>): Promise<T> {
  return pRetry(
    async () => {
      try {
        return await fn();
      } catch (error) {
        if (!isConcurrentlyUpdated(error)) throw new AbortError(error as Error);
        throw error;
      }
    },
    { retries: 6, factor: 2, minTimeout: 10, maxTimeout: 250, randomize: true, onFailedAttempt: ({ attemptNumber }) => debug('a catalog row was updated concurrently (attempt %d)', attemptNumber) },
  );
}

/** PostgreSQL's "tuple concurrently updated" (XX000): two sessions changed one catalog row at once. */
export function isConcurrentlyUpdated(error: unknown): boolean {
  const found = error as Partial<DatabaseError> | null;
  return found?.code === 'XX000' && /tuple concurrently updated/.test(found.message ?? '');
}

/**
 * SQL that closes database `name` to PUBLIC, runs `then`, and lets connections in (the rights
 * decide who): for one transaction. Running it again changes nothing.
 */
export function openDatabaseSql(name: string, then?: string): string {
  const id = escapeIdentifier(name);
  return [`REVOKE ALL ON DATABASE ${id} FROM PUBLIC`, ...(then ? [then] : []), `ALTER DATABASE ${id} WITH ALLOW_CONNECTIONS true`].join(';\n');
}

/**
 * Drops `name` if it exists, even while sessions are connected (`WITH (FORCE)`: servers older than
 * PostgreSQL 13 are refused by `ensurePostgres`). A template is unsealed first (a template
 * database cannot be dropped). Resolves whether it existed.
 */
export async function dropDatabase(client: Client, name: string): Promise<boolean> {
  const row = await findDatabase(client, name);
  if (!row) return false;
  const id = escapeIdentifier(name);
  if (row.isTemplate) await client.query(`ALTER DATABASE ${id} WITH IS_TEMPLATE false`);
  await client.query(`DROP DATABASE IF EXISTS ${id} WITH (FORCE)`);
  return true;
}

/**
 * Warns when `expected` more connections (lanes × servers × pool size) plus those open now come
 * near what the server allows (over 80 % of `max_connections` less the reserved ones).
 */
export async function checkConnectionBudget(client: Client, expected: number): Promise<void> {
  const { rows } = await client.query<{ max: number; reserved: number; used: number }>(
    `SELECT current_setting('max_connections')::int AS max, current_setting('superuser_reserved_connections')::int AS reserved,
            (SELECT count(*)::int FROM pg_stat_activity WHERE backend_type = 'client backend') AS used`,
  );
  const { max, reserved, used } = rows[0] ?? { max: 0, reserved: 0, used: 0 };
  const available = max - reserved;
  if (expected + used > 0.8 * available) {
    warn(
      `about ${expected} connections expected (option expectedConnections) + ${used} open now, but PostgreSQL allows ${available} ` +
        `(max_connections ${max} − ${reserved} reserved): lanes may fail with "too many clients". Raise max_connections, or use fewer workers or smaller pools.`,
    );
  }
}

/**
 * The database a `CREATE DATABASE` wanted to create exists already: `42P04 duplicate_database`, or
 * `23505 unique_violation` on `pg_database` when another connection created it at the same moment
 * (raised only once that one committed, so the database is there either way).
 */
export function isAlreadyThere(error: unknown): boolean {
  const { code, constraint } = (error as Partial<DatabaseError> | null) ?? {};
  return code === '42P04' || (code === '23505' && (constraint === undefined || constraint.startsWith('pg_database_')));
}

/** `55006 object_in_use`: "source database … is being accessed by other users" and friends. */
function isInUse(error: unknown): boolean {
  return (error as Partial<DatabaseError> | null)?.code === '55006';
}

interface RawRow {
  name: string;
  oid: string;
  isTemplate: boolean;
  allowConnections: boolean;
  comment: string | null;
}

function toRow(raw: RawRow): DatabaseRow {
  return { name: raw.name, oid: Number(raw.oid), isTemplate: raw.isTemplate, allowConnections: raw.allowConnections, comment: raw.comment };
}
