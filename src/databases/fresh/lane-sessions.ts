/**
 * Ends the sessions on a lane database before a `swap` moves it away, letting the queries in
 * flight finish first, so a request the previous test left running on the lane's servers gets its
 * answer instead of `terminating connection due to administrator command`. Private to the
 * databases module.
 * @internal
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { escapeIdentifier, type Client } from 'pg';
import { debugLogger } from '../../log.js';
import { DEFAULT_RESET_GRACE_MS } from './fresh-options.js';

const debug = debugLogger('databases');


/** How long the sessions, once ended, may take to be gone before the swap goes on anyway. */
const GONE_WAIT_MS = 2_000;
/** The first look again at a query in flight, and the longest between two looks. */
const FIRST_POLL_MS = 5;
const MAX_POLL_MS = 50;

/** What {@link endSessions} did. */
export interface EndedSessions {
  /** Whether the database exists (nothing was done otherwise). */
  existed: boolean;
  /** How many sessions were busy when it started (a query running, or a transaction open). */
  inFlight: number;
  /** How many of them were still busy when the grace ran out, and so were ended mid-query. */
  cut: number;
  /** How long it waited for them. */
  waitedMs: number;
}

/**
 * Ends every session on `name` except the caller's, in one statement, but the busy ones while
 * `endBusy` is false; resolves the pids of the busy ones left running. Idle means `state = 'idle'`
 * (or no state). A session of the toolkit itself (`application_name` e2e-lanes…) is never waited
 * for. Busy: a query running (`active`), and also `idle in transaction`: a request between two
 * statements of its transaction is not finished, so it gets the grace too (a test that leaves a
 * transaction open makes a swap wait the whole grace, then its session is ended).
 */
async function endIdle(client: Client, name: string, endBusy: boolean): Promise<number[]> {
  const { rows } = await client.query<{ pid: number; busy: boolean }>(
    `SELECT pid, busy, CASE WHEN $2 OR NOT busy THEN pg_terminate_backend(pid) END AS ended
       FROM (SELECT pid, coalesce(state, 'idle') <> 'idle' AND left(coalesce(application_name, ''), 9) <> 'e2e-lanes' AS busy
               FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()) AS sessions`,
    [name, endBusy],
  );
  return endBusy ? [] : rows.filter((row) => row.busy).map((row) => row.pid);
}

/**
 * Closes `name` to new connections, ends its idle sessions at once, waits up to `graceMs` for the
 * busy ones (a query running, a transaction open) to finish — ending each as soon as it is idle —
 * then ends whatever is still busy, and waits (polling every 2 ms, 2 s at most) until every session
 * is gone, so that the rename or drop that follows finds nobody (`DROP … WITH (FORCE)` alone ends
 * them too, but then sleeps 100 ms before it looks again, and `pg_terminate_backend(pid, timeout)`
 * waits in steps of 100 ms). With nothing in flight this costs the same round trips
 * as ending everyone at once. Looks again after 5 ms, then less and less often (every 50 ms at
 * most), so the polls are bounded in count and time. The servers' pools reconnect once a fresh copy
 * is in place.
 */
export async function endSessions(client: Client, name: string, options: { graceMs?: number } = {}): Promise<EndedSessions> {
  const graceMs = options.graceMs ?? DEFAULT_RESET_GRACE_MS;
  const started = performance.now();
  const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
  if (exists.rowCount === 0) return { existed: false, inFlight: 0, cut: 0, waitedMs: 0 };
  await client.query(`ALTER DATABASE ${escapeIdentifier(name)} WITH ALLOW_CONNECTIONS false`);
  let busy = await endIdle(client, name, graceMs <= 0);
  const inFlight = busy.length;
  const graceEnds = started + graceMs;
  let pause = FIRST_POLL_MS;
  while (busy.length > 0 && performance.now() < graceEnds) {
    await sleep(Math.min(pause, Math.max(1, graceEnds - performance.now())));
    pause = Math.min(pause * 2, MAX_POLL_MS);
    busy = await endIdle(client, name, false);
  }
  const cut = busy.length;
  if (cut > 0) await endIdle(client, name, true);
  const waitedMs = performance.now() - started;
  if (inFlight > 0) debug('%s: %d session(s) busy, waited %d ms, %d ended mid-query', name, inFlight, Math.round(waitedMs), cut);
  const others = 'FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()';
  const goneBy = performance.now() + GONE_WAIT_MS;
  while (performance.now() < goneBy) {
    const { rows } = await client.query<{ n: number }>(`SELECT count(*)::int AS n ${others}`, [name]);
    if (rows[0]?.n === 0) break;
    await sleep(2);
  }
  return { existed: true, inFlight, cut, waitedMs };
}
