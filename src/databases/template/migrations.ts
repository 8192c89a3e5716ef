import { randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { escapeIdentifier, type Client, type DatabaseError } from 'pg';
import { MIGRATION_TIMEOUT_ENV } from '../../env-vars.js';
import { LanesError, messageOf } from '../../errors.js';
import { debugLogger } from '../../log.js';
import { connectClient, describeTarget } from '../../postgres/index.js';
import { displayPath, runDatabaseCommand } from './command.js';
import { formatSeconds, withinDeadline } from './deadline.js';
import { describeLockWait } from '../sql/lock-wait.js';
import { sha256Hex } from '../sql/names.js';
import type { CommandStep } from '../types.js';
import { DEFAULT_MIGRATION_TIMEOUT_MS } from './template-options.js';

const debug = debugLogger('migrations');

/** The table `prisma migrate deploy` records applied migrations in. */
export const MIGRATIONS_TABLE = '_prisma_migrations';

/** The advisory lock key Prisma Migrate holds while it migrates: we take the same one. */
export const PRISMA_MIGRATE_LOCK_KEY = 72707369;

/** The DDL of Prisma's schema engine for PostgreSQL, verbatim apart from the schema. */
const createTableSql = (table: string): string => `CREATE TABLE ${table} (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             TIMESTAMPTZ,
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          TIMESTAMPTZ,
    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count     INTEGER NOT NULL DEFAULT 0
);`;

/** One `<dir>/<name>/migration.sql`. */
export interface MigrationFile {
  /** The folder name, e.g. `20250101000000_init`: recorded as `migration_name`. */
  name: string;
  /** Absolute path of its `migration.sql`. */
  path: string;
  /** The script as text. */
  sql: string;
  /** SHA-256 hex of the file's bytes: recorded as `checksum`. */
  checksum: string;
}

/** Options of {@link applyMigrations} and {@link runMigrations}. */
export interface MigrateOptions {
  /** Deadline for connecting, retries included. @default 10_000 */
  connectTimeoutMs?: number;
  /**
   * Deadline of each migration file (of the migrations command, when it sets no `timeoutMs`).
   * @default 600_000
   */
  timeoutMs?: number;
  /**
   * What progress lines (every 10 s while a migration runs) say is being migrated.
   * @default the database
   */
  label?: string;
}

/** What {@link applyMigrations} did. */
export interface MigrateResult {
  /** Names applied now, in order. */
  applied: string[];
  /** Names already recorded with the same checksum. */
  skipped: string[];
  durationMs: number;
}

/**
 * The migrations of a Prisma migrations folder: every sub-folder, sorted by name the way
 * Prisma sorts them, each with its `migration.sql`. Files beside the folders
 * (`migration_lock.toml`) and other files inside them are ignored.
 * @throws {LanesError} `MIGRATION_FAILED` when the folder is missing or a sub-folder lacks `migration.sql`.
 */
export async function readMigrations(dir: string): Promise<MigrationFile[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    throw new LanesError('MIGRATION_FAILED', `Migrations folder ${displayPath(dir)} could not be read: ${messageOf(error)}`, {
      hint: "Point option `migrations` at Prisma's migrations folder, use { command: '…' } to run your own tool, or false for none.",
      cause: error,
      details: { dir },
    });
  }
  const names = entries
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort((a, b) => a.localeCompare(b));
  return Promise.all(
    names.map(async (name) => {
      const path = join(dir, name, 'migration.sql');
      let bytes: Buffer;
      try {
        bytes = await readFile(path);
      } catch (error) {
        throw new LanesError('MIGRATION_FAILED', `Migration ${name} has no readable ${displayPath(path)}: ${messageOf(error)}`, {
          hint: 'Every folder of the migrations folder must hold a migration.sql (as `prisma migrate dev` writes it); remove stray folders.',
          cause: error,
          details: { file: path, migration: name },
        });
      }
      return { name, path, sql: bytes.toString('utf8'), checksum: sha256Hex(bytes) };
    }),
  );
}

