import { LanesError, messageOf } from '../errors.js';
import { debugLogger } from '../log.js';
import { describeLane, sameLane, type LaneKey, type LedgerDocument, type Owner, type StateFile } from '../state/index.js';
import { instanceFor } from '../state/instances.js';
import { findDatabase } from './sql/catalog.js';
import { claimLane } from './claim.js';
import { DatabaseLedger } from './records/ledger.js';
import type { DatabaseReset, DatabaseAllocation, DatabaseEntry, DatabaseWorkerOptions, DatabaseListing, DatabaseListOptions, ReapedDatabase, ResolvedDatabaseAllocatorOptions } from './types.js';
import type { LaneRecords } from './records/lane-records.js';
import { openLaneRecords, requestedKind } from './records/open-records.js';
import { LaneResets } from './fresh/lane-reset.js';
import { mergeListings } from './records/listings.js';
import { markLanes } from './sql/marks.js';
import { laneDatabaseName, laneKey } from './sql/names.js';
import { resolveDatabaseAllocatorOptions, type DatabaseAllocatorOptions } from './options.js';
import { currentShard, reaping, releasing } from './records/decisions.js';
import { PoolKeeper } from './fresh/pool-keeper.js';
import { reapUnrecorded, removeDatabases, type RemovalContext } from './removal.js';
import type { ResetStrategy } from './fresh/swap-reset.js';
import { ServerAccess } from './sql/server-access.js';
import { LaneUrls } from './lane-urls.js';
import { prepareServerAndTemplate } from './prepare.js';
import type { TemplateInfo } from './types.js';

const debug = debugLogger('databases');

/**
 * One PostgreSQL database per lane, cloned from a template that is built once per hash of
 * (migrations + seed + PostgreSQL major + toolkit version). Allocations are idempotent per
 * (run, project[, worker]) across processes and recorded in `<stateDir>/allocated-databases.json`;
 * on a server shared by several machines also in the server's registry (option `registry`), where
 * a lease kept fresh by this process lets any machine reap the lanes of a dead one.
 * It only ever drops databases recorded in the ledger or registry whose name is exactly the one it
 * derives for the entry's lane under its own prefix.
 *
 * A facade: the server and maintenance connections are a {@link ServerAccess}, the state file a
 * {@link DatabaseLedger}, where lanes are recorded a {@link LaneRecords} chosen once; the claim and
 * removal protocols live in claim.ts and removal.ts, the ready copies in a {@link PoolKeeper}, the
 * resets in {@link LaneResets}, the first use of the server and the template in prepare.ts, lane URLs
 * in {@link LaneUrls} (docs/how-it-works.md has the map).
 */
export class DatabaseAllocator {
  static readonly #instances = new Map<string, DatabaseAllocator>();

