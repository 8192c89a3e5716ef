/**
 * The state file `allocated-databases.json` of one allocator: one entry per lane database of this
 * state folder, with its owner. Every change happens under the file's lock; each operation of the
 * allocation and release protocols on the file is one method here. Entries of other prefixes
 * (another allocator sharing the state folder) are left alone. Private to the databases module.
 * @internal
 */
import { join } from 'node:path';
import { debugLogger, warn } from '../../log.js';
import { withDatabase } from '../../postgres/index.js';
import { redactUrl } from '../../redact.js';
import {
  describeLane,
  keepAlive,
  keepRunEntries,
  handOverRunEntries,
  newOwner,
  sameLane,
  sameOwner,
  splitByLiveness,
  stopKeepingAlive,
  StateFile,
  withLiveness,
  type LaneKey,
  type LedgerDocument,
  type Owner,
} from '../../state/index.js';
import { DATABASES_FILE, databasesSpec, type DatabaseEntry, type DatabaseListing } from '../types.js';
import { hasPrefix } from '../sql/names.js';

const debug = debugLogger('databases');

export class DatabaseLedger {
  readonly file: StateFile<LedgerDocument<DatabaseEntry>>;
  readonly #prefix: string;
  readonly #leaseMs: number;
  readonly #shard: string | undefined;

  constructor(options: { stateDir: string; prefix: string; leaseMs: number; shard: string | undefined }) {
    this.file = new StateFile(join(options.stateDir, DATABASES_FILE), databasesSpec);
    this.#prefix = options.prefix;
    this.#leaseMs = options.leaseMs;
    this.#shard = options.shard;
  }

  get path(): string {
    return this.file.path;
  }

  /** The entry of a lane under exactly this name, if this state folder has one. */
  async find(key: LaneKey, databaseName: string): Promise<DatabaseEntry | undefined> {
    return (await this.file.read()).entries.find((entry) => sameLane(entry, key) && entry.databaseName === databaseName);
  }

  /** Every entry with its owner's liveness, without changing anything. */
  async list(): Promise<DatabaseListing[]> {
    return withLiveness((await this.file.read()).entries, this.#leaseMs);
  }

  /**
   * The entry of a lane, recorded (`added`) if missing, with this process as its owner when the
   * previous one died; its heartbeat is refreshed. The database may not exist yet. An entry of the
   * lane under another name (which this allocator never creates) is dropped with a warning.
   */
  record(key: LaneKey, databaseName: string, template: string, adminUrl: string): Promise<{ entry: DatabaseEntry; added: boolean }> {
    return this.file.update((doc) => {
      let mine = doc.entries.find((candidate) => sameLane(candidate, key) && hasPrefix(this.#prefix, candidate.databaseName));
      if (mine && mine.databaseName !== databaseName) {
        warn(`ledger ${this.path} recorded database ${JSON.stringify(mine.databaseName)} for ${describeLane(key)}, which this allocator never creates; the entry was dropped (the database was not).`);
        doc.entries = doc.entries.filter((candidate) => candidate !== mine);
        mine = undefined;
      }
      let added = false;
      if (!mine) {
        mine = {
          ...key,
          owner: newOwner(key.runId),
          databaseName,
          databaseUrl: redactUrl(withDatabase(adminUrl, databaseName)),
          template,
          ...(this.#shard !== undefined ? { shard: this.#shard } : {}),
        };
        doc.entries.push(mine);
        added = true;
      }
      if (splitByLiveness([mine], this.#leaseMs).stale.length > 0) {
        // The run's previous owner died but the run goes on (same run id): this process takes over.
        debug('taking over %s of %s from pid %d', databaseName, describeLane(key), mine.owner.pid);
        mine.owner = newOwner(key.runId);
      }
      mine.owner.heartbeatAt = new Date().toISOString();
      return { entry: structuredClone(mine), added };
    });
  }

  /** True while the lane still has its entry under this name (a release may have removed it meanwhile). */
  holds(key: LaneKey, databaseName: string): Promise<boolean> {
    return this.file.update((doc) => doc.entries.some((candidate) => sameLane(candidate, key) && candidate.databaseName === databaseName));
  }

  /**
   * Removes the entry an allocation recorded (same lane, name and owner), unless `exists` says
   * its database is there after all (another allocation of the lane created it meanwhile and relies
   * on the entry). `exists` is asked under the file's lock.
   */
  async unrecord(entry: DatabaseEntry, exists: () => Promise<boolean>): Promise<void> {
    await this.file.update(async (doc) => {
      const index = doc.entries.findIndex((candidate) => sameLane(candidate, entry) && candidate.databaseName === entry.databaseName && sameOwner(candidate.owner, entry.owner));
      if (index < 0 || (await exists())) return;
      doc.entries.splice(index, 1);
    });
  }

  /**
   * Runs `fn` under the file's lock with the entries of this prefix, and forgets the entries that
   * `fn` resolves in `forget` (the very objects it was given).
   */
  remove<T>(fn: (entries: DatabaseEntry[]) => Promise<{ forget: Iterable<DatabaseEntry>; value: T }>): Promise<T> {
    return this.file.update(async (doc) => {
      const { forget, value } = await fn(doc.entries.filter((entry) => hasPrefix(this.#prefix, entry.databaseName)));
      const gone = new Set(forget);
      doc.entries = doc.entries.filter((entry) => !gone.has(entry));
      return value;
    });
  }

  /**
   * Runs `fn` with every entry (any prefix): under the file's lock, or on a plain read with
   * `readOnly`, when nothing is changed.
   */
  inspect<T>(fn: (entries: readonly DatabaseEntry[]) => Promise<T>, options: { readOnly: boolean }): Promise<T> {
    return options.readOnly ? this.file.read().then((doc) => fn(doc.entries)) : this.file.update((doc) => fn(doc.entries));
  }

  /** Marks every entry of `runId` as kept (alive until released); resolves copies of those of this prefix. */
  keepRun(runId: string): Promise<DatabaseEntry[]> {
    return this.file.update((doc) => {
      keepRunEntries(doc.entries, runId);
      return doc.entries.filter((entry) => entry.runId === runId && hasPrefix(this.#prefix, entry.databaseName)).map((entry) => structuredClone(entry));
    });
  }

  /** Gives every entry of `runId` to `owner` (see DatabaseAllocator.handOverRun); resolves them. */
  handOverRun(runId: string, owner: Owner): Promise<DatabaseEntry[]> {
    return this.file.update((doc) => {
      handOverRunEntries(doc.entries, runId, owner);
      return doc.entries.filter((entry) => entry.runId === runId && hasPrefix(this.#prefix, entry.databaseName)).map((entry) => structuredClone(entry));
    });
  }

  /** Refreshes the heartbeat of `runId`'s entries while this process lives. */
  keepAlive(runId: string): void {
    keepAlive(this.file as never, runId, this.#leaseMs);
  }

  /** Stops refreshing the heartbeat of `runId`'s entries. */
  stopKeepingAlive(runId: string): void {
    stopKeepingAlive(this.file, runId);
  }
}
