import { DatabaseAllocator, type TemplateInfo } from '../databases/index.js';
import { debugLogger, progress } from '../log.js';
import { PortAllocator } from '../ports/index.js';
import { passwordOf } from '../redact.js';
import { startServers, type ServerDefinition, type StartedServers } from '../servers/index.js';
import {
  describeLane,
  keepAlive,
  newOwner,
  resolveLeaseMs,
  resolveRunId,
  resolveStateDir,
  sameLane,
  stopKeepingAlive,
  validateProjectName,
  type LaneKey,
} from '../state/index.js';
import { laneLedger, type LaneEntry } from './lane-ledger.js';
import { laneLogDir } from './log-dir.js';
import { baseServerName, keepLanes, lanePortNames, validateLanesOptions, type LanesOptions } from './options.js';
import { SERVER_MARK_ENV } from './orphans.js';
import { reapStaleLanes, type ReapReport } from './reaper.js';

const debug = debugLogger('lanes');

/** One lane, as tests and fixtures see it. */
export interface Lane {
  runId: string;
  project: string;
  worker?: number;
  /** Named ports, e.g. `{ backend: 3100, frontend: 3101 }`. */
  ports: Record<string, number>;
  /** URLs of the servers by name, e.g. `{ backend: 'http://127.0.0.1:3100' }`. */
  urls: Record<string, string>;
  /** The URL of the base server (Playwright's `baseURL`), if any. */
  baseURL?: string;
  /** The lane's own database, when databases are enabled. */
  databaseName?: string;
  /** Connection URL of the lane's database (contains the password: do not log it). */
  databaseUrl?: string;
  /** Log file of every server, by name. */
  logFiles: Record<string, string>;
}

/** What `prepare()` did. */
export interface PrepareReport {
  template?: TemplateInfo;
  reaped: ReapReport;
}