  /** One allocator per state folder. Options of a later call must agree with the first. */
  static getInstance(options: DatabaseAllocatorOptions = {}): DatabaseAllocator {
    const resolved = resolveDatabaseAllocatorOptions(options);
    return instanceFor(DatabaseAllocator.#instances, resolved.stateDir, () => new DatabaseAllocator(options), (existing) => existing.#assertCompatible(resolved));
  }

  /** Forgets every singleton (for tests). */
  static resetInstances(): void {
    DatabaseAllocator.#instances.clear();
  }

  readonly options: ResolvedDatabaseAllocatorOptions;
  readonly #shard: string | undefined;
  readonly #session: ServerAccess;
  readonly #ledger: DatabaseLedger;
  /** Where lanes are recorded, chosen on first use (the registry may turn out to be denied). */
  #records: Promise<LaneRecords> | undefined;
  #chosen: LaneRecords | undefined;
  #prepared: Promise<TemplateInfo> | undefined;
  readonly #pool: PoolKeeper;
  readonly #resets: LaneResets;
  readonly #laneUrls: LaneUrls;
  /** What `prepare()` said once per allocator. */
  readonly #notices = { noLaneRoles: false };

  constructor(options: DatabaseAllocatorOptions = {}) {
    this.options = resolveDatabaseAllocatorOptions(options);
    const { adminUrl, embedded, stateDir, runId, connectTimeoutMs, prefix, leaseMs, cloneStrategy, resetLockTimeoutMs } = this.options;
    this.#shard = currentShard();
    this.#session = new ServerAccess({ adminUrl, embedded, stateDir, runId, connectTimeoutMs });
    this.#ledger = new DatabaseLedger({ stateDir, prefix, leaseMs, shard: this.#shard });
    this.#pool = new PoolKeeper({ session: this.#session, prefix, cloneStrategy, size: this.options.pool, template: async () => this.#prepared });
    this.#laneUrls = new LaneUrls(this.#session, { laneRoles: this.options.laneRoles, runId });
    this.#resets = new LaneResets(this.#session, this.#pool, { prefix, cloneStrategy, connectTimeoutMs, resetLockTimeoutMs, resetGraceMs: this.options.resetGraceMs, laneRoles: this.options.laneRoles });
  }

  /** The state file `allocated-databases.json`. */
  get file(): StateFile<LedgerDocument<DatabaseEntry>> {
    return this.#ledger.file;
  }

  get runId(): string {
    return this.options.runId;
  }

  get prefix(): string {
    return this.options.prefix;
  }

  /**
   * Ensures PostgreSQL (the given server or the embedded one), the registry when one is used, and
   * the template, once per instance.
   * @throws {LanesError} `POSTGRES_UNREACHABLE`, `REGISTRY_FAILED`, `MIGRATION_FAILED`, `SEED_FAILED`, `TEMPLATE_BUILD_FAILED`,
   *   `SEED_TIMEOUT`, `MIGRATION_TIMEOUT`, `TEMPLATE_WAIT_TIMEOUT`.
   */
  prepare(): Promise<TemplateInfo> {
    this.#prepared ??= prepareServerAndTemplate(this.#session, this.options, () => this.#lanes(), this.#notices).then(
      (template) => {
        this.#pool.refill();
        return template;
      },
      (error: unknown) => {
        this.#prepared = undefined; // let a later call try again
        throw error;
      },
    );
    return this.#prepared;
  }

  /**
   * How many lanes the run will boot, for the default size of the ready pool (at most 4); ignored
   * when option `pool` is set.
   */
  expectLanes(count: number): void {
    this.#pool.expectLanes(count);
  }

  /**
   * Puts the database of a lane of this run back to exactly the template, under the same name
   * (its URL does not change), while the lane's servers keep running: `swap` (drop it and rename a
   * ready copy to its name, or clone when none is ready) or `truncate` (see option `reset`).
   * @throws {LanesError} `LANE_NOT_FOUND` for a lane this run has no database for;
   *   `DATABASE_RESET_FAILED` naming the step that failed.
   */
  async resetDatabaseForProject(project: string, options: DatabaseWorkerOptions & { strategy?: ResetStrategy } = {}): Promise<DatabaseReset> {
    const key = laneKey(this.runId, project, options.worker);
    const template = await this.prepare();
    const databaseName = laneDatabaseName(this.prefix, key);
    const known = await this.#ledger.find(key, databaseName);
    if (!known) {
      throw new LanesError('LANE_NOT_FOUND', `${describeLane(key)} has no database to reset in run ${this.runId}.`, {
        hint: 'A lane database is reset only after its lane booted (the `lane` fixture does that first).',
      });
    }
    return this.#resets.reset(known, template, options.strategy ?? this.options.reset);
  }

  /**
   * Drops the ready copies of templates that are gone (dropped by `gc`, or superseded and
   * removed): a copy belongs to its template. Resolves the names dropped (with `dryRun`, would drop).
   */
  dropStaleReadyCopies(options: { dryRun?: boolean } = {}): Promise<string[]> {
    return this.#pool.dropStale(options);
  }

