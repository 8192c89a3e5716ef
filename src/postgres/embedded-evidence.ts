/**
 * Who uses the shared embedded server, from live evidence rather than from `embedded-postgres.json`
 * alone (a lost or truncated users file must never make a run stop the server under another):
 * - every run holding the server keeps one idle session on it, named after the user
 *   (`application_name` `e2e-lanes user <id> <pid> <run>`): it lasts exactly as long as the run's
 *   process, and is seen by any other process in `pg_stat_activity`;
 * - lanes kept after their run (`E2E_LANES_KEEP=1`) or waiting warm carry it in their database's mark.
 * Before the last recorded user stops the server, the evidence is asked; users it shows are written
 * back into the users file.
 */
import type pg from 'pg';
import { messageOf } from '../errors.js';
import { debugLogger } from '../log.js';
import { currentHost } from '../state/owner.js';
import { connectClient, withClient } from './connect.js';
import type { EmbeddedUser } from './embedded-users.js';

const debug = debugLogger('postgres');

/** The start of the `application_name` of a user's presence session. */
const PRESENCE = 'e2e-lanes user ';

/** The `application_name` of a user's presence session (at most 63 bytes, PostgreSQL's limit). */
export function presenceName(user: Pick<EmbeddedUser, 'id' | 'pid' | 'runId'>): string {
  return `${PRESENCE}${shortId(user.id)} ${user.pid} ${user.runId}`.slice(0, 63);
}

/** What the server shows of its users. */
export interface Evidence {
  /** Users with a presence session, as records for the users file. */
  users: EmbeddedUser[];
  /** Lane databases marked kept, or warm with their deadline ahead. */
  heldLanes: string[];
}

/**
 * Opens the presence session of `user` on the server at `adminUrl`; resolves the function that
 * closes it. A server that cannot be reached only costs the evidence (logged): the users file
 * still records the user.
 */
export async function openPresence(adminUrl: string, user: EmbeddedUser): Promise<() => Promise<void>> {
  let client: pg.Client;
  try {
    client = await connectClient(adminUrl, { applicationName: presenceName(user), timeoutMs: 5_000 });
  } catch (error) {
    debug('no presence session for %s: %s', user.id, messageOf(error));
    return async () => undefined;
  }
  // The server may stop or die while the session is idle: that is the watch's to report.
  client.on('error', (error) => debug('presence session of %s: %s', user.id, messageOf(error)));
  return async () => {
    await client.end().catch(() => undefined);
  };
}

/**
 * The users and held lanes the server at `adminUrl` shows, but those whose ids are in `except`.
 * @throws when the server cannot be asked (the caller then keeps the server: nothing is known).
 */
export async function askServer(adminUrl: string, except: readonly string[]): Promise<Evidence> {
  return withClient(
    adminUrl,
    async (client) => {
      const sessions = await client.query<{ name: string }>(
        `SELECT application_name AS name FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND left(application_name, $2) = $1`,
        [PRESENCE, PRESENCE.length],
      );
      const skip = new Set(except.map(shortId));
      const users: EmbeddedUser[] = [];
      for (const { name } of sessions.rows) {
        const match = /^e2e-lanes user ([0-9a-z-]+) (\d+) (.*)$/.exec(name);
        if (!match || skip.has(match[1]!)) continue;
        const now = new Date().toISOString();
        users.push({ id: match[1]!, runId: match[3]!, pid: Number(match[2]), host: currentHost(), createdAt: now, heartbeatAt: now });
      }
      const marks = await client.query<{ name: string; mark: string | null }>(`SELECT datname AS name, shobj_description(oid, 'pg_database') AS mark FROM pg_database`);
      const heldLanes = marks.rows.filter(({ mark }) => isHeld(mark)).map(({ name }) => name);
      return { users, heldLanes };
    },
    { timeoutMs: 5_000, applicationName: 'e2e-lanes users' },
  );
}

/** Whether a database comment is the mark of a lane kept, or warm with its deadline ahead. @internal */
function isHeld(comment: string | null): boolean {
  if (!comment) return false;
  try {
    const mark = JSON.parse(comment) as { toolkit?: unknown; kind?: unknown; kept?: unknown; warmUntil?: unknown } | null;
    if (mark?.toolkit !== 'e2e-lanes' || mark.kind !== 'lane') return false;
    return mark.kept === true || (typeof mark.warmUntil === 'string' && Date.now() < Date.parse(mark.warmUntil));
  } catch {
    return false;
  }
}

/** Whether a record of the users file is the user `id` (written by it, or rebuilt from its session). */
export function isUser(record: Pick<EmbeddedUser, 'id'>, id: string): boolean {
  return record.id === id || record.id === shortId(id);
}

/** A user's id as its session names it: 8 characters are enough to tell a host's users apart. @internal */
function shortId(id: string): string {
  return id.slice(0, 8);
}
