/**
 * Booting one lane: its ports, its database (a ready copy or a clone), then its servers in
 * dependency order with the run's marks, each step recorded in the lanes ledger before the next, so
 * a run that dies midway leaves everything for the reaper. A port taken between allocation and
 * start by a process outside the state folder is retried with new ports.
 */
import { resolve } from 'node:path';
import { DEBUG_ENV, KEEP_ENV, OWNER_IDENTITY_ENV, OWNER_PID_ENV, RUN_ID_ENV, SERVER_MARK_ENV, STATE_DIR_ENV } from '../../env-vars.js';
import { formatIdentityMark, identityOf } from '../../state/identity.js';
import type { DatabaseAllocator } from '../../databases/index.js';
import { isLanesError, LanesError } from '../../errors.js';
import { progress, warn } from '../../log.js';
import type { PortAllocation, PortAllocator } from '../../ports/index.js';
import { passwordOf } from '../../redact.js';
import { SERVER_DEFAULTS, startServer, startServers, type ServerDefinition, type StartedServer, type StartedServers, type StartServerOptions } from '../../servers/index.js';
import { describeLane, newOwner, resolveOwnerPid, type LaneKey } from '../../state/index.js';
import { formatPorts, laneId, type Lane } from '../lane.js';
import type { BootGate } from './boot-gate.js';
import type { LaneEntry } from '../records/lane-ledger.js';
import { laneLogDir } from '../records/log-dir.js';
import { baseServerName, lanePortNames, type LanesOptions } from '../options/lane-options.js';
import { laneFingerprint } from '../reuse/fingerprint.js';

/** How often a lane boot is retried with new ports when a port was taken after it was handed out. */
const PORT_ATTEMPTS = 3;

/** What a boot needs of its run. */
export interface BootContext {
  runId: string;
  stateDir: string;
  options: LanesOptions;
  /** The config of the run (see LaneFingerprint.config). */
  configKey: string;
  ports: PortAllocator;
  databases: DatabaseAllocator | undefined;
  /** Kept or warm lanes: servers write their own logs and carry the keep mark. */
  outlives: boolean;
  /** Records the lane's entry in the lanes ledger (replacing an earlier one). */
  record(entry: LaneEntry): Promise<void>;
  /** True once the run's teardown has begun (no more port retries). */
  closing(): boolean;
  /** Bounds how many lanes start their servers at once (none: no bound). */
  gate?: BootGate;
}

/**
 * Boots the lane of `key`. On failure its started servers are stopped before the error is
 * rethrown; its ports, database and entry are the caller's to release.
 */
export async function bootLane(ctx: BootContext, key: LaneKey): Promise<{ lane: Lane; servers: StartedServers }> {
  const { options } = ctx;
  const started = Date.now();
  const names = lanePortNames(options);
  const worker = key.worker !== undefined ? { worker: key.worker } : {};
  let ports = await ctx.ports.allocatePortsForProject(key.project, { ...worker, names });
  const logDir = laneLogDir(ctx.stateDir, key);
  const entry: LaneEntry = { ...key, owner: newOwner(ctx.runId), status: 'starting', ports: ports.ports, servers: [], logDir };
  const lane: Lane = { runId: ctx.runId, project: key.project, ports: ports.ports, urls: {}, logFiles: {}, ...worker };
  let servers: StartedServers | undefined;
  try {
    if (ctx.databases) {
      const database = await ctx.databases.allocateDatabaseForProject(key.project, worker);
      lane.databaseName = entry.databaseName = database.databaseName;
      lane.databaseUrl = database.databaseUrl;
      entry.template = database.template.name;
    }
    entry.fingerprint = laneFingerprint(options, ctx.configKey, { project: key.project, ports: ports.ports });
    await ctx.record(entry);
    const secret = lane.databaseUrl ? passwordOf(lane.databaseUrl) : undefined;
    const startAll = async (): Promise<StartedServers> => {
      if (ctx.closing()) throw interrupted(ctx, key);
      for (let attempt = 1; ; attempt++) {
        const serverCtx = { project: key.project, ports: ports.ports, urls: lane.urls, ...(lane.databaseUrl ? { databaseUrl: lane.databaseUrl } : {}) };
        try {
          return await startServers(markedDefinitions(ctx), serverCtx, startOptions(ctx, logDir, secret));
        } catch (error) {
          if (!isLanesError(error, 'SERVER_PORT_IN_USE') || attempt >= PORT_ATTEMPTS || ctx.closing()) throw error;
          // Free when it was handed out, taken since by a process that does not use this state folder.
          warn(`${error.message.split('\n')[0]} Trying new ports for ${describeLane(key)} (attempt ${attempt + 1} of ${PORT_ATTEMPTS}).`);
          ports = await reallocatePorts(ctx.ports, key, names);
          lane.ports = entry.ports = ports.ports;
          entry.fingerprint = laneFingerprint(options, ctx.configKey, { project: key.project, ports: ports.ports });
          await ctx.record(entry);
        }
      }
    };
    // The servers' start, the CPU-heavy part of a boot, waits for its turn (see BootGate).
    servers = ctx.gate ? await ctx.gate.run(laneId(key), startAll) : await startAll();
    for (const server of servers) lane.logFiles[server.name] = server.logFile;
    const definitions = new Map((options.servers ?? []).map((def) => [def.name, def]));
    entry.servers = servers.map((server) => ({
      name: server.name,
      pid: server.pid,
      logFile: server.logFile,
      stopSignal: definitions.get(server.name)?.stopSignal ?? SERVER_DEFAULTS.stopSignal,
      stopTimeout: definitions.get(server.name)?.stopTimeout ?? SERVER_DEFAULTS.stopTimeout,
      ...(server.port !== undefined ? { port: server.port } : {}),
      ...(server.url !== undefined ? { url: server.url } : {}),
    }));
    entry.status = 'up';
    await ctx.record(entry);
    const base = baseServerName(options);
    if (base && lane.urls[base]) lane.baseURL = lane.urls[base];
    progress(`lane ${describeLane(key)} up in ${Date.now() - started} ms: ${formatPorts(ports.ports)}${lane.databaseName ? `, database ${lane.databaseName}` : ''}`);
    return { lane, servers };
  } catch (error) {
    await servers?.stopAll().catch(() => undefined);
    throw error;
  }
}

