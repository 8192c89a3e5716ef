import ci from 'ci-info';
import { DatabaseAllocator, type DatabaseReset, type ResetStrategy } from '../databases/index.js';
import { isLanesError, LanesError, messageOf } from '../errors.js';
import { debugLogger, warn } from '../log.js';
import { PortAllocator } from '../ports/index.js';
import type { StartedServer } from '../servers/index.js';
import { describeLane, keepAlive, resolveLeaseMs, resolveRunId, resolveStateDir, validateProjectName, type LaneKey } from '../state/index.js';
import { bootLane, type BootContext } from './boot/boot.js';
import { BootGate } from './boot/boot-gate.js';
import { describeRunTimes } from './boot/time-report.js';
import { prepareRun, type PrepareReport } from './boot/prepare.js';
import { serverStatuses, settleServers, watchDeaths, type DeathWatch, type RunningLane } from './boot/restart.js';
import { keyOfId, laneId, rememberedFailure, workerOf, type Lane, type LaneSelector } from './lane.js';
import { LaneTable, type LaneRecord } from './lane-table.js';
import { keepMode, lanePortNames, validateLanesOptions, type LanesOptions } from './options/lane-options.js';
import { resolveReuse, type ResolvedReuse } from './options/reuse-options.js';
import { laneLedger, recordLane, recordServerProcess, type LaneEntry } from './records/lane-ledger.js';
import { reuseWarmRunLanes } from './reuse/judge.js';
import { emptyReuseReport, leaveRunWarm, reuseWarmRun, type ReusedRun, type ReuseReport, type WarmReport } from './reuse/warm-run.js';
import type { LaneServerStatus } from './server-status.js';
import { ExitReaper } from './reuse/exit-reaper.js';
import { runWatchdogSettings } from './reuse/watchdog.js';
import { ExitGuard } from './teardown/exit-guard.js';
import { tearDownOwnRun } from './teardown/own-run.js';
import { keepRunRecords, releaseLane, type RunStores } from './teardown/run-records.js';
import { LaneUsers, type BeginOptions, type LaneUser } from './use/lane-users.js';
import { resetLaneData, type LaneResetOptions } from './use/lane-reset.js';
import { RoundTracker } from './use/rounds.js';

export type { PrepareReport } from './boot/prepare.js';
export type { LaneServerStatus } from './server-status.js';
export type { Lane } from './lane.js';
export type { ReuseReport, WarmReport } from './reuse/warm-run.js';

/** @deprecated use ReuseReport */
export type AdoptionReport = ReuseReport;

const debug = debugLogger('lanes');

/**
 * Brings lanes up and down for one run: ports from the PortAllocator, a database cloned from the
 * template by the DatabaseAllocator, and the servers, all recorded so a later run can reap them if
 * this one dies. The process that creates it is the owner of the lanes' servers. It coordinates:
 * each phase of a lane's life has its folder (boot/, reuse/, use/, teardown/, reaping/).
 */
export class LaneManager {
  readonly runId: string;
  readonly stateDir: string;
  readonly ports: PortAllocator;
  readonly databases: DatabaseAllocator | undefined;
  readonly options: LanesOptions;
  readonly #leaseMs: number;
  /** One record per lane of the run. */
  readonly #lanes = new LaneTable();
  /** Kills this manager's running servers if this process exits before teardown stopped them. */
  readonly #exitGuard: ExitGuard;
  /** Tears the run down after this process exits, once prepared, until a teardown finished. */
  readonly #exitReaper: ExitReaper;
  readonly #ledger;
  /** What the last teardown kept. */
  #kept: Lane[] = [];
  /** Tests using each lane now (a reset is refused while another uses it). */
  readonly #users = new LaneUsers();
  #prepared: Promise<PrepareReport> | undefined;
  /** Set when teardown begins: no lane boots after that. */
  #closing = false;
  /** Aborted when teardown begins: restarts of dead servers in progress stop. */
  readonly #restartsAbort = new AbortController();
  readonly #reuse: ResolvedReuse;
  /** `keep` as resolved once (option, else `E2E_LANES_KEEP`). */
  readonly #keepMode: ReturnType<typeof keepMode>;
  /** Whether servers must be able to outlive this process (kept or warm lanes). */
  readonly #outlives: boolean;
  /** Which config this run is of (warm lanes serve only runs of the same config). */
  readonly #configKey: string;
  /** The warm run reserved for reuse, until `reuseWarmLanes()` has judged its lanes. */
  #warmRun: ReusedRun | undefined;
  /** Where the last teardown left the lanes warm. */
  #warm: WarmReport | undefined;
  /** With `resetEachRound`: which worker processes use each lane in the current run of the session. */
  readonly #rounds = new RoundTracker();
  readonly #resetEachRound: boolean;
  /** How many lanes start their servers at once (option `bootConcurrency`). */
  readonly #gate: BootGate;

