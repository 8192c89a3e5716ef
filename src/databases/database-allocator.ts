import { join } from 'node:path';
import type { Client } from 'pg';
import { LanesError, messageOf } from '../errors.js';
import { debugLogger, warn } from '../log.js';
import { redactUrl } from '../redact.js';
import {
  describeLane,
  keepAlive,
  ledgerSpec,
  newOwner,
  sameLane,
  splitByLiveness,
  stopKeepingAlive,
  StateFile,
  validateProjectName,
  type LaneKey,
  type LedgerDocument,
  type LedgerEntry,
} from '../state/index.js';
import { connectClient, describeTarget, ensurePostgres, serverVersionNum, withDatabase, type PostgresHandle } from '../postgres/index.js';
import { cloneDatabase, dropDatabase, findDatabase } from './admin.js';
import { laneDatabaseName } from './names.js';
import { resolveDatabaseAllocatorOptions, type DatabaseAllocatorOptions, type ResolvedDatabaseAllocatorOptions } from './options.js';
import { ensureTemplate, type TemplateInfo } from './template.js';

const debug = debugLogger('databases');

/** The database of one lane as stored in `allocated-databases.json` (URL with the password redacted). */
export interface DatabaseEntry extends LedgerEntry {
  databaseName: string;
  /** Connection URL with the password replaced by `***`. */
  databaseUrl: string;
  /** The template it was cloned from. */
  template: string;
}

/** What `allocateDatabaseForProject` returns. */
export interface DatabaseAllocation {
  project: string;
  runId: string;
  worker?: number;
  databaseName: string;
  /** Full connection URL of the lane's database, password included: hand it to the lane's servers only. */
  databaseUrl: string;
  /** The template of this allocator (`built` tells whether this process built it). */
  template: TemplateInfo;
}

/** An entry as shown by `list()`: with its owner's liveness. */
export interface DatabaseListing extends DatabaseEntry {
  alive: boolean;
  /** Why the entry counts as stale, when it does. */
  staleReason?: string;
}

/** An entry removed by `reapStale()`. */
export interface ReapedDatabase {
  entry: DatabaseEntry;
  reason: string;
  /** False when the database was not dropped because the allocator did not create it (or it was gone). */
  dropped: boolean;
}

export interface DatabaseLaneOptions {
  /** For per-worker lanes: the worker's parallel index. */
  worker?: number;
}

export const DATABASES_FILE = 'allocated-databases.json';
const DATABASES_KIND = 'e2e-lanes/databases';

const databasesSpec = ledgerSpec<DatabaseEntry>(DATABASES_KIND, (raw) => {
  for (const field of ['databaseName', 'databaseUrl', 'template'] as const) {
    if (typeof raw[field] !== 'string') throw new Error(`an entry lacks "${field}"`);
  }
  return raw as unknown as DatabaseEntry;
});

/**
 * One PostgreSQL database per lane, cloned from a template that is built once per hash of
 * (migrations + seed + PostgreSQL major + toolkit version). Allocations are idempotent per
 * (run, project[, worker]) across processes and recorded in `<stateDir>/allocated-databases.json`.
 * It only ever drops databases recorded in that ledger whose name is exactly the one it derives
 * for the entry's lane under its own prefix.
 */
export class DatabaseAllocator {
  static readonly #instances = new Map<string, DatabaseAllocator>();

  /** One allocator per state folder. Options of a later call must agree with the first. */
  static getInstance(options: DatabaseAllocatorOptions = {}): DatabaseAllocator {
    const resolved = resolveDatabaseAllocatorOptions(options);
    const existing = DatabaseAllocator.#instances.get(resolved.stateDir);
    if (existing) {
      existing.#assertCompatible(resolved);
      return existing;
    }
    const created = new DatabaseAllocator(options);
    DatabaseAllocator.#instances.set(resolved.stateDir, created);
    return created;
  }

  /** Forgets every singleton (for tests). */
  static resetInstances(): void {
    DatabaseAllocator.#instances.clear();
  }

  readonly options: ResolvedDatabaseAllocatorOptions;
  readonly file: StateFile<LedgerDocument<DatabaseEntry>>;
  #server: Promise<PostgresHandle> | undefined;
  #prepared: Promise<TemplateInfo> | undefined;

