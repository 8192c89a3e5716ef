/**
 * The `truncate` reset of a lane database: the template's rows, kept in the database itself by its
 * snapshot (template/snapshot.ts), put back in one transaction without ending any session.
 */
import { escapeLiteral, type Client, type DatabaseError, type QueryResult } from 'pg';
import { LanesError, messageOf } from '../../errors.js';
import { debugLogger } from '../../log.js';
import { APP_SCHEMA_FILTER, hasSnapshot, inSnapshot, SNAPSHOT_SCHEMA, type SnapshotSummary } from '../template/snapshot.js';
import { checkResetLockTimeout, DEFAULT_RESET_LOCK_TIMEOUT_MS } from './fresh-options.js';

const debug = debugLogger('databases:snapshot');

export { DEFAULT_RESET_LOCK_TIMEOUT_MS };

/** What {@link restoreSnapshot} did. */
export interface RestoreSummary extends SnapshotSummary {
  /**
   * `'skipped'` when the restore ran with `session_replication_role = replica` (foreign-key checks
   * and user triggers did not run); `'fired'` when the role may not set it (see {@link restoreSnapshot}).
   */
  triggers: 'skipped' | 'fired';
  /** Milliseconds the restore took, round trip included. */
  durationMs: number;
}

/** Options of {@link restoreSnapshot}. */
export interface RestoreSnapshotOptions {
  /**
   * Milliseconds the restore waits for the lock of any one table (`SET LOCAL lock_timeout`) before it
   * gives up with `DATABASE_RESET_FAILED` naming the session that holds it. A session that is
   * "idle in transaction" after reading or writing a table holds such a lock.
   * @default 10000
   */
  lockTimeoutMs?: number;
}

/** Restore scripts read per connection: the snapshot of a database never changes. Private. */
const scripts = new WeakMap<Client, Promise<string | undefined>>();

/**
 * Puts the database `client` is connected to (a clone of a template with a snapshot) back to exactly
 * the template's rows and sequence positions, in ONE transaction and one round trip (the script is
 * read once per connection), while other sessions stay connected: none is ended.
 *
 * - Every snapshotted table is emptied by one `TRUNCATE`, its rows re-inserted from the snapshot,
 *   every snapshotted sequence set back with `setval`.
 * - Foreign keys and user triggers: when the role may set `session_replication_role` (a superuser,
 *   or on PostgreSQL 15+ a role granted `SET ON PARAMETER session_replication_role`), the restore runs
 *   with `SET LOCAL session_replication_role = replica`: no foreign-key check (the rows were consistent
 *   in the template) and no user trigger fires (so an audit trigger does not add rows). Otherwise the
 *   foreign keys are checked at the end of the one `INSERT` statement, and `TRUNCATE`/`INSERT`
 *   triggers of the app DO fire (`triggers: 'fired'` in the result): rows they write are not undone.
 * - Tables and sequences the test CREATED (not in the snapshot) are left alone, rows included; but a
 *   created table with a foreign key to a snapshotted table makes `TRUNCATE` fail (drop it in the test).
 * - A table or column the test dropped or renamed makes the restore fail: use `swap` for such tests.
 * - The sequences are set last; `setval` is not undone by a rollback, but nothing fails after it but
 *   the `COMMIT` itself.
 * - Waits at most `lockTimeoutMs` for the lock of any one table.
 * - Call it outside a transaction: it sends its own `BEGIN` … `COMMIT`.
 *
 * @throws {LanesError} `DATABASE_RESET_FAILED`: a session held a lock past `lockTimeoutMs` (the
 *   message names the table and the session: pid, application_name, state, for how long), the
 *   database has no snapshot, or a statement failed (the cause is kept). The database is unchanged.
 * @throws {LanesError} `INVALID_OPTION` for a bad `lockTimeoutMs`.
 */