  /**
   * @param run.configFile the Playwright config (warm lanes serve only runs of the same config)
   * @param run.reused a warm run this process reserved for reuse (see {@link LaneManager.reusing})
   * @param run.claimed deprecated: use `reused`
   * @param run.resetEachRound put a lane's data back to the template when a new set of worker
   *   processes starts using it (a new run of UI mode, which keeps the lanes between runs)
   */
  constructor(options: LanesOptions & { runId?: string } = {}, run: { configFile?: string; reused?: ReusedRun; claimed?: ReusedRun; resetEachRound?: boolean } = {}) {
    validateLanesOptions(options);
    this.options = options;
    this.#reuse = resolveReuse(options);
    this.#keepMode = keepMode(options);
    this.#outlives = this.#keepMode !== 'never' || this.#reuse.enabled;
    this.#configKey = run.configFile ?? '';
    this.#warmRun = run.reused ?? run.claimed;
    this.#resetEachRound = run.resetEachRound ?? false;
    this.runId = resolveRunId(this.#warmRun?.runId ?? options.runId);
    this.stateDir = resolveStateDir(options.stateDir);
    this.#leaseMs = resolveLeaseMs(options.leaseMs);
    this.#ledger = laneLedger(this.stateDir);
    this.#exitGuard = new ExitGuard(this.runId);
    this.#exitReaper = new ExitReaper(runWatchdogSettings(options, { stateDir: this.stateDir, runId: this.runId, leaseMs: this.#leaseMs }));
    this.#gate = new BootGate(options.bootConcurrency);
    const common = { stateDir: this.stateDir, runId: this.runId, leaseMs: this.#leaseMs };
    this.ports = new PortAllocator({ ...common, names: lanePortNames(options), ...(options.portRange ? { range: options.portRange } : {}) });
    this.databases = options.database === false ? undefined : new DatabaseAllocator({ ...options.database, ...common });
  }

  /**
   * A manager for a run of `configFile` that, with option `reuse`, reuses the newest warm run of
   * that config in the state folder (its run id becomes this run's); `reuseWarmLanes()` then
   * judges its lanes. Without `reuse` (or on CI, or with an explicit `runId`), a plain manager.
   */
  static async reusing(options: LanesOptions & { runId?: string } = {}, run: { configFile?: string; resetEachRound?: boolean } = {}): Promise<LaneManager> {
    validateLanesOptions(options);
    const reused = resolveReuse(options).enabled && options.runId === undefined
      ? await reuseWarmRun(resolveStateDir(options.stateDir), run.configFile ?? '', resolveLeaseMs(options.leaseMs))
      : undefined;
    return new LaneManager(options, { ...run, ...(reused ? { reused } : {}) });
  }

  /** `reuse` as resolved for this run (on CI it is off unless forced: `ignored` says so). */
  get reuse(): ResolvedReuse {
    return { ...this.#reuse };
  }

  /** Reaps what dead runs left behind, then makes sure Postgres and the template are ready. Once per manager. */
  prepare(): Promise<PrepareReport> {
    const { runId, stateDir, ports, databases } = this;
    if (!this.#prepared) this.#exitReaper.arm();
    this.#prepared ??= prepareRun({ runId, stateDir, ports, databases, leaseMs: this.#leaseMs, ledger: this.#ledger, keepLogs: this.options.keepLogs, reusesWarmRun: this.#warmRun !== undefined });
    return this.#prepared;
  }

  /**
   * The lane of `project` (and `{ worker }`, as the allocators take it) in this run, booting it on first use.
   * @throws {LanesError} `INTERRUPTED` once teardown has begun (an interrupted run boots nothing more).
   */
  ensureLane(project: string, lane?: { worker?: number | undefined }): Promise<Lane>;
  /** @deprecated Give the worker as `{ worker }`, as the allocators take it. */
  ensureLane(project: string, worker: number | undefined): Promise<Lane>;
  ensureLane(project: string, lane: LaneSelector = {}): Promise<Lane> {
    const key = this.#keyOf(validateProjectName(project), workerOf(lane));
    const id = laneId(key);
    const failed = this.#lanes.get(id)?.failure;
    // A lane is booted once per run: a broken server would cost every later request its timeout again.
    if (failed) return Promise.reject(rememberedFailure(key, failed.error, failed.at));
    const running = this.#running(key, id);
    // A test waits for it: it boots before lanes booted ahead of need.
    this.#gate.hurry(id);
    return running.then((item) => item.lane);
  }

  /**
   * Starts booting the lane of `project` (one lane per project) before anyone asks for it, unless
   * it is booting, up or failed already or teardown has begun. Never rejects: if that boot fails,
   * every `ensureLane` of the project gets its error.
   */
  prefetchLane(project: string): void {
    let key: LaneKey;
    try {
      key = { runId: this.runId, project: validateProjectName(project) };
    } catch {
      return; // the project's own request reports the bad name
    }
    const id = laneId(key);
    const record = this.#lanes.get(id);
    if (this.#closing || record?.running || record?.failure) return;
    this.#running(key, id).catch((error: unknown) => debug('lane of %s booted ahead failed: %O', describeLane(key), error));
  }

  /**
   * Judges the lanes of the warm run this manager reserved (see {@link LaneManager.reusing}): a
   * lane of `projects` is reused when its config and servers' definitions are unchanged, its
   * template is the current one, its servers are alive and healthy and its database is put back to
   * the template; else it is torn down (it boots afresh when asked for). Lanes of other projects
   * stay as they are, for a later run. Once per manager, after `prepare()`.
   */
  async reuseWarmLanes(projects: readonly string[]): Promise<ReuseReport> {
    const warmRun = this.#warmRun;
    this.#warmRun = undefined;
    if (!warmRun) return emptyReuseReport();
    const prepared = await this.prepare();
    const ctx = { runId: this.runId, options: this.options, configKey: this.#configKey, databases: this.databases };
    return reuseWarmRunLanes(ctx, warmRun, projects, prepared.template?.name, {
      forget: (key) => this.#forget(key),
      reused: (key, judged) => {
        const running: RunningLane = { ...judged, deaths: new Map() };
        for (const server of judged.servers) watchDeaths(this.#deathWatch(), key, running, server);
        keepAlive(this.#ledger as never, this.runId, this.#leaseMs);
        this.#lanes.setRunning(laneId(key), Promise.resolve(running));
      },
    });
  }

  /** @deprecated use {@link LaneManager.reuseWarmLanes} */
  adoptWarmLanes(projects: readonly string[]): Promise<ReuseReport> {
    return this.reuseWarmLanes(projects);
  }

  /**
   * With `resetEachRound` (UI mode): true when a worker process starts using a lane whose earlier
   * users are all gone, so a new run of the session began and the lane's data must be reset first.
   */
  startsRound(project: string, worker: number | undefined, pid: number): boolean {
    if (!this.#resetEachRound || !this.databases) return false;
    return this.#rounds.starts(laneId(this.#keyOf(project, worker)), pid);
  }

  /**
   * The servers of a booted lane with those that died on their own, or undefined when the lane was
   * not booted (or failed to boot). A server found dead is given a moment to finish its log.
   */
  async serverStatus(project: string, lane: LaneSelector = {}): Promise<LaneServerStatus[] | undefined> {
    const running = await this.#lanes.up(laneId(this.#keyOf(project, workerOf(lane))));
    return running && serverStatuses(running);
  }

  /**
   * Records that a test of a worker uses the lane, once it may (see LaneUsers): with `exclusive`
   * (a test that resets the lane) when no other test uses it, else when no test holds it alone and
   * no reset runs. No other test resets the lane's data while it is recorded.
   */
  async beginTest(project: string, worker: number | undefined, user: LaneUser, options: BeginOptions = {}): Promise<void> {
    const key = this.#keyOf(project, worker);
    const running = await this.#lanes.up(laneId(key));
    if (running) await settleServers(running);
    return this.#users.begin(laneId(key), describeLane(key), user, options);
  }

  /** Lets other tests share the lane with `user` again (after the reset of a new UI-mode round). */
  shareLane(project: string, worker: number | undefined, user: LaneUser): void {
    this.#users.share(laneId(this.#keyOf(project, worker)), user);
  }

  /** Records that the test is done with the lane, and whether it failed (for `keep: 'on-failure'`). */
  endTest(project: string, worker: number | undefined, user: LaneUser, failed = false): void {
    const id = laneId(this.#keyOf(project, worker));
    this.#users.end(id, user);
    if (failed) this.#lanes.record(id).testFailed = true;
  }

  /** The lanes the last teardown kept up (with `keep`, or `keep: 'on-failure'` and a failed test). */
  keptLanes(): Lane[] {
    return [...this.#kept];
  }

  /**
   * Puts the lane's database back to exactly the template while its servers keep running (as
   * DatabaseAllocator.resetDatabaseForProject, with the same `{ worker, strategy }`), one reset at a time.
   * @throws {LanesError} `INVALID_OPTION` for lanes without a database, `LANE_RESET_CONFLICT` while
   *   another live test uses the lane, `LANE_NOT_FOUND` before the lane booted, `DATABASE_RESET_FAILED`.
   */
  resetLane(project: string, lane?: { worker?: number | undefined } & LaneResetOptions): Promise<DatabaseReset>;
  /** @deprecated Give the worker in the options, `{ worker, strategy }`, as `DatabaseAllocator.resetDatabaseForProject` takes them. */
  resetLane(project: string, worker: number | undefined, options?: LaneResetOptions): Promise<DatabaseReset>;
  async resetLane(project: string, lane: LaneSelector | ({ worker?: number | undefined } & LaneResetOptions) = {}, options: LaneResetOptions = {}): Promise<DatabaseReset> {
    if (typeof lane === 'object') options = { ...options, ...lane };
    const key = this.#keyOf(project, workerOf(lane));
    const id = laneId(key);
    return resetLaneData({ key, id, databases: this.databases, users: this.#users, resets: this.#lanes.record(id), up: () => this.#lanes.up(id) }, options);
  }

  /** Where the run's time went so far (see describeRunTimes), or undefined when no lane was booted. */
  describeTimes(): string | undefined {
    const { timings, peak, elapsedMs } = this.#gate.report();
    return describeRunTimes({ timings, peak, runMs: elapsedMs, reuse: this.#reuse.enabled, ci: ci.isCI });
  }

  /** Lanes booted by this manager so far. */
  async lanes(): Promise<Lane[]> {
    const settled = await Promise.allSettled(this.#lanes.running());
    return settled.flatMap((result) => (result.status === 'fulfilled' ? [result.value.lane] : []));
  }

  /**
   * Stops every server of this run, drops its databases (one after another), releases its ports and
   * the Postgres server. With `keep`, the lanes stay up and are marked as kept instead; with option
   * `reuse` (unless `warm: false`), they stay up warm for the next run.
   */
  async teardown(options: { keep?: boolean; warm?: boolean } = {}): Promise<void> {
    await this.#teardown(options);
    // Done (or kept, or warm): nothing is left for the exit hook. A teardown that failed leaves it armed.
    this.#exitReaper.disarm();
  }

  async #teardown(options: { keep?: boolean; warm?: boolean }): Promise<void> {
    const mode = options.keep === undefined ? this.#keepMode : options.keep ? 'always' : 'never';
    this.#closing = true;
    // Boots waiting for their turn stop now.
    this.#gate.open();
    this.#restartsAbort.abort(new LanesError('INTERRUPTED', `Run ${this.runId} is being torn down: no server is restarted.`));
    // A run whose Postgres or template never got ready has no database to drop (and asking an
    // unreachable server again would only add its connect timeout to the failure).
    const prepared = this.#prepared ? await this.#prepared.then(() => true, () => false) : false;
    const running = await Promise.allSettled(this.#lanes.running());
    await Promise.allSettled(running.flatMap((result) => (result.status === 'fulfilled' ? [...(result.value.restarts?.inProgress.values() ?? [])] : [])));
    let keep = mode === 'always';
    if (mode === 'on-failure' && this.#lanes.anyTestFailed()) {
      // Only the lanes in which a test failed stay: the others go now, then the rest is kept as a whole.
      await this.#dropLanes((record) => !record.testFailed);
      keep = true;
    }
    this.#kept = keep ? await this.lanes() : [];
    if (keep) {
      // Kept servers must outlive this process.
      this.#exitGuard.release();
      // Kept lanes count as alive after this process exits, until `e2e-lanes down` removes them.
      await keepRunRecords(this.#stores(prepared), this.runId);
      return;
    }
    // With `reuse`: the lanes wait warm for the next run (unless the run never got its database server).
    if (this.#reuse.enabled && options.warm !== false && (prepared || !this.databases)) {
      this.#warm = await this.#keepWarm(prepared).catch((error: unknown) => {
        warn(`the lanes could not be kept warm (${messageOf(error)}); tearing them down`);
        return undefined;
      });
      if (this.#warm) return;
    }
    const servers = running.flatMap((result) => (result.status === 'fulfilled' ? [result.value.servers] : []));
    const lanes = { servers, isUp: (entry: LaneKey) => this.#lanes.isRunning(laneId(entry)), lanesGone: () => this.#lanes.forgetRunning() };
    await tearDownOwnRun({ runId: this.runId, ledger: this.#ledger, ports: this.ports, databases: this.databases, prepared, ...lanes });
  }

  /** Leaves this run's lanes up for the next run (see leaveRunWarm); lanes one of whose servers died are torn down now. */
  async #keepWarm(prepared: boolean): Promise<WarmReport | undefined> {
    await this.#dropLanes((_record, up) => up !== undefined && up.deaths.size > 0);
    const base = { runId: this.runId, stores: this.#stores(prepared), options: this.options, leaseMs: this.#leaseMs, idleMs: this.#reuse.idleMs };
    const warm = await leaveRunWarm({ ...base, lanes: await this.lanes(), release: () => this.#exitGuard.release() });
    if (warm) this.#lanes.forgetRunning();
    return warm;
  }

  /** Where the last teardown left the lanes warm (option `reuse`), if it did. */
  warmLanes(): WarmReport | undefined {
    return this.#warm && { ...this.#warm, lanes: [...this.#warm.lanes] };
  }

  /** Tears down now the lanes `drop` picks (their servers, database, ports and entry). */
  async #dropLanes(drop: (record: LaneRecord, up: RunningLane | undefined) => boolean): Promise<void> {
    for (const { id, record, running } of this.#lanes.runningEntries()) {
      const up = await running.catch(() => undefined);
      if (!drop(record, up)) continue;
      await up?.servers.stopAll().catch((error: unknown) => debug('stopping %s failed: %O', id, error));
      await this.#forget(keyOfId(this.runId, id));
      delete record.running;
    }
  }

  /** The stores of this run's records (the databases only once their server was reached). */
  #stores(prepared: boolean): RunStores {
    return { stateDir: this.stateDir, lanes: this.#ledger, ports: this.ports, ...(this.databases && prepared ? { databases: this.databases } : {}) };
  }

  /** The lane's boot, started on the first call. */
  #running(key: LaneKey, id: string): Promise<RunningLane> {
    const record = this.#lanes.get(id);
    if (record?.running) return record.running;
    if (this.#closing) {
      return Promise.reject(
        new LanesError('INTERRUPTED', `Run ${this.runId} is being torn down: the lane of ${describeLane(key)} is not started.`, {
          hint: 'The run was interrupted (Ctrl-C, SIGTERM) or its setup failed while lanes were still being asked for; see the first error of the run.',
        }),
      );
    }
    const running = this.#boot(key);
    const booting = this.#lanes.setRunning(id, running);
    running.catch((error: unknown) => {
      delete booting.running;
      // Not a failure of the lane: a boot cut short by the teardown.
      if (!this.#closing && !isLanesError(error, 'INTERRUPTED')) booting.failure = { error, at: new Date() };
    });
    return running;
  }

  async #boot(key: LaneKey): Promise<RunningLane> {
    await this.prepare();
    try {
      const booted = await bootLane(this.#bootContext(), key);
      const running: RunningLane = { ...booted, deaths: new Map() };
      for (const server of booted.servers) {
        this.#guard(server);
        watchDeaths(this.#deathWatch(), key, running, server);
      }
      return running;
    } catch (error) {
      debug('boot of %s failed: %O', describeLane(key), error);
      await this.#forget(key);
      throw error;
    }
  }

  #bootContext(): BootContext {
    const { runId, stateDir, options, ports, databases } = this;
    return { runId, stateDir, options, ports, databases, configKey: this.#configKey, outlives: this.#outlives, record: (entry) => this.#recordEntry(entry), closing: () => this.#closing, gate: this.#gate };
  }

  /** Guards `server`'s process group against this process exiting first (not for kept or warm lanes). */
  #guard(server: StartedServer): void {
    if (!this.#outlives) this.#exitGuard.watch(server);
  }

  /** What watching the servers of this run's lanes for deaths needs. */
  #deathWatch(): DeathWatch {
    const recordServer = (key: LaneKey, server: StartedServer): Promise<void> => recordServerProcess(this.#ledger, key, server);
    return { boot: this.#bootContext(), signal: this.#restartsAbort.signal, closing: () => this.#closing, guard: (server) => this.#guard(server), recordServer };
  }

  async #recordEntry(entry: LaneEntry): Promise<void> {
    await recordLane(this.#ledger, entry);
    keepAlive(this.#ledger as never, this.runId, this.#leaseMs);
  }

  #forget(key: LaneKey): Promise<void> {
    return releaseLane({ lanes: this.#ledger, ports: this.ports, databases: this.databases }, key);
  }

  #keyOf(project: string, worker: number | undefined): LaneKey {
    const key: LaneKey = { runId: this.runId, project };
    if (worker !== undefined) key.worker = worker;
    return key;
  }
}
