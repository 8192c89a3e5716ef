/**
 * Keeps the ready copies of an allocator's template topped up in the background (see
 * ready-pool.ts) and drops, off the tests' path, the old lane databases that swap resets moved out
 * of the way. Never awaited by a lane: a failure is only logged, and lanes then clone on demand.
 * Private to the databases module.
 * @internal
 */
import { messageOf } from '../../errors.js';
import { debugLogger } from '../../log.js';
import { databasesStartingWith } from '../sql/catalog.js';
import { MARK_TOOLKIT } from '../sql/marks.js';
import { templateHashOf } from '../sql/names.js';
import type { CloneStrategy, TemplateInfo } from '../types.js';
import { dropStaleCopies, fillPool, listPoolCopies, readyCopies } from './ready-pool.js';
import { dropDiscarded, trashNamePrefix } from './swap-reset.js';
import type { ServerAccess } from '../sql/server-access.js';

const debug = debugLogger('databases');

export class PoolKeeper {
  readonly #session: ServerAccess;
  readonly #prefix: string;
  readonly #cloneStrategy: CloneStrategy;
  /** The pool size the options set, or undefined for the default (see {@link expectLanes}). */
  readonly #size: number | undefined;
  /** The template, once prepared (undefined before, or when its preparation failed). */
  readonly #template: () => Promise<TemplateInfo | undefined>;
  /** Ready copies of the template to keep. */
  #target: number;
  /** The background fill, while one runs. */
  #filling: Promise<void> | undefined;
  #fillAgain = false;
  readonly #abort = new AbortController();
  /** Old lane databases swaps moved out of the way, to drop in the background. */
  readonly #discarded: string[] = [];
  /** The drops of discarded databases under way, in order. */
  #dropping: Promise<void> = Promise.resolve();

  constructor(options: { session: ServerAccess; prefix: string; cloneStrategy: CloneStrategy; size: number | undefined; template: () => Promise<TemplateInfo | undefined> }) {
    this.#session = options.session;
    this.#prefix = options.prefix;
    this.#cloneStrategy = options.cloneStrategy;
    this.#size = options.size;
    this.#template = options.template;
    this.#target = options.size ?? 1;
  }

  /** How many lanes the run will boot: the default pool size follows (at most 4); a size the options set stays. */
  expectLanes(count: number): void {
    if (this.#size === undefined) this.#target = Math.max(1, Math.min(4, Math.floor(count)));
  }

  /** An old lane database a swap moved out of the way: dropped by the next fill (or by `close`). */
  discard(name: string): void {
    this.#discarded.push(name);
  }

  /**
   * Tops the ready copies of the template up to the pool size in the background, one clone at a
   * time on one maintenance connection, after dropping the discarded databases.
   */
  refill(): void {
    if ((this.#target === 0 && this.#discarded.length === 0) || this.#abort.signal.aborted) return;
    if (this.#filling) {
      this.#fillAgain = true;
      return;
    }
    this.#filling = (async () => {
      const template = await this.#template();
      if (!template) return;
      do {
        this.#fillAgain = false;
        // First the old lane databases swaps moved away: a drop is what a swap saves the test from.
        await this.#dropDiscarded();
        if (this.#target === 0) continue;
        await this.#session.withAdmin((client, version) =>
          fillPool(client, {
            prefix: this.#prefix,
            template,
            target: this.#target,
            strategy: this.#cloneStrategy,
            serverVersion: version,
            mark: { toolkit: MARK_TOOLKIT, kind: 'pool', created: new Date().toISOString(), hash: template.hash },
            signal: this.#abort.signal,
          }),
        );
      } while (this.#fillAgain && !this.#abort.signal.aborted);
    })()
      .catch((error: unknown) => debug('filling the ready copies failed: %s', messageOf(error)))
      .finally(() => {
        this.#filling = undefined;
      });
  }

  /** Resolves once no background fill runs. */
  async settled(): Promise<void> {
    while (this.#filling) await this.#filling;
  }

  /** The ready copies of `template`. */
  async countOf(template: TemplateInfo): Promise<number> {
    return (await this.#session.withAdmin((client) => readyCopies(client, this.#prefix, template.hash))).length;
  }

  /** Names of the ready copies of the given template hashes (of every template when none are given). */
  async copiesOf(hashes?: readonly string[]): Promise<string[]> {
    return this.#session.withAdmin(async (client) =>
      (await listPoolCopies(client, this.#prefix)).filter(({ hash }) => hashes === undefined || hashes.includes(hash)).map(({ name }) => name),
    );
  }

  /**
   * Drops the ready copies of templates that are gone and those never finished, and the old lane
   * databases a swap moved away that a dead process never dropped. Resolves the names dropped (with `dryRun`, the copies it would drop).
   */
  async dropStale(options: { dryRun?: boolean } = {}): Promise<string[]> {
    return this.#session.withAdmin(async (client) => {
      const templates = new Set((await databasesStartingWith(client, `${this.#prefix}_tpl_`)).flatMap((row) => templateHashOf(this.#prefix, row.name) ?? []));
      if (options.dryRun) {
        // What the real run drops: those copies, and the old lane databases swaps moved away (as dropDiscarded picks them).
        const trash = trashNamePrefix(this.#prefix);
        const discarded = (await databasesStartingWith(client, trash)).map((row) => row.name).filter((name) => /^[0-9a-f]{8}$/.test(name.slice(trash.length)));
        return [...(await listPoolCopies(client, this.#prefix)).filter(({ hash, finished }) => !finished || !templates.has(hash)).map(({ name }) => name), ...discarded];
      }
      return [...(await dropStaleCopies(client, this.#prefix, templates)), ...(await dropDiscarded(client, this.#prefix))];
    });
  }

  /** Stops filling for good and drops the discarded databases now (when the server was joined). */
  async close(): Promise<void> {
    this.#abort.abort();
    await this.#filling;
    await this.dropDiscardedNow();
  }

  /**
   * Drops the old lane databases swaps moved away now, those a background fill is dropping
   * included (when the server was joined): a lane role cannot be dropped while one of them holds
   * its privileges or objects. Failures are only logged.
   */
  async dropDiscardedNow(): Promise<void> {
    if (!this.#session.joined) return;
    await this.#dropDiscarded().catch((error: unknown) => debug('dropping discarded databases failed: %s', messageOf(error)));
  }

  /** Drops the discarded databases, after the drops already under way (one at a time, in order). */
  #dropDiscarded(): Promise<void> {
    const discarded = this.#discarded.splice(0);
    const dropping = this.#dropping.then(async () => {
      if (discarded.length > 0) await this.#session.withAdmin((client) => dropDiscarded(client, this.#prefix, discarded));
    });
    this.#dropping = dropping.catch(() => undefined);
    return dropping;
  }
}