/**
 * True when `sql` matches a recorded checksum the way Prisma compares them: ignoring CRLF/LF
 * differences, and accepting the unpadded hex some old Prisma versions wrote.
 */
export function checksumMatches(sql: string, checksum: string): boolean {
  const variants = [sql, sql.replace(/\r\n/g, '\n'), sql.replace(/\n/g, '\r\n')];
  return variants.some((variant) => {
    const hex = sha256Hex(variant);
    return checksum.length === 64 ? hex === checksum : unpadded(hex) === checksum;
  });
}

/** 1-based line and column (in characters) of a PostgreSQL error `position` (1-based characters). */
export function lineAndColumn(sql: string, position: number): { line: number; column: number } {
  const before = Array.from(sql).slice(0, Math.max(0, position - 1)).join('');
  const lines = before.split('\n');
  return { line: lines.length, column: Array.from(lines.at(-1) ?? '').length + 1 };
}

/**
 * Applies the migrations not yet recorded in `_prisma_migrations` of `databaseUrl`, in order,
 * each in its own transaction together with its row, exactly as `prisma migrate deploy` records
 * it (uuid v4 id, SHA-256 checksum, started/finished times, logs NULL, applied_steps_count 1).
 * Holds Prisma Migrate's advisory lock meanwhile. A migration still running after `timeoutMs` is
 * cancelled (and rolled back).
 * @throws {LanesError} `MIGRATION_FAILED` naming the file, line and column; that migration is rolled
 *   back. `MIGRATION_TIMEOUT` naming the file, and the lock it waited for and who holds it.
 */
