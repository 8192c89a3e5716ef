/**
 * The `truncate` reset of lane databases: on a connection of its own to the lane database, every
 * table is emptied and refilled from the rows its template keeps (see template/snapshot.ts), in one
 * transaction; no other session is ended. The connection is kept for the next reset of that lane
 * (a fresh session first reads the restore script, which costs more than the restore). Private to
 * the databases module.
 * @internal
 */
import type pg from 'pg';
import { REBUILD_ENV } from '../../env-vars.js';
import { LanesError, messageOf } from '../../errors.js';
import { debugLogger } from '../../log.js';
import { connectClient, describeTarget } from '../../postgres/index.js';
import { hasSnapshot } from '../template/snapshot.js';
import { restoreSnapshot, type RestoreSummary } from './snapshot-restore.js';

const debug = debugLogger('databases');

export class TruncateResets {
  /** One open connection per lane database URL. */
  readonly #clients = new Map<string, Promise<pg.Client>>();

  /**
   * Refills the lane database at `url` from its template's rows.
   * @throws {LanesError} `DATABASE_RESET_FAILED` (a lock held past the timeout, no snapshot), `POSTGRES_UNREACHABLE`.
   */
  async reset(url: string, options: { connectTimeoutMs: number; lockTimeoutMs?: number }): Promise<RestoreSummary> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.#client(url, options.connectTimeoutMs);
      try {
        return await restoreSnapshot(client, options.lockTimeoutMs === undefined ? {} : { lockTimeoutMs: options.lockTimeoutMs });
      } catch (error) {
        // A kept connection the server ended (a swap reset, a restart): once more on a new one.
        const state = client as pg.Client & { _ending?: boolean; _queryable?: boolean };
        const lost = state._ending === true || state._queryable === false || /Connection terminated|terminating connection|Client was closed|not queryable/i.test(messageOf(error));
        await this.forget(url);
        if (!lost || attempt >= 2) throw error;
        debug('the kept connection to %s was lost; resetting on a new one', describeTarget(url));
      }
    }
  }

  /**
   * Opens the connection the resets of `url` keep, in the background, so that the first reset does
   * not pay for it; a failure is left for that reset to report.
   */
  open(url: string, options: { connectTimeoutMs: number }): void {
    this.#client(url, options.connectTimeoutMs).catch(() => undefined);
  }

  /** Closes the kept connection to `url` (before its database is dropped or swapped). */
  async forget(url: string): Promise<void> {
    const client = this.#clients.get(url);
    this.#clients.delete(url);
    await client?.then((kept) => kept.end()).catch(() => undefined);
  }

  /** Closes every kept connection. */
  async close(): Promise<void> {
    await Promise.all([...this.#clients.keys()].map((url) => this.forget(url)));
  }

  #client(url: string, timeoutMs: number): Promise<pg.Client> {
    let client = this.#clients.get(url);
    if (!client) {
      client = (async () => {
        const connected = await connectClient(url, { timeoutMs, applicationName: 'e2e-lanes reset' });
        if (!(await hasSnapshot(connected))) {
          await connected.end().catch(() => undefined);
          throw new LanesError('DATABASE_RESET_FAILED', `Database ${describeTarget(url)} has no copy of its template's rows, so the 'truncate' reset cannot put them back.`, {
            hint: `Its template was built by an older version of e2e-lanes: rebuild it (${REBUILD_ENV}=1, or \`npx e2e-lanes gc --keep-templates 0\`), or use database.reset: 'swap'.`,
          });
        }
        return connected;
      })();
      this.#clients.set(url, client);
      client.catch(() => this.#clients.delete(url));
    }
    return client;
  }
}
