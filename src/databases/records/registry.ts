/**
 * The registry of lane databases (the table `e2e_lanes.lane_databases`: its SQL, one function per
 * statement), kept in the PostgreSQL server itself for servers shared by several machines (CI shards):
 * one row per lane database with its owner (host, pid, run, shard)
 * and a lease that the owner renews. Any machine can judge any row: leases decide for other
 * hosts (their pids cannot be checked), the pid check still applies on the row's own host. All
 * times are the server's clock, so machines with skewed clocks agree. Rows of one database are
 * changed only under an advisory lock on its name, taken in the maintenance database.
 * @internal
 */
import type { Client } from 'pg';
import { REGISTRY_ENV } from '../../env-vars.js';
import { LanesError, messageOf } from '../../errors.js';
import { debugLogger } from '../../log.js';
import { currentHost, processGone, type Owner, type OwnerVerdict } from '../../state/owner.js';
import { escapeIdentifier } from 'pg';
import { isAlreadyThere } from '../sql/catalog.js';
import { MARK_TOOLKIT, writeMark } from '../sql/marks.js';
import { advisoryTransactionLock, withAdvisoryLock } from '../sql/advisory-lock.js';
import { advisoryKey } from '../sql/names.js';

const debug = debugLogger('registry');

export type { RegistryMode } from '../types.js';

import { DEFAULT_REGISTRY_DATABASE } from './registry-options.js';

export { DEFAULT_REGISTRY_DATABASE };

/** The schema of the registry, in the registry database. */
export const REGISTRY_SCHEMA = 'e2e_lanes';

/** The table of the registry. */
export const REGISTRY_TABLE = `${REGISTRY_SCHEMA}.lane_databases`;

/** The format of the registry, kept in the table's comment: a table with another comment is brought up to date. */
const REGISTRY_COMMENT = 'e2e-lanes: lane databases and their owners (format 3)';

/**
 * The SQL that creates the registry, or brings an older one up to date (run idempotently under an
 * advisory lock; also in docs/ci.md).
 */
export const REGISTRY_DDL = `CREATE SCHEMA IF NOT EXISTS ${REGISTRY_SCHEMA};
CREATE TABLE IF NOT EXISTS ${REGISTRY_TABLE} (
  database_name text PRIMARY KEY,
  prefix text NOT NULL,
  run_id text NOT NULL,
  project text NOT NULL,
  worker integer,
  shard text,
  host text NOT NULL,
  pid integer NOT NULL,
  pid_start bigint,
  state_dir text,
  template text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);
ALTER TABLE ${REGISTRY_TABLE} ADD COLUMN IF NOT EXISTS state_dir text;
ALTER TABLE ${REGISTRY_TABLE} ADD COLUMN IF NOT EXISTS pid_ns bigint;
ALTER TABLE ${REGISTRY_TABLE} ADD COLUMN IF NOT EXISTS boot_id text;
CREATE INDEX IF NOT EXISTS lane_databases_prefix_run ON ${REGISTRY_TABLE} (prefix, run_id);
COMMENT ON TABLE ${REGISTRY_TABLE} IS '${REGISTRY_COMMENT}';`;

/** One lane database as the registry records it. */
export interface RegistryRow {
  databaseName: string;
  /** The allocator prefix the database was created under. */
  prefix: string;
  runId: string;
  project: string;
  worker?: number;
  /** The Playwright shard of the owner, e.g. `2/4`. */
  shard?: string;
  host: string;
  pid: number;
  pidStart?: number;
  /** The owner's PID namespace and boot: its pid is judged only where they match (see judgeProcess). */
  pidNs?: number;
  bootId?: string;
  /** The owner's state folder (on its host): processes of one run share it, two runs do not. */
  stateDir?: string;
  /** The template it was cloned from. */
  template: string;
  createdAt: string;
  heartbeatAt: string;
  /** The lease: past this time (server clock) any machine may reap the database. */
  expiresAt: string;
  /** True when the lease had expired when the row was read (judged by the server's clock). */
  expired: boolean;
}

/** What an owner writes when it claims a lane database. */
export type RegistryClaim = Omit<RegistryRow, 'createdAt' | 'heartbeatAt' | 'expiresAt' | 'expired'>;

const COLUMNS = `database_name, prefix, run_id, project, worker, shard, host, pid, pid_start::text AS pid_start, pid_ns::text AS pid_ns, boot_id, state_dir, template,
  created_at, heartbeat_at, expires_at, expires_at < now() AS expired`;

/** `now() + leaseMs` on the server. */
const LEASE = `now() + ($1::float8 * interval '1 millisecond')`;

/**
 * Creates the registry schema and table if they are missing, or brings an older table up to date.
 * Concurrent first runs are serialised by a transaction-level advisory lock (`CREATE … IF NOT
 * EXISTS` alone races on the catalog).
 * @throws {LanesError} `REGISTRY_FAILED` when the admin user may not create them.
 */
