import type { Client } from 'pg';
import { LanesError, messageOf } from '../errors.js';
import { debugLogger, warn } from '../log.js';
import { redactUrl } from '../redact.js';
import { describeLane, sameLane, splitByLiveness, type LaneKey, type LedgerDocument, type StateFile } from '../state/index.js';
import { instanceFor } from '../state/instances.js';
import { describeTarget, withDatabase } from '../postgres/index.js';
import { checkConnectionBudget, cloneDatabase, databasesStartingWith, dropDatabase, findDatabase, isAlreadyThere } from './admin.js';
import { DatabaseLedger } from './database-ledger.js';
import { openLaneRecords, requestedKind, type LaneRecords } from './lane-records.js';
import { isLaneDatabaseOf, laneDatabaseName, laneKey, templateHashOf } from './names.js';
import { resolveDatabaseAllocatorOptions, type DatabaseAllocatorOptions, type ResolvedDatabaseAllocatorOptions } from './options.js';
import type { DatabaseReset, DatabaseAllocation, DatabaseEntry, DatabaseLaneOptions, DatabaseListing, DatabaseListOptions, ReapedDatabase } from './entries.js';
import { currentShard, planRemoval, releasing, rowToEntry, type RemovalPick, type RemovalTarget } from './ownership.js';
import { judgeRow } from './owner-table.js';
import { ensureTemplate, dropAbandonedBuilds, type TemplateInfo } from './template.js';
import { laneMark, markLanes, markOwnerGone, markToEntry, parseMark, type DatabaseMark } from './marks.js';
import { takeReadyCopy } from './ready-pool.js';
import { swapDatabase, type ResetStrategy } from './reset.js';
import { PoolKeeper } from './pool-keeper.js';
import { PostgresSession } from './session.js';
import { TruncateResets } from './truncate-reset.js';

const debug = debugLogger('databases');

/** How often an allocation starts over when its entry was released while it cloned. */
const ALLOCATE_ATTEMPTS = 3;

