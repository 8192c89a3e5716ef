import { setTimeout as sleep } from 'node:timers/promises';
import { DatabaseAllocator, type DatabaseReset, type ResetStrategy } from '../databases/index.js';
import { isLanesError, LanesError, messageOf } from '../errors.js';
import { debugLogger, warn } from '../log.js';
import { PortAllocator } from '../ports/index.js';
import { isProcessAlive, type ServerExit, type StartedServer } from '../servers/index.js';
import {
  describeLane,
  keepAlive,
  newOwner,
  resolveLeaseMs,
  resolveOwnerPid,
  resolveRunId,
  resolveStateDir,
  sameLane,
  stopKeepingAlive,
  validateProjectName,
  type LaneKey,
} from '../state/index.js';
import { laneLedger, type LaneEntry } from './lane-ledger.js';
import { LaneUsers, type BeginOptions, type LaneUser } from './lane-users.js';
import { pruneLogDirs } from './log-dir.js';
import { DEFAULT_KEEP_LOGS, keepMode, lanePortNames, validateLanesOptions, type LanesOptions } from './options.js';
import { killRunStragglers, killRunStragglersNow } from './orphans.js';
import { keyOfId, laneId, rememberedFailure, type AdoptionReport, type Lane, type PrepareReport, type RunningLane, type WarmReport } from './lane.js';
import { takeOverLane } from './adopt.js';
import { bootLane, type BootContext } from './boot.js';
import { laneRestarts, restartDeadServer } from './restart.js';
import { RoundTracker } from './rounds.js';
import { keepRunRecords, reapDeadDatabases, reapDeadRuns, stopRecordedServers, type RunStores } from './run.js';
import { describeExit, type LaneServerStatus } from './server-status.js';
import { claimWarmRun, resolveReuse, spawnWatchdog, warmOwner, type ClaimedRun, type ResolvedReuse } from './warm.js';

export type { LaneServerStatus } from './server-status.js';
export type { AdoptionReport, Lane, PrepareReport, WarmReport } from './lane.js';

const debug = debugLogger('lanes');

/** How long a status request waits for a dead server's last output to reach its log. */
const EXIT_WAIT_MS = 2_000;

/**
 * Brings lanes up and down for one run: ports from the PortAllocator, a database cloned from the
 * template by the DatabaseAllocator, and the servers, all recorded so a later run can reap them if
 * this one dies. The process that creates it is the owner of the lanes' servers.
 */
export class LaneManager {
  readonly runId: string;
  readonly stateDir: string;
  readonly ports: PortAllocator;
  readonly databases: DatabaseAllocator | undefined;
  readonly options: LanesOptions;
  readonly #leaseMs: number;
  readonly #lanes = new Map<string, Promise<RunningLane>>();
  /** Process groups of this manager's running servers: SIGKILLed if this process exits before teardown stopped them. */
  readonly #groups = new Set<number>();
  readonly #killGroupsOnExit = (): void => {
    for (const pgid of this.#groups) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    // And what left those groups but carries this run's marks.
    killRunStragglersNow(this.runId, resolveOwnerPid());
  };
  readonly #ledger;
  /** Lanes in which a test failed. */
  readonly #failed = new Set<string>();
  /** What the last teardown kept. */
  #kept: Lane[] = [];
  /** Tests using each lane now (a reset is refused while another uses it). */
  readonly #users = new LaneUsers();
  /** The last reset of each lane: resets of a lane run one after another. */
  readonly #resets = new Map<string, Promise<unknown>>();
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
  /** The warm run taken over, until `adoptWarmLanes()` has judged its lanes. */
  #claimed: ClaimedRun | undefined;
  /** Where the last teardown left the lanes warm. */
  #warm: WarmReport | undefined;
  /** With `resetEachRound`: which worker processes use each lane in the current run of the session. */
  readonly #rounds = new RoundTracker();
  readonly #resetEachRound: boolean;
  /** Lanes booted ahead by `prefetchLane` that nobody has asked for yet. */
  readonly #unclaimed = new Set<string>();
  /** Why a lane's boot failed, by lane: every later request of that lane gets it at once (not booted again). */
  readonly #failures = new Map<string, { error: unknown; at: Date }>();