export async function applyMigrations(databaseUrl: string, migrations: readonly MigrationFile[], options: MigrateOptions = {}): Promise<MigrateResult> {
  const started = performance.now();
  const connect = options.connectTimeoutMs === undefined ? {} : { timeoutMs: options.connectTimeoutMs };
  const client = await connectClient(databaseUrl, connect);
  const timeoutMs = options.timeoutMs ?? DEFAULT_MIGRATION_TIMEOUT_MS;
  const label = options.label ?? `migrating ${describeTarget(databaseUrl)}`;
  try {
    const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid ?? 0;
    const guarded = async (what: string, migration: MigrationFile | undefined, work: Promise<unknown>): Promise<void> => {
      const outcome = await withinDeadline(work, timeoutMs, `${label}: ${what}`);
      if (outcome.done) return;
      const wait = await describeLockWait(databaseUrl, pid, connect).catch((error: unknown) => `(could not read pg_locks: ${messageOf(error)})`);
      // Cancel the statement: the migration's transaction rolls back, and the session can close. A
      // statement that ignores the cancel within 5 s has its session ended.
      const signal = (fn: 'pg_cancel_backend' | 'pg_terminate_backend'): Promise<unknown> =>
        connectClient(databaseUrl, connect)
          .then(async (other) => other.query(`SELECT ${fn}($1)`, [pid]).finally(() => other.end()))
          .catch((error: unknown) => debug('%s(%d) failed: %s', fn, pid, messageOf(error)));
      await signal('pg_cancel_backend');
      if (!(await withinDeadline(work.catch(() => undefined), 5_000, `${label}: cancelling ${what}`)).done) {
        await signal('pg_terminate_backend');
        await withinDeadline(work.catch(() => undefined), 5_000, `${label}: ending the session of ${what}`);
      }
      throw migrationTimedOut(what, migration, databaseUrl, timeoutMs, wait);
    };
    await guarded("Prisma Migrate's advisory lock", undefined, client.query('SELECT pg_advisory_lock($1)', [PRISMA_MIGRATE_LOCK_KEY]));
    const table = await ensureMigrationsTable(client);
    const recorded = await client.query<MigrationRow>(
      `SELECT migration_name, checksum, finished_at, rolled_back_at, logs FROM ${table} ORDER BY started_at`,
    );
    refuseFailedMigrations(recorded.rows, databaseUrl);
    const result: MigrateResult = { applied: [], skipped: [], durationMs: 0 };
    for (const migration of migrations) {
      const row = recorded.rows.find((r) => r.migration_name === migration.name && r.rolled_back_at === null);
      if (row) {
        if (!checksumMatches(migration.sql, row.checksum)) throw modifiedAfterApply(migration, databaseUrl);
        result.skipped.push(migration.name);
        continue;
      }
      await guarded(migration.name, migration, applyOne(client, table, migration));
      result.applied.push(migration.name);
    }
    result.durationMs = performance.now() - started;
    debug('migrated %s: applied %o, skipped %d', describeTarget(databaseUrl), result.applied, result.skipped.length);
    return result;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Brings `databaseUrl` to the schema: the built-in runner for a migrations folder, or the
 * command with `DATABASE_URL` set.
 * @throws {LanesError} `MIGRATION_FAILED`.
 */
export async function runMigrations(step: string | CommandStep, databaseUrl: string, options: MigrateOptions = {}): Promise<void> {
  if (typeof step === 'string') {
    await applyMigrations(databaseUrl, await readMigrations(step), options);
    return;
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_MIGRATION_TIMEOUT_MS;
  const outcome = await runDatabaseCommand(step, databaseUrl, { defaultTimeoutMs: timeoutMs, label: options.label ?? `migrating ${describeTarget(databaseUrl)}` });
  if (outcome.timedOut) {
    const limit = step.timeoutMs ?? timeoutMs;
    throw new LanesError('MIGRATION_TIMEOUT', `Migrations command \`${step.command}\` was still running after ${formatSeconds(limit)} on ${describeTarget(databaseUrl)} and was killed. Last output:\n${outcome.tail}`, {
      hint: `If it is merely slow, raise ${step.timeoutMs !== undefined ? 'option `migrations.timeoutMs`' : `option \`migrationTimeoutMs\` (or ${MIGRATION_TIMEOUT_ENV})`}; if it hangs, look for a prompt or a lock it waits on.`,
      details: { step: 'migrations', command: step.command, timeoutMs: limit },
    });
  }
  if (!outcome.ok) {
    throw new LanesError('MIGRATION_FAILED', `Migrations command \`${step.command}\` failed (${outcome.reason}) on ${describeTarget(databaseUrl)}. Last output:\n${outcome.tail}`, {
      hint: 'Run the command yourself with DATABASE_URL pointing at an empty database to see the whole output; fix it or option `migrations.command`.',
      details: { command: step.command, reason: outcome.reason },
    });
  }
}

interface MigrationRow {
  migration_name: string;
  checksum: string;
  finished_at: Date | null;
  rolled_back_at: Date | null;
  logs: string | null;
}

async function ensureMigrationsTable(client: Client): Promise<string> {
  const { rows } = await client.query<{ schema: string | null }>('SELECT current_schema() AS schema');
  const schema = rows[0]?.schema;
  if (!schema) throw new LanesError('MIGRATION_FAILED', 'The database has no schema in its search_path to keep _prisma_migrations in.', { hint: 'Check the search_path of the database user.' });
  const table = `${escapeIdentifier(schema)}.${escapeIdentifier(MIGRATIONS_TABLE)}`;
  const exists = await client.query<{ oid: string | null }>('SELECT to_regclass($1) AS oid', [table]);
  if (exists.rows[0]?.oid === null) await client.query(createTableSql(table));
  return table;
}

async function applyOne(client: Client, table: string, migration: MigrationFile): Promise<void> {
  const startedAt = new Date();
  await client.query('BEGIN');
  try {
    await client.query(migration.sql);
    await recordApplied(client, table, migration, startedAt);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    if ((error as DatabaseError).code !== '25001') throw migrationFailed(migration, error);
    // "cannot run inside a transaction block" (CREATE INDEX CONCURRENTLY…): as Prisma does, run the
    // script on its own; a single statement then runs outside any transaction.
    debug('%s cannot run in a transaction; running it on its own', migration.name);
    try {
      await client.query(migration.sql);
    } catch (again) {
      throw migrationFailed(migration, again);
    }
    await recordApplied(client, table, migration, startedAt);
  }
}

function recordApplied(client: Client, table: string, migration: MigrationFile, startedAt: Date): Promise<unknown> {
  return client.query(
    `INSERT INTO ${table} (id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count)
     VALUES ($1, $2, $3, $4, NULL, NULL, $5, 1)`,
    [randomUUID(), migration.checksum, new Date(), migration.name, startedAt],
  );
}

function migrationFailed(migration: MigrationFile, error: unknown): LanesError {
  const db = error as Partial<DatabaseError>;
  const position = Number(db.position);
  const at = Number.isInteger(position) && position > 0 ? lineAndColumn(migration.sql, position) : undefined;
  const where = at ? `${displayPath(migration.path)}:${at.line}:${at.column}` : displayPath(migration.path);
  const extra = [db.detail && `Detail: ${db.detail}`, db.hint && `Postgres hint: ${db.hint}`, db.where && `Where: ${db.where}`]
    .filter(Boolean)
    .join('\n');
  const message =
    `Migration ${migration.name} failed at ${where}: ${messageOf(error)}${db.code ? ` (SQLSTATE ${db.code})` : ''}` +
    (at ? `\n${excerpt(migration.sql, at.line, at.column)}` : '') +
    (extra ? `\n${extra}` : '');
  return new LanesError('MIGRATION_FAILED', message, {
    hint: `Fix ${displayPath(migration.path)}; the migration was rolled back and nothing of it was kept.`,
    cause: error,
    details: { migration: migration.name, file: migration.path, line: at?.line, column: at?.column, sqlState: db.code },
  });
}

function migrationTimedOut(what: string, migration: MigrationFile | undefined, databaseUrl: string, timeoutMs: number, wait: string): LanesError {
  const subject = migration ? `Migration ${migration.name} (${displayPath(migration.path)})` : `Waiting for ${what}`;
  return new LanesError('MIGRATION_TIMEOUT', `${subject} on ${describeTarget(databaseUrl)} did not finish within ${formatSeconds(timeoutMs)} and was cancelled: ${wait}`, {
    hint: `End the session that holds the lock (or let it finish), or, if the migration is merely slow, raise option \`migrationTimeoutMs\` (or ${MIGRATION_TIMEOUT_ENV}). Nothing of the migration was kept.`,
    details: { step: 'migration', migration: migration?.name, file: migration?.path, timeoutMs },
  });
}

function refuseFailedMigrations(rows: readonly MigrationRow[], databaseUrl: string): void {
  const failed = rows.filter((row) => row.finished_at === null && row.rolled_back_at === null);
  if (failed.length === 0) return;
  const names = failed.map((row) => row.migration_name).join(', ');
  throw new LanesError('MIGRATION_FAILED', `${describeTarget(databaseUrl)} records failed migrations (${names}); new migrations are not applied.`, {
    hint: 'Resolve them as Prisma requires (`prisma migrate resolve`), or start from a fresh database.',
    details: { failed: failed.map((row) => row.migration_name) },
  });
}

function modifiedAfterApply(migration: MigrationFile, databaseUrl: string): LanesError {
  return new LanesError('MIGRATION_FAILED', `Migration ${migration.name} was modified after it was applied to ${describeTarget(databaseUrl)} (checksum differs): ${displayPath(migration.path)}.`, {
    hint: 'Restore the applied version of the file and add a new migration for the change, or start from a fresh database.',
    details: { migration: migration.name, file: migration.path },
  });
}

/** Up to two lines before the failing one, the line, and a caret under the column. */
function excerpt(sql: string, line: number, column: number): string {
  const lines = sql.split(/\r?\n/);
  const width = String(line).length;
  const out: string[] = [];
  for (let n = Math.max(1, line - 2); n <= line; n++) {
    out.push(`${n === line ? '>' : ' '} ${String(n).padStart(width)} | ${lines[n - 1] ?? ''}`);
  }
  out.push(`  ${' '.repeat(width)} | ${' '.repeat(Math.max(0, column - 1))}^`);
  return out.join('\n');
}


function unpadded(hex: string): string {
  return hex.replace(/(..)/g, (byte) => byte.replace(/^0/, ''));
}
