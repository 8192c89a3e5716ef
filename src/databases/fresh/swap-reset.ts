/**
 * Puts a lane's database back to exactly its template while the lane's servers keep running; the
 * database keeps its name (and so every `DATABASE_URL`). Private to the databases module.
 *
 * - `swap`: end the sessions on it (the queries in flight given a grace to finish: lane-sessions.ts)
 *   and rename it out of the way (dropped later, off the test's path),
 *   then rename a ready copy of the template to its name, or clone the template when no copy is ready. The servers' pools
 *   reconnect on their next query; what the test wrote is gone however much it was.
 * - `truncate`: in the lane database itself, in one transaction, empty every table of the template
 *   and put its rows back from the copy the template keeps (see template/snapshot.ts), and reset the
 *   sequences: no session is ended.
 * @internal
 */
import { randomBytes } from 'node:crypto';
import { escapeIdentifier, type Client } from 'pg';
import { LanesError, messageOf } from '../../errors.js';
import { cloneDatabase, databasesStartingWith, dropDatabase } from '../sql/catalog.js';
import { endSessions } from './lane-sessions.js';
import type { CloneStrategy } from '../types.js';
import { takeReadyCopy, type PoolTemplate } from './ready-pool.js';

export { RESET_STRATEGIES, type ResetStrategy } from '../types.js';

/** What a swap did. */
export interface SwapResult {
  /** `'pool'`: a ready copy was renamed; `'clone'`: none was ready, the template was cloned. */
  source: 'pool' | 'clone';
  /** The old database, renamed out of the way: the caller drops it later, off the test's path. */
  discarded: string | undefined;
  durationMs: number;
}

/** `<prefix>_trash_`: the start of the names of old lane databases waiting to be dropped. */
export function trashNamePrefix(prefix: string): string {
  return `${prefix}_trash_`;
}

/**
 * Replaces the database `name` by a fresh copy of `template` under the same name, on an admin
 * connection (`client`, not connected to `name`): its sessions are ended (its idle ones at once, the
 * busy ones once their query is done, or after `graceMs`: see {@link endSessions}), it is renamed out of the
 * way (`<prefix>_trash_<random>`, dropped later by the caller: a drop costs far more than a rename)
 * and a ready copy is renamed to its name, or the template cloned when none is ready.
 * @throws {LanesError} `DATABASE_RESET_FAILED` naming the step that failed; if the old database was
 *   moved away but no copy could be put in its place, the message says the lane has no database
 *   until the next reset.
 */
export async function swapDatabase(
  client: Client,
  options: { name: string; prefix: string; template: PoolTemplate; strategy: CloneStrategy; serverVersion: number; comment?: string; access?: string; graceMs?: number },
): Promise<SwapResult> {
  const started = performance.now();
  const trash = `${trashNamePrefix(options.prefix)}${randomBytes(4).toString('hex')}`;
  let discarded: string | undefined;
  try {
    if ((await endSessions(client, options.name, { graceMs: options.graceMs })).existed) {
      await client.query(`ALTER DATABASE ${escapeIdentifier(options.name)} RENAME TO ${escapeIdentifier(trash)}`);
      discarded = trash;
    }
  } catch (error) {
    // Left as it was: open to connections again.
    await client.query(`ALTER DATABASE ${escapeIdentifier(options.name)} WITH ALLOW_CONNECTIONS true`).catch(() => undefined);
    throw resetFailed(options.name, `moving it out of the way failed: ${messageOf(error)}`, error);
  }
  let source: SwapResult['source'] = 'pool';
  try {
    // The mark and the lane role's access in the same round trip (and transaction) as the rename.
    const statements = [
      ...(options.comment !== undefined ? [`COMMENT ON DATABASE ${escapeIdentifier(options.name)} IS ${client.escapeLiteral(options.comment)}`] : []),
      ...(options.access !== undefined ? [options.access] : []),
    ].join(';\n');
    const taken = await takeReadyCopy(client, options.prefix, options.template.hash, options.name, statements || undefined);
    if (taken === undefined) {
      source = 'clone';
      // Opened with the mark and the access in one transaction.
      if (!(await cloneDatabase(client, options.name, options.template.name, options.strategy, options.serverVersion, { then: statements || undefined }))) {
        throw new Error('it was dropped by another process before it was finished');
      }
    }
  } catch (error) {
    throw resetFailed(options.name, `it was moved away, but putting a fresh copy of ${options.template.name} in its place failed (the lane has no database until its next reset): ${messageOf(error)}`, error);
  }
  return { source, discarded, durationMs: performance.now() - started };
}

/** Drops the old lane databases of `prefix` waiting to be dropped; resolves their names. */
export async function dropDiscarded(client: Client, prefix: string, names?: readonly string[]): Promise<string[]> {
  const dropped: string[] = [];
  const start = trashNamePrefix(prefix);
  for (const row of await databasesStartingWith(client, start)) {
    if (!/^[0-9a-f]{8}$/.test(row.name.slice(start.length)) || (names && !names.includes(row.name))) continue;
    if (await dropDatabase(client, row.name)) dropped.push(row.name);
  }
  return dropped;
}

function resetFailed(name: string, what: string, cause: unknown): LanesError {
  return new LanesError('DATABASE_RESET_FAILED', `Resetting database ${name} failed: ${what}`, {
    hint: 'The next reset tries again. If PostgreSQL itself refused (disk full, too many databases), fix that; with a database client that cannot reconnect, use database.reset: \'truncate\'.',
    cause,
    details: { databaseName: name },
  });
}