export async function restoreSnapshot(client: Client, options: RestoreSnapshotOptions = {}): Promise<RestoreSummary> {
  const lockTimeoutMs = checkResetLockTimeout(options.lockTimeoutMs);
  const started = performance.now();
  let script = scripts.get(client);
  if (!script) {
    script = readScript(client);
    scripts.set(client, script);
    script.catch(() => scripts.delete(client));
  }
  const sql = await script.catch((error: unknown) => {
    throw new LanesError('DATABASE_RESET_FAILED', `Could not read the snapshot of the database to reset it: ${messageOf(error)}`, {
      hint: 'See the cause; the role needs USAGE and SELECT on the schema e2e_lanes_snapshot.',
      cause: error,
    });
  });
  if (sql === undefined) {
    scripts.delete(client);
    const database = await currentDatabase(client);
    throw new LanesError('DATABASE_RESET_FAILED', `Database "${database}" has no snapshot (schema ${SNAPSHOT_SCHEMA}), so the 'truncate' reset cannot put its rows back.`, {
      hint: "Its template was built without a snapshot (or by another version of e2e-lanes): rebuild the template, or use `database.reset: 'swap'`.",
      details: { database },
    });
  }
  let results: QueryResult[];
  try {
    const result = await client.query(`BEGIN;\nSET LOCAL lock_timeout = ${escapeLiteral(`${lockTimeoutMs}ms`)};\n${sql};\nCOMMIT`);
    results = Array.isArray(result) ? (result as QueryResult[]) : [result];
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw await resetFailed(client, error, lockTimeoutMs);
  }
  const summary = results.at(-2)?.rows[0] as { tables: number; rows: string; sequences: number; role: string } | undefined;
  const durationMs = performance.now() - started;
  debug('restored in %d ms', Math.round(durationMs));
  return {
    tables: summary?.tables ?? 0,
    rows: Number(summary?.rows ?? 0),
    sequences: summary?.sequences ?? 0,
    triggers: summary?.role === 'replica' ? 'skipped' : 'fired',
    durationMs,
  };
}

async function readScript(client: Client): Promise<string | undefined> {
  if (!(await hasSnapshot(client))) return undefined;
  const { rows } = await client.query<{ restore_sql: string }>(`SELECT restore_sql FROM ${inSnapshot('meta')}`);
  return rows[0]?.restore_sql;
}

async function currentDatabase(client: Client): Promise<string> {
  return (await client.query<{ name: string }>('SELECT current_database() AS name')).rows[0]?.name ?? '(unknown)';
}

/** A session holding a lock on a table of the app. Never its query text (it may hold secrets). */
interface Blocker {
  pid: number;
  applicationName: string;
  state: string | null;
  /** Milliseconds since its transaction started. */
  transactionMs: number | null;
  table: string;
  mode: string;
}

const SELECT_BLOCKERS = `
SELECT a.pid, a.application_name AS "applicationName", a.state,
  round(extract(epoch FROM now() - a.xact_start) * 1000)::int8::text AS "transactionMs",
  format('%I.%I', n.nspname, c.relname) AS table, l.mode
FROM pg_locks l
JOIN pg_class c ON c.oid = l.relation
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'relation' AND l.granted AND l.pid <> pg_backend_pid()
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND c.relkind IN ('r', 'p') AND ${APP_SCHEMA_FILTER}
ORDER BY a.xact_start NULLS LAST, a.pid, n.nspname, c.relname`;

async function resetFailed(client: Client, error: unknown, lockTimeoutMs: number): Promise<LanesError> {
  const database = await currentDatabase(client).catch(() => '(unknown)');
  const code = (error as DatabaseError).code;
  if (code === '55P03' || code === '40P01') {
    const blockers = await client
      .query<Omit<Blocker, 'transactionMs'> & { transactionMs: string | null }>(SELECT_BLOCKERS)
      .then(({ rows }) => rows.map((row): Blocker => ({ ...row, transactionMs: row.transactionMs === null ? null : Number(row.transactionMs) })))
      .catch(() => [] as Blocker[]);
    const what = code === '55P03' ? `waited ${formatMs(lockTimeoutMs)} (lockTimeoutMs) for a table lock` : 'hit a deadlock';
    const held = blockers.length === 0
      ? 'the session that held it has released it since'
      : blockers.slice(0, 5).map(describeBlocker).join('; ') + (blockers.length > 5 ? `; and ${blockers.length - 5} more` : '');
    return new LanesError('DATABASE_RESET_FAILED', `The 'truncate' reset of database "${database}" ${what} and was rolled back: ${held}.`, {
      hint: "A session kept a transaction open on the lane's database after the test: commit or roll back every transaction before the test ends (e.g. close the test's own clients), or use `database.reset: 'swap'`, which ends the sessions.",
      cause: error,
      details: { database, lockTimeoutMs, blockers },
    });
  }
  scripts.delete(client); // read it again next time: the snapshot itself may be what failed
  return new LanesError('DATABASE_RESET_FAILED', `The 'truncate' reset of database "${database}" failed and was rolled back: ${messageOf(error)}${(error as DatabaseError).detail ? ` (${(error as DatabaseError).detail})` : ''}`, {
    hint: "A test may have dropped or altered a table of the snapshot, or created a table with a foreign key to one: undo that in the test, or use `database.reset: 'swap'`.",
    cause: error,
    details: { database },
  });
}

function describeBlocker(blocker: Blocker): string {
  const since = blocker.transactionMs === null ? '' : ` for ${formatMs(blocker.transactionMs)}`;
  return `${blocker.mode} on ${blocker.table} held by pid ${blocker.pid} (application_name ${JSON.stringify(blocker.applicationName)}, ${blocker.state ?? 'unknown state'}${since})`;
}

function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 1)} s` : `${ms} ms`;
}