  constructor(options: DatabaseAllocatorOptions = {}) {
    this.options = resolveDatabaseAllocatorOptions(options);
    this.file = new StateFile(join(this.options.stateDir, DATABASES_FILE), databasesSpec);
  }

  get runId(): string {
    return this.options.runId;
  }

  get prefix(): string {
    return this.options.prefix;
  }

  /**
   * Ensures PostgreSQL (the given server or the embedded one) and the template, once per instance.
   * @throws {LanesError} `POSTGRES_UNREACHABLE`, `MIGRATION_FAILED`, `SEED_FAILED`, `TEMPLATE_BUILD_FAILED`.
   */
  prepare(): Promise<TemplateInfo> {
    this.#prepared ??= this.#prepare().catch((error: unknown) => {
      this.#prepared = undefined; // let a later call try again
      throw error;
    });
    return this.#prepared;
  }

  /**
   * The database of `project` in this run: the same database every time the same lane asks, from
   * any process; a fresh clone of the template otherwise.
   * @throws {LanesError} `DATABASE_CREATE_FAILED`, `INVALID_PROJECT_NAME`, and whatever `prepare()` throws.
   */
  async allocateDatabaseForProject(project: string, options: DatabaseLaneOptions = {}): Promise<DatabaseAllocation> {
    const key = this.#key(project, options.worker);
    const template = await this.prepare();
    const server = await this.#postgres();
    const databaseName = laneDatabaseName(this.prefix, key);
    const entry = await this.file.update(async (doc) => {
      let mine = doc.entries.find((candidate) => sameLane(candidate, key) && this.#hasPrefix(candidate));
      if (mine && mine.databaseName !== databaseName) {
        warn(`ledger ${this.file.path} recorded database ${JSON.stringify(mine.databaseName)} for ${describeLane(key)}, which this allocator never creates; the entry was dropped (the database was not).`);
        doc.entries = doc.entries.filter((candidate) => candidate !== mine);
        mine = undefined;
      }
      await this.#withAdmin(async (client, version) => {
        if (await findDatabase(client, databaseName)) return;
        try {
          await cloneDatabase(client, databaseName, template.name, this.options.cloneStrategy, version);
        } catch (error) {
          throw createFailed(databaseName, template.name, server.adminUrl, error);
        }
        debug('cloned %s from %s for %s', databaseName, template.name, describeLane(key));
      });
      if (!mine) {
        mine = {
          ...key,
          owner: newOwner(key.runId),
          databaseName,
          databaseUrl: redactUrl(withDatabase(server.adminUrl, databaseName)),
          template: template.name,
        };
        doc.entries.push(mine);
      }
      if (splitByLiveness([mine], this.options.leaseMs).stale.length > 0) {
        // The run's previous owner died but the run goes on (same run id): this process takes over.
        debug('taking over %s of %s from pid %d', databaseName, describeLane(key), mine.owner.pid);
        mine.owner = newOwner(key.runId);
      }
      mine.owner.heartbeatAt = new Date().toISOString();
      return structuredClone(mine);
    });
    keepAlive(this.file as never, key.runId, this.options.leaseMs);
    const allocation: DatabaseAllocation = {
      project: entry.project,
      runId: entry.runId,
      databaseName: entry.databaseName,
      databaseUrl: withDatabase(server.adminUrl, entry.databaseName),
      template,
    };
    if (entry.worker !== undefined) allocation.worker = entry.worker;
    return allocation;
  }

  /**
   * Drops the database of `project` in this run (even while sessions are connected) and forgets
   * it. Resolves true if an entry was removed.
   * @throws {LanesError} `DATABASE_DROP_FAILED` (the entry is kept).
   */
  async releaseDatabaseForProject(project: string, options: DatabaseLaneOptions & { runId?: string } = {}): Promise<boolean> {
    const key: LaneKey = { runId: options.runId ?? this.runId, project };
    if (options.worker !== undefined) key.worker = options.worker;
    const removed = await this.#remove((entries) => entries.filter((entry) => sameLane(entry, key)));
    return removed.length > 0;
  }

  /**
   * Drops every database of a run (this run by default), one after the other, and forgets them.
   * @throws {LanesError} `DATABASE_DROP_FAILED` after trying all (failed entries are kept).
   */
  async releaseRun(runId: string = this.runId): Promise<DatabaseEntry[]> {
    const removed = await this.#remove((entries) => entries.filter((entry) => entry.runId === runId));
    stopKeepingAlive(this.file, runId);
    return removed.map(({ entry }) => entry);
  }

  /** Every entry with its owner's liveness, without changing anything. */
  async list(): Promise<DatabaseListing[]> {
    const doc = await this.file.read();
    const { stale } = splitByLiveness(doc.entries, this.options.leaseMs);
    const reasons = new Map(stale.map((item) => [item.entry, item.reason]));
    return doc.entries.map((entry) => {
      const reason = reasons.get(entry);
      return reason === undefined ? { ...entry, alive: true } : { ...entry, alive: false, staleReason: reason };
    });
  }

  /**
   * Drops the databases of dead owners and expired leases (under this allocator's prefix), then
   * removes their entries. Entries naming a database this allocator would not create are removed
   * without dropping anything.
   * @throws {LanesError} `DATABASE_DROP_FAILED` after trying all (failed entries are kept).
   */
  async reapStale(): Promise<ReapedDatabase[]> {
    const reasons = new Map<DatabaseEntry, string>();
    const removed = await this.#remove((entries) => {
      const { stale } = splitByLiveness(entries, this.options.leaseMs);
      for (const { entry, reason } of stale) reasons.set(entry, reason);
      return stale.map(({ entry }) => entry);
    });
    return removed.map(({ entry, dropped, original }) => {
      const reason = reasons.get(original) ?? 'stale';
      debug('reaped %s of %s (%s): %s', entry.databaseName, describeLane(entry), dropped ? 'dropped' : 'not dropped', reason);
      return { entry, reason, dropped };
    });
  }

  /** Releases this allocator's hold on PostgreSQL (e.g. its reference to the embedded server). Lanes stay allocated. */
  async close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    this.#prepared = undefined;
    if (DatabaseAllocator.#instances.get(this.options.stateDir) === this) DatabaseAllocator.#instances.delete(this.options.stateDir);
    if (server) await (await server.catch(() => undefined))?.release();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #prepare(): Promise<TemplateInfo> {
    const server = await this.#postgres();
    if (this.options.expectedConnections !== undefined) await this.#checkConnectionBudget(this.options.expectedConnections);
    return ensureTemplate({
      adminUrl: server.adminUrl,
      prefix: this.prefix,
      migrations: this.options.migrations,
      seed: this.options.seed,
      hashInputs: this.options.hashInputs,
      rebuild: this.options.rebuild,
      connectTimeoutMs: this.options.connectTimeoutMs,
    });
  }

  #postgres(): Promise<PostgresHandle> {
    this.#server ??= ensurePostgres({
      adminUrl: this.options.adminUrl,
      embedded: this.options.embedded,
      stateDir: this.options.stateDir,
      runId: this.runId,
      connectTimeoutMs: this.options.connectTimeoutMs,
    }).catch((error: unknown) => {
      this.#server = undefined;
      throw error;
    });
    return this.#server;
  }

  async #withAdmin<T>(fn: (client: Client, serverVersion: number) => Promise<T>): Promise<T> {
    const server = await this.#postgres();
    const client = await connectClient(server.adminUrl, { timeoutMs: this.options.connectTimeoutMs });
    try {
      return await fn(client, await serverVersionNum(client));
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /**
   * Removes the entries (of this prefix) that `choose` picks, dropping each database one after the
   * other when this allocator created it. Entries whose drop fails are kept and reported at the end.
   */
  async #remove(choose: (entries: DatabaseEntry[]) => DatabaseEntry[]): Promise<{ entry: DatabaseEntry; original: DatabaseEntry; dropped: boolean }[]> {
    const failures: string[] = [];
    const removed = await this.file.update(async (doc) => {
      const chosen = choose(doc.entries.filter((entry) => this.#hasPrefix(entry)));
      if (chosen.length === 0) return [];
      const gone: { entry: DatabaseEntry; original: DatabaseEntry; dropped: boolean }[] = [];
      await this.#withAdmin(async (client, version) => {
        for (const entry of chosen) {
          if (!this.#created(entry)) {
            warn(`not dropping database ${JSON.stringify(entry.databaseName)} recorded for ${describeLane(entry)} in ${this.file.path}: this allocator never creates a database of that name. The entry was removed.`);
            gone.push({ entry: structuredClone(entry), original: entry, dropped: false });
            continue;
          }
          try {
            const existed = await dropDatabase(client, entry.databaseName, version);
            gone.push({ entry: structuredClone(entry), original: entry, dropped: existed });
            debug('dropped %s of %s', entry.databaseName, describeLane(entry));
          } catch (error) {
            failures.push(`${entry.databaseName}: ${messageOf(error)}`);
          }
        }
      });
      const originals = new Set(gone.map(({ original }) => original));
      doc.entries = doc.entries.filter((entry) => !originals.has(entry));
      return gone;
    });
    if (failures.length > 0) {
      throw new LanesError('DATABASE_DROP_FAILED', `Could not drop ${failures.length} database(s): ${failures.join('; ')}`, {
        hint: 'They stay recorded and are retried by the next release or `npx e2e-lanes gc`. Check that the admin user owns them.',
        details: { failures },
      });
    }
    return removed;
  }

  /** The entry belongs to this allocator's prefix (entries of other prefixes are left alone). */
  #hasPrefix(entry: DatabaseEntry): boolean {
    return entry.databaseName.startsWith(`${this.prefix}_`);
  }

  /** The recorded name is exactly the one this allocator derives for the entry's lane. */
  #created(entry: DatabaseEntry): boolean {
    const key: LaneKey = { runId: entry.runId, project: entry.project };
    if (entry.worker !== undefined) key.worker = entry.worker;
    return entry.databaseName === laneDatabaseName(this.prefix, key);
  }

  #key(project: string, worker: number | undefined): LaneKey {
    const key: LaneKey = { runId: this.runId, project: validateProjectName(project) };
    if (worker !== undefined) {
      if (!Number.isSafeInteger(worker) || worker < 0) {
        throw new LanesError('INVALID_OPTION', `Invalid worker index ${JSON.stringify(worker)}.`, { hint: 'Use the worker parallelIndex, a whole number ≥ 0.' });
      }
      key.worker = worker;
    }
    return key;
  }

  async #checkConnectionBudget(expected: number): Promise<void> {
    const { max, reserved, used } = await this.#withAdmin(async (client) => {
      const { rows } = await client.query<{ max: number; reserved: number; used: number }>(
        `SELECT current_setting('max_connections')::int AS max, current_setting('superuser_reserved_connections')::int AS reserved,
                (SELECT count(*)::int FROM pg_stat_activity WHERE backend_type = 'client backend') AS used`,
      );
      return rows[0] ?? { max: 0, reserved: 0, used: 0 };
    });
    const available = max - reserved;
    if (expected + used > 0.8 * available) {
      warn(
        `about ${expected} connections expected (option expectedConnections) + ${used} open now, but PostgreSQL allows ${available} ` +
          `(max_connections ${max} − ${reserved} reserved): lanes may fail with "too many clients". Raise max_connections, or use fewer workers or smaller pools.`,
      );
    }
  }

  #assertCompatible(resolved: ResolvedDatabaseAllocatorOptions): void {
    const fingerprint = (o: ResolvedDatabaseAllocatorOptions): string =>
      JSON.stringify([o.runId, o.prefix, o.adminUrl, o.migrations, o.seed, o.hashInputs, o.cloneStrategy]);
    if (fingerprint(resolved) !== fingerprint(this.options)) {
      throw new LanesError(
        'INVALID_OPTION',
        `DatabaseAllocator.getInstance() for ${resolved.stateDir} was already created with other options (prefix ${this.prefix}, run ${this.runId}).`,
        { hint: 'Pass the same options on every call, or use `new DatabaseAllocator(options)` for a separate allocator.' },
      );
    }
  }
}

function createFailed(databaseName: string, template: string, adminUrl: string, error: unknown): LanesError {
  const code = (error as { code?: unknown } | null)?.code;
  const hint =
    code === '55006'
      ? `Something keeps connecting to template ${template}: servers must use the lane databases, never the template.`
      : code === '42501'
        ? 'The admin user needs the CREATEDB privilege (or be a superuser).'
        : `Check the server at ${describeTarget(adminUrl)} (disk space, max databases), then run again.`;
  return new LanesError('DATABASE_CREATE_FAILED', `Could not create database ${databaseName} from template ${template} on ${describeTarget(adminUrl)}: ${messageOf(error)}`, {
    hint,
    cause: error,
    details: { databaseName, template, code },
  });
}
