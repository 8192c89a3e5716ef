/**
 * Puts a lane's database back to exactly its template, under the same name, while the lane's
 * servers keep running: `truncate` refills its tables in place over a connection kept per lane
 * (truncate-reset.ts), `swap` puts a fresh copy in its place (swap-reset.ts), whose old database the
 * pool keeper drops later. Private to the databases module.
 * @internal
 */
import { withDatabase } from '../../postgres/index.js';
import type { CloneStrategy, DatabaseEntry, DatabaseReset, TemplateInfo } from '../types.js';
import { laneMark } from '../sql/marks.js';
import type { PoolKeeper } from './pool-keeper.js';
import { swapDatabase, type ResetStrategy } from './swap-reset.js';
import { laneAccessSql } from '../sql/roles.js';
import type { ServerAccess } from '../sql/server-access.js';
import { TruncateResets } from './truncate-reset.js';

export class LaneResets {
  readonly #session: ServerAccess;
  readonly #pool: PoolKeeper;
  readonly #options: { prefix: string; cloneStrategy: CloneStrategy; connectTimeoutMs: number; resetLockTimeoutMs: number; resetGraceMs: number; laneRoles: boolean };
  /** Connections kept to lane databases for their `truncate` resets. */
  readonly #truncates = new TruncateResets();
  /** How many times {@link close} ran. */
  #closes = 0;

  constructor(session: ServerAccess, pool: PoolKeeper, options: { prefix: string; cloneStrategy: CloneStrategy; connectTimeoutMs: number; resetLockTimeoutMs: number; resetGraceMs: number; laneRoles: boolean }) {
    this.#session = session;
    this.#pool = pool;
    this.#options = options;
  }

  /**
   * Resets the database of the lane `entry` to `template`.
   * @throws {LanesError} `DATABASE_RESET_FAILED` naming the step that failed.
   */
  async reset(entry: DatabaseEntry, template: TemplateInfo, strategy: ResetStrategy): Promise<DatabaseReset> {
    const { databaseName } = entry;
    const started = performance.now();
    const url = withDatabase((await this.#session.server()).adminUrl, databaseName);
    if (strategy === 'truncate') {
      await this.#truncates.reset(url, { connectTimeoutMs: this.#options.connectTimeoutMs, lockTimeoutMs: this.#options.resetLockTimeoutMs });
      return { databaseName, strategy, source: 'truncate', durationMs: performance.now() - started };
    }
    await this.#truncates.forget(url);
    const swapped = await this.#session.withAdmin((client, version) =>
      swapDatabase(client, { name: databaseName, prefix: this.#options.prefix, template, strategy: this.#options.cloneStrategy, serverVersion: version, graceMs: this.#options.resetGraceMs, comment: JSON.stringify(laneMark(entry)), ...(this.#options.laneRoles ? { access: laneAccessSql(databaseName) } : {}) }),
    );
    if (swapped.discarded) this.#pool.discard(swapped.discarded);
    this.#pool.refill();
    return { databaseName, strategy, source: swapped.source, durationMs: performance.now() - started };
  }

  /** Opens the connection the `truncate` resets of lane database `databaseName` keep, in the background. */
  async prepareTruncate(databaseName: string): Promise<void> {
    const closes = this.#closes;
    const url = withDatabase((await this.#session.server()).adminUrl, databaseName);
    // Closed meanwhile (the lane released, the allocator closed): a connection opened now would be left open.
    if (closes === this.#closes) this.#truncates.open(url, { connectTimeoutMs: this.#options.connectTimeoutMs });
  }

  /** Closes the connections kept for `truncate` resets (before lane databases are dropped, and at the end). */
  close(): Promise<void> {
    this.#closes++;
    return this.#truncates.close();
  }
}