interface RunningLane {
  lane: Lane;
  servers: StartedServers;
}

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
  readonly #ledger;
  #prepared: Promise<PrepareReport> | undefined;

  constructor(options: LanesOptions & { runId?: string } = {}) {
    validateLanesOptions(options);
    this.options = options;
    this.runId = resolveRunId(options.runId);
    this.stateDir = resolveStateDir(options.stateDir);
    this.#leaseMs = resolveLeaseMs(options.leaseMs);
    this.#ledger = laneLedger(this.stateDir);
    const common = { stateDir: this.stateDir, runId: this.runId, leaseMs: this.#leaseMs };
    this.ports = new PortAllocator({ ...common, names: lanePortNames(options), ...(options.portRange ? { range: options.portRange } : {}) });
    this.databases = options.database === false ? undefined : new DatabaseAllocator({ ...options.database, ...common });
  }

  /** Reaps what dead runs left behind, then makes sure Postgres and the template are ready. Once per manager. */
  prepare(): Promise<PrepareReport> {
    this.#prepared ??= (async () => {
      const reaped = await reapStaleLanes(this.stateDir, this.#leaseMs);
      await this.ports.reapStale();
      if (!this.databases) return { reaped };
      const template = await this.databases.prepare();
      await this.databases.reapStale();
      return { reaped, template };
    })();
    return this.#prepared;
  }

  /** The lane of `project` (and `worker`) in this run, booting it on first use. */
  ensureLane(project: string, worker?: number): Promise<Lane> {
    const key: LaneKey = { runId: this.runId, project: validateProjectName(project) };
    if (worker !== undefined) key.worker = worker;
    const id = JSON.stringify([key.project, key.worker ?? null]);
    let running = this.#lanes.get(id);
    if (!running) {
      running = this.#boot(key);
      this.#lanes.set(id, running);
      running.catch(() => this.#lanes.delete(id));
    }
    return running.then((item) => item.lane);
  }

  /** Lanes booted by this manager so far. */
  async lanes(): Promise<Lane[]> {
    const settled = await Promise.allSettled(this.#lanes.values());
    return settled.flatMap((result) => (result.status === 'fulfilled' ? [result.value.lane] : []));
  }

  /**
   * Stops every server of this run, drops its databases (one after another), releases its ports and
   * the Postgres server. With `keep`, the lanes stay up and are marked as kept instead.
   */
  async teardown(options: { keep?: boolean } = {}): Promise<void> {
    const keep = options.keep ?? keepLanes(this.options);
    await this.#prepared?.catch(() => undefined);
    const running = await Promise.allSettled(this.#lanes.values());
    if (keep) {
      await this.#ledger.update((doc) => {
        for (const entry of doc.entries) if (entry.runId === this.runId) entry.kept = true;
      });
      return;
    }
    const errors: unknown[] = [];
    const collect = (result: PromiseSettledResult<unknown>): void => {
      if (result.status === 'rejected') errors.push(result.reason);
    };
    (await Promise.allSettled(running.map((result) => (result.status === 'fulfilled' ? result.value.servers.stopAll() : undefined)))).forEach(collect);
    this.#lanes.clear();
    if (this.databases) {
      collect(await settle(this.databases.releaseRun(this.runId)));
      collect(await settle(this.databases.close()));
    }
    collect(await settle(this.ports.releaseRun(this.runId)));
    collect(await settle(this.#ledger.update((doc) => void (doc.entries = doc.entries.filter((entry) => entry.runId !== this.runId)))));
    stopKeepingAlive(this.#ledger, this.runId);
    if (errors.length > 0) throw errors[0];
  }

  async #boot(key: LaneKey): Promise<RunningLane> {
    const started = Date.now();
    await this.prepare();
    const names = lanePortNames(this.options);
    const ports = await this.ports.allocatePortsForProject(key.project, { ...(key.worker !== undefined ? { worker: key.worker } : {}), names });
    const logDir = laneLogDir(this.stateDir, key);
    const entry: LaneEntry = { ...key, owner: newOwner(this.runId), status: 'starting', ports: ports.ports, servers: [], logDir };
    const lane: Lane = { runId: this.runId, project: key.project, ports: ports.ports, urls: {}, logFiles: {} };
    if (key.worker !== undefined) lane.worker = key.worker;
    let servers: StartedServers | undefined;
    try {
      if (this.databases) {
        const database = await this.databases.allocateDatabaseForProject(key.project, key.worker !== undefined ? { worker: key.worker } : {});
        lane.databaseName = entry.databaseName = database.databaseName;
        lane.databaseUrl = database.databaseUrl;
      }
      await this.#record(entry);
      const ctx = { project: key.project, ports: ports.ports, urls: lane.urls, ...(lane.databaseUrl ? { databaseUrl: lane.databaseUrl } : {}) };
      const secret = lane.databaseUrl ? passwordOf(lane.databaseUrl) : undefined;
      servers = await startServers(this.#definitions(), ctx, {
        logDir,
        debug: this.options.debug ?? process.env.E2E_LANES_DEBUG === '1',
        secrets: secret ? [secret] : [],
      });
      for (const server of servers) lane.logFiles[server.name] = server.logFile;
      entry.servers = servers.map((server) => ({
        name: server.name,
        pid: server.pid,
        logFile: server.logFile,
        ...(server.port !== undefined ? { port: server.port } : {}),
        ...(server.url !== undefined ? { url: server.url } : {}),
      }));
      entry.status = 'up';
      await this.#record(entry);
      const base = baseServerName(this.options);
      if (base && lane.urls[base]) lane.baseURL = lane.urls[base];
      progress(`lane ${describeLane(key)} up in ${Date.now() - started} ms: ${formatPorts(ports.ports)}${lane.databaseName ? `, database ${lane.databaseName}` : ''}`);
      return { lane, servers };
    } catch (error) {
      debug('boot of %s failed: %O', describeLane(key), error);
      await servers?.stopAll().catch(() => undefined);
      await this.#forget(key);
      throw error;
    }
  }

  /** The server definitions with the marker that lets a later run find orphans. */
  #definitions(): ServerDefinition[] {
    const keep = keepLanes(this.options);
    return (this.options.servers ?? []).map((server) => ({
      ...server,
      env: (ctx) => ({
        [SERVER_MARK_ENV]: server.name,
        ...(keep ? { E2E_LANES_KEEP: '1' } : {}),
        ...(typeof server.env === 'function' ? server.env(ctx) : server.env),
      }),
    }));
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

function formatPorts(ports: Record<string, number>): string {
  return Object.entries(ports)
    .map(([name, port]) => `${name} ${port}`)
    .join(', ');
}

async function settle<T>(promise: Promise<T>): Promise<PromiseSettledResult<T>> {
  const [result] = await Promise.allSettled([promise]);
  return result!;
}
