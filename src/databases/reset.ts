/**
 * Puts a lane's database back to exactly its template while the lane's servers keep running; the
 * database keeps its name (and so every `DATABASE_URL`). Private to the databases module.
 *
 * - `swap`: end the sessions on it and drop it (`WITH (FORCE)`), then rename a ready copy of the
 *   template to its name, or clone the template when no copy is ready. The servers' pools
 *   reconnect on their next query; what the test wrote is gone however much it was.
 * - `truncate`: in the lane database itself, in one transaction, empty every table of the template
 *   and put its rows back from the copy the template keeps (see snapshot.ts), and reset the
 *   sequences: no session is ended.
 * @internal
 */
import { escapeIdentifier, type Client } from 'pg';
import { LanesError, messageOf } from '../errors.js';
import { cloneDatabase, dropDatabase } from './admin.js';
import type { CloneStrategy } from './options.js';
import { takeReadyCopy, type PoolTemplate } from './ready-pool.js';

/** The two ways to reset a lane's data. */
export type ResetStrategy = 'swap' | 'truncate';

/** The reset strategies, for option checks. */
export const RESET_STRATEGIES: readonly ResetStrategy[] = ['swap', 'truncate'];

/** What a swap did. */
export interface SwapResult {
  /** `'pool'`: a ready copy was renamed; `'clone'`: none was ready, the template was cloned. */
  source: 'pool' | 'clone';
  durationMs: number;
}

/**
 * Replaces the database `name` by a fresh copy of `template` under the same name, on an admin
 * connection (`client`, not connected to `name`).
 * @throws {LanesError} `DATABASE_RESET_FAILED` naming the step that failed; if the drop succeeded but
 *   no copy could be put in its place, the message says the lane has no database until the next reset.
 */
export async function swapDatabase(
  client: Client,
  options: { name: string; prefix: string; template: PoolTemplate; strategy: CloneStrategy; serverVersion: number; comment?: string },
): Promise<SwapResult> {
  const started = performance.now();
  try {
    await dropDatabase(client, options.name, options.serverVersion);
  } catch (error) {
    throw resetFailed(options.name, `dropping it failed: ${messageOf(error)}`, error);
  }
  let source: SwapResult['source'] = 'pool';
  try {
    const taken = await takeReadyCopy(client, options.prefix, options.template.hash, options.name);
    if (taken === undefined) {
      source = 'clone';
      await cloneDatabase(client, options.name, options.template.name, options.strategy, options.serverVersion);
    }
    if (options.comment !== undefined) await client.query(`COMMENT ON DATABASE ${escapeIdentifier(options.name)} IS ${client.escapeLiteral(options.comment)}`);
  } catch (error) {
    throw resetFailed(options.name, `it was dropped, but putting a fresh copy of ${options.template.name} in its place failed (the lane has no database until its next reset): ${messageOf(error)}`, error);
  }
  return { source, durationMs: performance.now() - started };
}

function resetFailed(name: string, what: string, cause: unknown): LanesError {
  return new LanesError('DATABASE_RESET_FAILED', `Resetting database ${name} failed: ${what}`, {
    hint: 'The next reset tries again. If PostgreSQL itself refused (disk full, too many databases), fix that; with a database client that cannot reconnect, use database.reset: \'truncate\'.',
    cause,
    details: { databaseName: name },
  });
}
