/**
 * Who a session waits for, from `pg_locks` and `pg_stat_activity`, in words for error messages and
 * progress lines. Never the sessions' query text (it may hold a password): only pids, roles,
 * application names, client addresses and states.
 * @internal
 */
import type { Client } from 'pg';
import { connectClient, type ConnectOptions } from '../../postgres/index.js';

/** A session that holds a lock another one waits for. */
export interface LockHolder {
  pid: number;
  user: string | null;
  applicationName: string | null;
  clientAddr: string | null;
  state: string | null;
  database: string | null;
  /** Seconds since its transaction began, when in one. */
  xactSeconds: number | null;
  /** The modes it holds on the object waited for. */
  modes: string | null;
}

interface WaitRow {
  locktype: string;
  mode: string;
  relname: string | null;
  transactionid: string | null;
  objid: string | null;
}

/**
 * What the session `pid` is waiting for and who holds it, read over a new connection to
 * `databaseUrl`, e.g. `it waited for AccessExclusiveLock on relation "Item", held by pid 4242
 * (application "psql", user app, idle in transaction for 12 s)`.
 */
export async function describeLockWait(databaseUrl: string, pid: number, connect: ConnectOptions = {}): Promise<string> {
  const client = await connectClient(databaseUrl, { ...connect, applicationName: 'e2e-lanes diagnostics' });
  try {
    const waits = await client.query<WaitRow>(
      `SELECT locktype, mode, CASE WHEN relation IS NOT NULL THEN relation::regclass::text END AS relname,
              transactionid::text AS transactionid, objid::text AS objid
         FROM pg_locks WHERE pid = $1 AND NOT granted`,
      [pid],
    );
    const wait = waits.rows[0];
    if (!wait) {
      const { rows } = await client.query<{ state: string | null; event: string | null }>(
        `SELECT state, concat_ws(':', wait_event_type, wait_event) AS event FROM pg_stat_activity WHERE pid = $1`,
        [pid],
      );
      const row = rows[0];
      return row ? `it was not waiting on a lock (state ${row.state ?? 'unknown'}${row.event ? `, wait event ${row.event}` : ''}): the statement itself is slow.` : 'its session had ended.';
    }
    const holders = await blockingSessions(client, pid);
    const what = `${wait.mode} on ${describeObject(wait)}`;
    if (holders.length === 0) return `it waited for ${what}; the holder had let go when it was looked up.`;
    return `it waited for ${what}, held by ${holders.map(describeHolder).join('; ')}.`;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The sessions blocking `pid` (`pg_blocking_pids`), with the modes they hold on what it waits for. */
export async function blockingSessions(client: Client, pid: number): Promise<LockHolder[]> {
  const { rows } = await client.query<LockHolder>(
    `SELECT a.pid, a.usename AS "user", a.application_name AS "applicationName", host(a.client_addr) AS "clientAddr", a.state,
            a.datname AS database, floor(extract(epoch FROM now() - a.xact_start))::int AS "xactSeconds",
            (SELECT string_agg(DISTINCT h.mode, ', ') FROM pg_locks h JOIN pg_locks w ON w.pid = $1 AND NOT w.granted
               AND h.locktype = w.locktype AND h.database IS NOT DISTINCT FROM w.database AND h.relation IS NOT DISTINCT FROM w.relation
               AND h.transactionid IS NOT DISTINCT FROM w.transactionid AND h.classid IS NOT DISTINCT FROM w.classid
               AND h.objid IS NOT DISTINCT FROM w.objid AND h.objsubid IS NOT DISTINCT FROM w.objsubid
             WHERE h.pid = a.pid AND h.granted) AS modes
       FROM pg_stat_activity a WHERE a.pid = ANY (pg_blocking_pids($1)) ORDER BY a.pid`,
    [pid],
  );
  return rows;
}

/**
 * The sessions holding the session-level advisory lock `key` (a signed 64-bit key as text) in the
 * current database.
 */
export async function advisoryLockHolders(client: Client, key: string): Promise<LockHolder[]> {
  const unsigned = BigInt.asUintN(64, BigInt(key));
  const { rows } = await client.query<LockHolder>(
    `SELECT l.pid, a.usename AS "user", a.application_name AS "applicationName", host(a.client_addr) AS "clientAddr", a.state,
            a.datname AS database, floor(extract(epoch FROM now() - a.xact_start))::int AS "xactSeconds", l.mode AS modes
       FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid`,
    [(unsigned >> 32n).toString(), (unsigned & 0xffffffffn).toString()],
  );
  return rows;
}

/** `pid 4242 (application "psql", user app, from 10.0.0.5, idle in transaction for 12 s, holds AccessShareLock)`. */
export function describeHolder(holder: LockHolder): string {
  const facts: string[] = [];
  if (holder.applicationName) facts.push(`application ${JSON.stringify(holder.applicationName)}`);
  if (holder.user) facts.push(`user ${holder.user}`);
  if (holder.clientAddr) facts.push(`from ${holder.clientAddr}`);
  if (holder.database) facts.push(`database ${holder.database}`);
  if (holder.state) facts.push(holder.xactSeconds !== null ? `${holder.state} for ${holder.xactSeconds} s` : holder.state);
  if (holder.modes) facts.push(`holds ${holder.modes}`);
  return `pid ${holder.pid}${facts.length > 0 ? ` (${facts.join(', ')})` : ''}`;
}

function describeObject(wait: WaitRow): string {
  if (wait.locktype === 'relation' && wait.relname) return `relation ${wait.relname}`;
  if (wait.locktype === 'transactionid' && wait.transactionid) return `transaction ${wait.transactionid} (a row another transaction changed)`;
  if (wait.locktype === 'advisory') return `an advisory lock (objid ${wait.objid ?? '?'})`;
  return `a ${wait.locktype} lock`;
}