  /**
   * @param run.configFile the Playwright config (warm lanes serve only runs of the same config)
   * @param run.claimed a warm run this process took over (see {@link LaneManager.reusing})
   * @param run.resetEachRound put a lane's data back to the template when a new set of worker
   *   processes starts using it (a new run of UI mode, which keeps the lanes between runs)
   */
  constructor(options: LanesOptions & { runId?: string } = {}, run: { configFile?: string; claimed?: ClaimedRun; resetEachRound?: boolean } = {}) {
    validateLanesOptions(options);
    this.options = options;
    this.#reuse = resolveReuse(options);
    this.#keepMode = keepMode(options);
    this.#outlives = this.#keepMode !== 'never' || this.#reuse.enabled;
    this.#configKey = run.configFile ?? '';
    this.#claimed = run.claimed;
    this.#resetEachRound = run.resetEachRound ?? false;
    this.runId = resolveRunId(run.claimed?.runId ?? options.runId);
    this.stateDir = resolveStateDir(options.stateDir);
    this.#leaseMs = resolveLeaseMs(options.leaseMs);
    this.#ledger = laneLedger(this.stateDir);
    const common = { stateDir: this.stateDir, runId: this.runId, leaseMs: this.#leaseMs };
    this.ports = new PortAllocator({ ...common, names: lanePortNames(options), ...(options.portRange ? { range: options.portRange } : {}) });
    this.databases = options.database === false ? undefined : new DatabaseAllocator({ ...options.database, ...common });
  }

  /**
   * A manager for a run of `configFile` that, with option `reuse`, takes over the newest warm run
   * of that config in the state folder (its run id becomes this run's); `adoptWarmLanes()` then
   * judges its lanes. Without `reuse` (or on CI, or with an explicit `runId`), a plain manager.
   */
  static async reusing(options: LanesOptions & { runId?: string } = {}, run: { configFile?: string; resetEachRound?: boolean } = {}): Promise<LaneManager> {
    validateLanesOptions(options);
    const claimed = resolveReuse(options).enabled && options.runId === undefined
      ? await claimWarmRun(resolveStateDir(options.stateDir), run.configFile ?? '', resolveLeaseMs(options.leaseMs))
      : undefined;
    return new LaneManager(options, { ...run, ...(claimed ? { claimed } : {}) });
  }

  /** `reuse` as resolved for this run (on CI it is off unless forced: `ignored` says so). */
  get reuse(): ResolvedReuse {
    return { ...this.#reuse };
  }

  /** Reaps what dead runs left behind, then makes sure Postgres and the template are ready. Once per manager. */
  prepare(): Promise<PrepareReport> {
    this.#prepared ??= (async () => {
      const { lanes: reaped } = await reapDeadRuns(this, this.#leaseMs);
      // A warm run taken over: its ports and databases become this process's too (its lanes already are).
      if (this.#claimed) await this.ports.handOverRun(this.runId, newOwner(this.runId));
      await this.#pruneLogs();
      if (!this.databases) return { reaped };
      const template = await this.databases.prepare();
      if (this.#claimed) await this.databases.handOverRun(this.runId, newOwner(this.runId));
      await reapDeadDatabases(this.databases);
      await this.databases.dropStaleReadyCopies();
      return { reaped, template, postgres: await this.databases.describePostgres() };
    })();
    return this.#prepared;
  }

  /**
   * The lane of `project` (and `worker`) in this run, booting it on first use.
   * @throws {LanesError} `INTERRUPTED` once teardown has begun (an interrupted run boots nothing more).
   */
  ensureLane(project: string, worker?: number): Promise<Lane> {
    const key: LaneKey = { runId: this.runId, project: validateProjectName(project) };
    if (worker !== undefined) key.worker = worker;
    const id = laneId(key);
    this.#unclaimed.delete(id);
    const failed = this.#failures.get(id);
    // A lane is booted once per run: a broken server would cost every later request its timeout again.
    if (failed) return Promise.reject(rememberedFailure(key, failed.error, failed.at));
    return this.#running(key, id).then((item) => item.lane);
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
    if (this.#closing || this.#lanes.has(id) || this.#failures.has(id)) return;
    this.#unclaimed.add(id);
    this.#running(key, id).then(
      () => this.#unclaimed.delete(id),
      (error: unknown) => {
        this.#unclaimed.delete(id);
        debug('lane of %s booted ahead failed: %O', describeLane(key), error);
      },
    );
  }

  /**
   * Judges the lanes of the warm run this manager took over (see {@link LaneManager.reusing}): a
   * lane of `projects` is taken over when its config and servers' definitions are unchanged, its
   * template is the current one, its servers are alive and healthy and its database is put back to
   * the template; else it is torn down (it boots afresh when asked for). Lanes of other projects
   * stay as they are, for a later run. Once per manager, after `prepare()`.
   */
  async adoptWarmLanes(projects: readonly string[]): Promise<AdoptionReport> {
    const claimed = this.#claimed;
    this.#claimed = undefined;
    if (!claimed) return { adopted: [], replaced: [] };
    const prepared = await this.prepare();
    const report: AdoptionReport = { runId: this.runId, adopted: [], replaced: [] };
    const since = claimed.entries.map((entry) => entry.warmSince).filter((at): at is string => at !== undefined).sort()[0];
    if (since) report.idleMs = Math.max(0, Date.now() - Date.parse(since));
    await Promise.all(
      claimed.entries.filter((entry) => projects.includes(entry.project)).map(async (entry) => {
        const key = this.#keyOf(entry.project, entry.worker);
        const outcome = await this.#adopt(key, entry, prepared.template?.name);
        if (typeof outcome === 'string') {
          report.replaced.push({ project: key.project, ...(key.worker !== undefined ? { worker: key.worker } : {}), reason: outcome });
          return;
        }
        this.#lanes.set(laneId(key), Promise.resolve(outcome));
        report.adopted.push(outcome.lane);
      }),
    );
    return report;
  }

  /** One warm lane taken over (its data reset), or why not (and then it is torn down). */
  async #adopt(key: LaneKey, entry: LaneEntry, template: string | undefined): Promise<RunningLane | string> {
    const taken = await takeOverLane({ runId: this.runId, options: this.options, configKey: this.#configKey, databases: this.databases }, key, entry, template);
    if ('reason' in taken) {
      warn(`lane ${describeLane(key)} not reused: ${taken.reason}; it boots afresh`);
      await this.#discard(key, entry);
      return taken.reason;
    }
    const running: RunningLane = { ...taken, deaths: new Map() };
    for (const server of taken.servers) void server.exited.then((exit) => this.#noteExit(key, running, server, exit));
    keepAlive(this.#ledger as never, this.runId, this.#leaseMs);
    return running;
  }


  /** Tears down a warm lane that is not taken over: its servers (by their marks), database and ports. */
  async #discard(key: LaneKey, entry: LaneEntry): Promise<void> {
    await stopRecordedServers(entry.servers, this.runId);
    await this.#forget(key);
  }

  /**
   * With `resetEachRound` (UI mode): true when a worker process starts using a lane whose earlier
   * users are all gone, so a new run of the session began and the lane's data must be reset first.
   */
  startsRound(project: string, worker: number | undefined, pid: number): boolean {
    if (!this.#resetEachRound || !this.databases) return false;
    return this.#rounds.starts(laneId(this.#keyOf(project, worker)), pid);
  }

  /** The lane's boot, started on the first call. */
  #running(key: LaneKey, id: string): Promise<RunningLane> {
    let running = this.#lanes.get(id);
    if (!running) {
      if (this.#closing) {
        return Promise.reject(
          new LanesError('INTERRUPTED', `Run ${this.runId} is being torn down: the lane of ${describeLane(key)} is not started.`, {
            hint: 'The run was interrupted (Ctrl-C, SIGTERM) or its setup failed while lanes were still being asked for; see the first error of the run.',
          }),
        );
      }
      running = this.#boot(key);
      this.#lanes.set(id, running);
      running.catch((error: unknown) => {
        this.#lanes.delete(id);
        // Not a failure of the lane: a boot cut short by the teardown.
        if (!this.#closing && !isLanesError(error, 'INTERRUPTED')) this.#failures.set(id, { error, at: new Date() });
      });
    }
    return running;
  }

  /**
   * The servers of a booted lane with those that died on their own, or undefined when the lane was
   * not booted (or failed to boot). A server found dead is given a moment to finish its log.
   */
  async serverStatus(project: string, worker?: number): Promise<LaneServerStatus[] | undefined> {
    const key: LaneKey = { runId: this.runId, project };
    if (worker !== undefined) key.worker = worker;
    const running = await this.#lanes.get(laneId(key))?.catch(() => undefined);
    if (!running) return undefined;
    const current = await Promise.all(
      running.servers.map(async (server) => {
        let exit = running.deaths.get(server.name);
        if (!exit && !isProcessAlive(server.pid)) {
          const ended = await Promise.race([server.exited, sleep(EXIT_WAIT_MS).then(() => undefined)]);
          if (ended && !ended.stopped) exit = ended;
        }
        const restarts = running.restarts;
        const status: LaneServerStatus = { name: server.name, pid: server.pid, logFile: (exit && restarts?.deadLogs.get(server.name)) || server.logFile };
        if (exit) status.exit = { code: exit.code, signal: exit.signal };
        if (exit && running.swapped) status.afterSwap = true;
        const diedAt = restarts?.diedAt.get(server.name);
        if (exit && diedAt !== undefined) status.diedAt = new Date(diedAt).toISOString();
        if (exit && restarts?.givenUp.has(server.name)) status.givenUp = true;
        const count = restarts?.counts.get(server.name);
        if (count) status.restarts = count;
        const logProblem = server.logProblem();
        if (logProblem) status.logProblem = logProblem;
        return status;
      }),
    );
    // The processes that died and were restarted since, so the test that was running then fails.
    const past = (running.restarts?.past ?? []).map((death): LaneServerStatus => ({
      name: death.name,
      pid: death.pid,
      logFile: death.logFile,
      exit: { code: death.exit.code, signal: death.exit.signal },
      diedAt: new Date(death.at).toISOString(),
      restarted: true,
      ...(running.swapped ? { afterSwap: true } : {}),
    }));
    return [...current, ...past];
  }

  /**
   * Records that a test of a worker uses the lane, once it may (see LaneUsers): with `exclusive`
   * (a test that resets the lane) when no other test uses it, else when no test holds it alone and
   * no reset runs. No other test resets the lane's data while it is recorded.
   */
  async beginTest(project: string, worker: number | undefined, user: LaneUser, options: BeginOptions = {}): Promise<void> {
    const key = this.#keyOf(project, worker);
    await this.#settleServers(key);
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
    if (failed) this.#failed.add(id);
  }

  /** The lanes the last teardown kept up (with `keep`, or `keep: 'on-failure'` and a failed test). */
  keptLanes(): Lane[] {
    return [...this.#kept];
  }

  /**
   * Puts the lane's database back to exactly the template while its servers keep running (see
   * DatabaseAllocator.resetDatabaseForProject); resets of one lane run one after another.
   * @throws {LanesError} `INVALID_OPTION` for lanes without a database, `LANE_RESET_CONFLICT` while
   *   another live test uses the lane, `LANE_NOT_FOUND` before the lane booted, `DATABASE_RESET_FAILED`.
   */
  async resetLane(project: string, worker: number | undefined, options: { strategy?: ResetStrategy; user?: LaneUser } = {}): Promise<DatabaseReset> {
    const key = this.#keyOf(project, worker);
    const id = laneId(key);
    if (!this.databases) {
      throw new LanesError('INVALID_OPTION', `laneReset / resetDatabase() on ${describeLane(key)}, but its lanes have no database (option \`database: false\`).`, {
        hint: 'Remove laneReset from the project (or give the lanes a database).',
      });
    }
    const databases = this.databases;
    const running = await this.#lanes.get(id)?.catch(() => undefined);
    if (!running) throw new LanesError('LANE_NOT_FOUND', `${describeLane(key)} is not up: its data cannot be reset.`, { hint: 'Ask for the lane (the `lane` fixture) first.' });
    // The check that no other test uses the lane and the claim that keeps them out: one step.
    const claim = this.#users.claimReset(id, describeLane(key), options.user);
    const previous = this.#resets.get(id) ?? Promise.resolve();
    const reset = previous.catch(() => undefined).then(() => databases.resetDatabaseForProject(key.project, { ...(key.worker !== undefined ? { worker: key.worker } : {}), ...(options.strategy ? { strategy: options.strategy } : {}) }));
    this.#resets.set(id, reset);
    const result = await reset.finally(() => claim.release());
    if (result.strategy === 'swap') running.swapped = true;
    debug('reset %s (%s from %s) in %d ms', describeLane(key), result.strategy, result.source, Math.round(result.durationMs));
    return result;
  }

  #keyOf(project: string, worker: number | undefined): LaneKey {
    const key: LaneKey = { runId: this.runId, project };
    if (worker !== undefined) key.worker = worker;
    return key;
  }

  /** Lanes booted by this manager so far. */
  async lanes(): Promise<Lane[]> {
    const settled = await Promise.allSettled(this.#lanes.values());
    return settled.flatMap((result) => (result.status === 'fulfilled' ? [result.value.lane] : []));
  }

  /**
   * Stops every server of this run, drops its databases (one after another), releases its ports and
   * the Postgres server. With `keep`, the lanes stay up and are marked as kept instead; with option
   * `reuse` (unless `warm: false`), they stay up warm for the next run.
   */
  async teardown(options: { keep?: boolean; warm?: boolean } = {}): Promise<void> {
    const mode = options.keep === undefined ? this.#keepMode : options.keep ? 'always' : 'never';
    this.#closing = true;
    this.#restartsAbort.abort(new LanesError('INTERRUPTED', `Run ${this.runId} is being torn down: no server is restarted.`));
    // A run whose Postgres or template never got ready has no database to drop (and asking an
    // unreachable server again would only add its connect timeout to the failure).
    const prepared = this.#prepared ? await this.#prepared.then(() => true, () => false) : false;
    const running = await Promise.allSettled(this.#lanes.values());
    await Promise.allSettled(running.flatMap((result) => (result.status === 'fulfilled' ? [...(result.value.restarts?.inProgress.values() ?? [])] : [])));
    let keep = mode === 'always';
    if (mode === 'on-failure' && this.#failed.size > 0) {
      // Only the lanes in which a test failed stay: the others go now, then the rest is kept as a whole.
      for (const [id, lane] of this.#lanes) {
        if (this.#failed.has(id)) continue;
        const up = await lane.catch(() => undefined);
        await up?.servers.stopAll().catch((error: unknown) => debug('stopping %s failed: %O', id, error));
        await this.#forget(keyOfId(this.runId, id));
        this.#lanes.delete(id);
      }
      keep = true;
    }
    this.#kept = keep ? await this.lanes() : [];
    if (keep) {
      // Kept servers must outlive this process.
      this.#groups.clear();
      process.off('exit', this.#killGroupsOnExit);
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
    const errors: unknown[] = [];
    const collect = (result: PromiseSettledResult<unknown>): void => {
      if (result.status === 'rejected') errors.push(result.reason);
    };
    (await Promise.allSettled(running.map((result) => (result.status === 'fulfilled' ? result.value.servers.stopAll() : undefined)))).forEach(collect);
    // Lanes of a warm run taken over but not used by this run: their servers are not this process's children.
    for (const entry of (await this.#ledger.read().catch(() => ({ entries: [] as LaneEntry[] }))).entries) {
      if (entry.runId !== this.runId || this.#lanes.has(laneId(entry))) continue;
      collect(await settle(stopRecordedServers(entry.servers, this.runId)));
    }
    this.#lanes.clear();
    // Servers are stopped "with everything they spawned": also what left their process groups.
    const stragglers = await settle(killRunStragglers(this.runId, { ownerPid: resolveOwnerPid() }));
    collect(stragglers);
    if (stragglers.status === 'fulfilled' && stragglers.value.length > 0) {
      debug('killed %d process(es) of run %s that had left their server\'s process group: %o', stragglers.value.length, this.runId, stragglers.value);
    }
    if (this.databases) {
      if (prepared) collect(await settle(this.databases.releaseRun(this.runId)));
      collect(await settle(this.databases.close()));
    }
    collect(await settle(this.ports.releaseRun(this.runId)));
    collect(await settle(this.#ledger.update((doc) => void (doc.entries = doc.entries.filter((entry) => entry.runId !== this.runId)))));
    stopKeepingAlive(this.#ledger, this.runId);
    if (errors.length > 0) throw errors[0];
  }

  /**
   * Leaves this run's lanes up for the next run: a detached watchdog becomes the owner of every
   * entry of the run (lanes, ports, databases, the hold on the embedded server) until the idle
   * deadline. Lanes one of whose servers died are torn down now. Undefined when no lane is up.
   */
  async #keepWarm(prepared: boolean): Promise<WarmReport | undefined> {
    for (const [id, booting] of this.#lanes) {
      const up = await booting.catch(() => undefined);
      if (!up || up.deaths.size === 0) continue;
      await up.servers.stopAll().catch((error: unknown) => debug('stopping %s failed: %O', id, error));
      await this.#forget(keyOfId(this.runId, id));
      this.#lanes.delete(id);
    }
    const lanes = await this.lanes();
    // Lanes taken over warm for projects this run did not select are recorded but not up here.
    if (!(await this.#ledger.read()).entries.some((entry) => entry.runId === this.runId)) return undefined;
    const database = this.options.database === false ? false : JSON.parse(JSON.stringify(this.options.database ?? {}));
    const pid = spawnWatchdog({ stateDir: this.stateDir, runId: this.runId, fromPid: resolveOwnerPid(), leaseMs: this.#leaseMs, database, ...(this.options.portRange ? { portRange: this.options.portRange } : {}) });
    const owner = warmOwner(this.runId, pid, this.#reuse.idleMs);
    // Warm servers outlive this process.
    this.#groups.clear();
    process.off('exit', this.#killGroupsOnExit);
    await keepRunRecords(this.#stores(prepared), this.runId, owner);
    this.#lanes.clear();
    return { lanes, until: owner.warmUntil!, watchdogPid: pid };
  }

  /** The stores of this run's records (the databases only once their server was reached). */
  #stores(prepared: boolean): RunStores {
    return { stateDir: this.stateDir, lanes: this.#ledger, ports: this.ports, ...(this.databases && prepared ? { databases: this.databases } : {}) };
  }

  /** Where the last teardown left the lanes warm (option `reuse`), if it did. */
  warmLanes(): WarmReport | undefined {
    return this.#warm && { ...this.#warm, lanes: [...this.#warm.lanes] };
  }

  async #boot(key: LaneKey): Promise<RunningLane> {
    await this.prepare();
    try {
      const booted = await bootLane(this.#bootContext(), key);
      const running: RunningLane = { ...booted, deaths: new Map() };
      for (const server of booted.servers) {
        this.#watchGroup(server);
        void server.exited.then((exit) => this.#noteExit(key, running, server, exit));
      }
      return running;
    } catch (error) {
      debug('boot of %s failed: %O', describeLane(key), error);
      await this.#forget(key);
      throw error;
    }
  }


  #bootContext(): BootContext {
    return {
      runId: this.runId,
      stateDir: this.stateDir,
      options: this.options,
      configKey: this.#configKey,
      ports: this.ports,
      databases: this.databases,
      outlives: this.#outlives,
      record: (entry) => this.#record(entry),
      closing: () => this.#closing,
    };
  }

  /** Deletes old runs' log folders (see `keepLogs`); what is left in the ledgers after reaping is alive or kept. */
  async #pruneLogs(): Promise<void> {
    const live = new Set<string>([this.runId]);
    for (const entry of (await this.#ledger.read()).entries) live.add(entry.runId);
    for (const runId of await this.ports.runIds()) live.add(runId);
    const removed = await pruneLogDirs(this.stateDir, this.options.keepLogs ?? DEFAULT_KEEP_LOGS, live);
    if (removed.length > 0) debug('deleted the log folders of %d earlier run(s): %o', removed.length, removed);
  }



  /**
   * Makes sure `server`'s process group does not outlive this process: if the process exits while
   * the server runs (a second Ctrl-C cut the teardown short, Playwright exited before a boot that
   * raced the teardown finished, an uncaught error), an 'exit' hook SIGKILLs the group. Not for
   * kept lanes. Databases and ports stay recorded; the next run or `gc` reaps them (dead owner).
   */
  #watchGroup(server: StartedServer): void {
    if (this.#outlives) return;
    if (this.#groups.size === 0) process.on('exit', this.#killGroupsOnExit);
    this.#groups.add(server.pid);
    void server.exited.then(() => {
      this.#groups.delete(server.pid);
      if (this.#groups.size === 0) process.off('exit', this.#killGroupsOnExit);
    });
  }

  /** Records and reports a server that died on its own while its lane was up. */
  #noteExit(key: LaneKey, running: RunningLane, server: StartedServer, exit: ServerExit): void {
    if (exit.stopped) return;
    running.deaths.set(server.name, exit);
    const restarts = laneRestarts(running);
    const again = !this.#closing && !restarts.givenUp.has(server.name);
    warn(`server "${server.name}" of ${describeLane(key)} (pid ${server.pid}) died during the run: ${describeExit(exit)}. Log: ${server.logFile}${again ? '. Restarting it' : ''}`);
    void restartDeadServer(
      {
        boot: this.#bootContext(),
        signal: this.#restartsAbort.signal,
        closing: () => this.#closing,
        started: async (restarted) => {
          this.#watchGroup(restarted);
          void restarted.exited.then((next) => this.#noteExit(key, running, restarted, next));
          await this.#recordServer(key, restarted);
        },
      },
      key,
      running,
      server,
    );
  }

  /** Points the lane's ledger record of a restarted server at its new process. */
  async #recordServer(key: LaneKey, server: StartedServer): Promise<void> {
    await this.#ledger.update((doc) => {
      const record = doc.entries.find((entry) => sameLane(entry, key))?.servers.find((one) => one.name === server.name);
      if (!record) return;
      record.pid = server.pid;
      record.logFile = server.logFile;
    });
  }

  /**
   * Waits until the lane's servers found dead have been noted and their restarts in progress have
   * ended (up again, or given up on), so a test starts on a healthy lane.
   */
  async #settleServers(key: LaneKey): Promise<void> {
    const running = await this.#lanes.get(laneId(key))?.catch(() => undefined);
    if (!running) return;
    await Promise.all(running.servers.map((server) => (isProcessAlive(server.pid) ? undefined : Promise.race([server.exited, sleep(EXIT_WAIT_MS)]))));
    await Promise.allSettled([...(running.restarts?.inProgress.values() ?? [])]);
  }



  async #record(entry: LaneEntry): Promise<void> {
    await this.#ledger.update((doc) => {
      doc.entries = doc.entries.filter((other) => !sameLane(other, entry));
      doc.entries.push(structuredClone(entry));
    });
    keepAlive(this.#ledger as never, this.runId, this.#leaseMs);
  }

  async #forget(key: LaneKey): Promise<void> {
    const worker = key.worker !== undefined ? { worker: key.worker } : {};
    await Promise.allSettled([
      this.databases?.releaseDatabaseForProject(key.project, worker),
      this.ports.releasePortsForProject(key.project, worker),
      this.#ledger.update((doc) => void (doc.entries = doc.entries.filter((entry) => !sameLane(entry, key)))),
    ]);
  }
}

async function settle<T>(promise: Promise<T>): Promise<PromiseSettledResult<T>> {
  const [result] = await Promise.allSettled([promise]);
  return result!;
}