  /** Names of the ready copies of the given template hashes (of every template when none are given). */
  readyCopiesOf(hashes?: readonly string[]): Promise<string[]> {
    return this.#pool.copiesOf(hashes);
  }

  /** The ready copies of the current template (0 before `prepare()`). */
  async readyCopyCount(): Promise<number> {
    const template = await this.#prepared?.catch(() => undefined);
    return template ? this.#pool.countOf(template) : 0;
  }

  /** Waits for the background fill of the ready copies, if one runs (for tests and benchmarks). */
  poolSettled(): Promise<void> {
    return this.#pool.settled();
  }

  /**
   * The admin URL whose database holds the advisory locks of template builds and lanes: the
   * registry database with the server's registry, else the admin URL's own. It holds the password:
   * for connections only, never for messages. @internal
   */
  async lockingUrl(): Promise<string> {
    await this.#session.server();
    await this.#lanes();
    return this.#session.maintenanceUrl();
  }

  /** Which PostgreSQL server the lanes' databases live on, for people (no password); joins it if needed. */
  async describePostgres(): Promise<string> {
    return (await this.#session.server()).description;
  }

  /** The server's admin URL (it holds the password: never log it). Joins the server if needed. */
  async adminUrl(): Promise<string> {
    return (await this.#session.server()).adminUrl;
  }

  /**
   * Where this allocator records lanes: `'postgres'` (the server's registry and the state file) or
   * `'file'` (the state file only), as option `registry` resolves: `'auto'` is `'postgres'` when an
   * admin URL is given (option or `E2E_LANES_DATABASE_URL`), `'file'` for the
   * embedded server.
   */
  registryKind(): 'postgres' | 'file' {
    return this.#chosen?.kind ?? requestedKind(this.options);
  }

  /**
   * The database of `project` in this run: the same database every time the same lane asks, from
   * any process; a fresh clone of the template otherwise.
   * @throws {LanesError} `DATABASE_CREATE_FAILED`, `INVALID_PROJECT_NAME`, `RUN_ID_CONFLICT` (another
   *   machine holds this lane: two machines use the same run id), and whatever `prepare()` throws.
   */
  async allocateDatabaseForProject(project: string, options: DatabaseWorkerOptions = {}): Promise<DatabaseAllocation> {
    const key = laneKey(this.runId, project, options.worker);
    const template = await this.prepare();
    await this.#session.server();
    const records = await this.#lanes();
    const allocation = await claimLane(
      { session: this.#session, records, prefix: this.prefix, cloneStrategy: this.options.cloneStrategy, tookReadyCopy: () => this.#pool.refill(), roles: await this.#laneUrls.roles() },
      key,
      template,
    );
    // Lanes that reset by truncating keep a connection for it: it opens while the lane's users start.
    if (this.options.reset === 'truncate') void this.#resets.prepareTruncate(allocation.databaseName).catch(() => undefined);
    return allocation;
  }

  /**
   * Drops the database of `project` in this run (even while sessions are connected) and forgets
   * it. Resolves true if an entry was removed. A lane that a live owner on another machine holds
   * is left alone.
   * @throws {LanesError} `DATABASE_DROP_FAILED` (the entry is kept).
   */
  async releaseDatabaseForProject(project: string, options: DatabaseWorkerOptions & { runId?: string } = {}): Promise<boolean> {
    await this.#resets.close();
    const key: LaneKey = { runId: options.runId ?? this.runId, project };
    if (options.worker !== undefined) key.worker = options.worker;
    const removed = await removeDatabases(await this.#removal(), releasing(key.runId, this.options.stateDir, (lane) => sameLane(lane, key)), { wait: true });
    return removed.length > 0;
  }

  /**
   * Keeps the databases of a run (this run by default) after its owner exits, for lanes kept for
   * debugging, and keeps this run's hold on the embedded server: they count as alive until
   * `releaseRun` (`e2e-lanes down`). On a shared server's registry the lease still expires.
   */
  async keepRun(runId: string = this.runId, owner?: Owner): Promise<void> {
    if (owner) await this.handOverRun(runId, owner);
    const kept = owner ? [] : await this.#ledger.keepRun(runId);
    // The server's marks say so too, so that no reaper judging by marks alone drops them.
    if (kept.length > 0 && this.#session.joined) {
      await this.#session.withAdmin((client) => markLanes(client, kept, { kept: true })).catch((error: unknown) => debug('could not mark the kept databases: %s', messageOf(error)));
    }
    this.#ledger.stopKeepingAlive(runId);
    this.#prepared = undefined;
    await this.#session.keep(owner);
  }

  /**
   * Gives the databases of a run to `owner` in the state file, in the server's registry and in
   * the databases' marks: a warm run's watchdog (alive until its deadline), or this process taking
   * a warm run over (it renews their heartbeat and leases from then on).
   */
  async handOverRun(runId: string, owner: Owner): Promise<void> {
    const entries = await this.#ledger.handOverRun(runId, owner);
    const records = await this.#lanes();
    if (entries.length > 0) {
      await this.#session.withAdmin(async (client) => {
        await records.handOver(client, entries.map((entry) => entry.databaseName), owner);
        await markLanes(client, entries);
      });
    }
    if (owner.warmUntil === undefined) this.#ledger.keepAlive(runId);
    else this.#ledger.stopKeepingAlive(runId);
  }

  /** The database recorded for `project` in this run (none is created) and whether it exists, or undefined. */
  async allocation(project: string, options: DatabaseWorkerOptions = {}): Promise<{ databaseName: string; databaseUrl: string; exists: boolean } | undefined> {
    const key = laneKey(this.runId, project, options.worker);
    const entry = (await this.#ledger.file.read()).entries.find((candidate) => sameLane(candidate, key));
    if (!entry) return undefined;
    const exists = await this.#session.withAdmin(async (client) => (await findDatabase(client, entry.databaseName)) !== undefined);
    return { databaseName: entry.databaseName, databaseUrl: await this.laneDatabaseUrl(entry.databaseName), exists };
  }

  /**
   * The URL a lane's processes connect with to lane database `databaseName` of this run: its lane
   * role's (option `laneRoles`), else the admin's. It holds a password: never log it.
   */
  laneDatabaseUrl(databaseName: string): Promise<string> {
    return this.#laneUrls.databaseUrl(databaseName);
  }

  /**
   * What a worker needs to name its lane's URL before it knows its lane: the server's URL and the
   * run's lane role key (option `laneRoles`: no admin credentials), else the admin URL. It holds a
   * secret: for the run's workers only, never for messages.
   */
  laneAccess(): Promise<{ baseUrl: string; roleKey?: string }> {
    return this.#laneUrls.access();
  }

  /**
   * Drops every database of a run (this run by default), one after the other, and forgets them.
   * With a registry, that is every lane of the run on this machine, and those of other machines
   * whose lease expired; lanes that live owners elsewhere hold are left alone.
   * @throws {LanesError} `DATABASE_DROP_FAILED` after trying all (failed entries are kept).
   */
  async releaseRun(runId: string = this.runId): Promise<DatabaseEntry[]> {
    await this.#resets.close();
    // The databases swaps moved away go first: until then their lane roles cannot be dropped.
    await this.#pool.dropDiscardedNow();
    const removed = await removeDatabases(await this.#removal(), releasing(runId, this.options.stateDir, (lane) => lane.runId === runId), { wait: true });
    this.#ledger.stopKeepingAlive(runId);
    return removed.map(({ entry }) => entry);
  }

  /**
   * What `reapStale()` would drop beyond the ledger and the registry, without changing anything:
   * marked lane databases no ledger or registry lists whose owner is gone, and abandoned build
   * databases (`dropped` is false in each).
   */
  async listUnrecorded(): Promise<ReapedDatabase[]> {
    return reapUnrecorded(await this.#removal(), { dryRun: true });
  }

  /**
   * Drops the marked lane databases of the given runs on this host that no ledger or registry lists
   * (their records were lost), whatever their owner; resolves their entries. `down` uses it.
   */
  async releaseUnrecorded(runIds: readonly string[]): Promise<DatabaseEntry[]> {
    if (runIds.length === 0) return [];
    const reaped = await reapUnrecorded(await this.#removal(), { releasing: runIds });
    return reaped.filter((item) => item.kind !== 'build' && runIds.includes(item.entry.runId)).map((item) => item.entry);
  }

  /** Every entry with its owner's liveness, without changing anything. */
  async list(options: DatabaseListOptions = {}): Promise<DatabaseListing[]> {
    const local = await this.#ledger.list();
    if (options.scope !== 'server') return local;
    const rows = await (await this.#lanes()).rows({ prefix: this.prefix });
    return rows.length === 0 ? local : mergeListings(local, rows, (await this.#session.server()).adminUrl);
  }

  /**
   * Drops the databases of dead owners and expired leases (under this allocator's prefix), then
   * forgets them. With a registry this covers every machine using the server: another host's lanes
   * go once their lease expired (its pids cannot be checked), this host's as soon as their owner
   * pid is gone. Entries naming a database this allocator would not create are removed without
   * dropping anything.
   * @throws {LanesError} `DATABASE_DROP_FAILED` after trying all (failed entries are kept).
   */
  async reapStale(): Promise<ReapedDatabase[]> {
    const context = await this.#removal();
    const removed = await removeDatabases(context, reaping(this.options.leaseMs), { wait: false });
    removed.push(...(await reapUnrecorded(context)));
    for (const { entry, dropped, reason } of removed) {
      debug('reaped %s of %s (%s): %s', entry.databaseName, describeLane(entry), dropped ? 'dropped' : 'not dropped', reason);
    }
    return removed;
  }

  /**
   * Releases this allocator's hold on PostgreSQL (e.g. its reference to the embedded server). Lanes
   * stay allocated, and their registry leases keep being renewed while this process lives.
   */
  async close(): Promise<void> {
    await this.#pool.close();
    await this.#resets.close();
    this.#prepared = undefined;
    if (DatabaseAllocator.#instances.get(this.options.stateDir) === this) DatabaseAllocator.#instances.delete(this.options.stateDir);
    await this.#session.release();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Where lanes are recorded: opened once (a failure is tried again by the next call). */
  #lanes(): Promise<LaneRecords> {
    this.#records ??= openLaneRecords(this.options, this.#session, this.#ledger, this.#shard).then(
      (records) => (this.#chosen = records),
      (error: unknown) => {
        this.#records = undefined;
        throw error;
      },
    );
    return this.#records;
  }

  async #removal(): Promise<RemovalContext> {
    return { session: this.#session, records: await this.#lanes(), prefix: this.prefix };
  }

  #assertCompatible(resolved: ResolvedDatabaseAllocatorOptions): void {
    const fingerprint = (o: ResolvedDatabaseAllocatorOptions): string =>
      JSON.stringify([o.runId, o.prefix, o.adminUrl, o.migrations, o.seed, o.hashInputs, o.cloneStrategy, o.registry, o.registryDatabase, o.laneRoles]);
    if (fingerprint(resolved) !== fingerprint(this.options)) {
      throw new LanesError(
        'INVALID_OPTION',
        `DatabaseAllocator.getInstance() for ${resolved.stateDir} was already created with other options (prefix ${this.prefix}, run ${this.runId}).`,
        { hint: 'Pass the same options on every call, or use `new DatabaseAllocator(options)` for a separate allocator.' },
      );
    }
  }
}
