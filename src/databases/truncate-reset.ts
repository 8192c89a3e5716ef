/**
 * The `truncate` reset of a lane database: on a connection of its own to the lane database, every
 * table is emptied and refilled from the rows the template keeps (see snapshot.ts), in one
 * transaction; no other session is ended. Private to the databases module.
 * @internal
 */
import { LanesError } from '../errors.js';

/** Refills the lane database at `url` from its template's rows. */
export async function resetByTruncate(url: string, options: { connectTimeoutMs: number }): Promise<void> {
  void url;
  void options;
  throw new LanesError('INVALID_OPTION', "database.reset 'truncate' is not available in this build.", { hint: "Use database.reset: 'swap'." });
}