export async function ensureRegistry(client: Client, where: string): Promise<void> {
  try {
    const { rows } = await client.query<{ comment: string | null }>(`SELECT obj_description(to_regclass($1), 'pg_class') AS comment`, [REGISTRY_TABLE]);
    if (rows[0]?.comment === REGISTRY_COMMENT) return;
    await client.query('BEGIN');
    try {
      await advisoryTransactionLock(client, advisoryKey('registry'));
      await client.query(REGISTRY_DDL);
      await client.query('COMMIT');
      debug('registry %s ready on %s', REGISTRY_TABLE, where);
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  } catch (error) {
    throw registryFailed(`create the lane registry ${REGISTRY_TABLE} on ${where}`, error);
  }
}

/**
 * Creates the registry database `name` (with the toolkit's mark) when it does not exist, over a
 * connection to any other database of the server; nothing is created in that one.
 * @throws {LanesError} `REGISTRY_FAILED` when it may not be created.
 */
export async function ensureRegistryDatabase(client: Client, name: string, where: string): Promise<void> {
  try {
    const { rows } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (rows.length > 0) return;
    try {
      await client.query(`CREATE DATABASE ${escapeIdentifier(name)}`);
    } catch (error) {
      if (isAlreadyThere(error)) return; // another process created it at the same moment
      throw error;
    }
    await writeMark(client, name, { toolkit: MARK_TOOLKIT, kind: 'registry', created: new Date().toISOString() });
    debug('registry database %s created on %s', name, where);
  } catch (error) {
    throw registryFailed(`create the registry database ${name} on ${where}`, error);
  }
}

/**
 * Fails with a permission error (SQLSTATE 42501, as PostgreSQL would) when the current role may
 * not read and write the registry table, so callers can tell it from other failures up front.
 */
export async function checkRegistryPrivileges(client: Client, where: string): Promise<void> {
  const { rows } = await client.query<{ ok: boolean }>(`SELECT has_table_privilege($1, 'SELECT, INSERT, UPDATE, DELETE') AS ok`, [REGISTRY_TABLE]);
  if (rows[0]?.ok) return;
  const error = Object.assign(new Error(`permission denied for table ${REGISTRY_TABLE}`), { code: '42501' });
  throw registryFailed(`use the lane registry ${REGISTRY_TABLE} on ${where}`, error);
}

/** Rows of `prefix`, optionally of one run, oldest first. */
export async function selectRows(client: Client, filter: { prefix: string; runId?: string }): Promise<RegistryRow[]> {
  const { rows } = await client.query<RawRow>(
    `SELECT ${COLUMNS} FROM ${REGISTRY_TABLE} WHERE prefix = $1 AND ($2::text IS NULL OR run_id = $2) ORDER BY created_at, database_name`,
    [filter.prefix, filter.runId ?? null],
  );
  return rows.map(toRow);
}

/** The row of one database, if any. */
export async function findRow(client: Client, databaseName: string): Promise<RegistryRow | undefined> {
  const { rows } = await client.query<RawRow>(`SELECT ${COLUMNS} FROM ${REGISTRY_TABLE} WHERE database_name = $1`, [databaseName]);
  return rows[0] && toRow(rows[0]);
}

/** Records `claim` as the owner of its database with a fresh lease (inserting, or taking the row over). */
export async function writeRow(client: Client, claim: RegistryClaim, leaseMs: number): Promise<void> {
  await client.query(
    `INSERT INTO ${REGISTRY_TABLE} (database_name, prefix, run_id, project, worker, shard, host, pid, pid_start, state_dir, template, pid_ns, boot_id, expires_at)
     VALUES ($2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, ${LEASE})
     ON CONFLICT (database_name) DO UPDATE SET host = EXCLUDED.host, pid = EXCLUDED.pid, pid_start = EXCLUDED.pid_start,
       pid_ns = EXCLUDED.pid_ns, boot_id = EXCLUDED.boot_id,
       state_dir = EXCLUDED.state_dir, shard = EXCLUDED.shard, heartbeat_at = now(), expires_at = EXCLUDED.expires_at`,
    [
      leaseMs,
      claim.databaseName,
      claim.prefix,
      claim.runId,
      claim.project,
      claim.worker ?? null,
      claim.shard ?? null,
      claim.host,
      claim.pid,
      claim.pidStart ?? null,
      claim.stateDir ?? null,
      claim.template,
      claim.pidNs ?? null,
      claim.bootId ?? null,
    ],
  );
}

/**
 * Gives the row of `databaseName` to `owner`: a warm run's watchdog (the lease lasts until its
 * deadline), or a process taking a warm run over (a fresh lease, which it renews).
 */
export async function handOverRow(client: Client, databaseName: string, owner: Owner, leaseMs: number): Promise<void> {
  await client.query(
    `UPDATE ${REGISTRY_TABLE} SET host = $2, pid = $3, pid_start = $4, pid_ns = $7, boot_id = $8, heartbeat_at = now(),
       expires_at = CASE WHEN $5::timestamptz IS NULL THEN ${LEASE} ELSE $5::timestamptz END
     WHERE database_name = $6`,
    [leaseMs, owner.host, owner.pid, owner.pidStart ?? null, owner.warmUntil ?? null, databaseName, owner.pidNs ?? null, owner.bootId ?? null],
  );
}

/**
 * Renews the leases of `names` held by `host`, as long as they have not expired: an expired lease
 * is never renewed, so a reaper that saw it expired can rely on that. Resolves the names renewed.
 */
export async function renewLeases(client: Client, names: readonly string[], host: string, leaseMs: number): Promise<string[]> {
  if (names.length === 0) return [];
  const { rows } = await client.query<{ database_name: string }>(
    `UPDATE ${REGISTRY_TABLE} SET heartbeat_at = now(), expires_at = ${LEASE}
     WHERE database_name = ANY($2::text[]) AND host = $3 AND expires_at >= now() RETURNING database_name`,
    [leaseMs, names, host],
  );
  return rows.map((row) => row.database_name);
}

/** Forgets the row of one database. */
export async function deleteRow(client: Client, databaseName: string): Promise<void> {
  await client.query(`DELETE FROM ${REGISTRY_TABLE} WHERE database_name = $1`, [databaseName]);
}

/**
 * Runs `fn` holding the advisory lock of one lane database (a session lock on `client`'s
 * database). With `wait: false`, resolves `{ locked: false }` at once when someone else holds it.
 */
export async function withLaneLock<T>(client: Client, databaseName: string, options: { wait: boolean }, fn: () => Promise<T>): Promise<{ locked: true; value: T } | { locked: false }> {
  return withAdvisoryLock(client, advisoryKey(`lane:${databaseName}`), options, fn);
}

/**
 * Whether the owner of a row still holds it: where its pid can be judged (the row's own host, boot
 * and PID namespace) it must be alive (and the same process); anywhere its lease must not have expired.
 */
export function judgeRow(row: RegistryRow, host = currentHost()): OwnerVerdict {
  if (row.host === host) {
    const gone = processGone(row, host);
    if (gone) return { alive: false, reason: gone };
  }
  if (row.expired) return { alive: false, reason: `lease of ${row.host} (pid ${row.pid}) expired at ${row.expiresAt}` };
  return { alive: true };
}

/** A `REGISTRY_FAILED` error for a failed registry operation. */
export function registryFailed(what: string, error: unknown): LanesError {
  const code = (error as { code?: unknown } | null)?.code;
  const hint =
    code === '42501'
      ? `The admin user may not create or use the registry (database ${DEFAULT_REGISTRY_DATABASE} unless option \`registryDatabase\` says otherwise, schema ${REGISTRY_SCHEMA}): grant it (GRANT CREATE ON DATABASE <registry database> TO <user>, or rights on ${REGISTRY_TABLE}), create the registry once by hand (SQL in docs/ci.md), or use registry: 'file' when only one machine uses this server.`
      : `Check the server and the admin user's rights on ${REGISTRY_TABLE}; or use registry: 'file' (${REGISTRY_ENV}=file) when only one machine uses this server.`;
  return new LanesError('REGISTRY_FAILED', `Could not ${what}: ${messageOf(error)}`, { hint, cause: error, details: { code } });
}

interface RawRow {
  database_name: string;
  prefix: string;
  run_id: string;
  project: string;
  worker: number | null;
  shard: string | null;
  host: string;
  pid: number;
  pid_start: string | null;
  pid_ns: string | null;
  boot_id: string | null;
  state_dir: string | null;
  template: string;
  created_at: Date;
  heartbeat_at: Date;
  expires_at: Date;
  expired: boolean;
}

function toRow(raw: RawRow): RegistryRow {
  const row: RegistryRow = {
    databaseName: raw.database_name,
    prefix: raw.prefix,
    runId: raw.run_id,
    project: raw.project,
    host: raw.host,
    pid: raw.pid,
    template: raw.template,
    createdAt: raw.created_at.toISOString(),
    heartbeatAt: raw.heartbeat_at.toISOString(),
    expiresAt: raw.expires_at.toISOString(),
    expired: raw.expired,
  };
  if (raw.worker !== null) row.worker = raw.worker;
  if (raw.shard !== null) row.shard = raw.shard;
  if (raw.pid_start !== null) row.pidStart = Number(raw.pid_start);
  if (raw.pid_ns !== null) row.pidNs = Number(raw.pid_ns);
  if (raw.boot_id !== null) row.bootId = raw.boot_id;
  if (raw.state_dir !== null) row.stateDir = raw.state_dir;
  return row;
}