function interrupted(ctx: BootContext, key: LaneKey): LanesError {
  return new LanesError('INTERRUPTED', `Run ${ctx.runId} is being torn down: the servers of ${describeLane(key)} are not started.`);
}

/** How a lane's servers are started (at boot and when one is restarted). */
function startOptions(ctx: BootContext, logDir: string, secret: string | undefined): StartServerOptions {
  return {
    logDir,
    debug: ctx.options.debug ?? process.env[DEBUG_ENV] === '1',
    secrets: secret ? [secret] : [],
    // Kept and warm lanes outlive the runner: their output goes to a detached log writer (timed, redacted).
    output: ctx.outlives ? 'file' : 'pipe',
    ...(ctx.options.host ? { host: ctx.options.host } : {}),
  };
}

/**
 * Starts the server `name` of a booted lane again, as at boot: same ports, same environment (the
 * run's marks, the lane's `DATABASE_URL`), health-checked. Its log file starts afresh.
 */
export async function restartLaneServer(ctx: BootContext, key: LaneKey, lane: Lane, name: string, signal: AbortSignal): Promise<StartedServer> {
  const def = markedDefinitions(ctx).find((server) => server.name === name);
  if (!def) throw new Error(`lane ${describeLane(key)} has no server named "${name}"`);
  const serverCtx = { project: key.project, ports: lane.ports, urls: { ...lane.urls }, ...(lane.databaseUrl ? { databaseUrl: lane.databaseUrl } : {}) };
  const secret = lane.databaseUrl ? passwordOf(lane.databaseUrl) : undefined;
  return startServer(def, serverCtx, { ...startOptions(ctx, laneLogDir(ctx.stateDir, key), secret), signal });
}

/** New ports for a lane whose port was taken by someone else between allocation and start. */
async function reallocatePorts(allocator: PortAllocator, key: LaneKey, names: string[]): Promise<PortAllocation> {
  const worker = key.worker !== undefined ? { worker: key.worker } : {};
  await allocator.releasePortsForProject(key.project, worker);
  return allocator.allocatePortsForProject(key.project, { ...worker, names });
}

/**
 * The server definitions with the marks that let a later run find orphans: the server's name,
 * the run and its owner (set here, not inherited, since the run id may come from an option), and
 * the keep mark of lanes that outlive the run.
 */
function markedDefinitions(ctx: BootContext): ServerDefinition[] {
  const ownerPid = resolveOwnerPid();
  const owner = String(ownerPid);
  const identity = formatIdentityMark(identityOf(ownerPid));
  const stateDir = resolve(ctx.stateDir);
  return (ctx.options.servers ?? []).map((server) => ({
    ...server,
    env: (serverCtx) => ({
      [SERVER_MARK_ENV]: server.name,
      [RUN_ID_ENV]: ctx.runId,
      [OWNER_PID_ENV]: owner,
      [OWNER_IDENTITY_ENV]: identity,
      [STATE_DIR_ENV]: stateDir,
      ...(ctx.outlives ? { [KEEP_ENV]: '1' } : {}),
      ...(typeof server.env === 'function' ? server.env(serverCtx) : server.env),
    }),
  }));
}