/**
 * One PostgreSQL database per lane, cloned from a template that is built once per hash of
 * (migrations + seed + PostgreSQL major + toolkit version). Allocations are idempotent per
 * (run, project[, worker]) across processes and recorded in `<stateDir>/allocated-databases.json`;
 * on a server shared by several machines also in the server's registry (option `registry`), where
 * a lease kept fresh by this process lets any machine reap the lanes of a dead one.
 * It only ever drops databases recorded in the ledger or registry whose name is exactly the one it
 * derives for the entry's lane under its own prefix.
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
  readonly #ledger: DatabaseLedger;
  readonly #shard: string | undefined;
  readonly #session: PostgresSession;
  #prepared: Promise<TemplateInfo> | undefined;
  /** Where lanes are recorded, chosen on first use (the owner table may turn out to be denied). */
  #records: Promise<LaneRecords> | undefined;
  #chosen: LaneRecords | undefined;
  readonly #pool: PoolKeeper;
  /** Connections kept to lane databases for their `truncate` resets. */
  readonly #truncates = new TruncateResets();

  constructor(options: DatabaseAllocatorOptions = {}) {
    this.options = resolveDatabaseAllocatorOptions(options);
    const { adminUrl, embedded, stateDir, runId, connectTimeoutMs } = this.options;
    this.#session = new PostgresSession({ adminUrl, embedded, stateDir, runId, connectTimeoutMs });
    this.#shard = currentShard();
    this.#ledger = new DatabaseLedger({ stateDir, prefix: this.options.prefix, leaseMs: this.options.leaseMs, shard: this.#shard });
    this.#pool = new PoolKeeper({ session: this.#session, prefix: this.options.prefix, cloneStrategy: this.options.cloneStrategy, size: this.options.pool, template: async () => this.#prepared });
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
    this.#prepared ??= this.#prepare().then(
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
  async resetDatabaseForProject(project: string, options: DatabaseLaneOptions & { strategy?: ResetStrategy } = {}): Promise<DatabaseReset> {
    const key = laneKey(this.runId, project, options.worker);
    const template = await this.prepare();
    const databaseName = laneDatabaseName(this.prefix, key);
    const known = await this.#ledger.find(key, databaseName);
    if (!known) {
      throw new LanesError('LANE_NOT_FOUND', `${describeLane(key)} has no database to reset in run ${this.runId}.`, {
        hint: 'A lane database is reset only after its lane booted (the `lane` fixture does that first).',
      });
    }
    const strategy = options.strategy ?? this.options.reset;
    const started = performance.now();
    const url = withDatabase((await this.#session.server()).adminUrl, databaseName);
    if (strategy === 'truncate') {
      await this.#truncates.reset(url, { connectTimeoutMs: this.options.connectTimeoutMs, lockTimeoutMs: this.options.resetLockTimeoutMs });
      return { databaseName, strategy, source: 'truncate', durationMs: performance.now() - started };
    }
    await this.#truncates.forget(url);
    const swapped = await this.#session.withAdmin((client, version) =>
      swapDatabase(client, { name: databaseName, prefix: this.prefix, template, strategy: this.options.cloneStrategy, serverVersion: version, comment: JSON.stringify(laneMark(known)) }),
    );
    if (swapped.discarded) this.#pool.discard(swapped.discarded);
    this.#pool.refill();
    return { databaseName, strategy, source: swapped.source, durationMs: performance.now() - started };
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
  async allocateDatabaseForProject(project: string, options: DatabaseLaneOptions = {}): Promise<DatabaseAllocation> {
    const key = laneKey(this.runId, project, options.worker);
    const template = await this.prepare();
    const server = await this.#session.server();
    const records = await this.#lanes();
    const databaseName = laneDatabaseName(this.prefix, key);
    let entry: DatabaseEntry;
    for (let attempt = 1; ; attempt++) {
      // The entry is recorded first, under the ledger lock, so that a crash during the clone still
      // leaves an entry for the reaper; the clone runs outside the lock, so lanes clone side by side.
      const recorded = await this.#ledger.record(key, databaseName, template.name, server.adminUrl);
      entry = recorded.entry;
      try {
        await this.#session.withAdmin((client, version) =>
          records.claim(client, { key, databaseName, template: template.name }, () => this.#create(client, version, recorded.entry, template.name, server.adminUrl)),
        );
      } catch (error) {
        if (recorded.added) {
          const exists = (): Promise<boolean> => this.#session.withAdmin(async (client) => (await findDatabase(client, databaseName)) !== undefined).catch(() => false);
          await this.#ledger.unrecord(entry, exists).catch((cleanup: unknown) => debug('could not forget %s after a failed clone: %s', databaseName, messageOf(cleanup)));
        }
        throw error;
      }
      // The database exists now. Unless a release removed the entry meanwhile (and maybe dropped the
      // database before it was created), the allocation stands; else it starts over.
      if (await this.#ledger.holds(key, databaseName)) break;
      if (attempt >= ALLOCATE_ATTEMPTS) {
        throw new LanesError('DATABASE_CREATE_FAILED', `Database ${databaseName} of ${describeLane(key)} was released ${attempt} times while it was being created.`, {
          hint: 'Something releases this lane (e.g. `npx e2e-lanes down` or a teardown) while it boots: let the run finish first.',
          details: { databaseName, template: template.name },
        });
      }
      debug('%s of %s was released while it was created; allocating again', databaseName, describeLane(key));
    }
    this.#ledger.keepAlive(key.runId);
    records.hold(databaseName);
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
   * it. Resolves true if an entry was removed. A lane that a live owner on another machine holds
   * is left alone.
   * @throws {LanesError} `DATABASE_DROP_FAILED` (the entry is kept).
   */
  async releaseDatabaseForProject(project: string, options: DatabaseLaneOptions & { runId?: string } = {}): Promise<boolean> {
    await this.#truncates.close();
    const key: LaneKey = { runId: options.runId ?? this.runId, project };
    if (options.worker !== undefined) key.worker = options.worker;
    const removed = await this.#remove(releasing(key.runId, this.options.stateDir, (lane) => sameLane(lane, key)), { wait: true });
    return removed.length > 0;
  }

  /**
   * Keeps the databases of a run (this run by default) after its owner exits, for lanes kept for
   * debugging, and keeps this run's hold on the embedded server: they count as alive until
   * `releaseRun` (`e2e-lanes down`). On a shared server's registry the lease still expires.
   */
  async keepRun(runId: string = this.runId): Promise<void> {
    const kept = await this.#ledger.keepRun(runId);
    // The server's marks say so too, so that no reaper judging by marks alone drops them.
    if (kept.length > 0 && this.#session.joined) {
      await this.#session.withAdmin((client) => markLanes(client, kept, { kept: true })).catch((error: unknown) => debug('could not mark the kept databases: %s', messageOf(error)));
    }
    this.#ledger.stopKeepingAlive(runId);
    this.#prepared = undefined;
    await this.#session.keep();
  }

  /**
   * Drops every database of a run (this run by default), one after the other, and forgets them.
   * With a registry, that is every lane of the run on this machine, and those of other machines
   * whose lease expired; lanes that live owners elsewhere hold are left alone.
   * @throws {LanesError} `DATABASE_DROP_FAILED` after trying all (failed entries are kept).
   */
  async releaseRun(runId: string = this.runId): Promise<DatabaseEntry[]> {
    await this.#truncates.close();
    const removed = await this.#remove(releasing(runId, this.options.stateDir, (lane) => lane.runId === runId), { wait: true });
    this.#ledger.stopKeepingAlive(runId);
    return removed.map(({ entry }) => entry);
  }

  /**
   * What `reapStale()` would drop beyond the ledger and the registry, without changing anything:
   * marked lane databases no ledger or registry lists whose owner is gone, and abandoned build
   * databases (`dropped` is false in each).
   */
  listUnrecorded(): Promise<ReapedDatabase[]> {
    return this.#reapUnrecorded({ dryRun: true });
  }

  /** Every entry with its owner's liveness, without changing anything. */
  async list(options: DatabaseListOptions = {}): Promise<DatabaseListing[]> {
    const local = await this.#ledger.list();
    if (options.scope !== 'server') return local;
    const rows = await (await this.#lanes()).rows({ prefix: this.prefix });
    if (rows.length === 0) return local;
    const server = await this.#session.server();
    const known = new Set(rows.map((row) => row.databaseName));
    const shared = rows.map((row): DatabaseListing => {
      const verdict = judgeRow(row);
      const entry = { ...rowToEntry(row, server.adminUrl), expiresAt: row.expiresAt };
      return verdict.alive ? { ...entry, alive: true } : { ...entry, alive: false, staleReason: verdict.reason };
    });
    return [...shared, ...local.filter((entry) => !known.has(entry.databaseName))];
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
    const pick: RemovalPick = {
      ledger: (entries) => splitByLiveness(entries, this.options.leaseMs).stale,
      row: (row) => {
        const verdict = judgeRow(row);
        return verdict.alive ? undefined : verdict.reason;
      },
    };
    const removed = await this.#remove(pick, { wait: false });
    removed.push(...(await this.#reapUnrecorded()));
    for (const { entry, dropped, reason } of removed) {
      debug('reaped %s of %s (%s): %s', entry.databaseName, describeLane(entry), dropped ? 'dropped' : 'not dropped', reason);
    }
    return removed;
  }

  /**
   * The server is a source of truth too: drops the databases of this prefix that carry the
   * toolkit's mark, are listed in neither this ledger nor the registry (a lost or truncated
   * ledger, another state folder's run that died), and whose marked owner is gone (this host: pid
   * gone or reused; another host's are judged only by their registry lease, so never here). Also
   * drops abandoned build databases of templates. Runs under the ledger lock, so an allocation of
   * this state folder never races it. A database without the mark is never touched.
   * @throws {LanesError} `DATABASE_DROP_FAILED` after trying all.
   */
  async #reapUnrecorded(options: { dryRun?: boolean } = {}): Promise<ReapedDatabase[]> {
    const records = await this.#lanes();
    const server = await this.#session.server();
    const failures: string[] = [];
    const dryRun = options.dryRun === true;
    const reaped = await this.#ledger.inspect(async (entries) => {
      const known = new Set(entries.map((entry) => entry.databaseName));
      for (const row of await records.rows({ prefix: this.prefix })) known.add(row.databaseName);
      return this.#session.withAdmin(async (client) => {
        const found: ReapedDatabase[] = [];
        for (const row of await databasesStartingWith(client, `${this.prefix}_`)) {
          const mark = parseMark(row.comment);
          if (mark?.kind !== 'lane' || known.has(row.name)) continue;
          const entry = markToEntry(row.name, mark, server.adminUrl);
          if (!entry || !isLaneDatabaseOf(this.prefix, entry)) continue;
          const gone = markOwnerGone(mark);
          if (!gone) continue;
          try {
            await records.removeUnrecorded(client, row.name, async () => {
              if (!dryRun) await dropDatabase(client, row.name);
              found.push({ entry, reason: `no ledger lists it and ${gone}`, dropped: !dryRun });
            });
          } catch (error) {
            failures.push(`${row.name}: ${messageOf(error)}`);
          }
        }
        for (const build of await dropAbandonedBuilds(client, this.prefix, { dryRun })) {
          found.push({ entry: buildToEntry(build.name, build.template, build.mark, server.adminUrl), reason: `abandoned build of template ${build.template}: its builder is gone`, dropped: !dryRun, kind: 'build' });
        }
        return found;
      });
    }, { readOnly: dryRun });
    if (failures.length > 0) {
      throw new LanesError('DATABASE_DROP_FAILED', `Could not drop ${failures.length} database(s) of dead owners: ${failures.join('; ')}`, {
        hint: 'They keep their mark and are retried by the next run or `npx e2e-lanes gc`. Check that the admin user owns them.',
        details: { failures },
      });
    }
    return reaped;
  }

  /**
   * Releases this allocator's hold on PostgreSQL (e.g. its reference to the embedded server). Lanes
   * stay allocated, and their registry leases keep being renewed while this process lives.
   */
  async close(): Promise<void> {
    await this.#pool.close();
    await this.#truncates.close();
    this.#prepared = undefined;
    if (DatabaseAllocator.#instances.get(this.options.stateDir) === this) DatabaseAllocator.#instances.delete(this.options.stateDir);
    await this.#session.release();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #prepare(): Promise<TemplateInfo> {
    await this.#session.server();
    await this.#lanes();
    const expected = this.options.expectedConnections;
    if (expected !== undefined) await this.#session.withAdmin((client) => checkConnectionBudget(client, expected));
    return ensureTemplate({
      adminUrl: await this.#session.maintenanceUrl(),
      prefix: this.prefix,
      migrations: this.options.migrations,
      seed: this.options.seed,
      hashInputs: this.options.hashInputs,
      rebuild: this.options.rebuild,
      connectTimeoutMs: this.options.connectTimeoutMs,
      runId: this.runId,
      seedTimeoutMs: this.options.seedTimeoutMs,
      migrationTimeoutMs: this.options.migrationTimeoutMs,
      templateWaitTimeoutMs: this.options.templateWaitTimeoutMs,
    });
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

  /**
   * Clones the lane's database from the template; a database of that name that exists already (an
   * earlier allocation, or one running at the same moment, which has committed by then) is the one.
   * @throws {LanesError} `DATABASE_CREATE_FAILED`
   */
  async #create(client: Client, version: number, entry: DatabaseEntry, template: string, adminUrl: string): Promise<void> {
    const { databaseName } = entry;
    try {
      const hash = templateHashOf(this.prefix, template);
      const copy = hash === undefined ? undefined : await takeReadyCopy(client, this.prefix, hash, databaseName);
      if (copy !== undefined) {
        debug('took ready copy %s as %s for %s', copy, databaseName, describeLane(entry));
        this.#pool.refill();
      } else {
        await cloneDatabase(client, databaseName, template, this.options.cloneStrategy, version);
        debug('cloned %s from %s for %s', databaseName, template, describeLane(entry));
      }
    } catch (error) {
      if (!isAlreadyThere(error)) throw createFailed(databaseName, template, adminUrl, error);
      debug('%s of %s exists already (%s)', databaseName, describeLane(entry), (error as { code?: string }).code);
    }
    // The owner goes on the server too (renewed on every allocation, so a takeover shows), for
    // reapers that find no ledger listing the database.
    await markLanes(client, [entry]);
  }

  /**
   * Drops and forgets the databases `pick` chooses, one after the other: the ledger's entries and,
   * with a registry, its rows (each under the lane's lock, checked again once locked; with
   * `wait: false` a lane someone else is working on is skipped). Databases whose drop fails are
   * kept and reported at the end.
   */
  async #remove(pick: RemovalPick, lock: { wait: boolean }): Promise<ReapedDatabase[]> {
    const records = await this.#lanes();
    const failures: string[] = [];
    const removed = await this.#ledger.remove(async (ledger) => {
      const rows = await records.rows({ prefix: this.prefix, ...(pick.runId !== undefined ? { runId: pick.runId } : {}) });
      if (rows.length === 0 && pick.ledger(ledger).length === 0) return { forget: [], value: [] };
      const server = await this.#session.server();
      const gone = await this.#session.withAdmin(async (client) => {
        const done: { target: RemovalTarget; dropped: boolean }[] = [];
        for (const target of planRemoval(ledger, rows, pick, server.adminUrl)) {
          const dropped = await this.#removeOne(client, records, target, pick, lock, failures);
          if (dropped !== undefined) done.push({ target, dropped });
        }
        return done;
      });
      return {
        forget: gone.flatMap(({ target }) => target.ledger),
        value: gone.map(({ target, dropped }) => ({ entry: structuredClone(target.entry), reason: target.reason, dropped })),
      };
    });
    if (failures.length > 0) {
      throw new LanesError('DATABASE_DROP_FAILED', `Could not drop ${failures.length} database(s): ${failures.join('; ')}`, {
        hint: 'They stay recorded and are retried by the next release or `npx e2e-lanes gc`. Check that the admin user owns them.',
        details: { failures },
      });
    }
    return removed;
  }

  /** Drops one database and forgets its records; resolves whether it was dropped, or undefined when it was kept. */
  async #removeOne(
    client: Client,
    records: LaneRecords,
    target: RemovalTarget,
    pick: RemovalPick,
    lock: { wait: boolean },
    failures: string[],
  ): Promise<boolean | undefined> {
    const drop = async (): Promise<boolean | undefined> => {
      if (!isLaneDatabaseOf(this.prefix, target.entry)) {
        const where = target.row ? `the lane registry of ${describeTarget((await this.#session.server()).adminUrl)}` : this.#ledger.path;
        warn(`not dropping database ${JSON.stringify(target.databaseName)} recorded for ${describeLane(target.entry)} in ${where}: this allocator never creates a database of that name. The entry was removed.`);
        return false;
      }
      try {
        const existed = await dropDatabase(client, target.databaseName);
        debug('dropped %s of %s', target.databaseName, describeLane(target.entry));
        return existed;
      } catch (error) {
        failures.push(`${target.databaseName}: ${messageOf(error)}`);
        return undefined;
      }
    };
    return records.remove(client, target, pick, lock, drop);
  }

  #assertCompatible(resolved: ResolvedDatabaseAllocatorOptions): void {
    const fingerprint = (o: ResolvedDatabaseAllocatorOptions): string =>
      JSON.stringify([o.runId, o.prefix, o.adminUrl, o.migrations, o.seed, o.hashInputs, o.cloneStrategy, o.registry, o.registryDatabase]);
    if (fingerprint(resolved) !== fingerprint(this.options)) {
      throw new LanesError(
        'INVALID_OPTION',
        `DatabaseAllocator.getInstance() for ${resolved.stateDir} was already created with other options (prefix ${this.prefix}, run ${this.runId}).`,
        { hint: 'Pass the same options on every call, or use `new DatabaseAllocator(options)` for a separate allocator.' },
      );
    }
  }
}

/** An abandoned build database in the shape of a ledger entry (project: the template it was building). */
function buildToEntry(databaseName: string, template: string, mark: DatabaseMark, adminUrl: string): DatabaseEntry {
  const runId = mark.runId ?? 'unknown';
  return {
    runId,
    project: `template build ${template}`,
    owner: { runId, pid: mark.pid ?? 0, host: mark.host ?? 'unknown', createdAt: mark.created, heartbeatAt: mark.created },
    databaseName,
    databaseUrl: redactUrl(withDatabase(adminUrl, databaseName)),
    template,
  };
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
