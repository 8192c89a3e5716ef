/**
 * Restarting a lane server that died on its own during the run: in its lane, on the same ports, with
 * the same environment, health-checked as at boot. Its dependents keep running. A server that keeps
 * dying is given up on after {@link MAX_RESTARTS} restarts in the run (one line says so); later tests
 * of its lane then fail with `SERVER_EXITED`, as without restarts.
 */
import { renameSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { messageOf } from '../../errors.js';
import { debugLogger, progress, warn } from '../../log.js';
import { describeExit, type LaneServerStatus } from '../server-status.js';
import { isProcessAlive, type ServerExit, type StartedServer, type StartedServers } from '../../servers/index.js';
import { dependencyDepths } from '../../servers/graph.js';
import { describeLane, type LaneKey } from '../../state/index.js';
import { restartLaneServer, type BootContext } from './boot.js';
import type { Lane } from '../lane.js';

const debug = debugLogger('lanes');

/** How many times one server is restarted in a run, at most (failed starts count). */
export const MAX_RESTARTS = 3;

/** How long a status request waits for a dead server's last output to reach its log. */
const EXIT_WAIT_MS = 2_000;

/** Pause between a failed restart and the next one. */
const RETRY_PAUSE_MS = 250;

/** A death of a server that was restarted since: its old process and the log it wrote. */
export interface PastDeath {
  name: string;
  pid: number;
  logFile: string;
  exit: ServerExit;
  /** When it died (ms since the epoch). */
  at: number;
  /** Whether its log ends with the error of a session ended under it (read once: the status is asked after every test). */
  endedSession?: Promise<boolean>;
}

/** A lane that is up in this run, with its servers. */
export interface RunningLane {
  lane: Lane;
  servers: StartedServers;
  /** Servers that died on their own while the lane was up and are not up again, by name. */
  deaths: Map<string, ServerExit>;
  /** Restarts of its servers that died. */
  restarts?: LaneRestarts;
  /** True once the lane's database was swapped (its servers' sessions ended). */
  swapped?: boolean;
}

/** What a running lane knows of its servers' restarts. */
export interface LaneRestarts {
  /** Restarts in progress, by server name. */
  inProgress: Map<string, Promise<void>>;
  /** Restarts tried in this run (failed starts included), by server name. */
  counts: Map<string, number>;
  /** Servers no longer restarted. */
  givenUp: Set<string>;
  /** When each server that is dead now died (ms since the epoch). */
  diedAt: Map<string, number>;
  /** Where the log of each server that is dead now was kept when its restart began. */
  deadLogs: Map<string, string>;
  /** Deaths of servers that were restarted since. */
  past: PastDeath[];
}

/** The restart records of `running` (created on first use). */
export function laneRestarts(running: RunningLane): LaneRestarts {
  running.restarts ??= { inProgress: new Map(), counts: new Map(), givenUp: new Set(), diedAt: new Map(), deadLogs: new Map(), past: [] };
  return running.restarts;
}

/** What a restart needs of its run. */
export interface RestartContext {
  boot: BootContext;
  /** Aborted when the run's teardown begins. */
  signal: AbortSignal;
  /** True once the run's teardown has begun. */
  closing(): boolean;
  /** Called with the new process once it is healthy and part of the lane. */
  started(server: StartedServer): Promise<void>;
}

/** What watching a lane's servers for deaths needs of its run. */
export interface DeathWatch {
  boot: BootContext;
  /** Aborted when the run's teardown begins. */
  signal: AbortSignal;
  /** True once the run's teardown has begun. */
  closing(): boolean;
  /** Guards a restarted server's process group as the run guards its servers'. */
  guard(server: StartedServer): void;
  /** Points the lane's record of a restarted server at its new process. */
  recordServer(key: LaneKey, server: StartedServer): Promise<void>;
}

/**
 * Watches `server` of a running lane: when it dies on its own its death is recorded and reported
 * (one line with its log), and it is restarted (see {@link restartDeadServer}), the new process
 * watched in turn.
 */
export function watchDeaths(watch: DeathWatch, key: LaneKey, running: RunningLane, server: StartedServer): void {
  void server.exited.then((exit) => {
    if (exit.stopped) return;
    running.deaths.set(server.name, exit);
    const again = !watch.closing() && !laneRestarts(running).givenUp.has(server.name);
    warn(`server "${server.name}" of ${describeLane(key)} (pid ${server.pid}) died during the run: ${describeExit(exit)}. Log: ${server.logFile}${again ? '. Restarting it' : ''}`);
    const started = async (restarted: StartedServer): Promise<void> => {
      watch.guard(restarted);
      watchDeaths(watch, key, running, restarted);
      await watch.recordServer(key, restarted);
    };
    void restartDeadServer({ boot: watch.boot, signal: watch.signal, closing: () => watch.closing(), started }, key, running, server);
  });
}

/**
 * Records `dead`'s death in its lane and restarts it (unless the run is closing or the server was
 * given up on). Settles once the server is up again or given up on; never rejects.
 */
export function restartDeadServer(ctx: RestartContext, key: LaneKey, running: RunningLane, dead: StartedServer): Promise<void> {
  const restarts = laneRestarts(running);
  restarts.diedAt.set(dead.name, Date.now());
  if (ctx.closing()) return Promise.resolve();
  // The dead process's log is kept beside the new one (which starts afresh), at once: a status
  // asked for right after the death already names where it is.
  restarts.deadLogs.set(dead.name, keepLog(dead.logFile, (restarts.counts.get(dead.name) ?? 0) + 1));
  const restart = restartLoop(ctx, key, running, dead).catch((error: unknown) => debug('restart of %s in %s failed: %O', dead.name, describeLane(key), error));
  restarts.inProgress.set(dead.name, restart);
  void restart.finally(() => {
    if (restarts.inProgress.get(dead.name) === restart) restarts.inProgress.delete(dead.name);
  });
  return restart;
}

async function restartLoop(ctx: RestartContext, key: LaneKey, running: RunningLane, dead: StartedServer): Promise<void> {
  const restarts = laneRestarts(running);
  const name = dead.name;
  const defs = ctx.boot.options.servers ?? [];
  // Its dependencies first, when they are being restarted too.
  await Promise.allSettled((defs.find((def) => def.name === name)?.dependsOn ?? []).map((dep) => restarts.inProgress.get(dep)));
  const count = restarts.counts.get(name) ?? 0;
  const kept = restarts.deadLogs.get(name) ?? dead.logFile;
  let lastError: unknown;
  for (let attempt = count + 1; attempt <= MAX_RESTARTS; attempt++) {
    if (ctx.closing()) return;
    restarts.counts.set(name, attempt);
    try {
      const server = await restartLaneServer(ctx.boot, key, running.lane, name, ctx.signal);
      if (ctx.closing()) {
        await server.stop();
        return;
      }
      const exit = running.deaths.get(name);
      if (exit) restarts.past.push({ name, pid: dead.pid, logFile: kept, exit, at: restarts.diedAt.get(name) ?? Date.now() });
      running.deaths.delete(name);
      restarts.diedAt.delete(name);
      restarts.deadLogs.delete(name);
      running.servers = withServer(running.servers, server, defs, key.project);
      running.lane.logFiles[name] = server.logFile;
      await ctx.started(server);
      progress(`server "${name}" of ${describeLane(key)} restarted on the same ports (pid ${server.pid}; restart ${attempt} of at most ${MAX_RESTARTS} in this run)`);
      return;
    } catch (error) {
      lastError = error;
      if (ctx.closing()) return;
      debug('restart %d of %s in %s failed: %O', attempt, name, describeLane(key), error);
      await sleep(RETRY_PAUSE_MS);
    }
  }
  restarts.givenUp.add(name);
  const why = lastError === undefined ? 'it kept dying' : `the last start failed: ${messageOf(lastError).split('\n')[0]!.replace(/\.$/, '')}`;
  warn(`server "${name}" of ${describeLane(key)} is not restarted again: it was restarted ${MAX_RESTARTS} times in this run (${why}). Later tests of this lane fail with SERVER_EXITED.`);
}

/** Renames a dead server's log to `<name>.died-<n>.log` (beside it); the path it is at now. */
function keepLog(logFile: string, n: number): string {
  const kept = join(dirname(logFile), `${basename(logFile, '.log')}.died-${n}.log`);
  try {
    renameSync(logFile, kept);
    return kept;
  } catch (error) {
    debug('could not keep the log %s: %O', logFile, error);
    return logFile;
  }
}

/** `servers` with `server` in place of the one of the same name; `stopAll()` stops the current ones, dependents first. */
function withServer(servers: StartedServers, server: StartedServer, defs: Parameters<typeof dependencyDepths>[0], project: string): StartedServers {
  const list = servers.map((other) => (other.name === server.name ? server : other));
  const depths = dependencyDepths(defs, project);
  let stopping: Promise<void> | undefined;
  const stopAll = (): Promise<void> =>
    (stopping ??= (async () => {
      const levels = [...new Set(list.map((one) => depths.get(one.name) ?? 0))].sort((a, b) => b - a);
      const errors: unknown[] = [];
      for (const level of levels) {
        const results = await Promise.allSettled(list.filter((one) => (depths.get(one.name) ?? 0) === level).map((one) => one.stop()));
        for (const result of results) if (result.status === 'rejected') errors.push(result.reason);
      }
      if (errors.length > 0) throw errors[0];
    })());
  return Object.assign(list, { stopAll, [Symbol.asyncDispose]: stopAll });
}

/**
 * The servers of a running lane with those that died on their own (and those restarted since, so
 * the test that was running then fails). A server found dead is given a moment to finish its log.
 */
export async function serverStatuses(running: RunningLane): Promise<LaneServerStatus[]> {
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
      if (exit && running.swapped && (await endedSessionIn(status.logFile))) status.afterSwap = true;
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
  const past = await Promise.all(
    (running.restarts?.past ?? []).map(async (death): Promise<LaneServerStatus> => ({
      name: death.name,
      pid: death.pid,
      logFile: death.logFile,
      exit: { code: death.exit.code, signal: death.exit.signal },
      diedAt: new Date(death.at).toISOString(),
      restarted: true,
      ...(running.swapped && (await (death.endedSession ??= endedSessionIn(death.logFile))) ? { afterSwap: true } : {}),
    })),
  );
  return [...current, ...past];
}

/** What PostgreSQL says to a session it ends (`57P01`), as a server's log shows it. */
const ENDED_SESSION = /terminating connection due to administrator command|\b57P01\b/;
/** Lines of an error's dump that may follow its message: blank, indented (stack, fields), braces, Node's footer. */
const DUMP_LINE = /^(?:\s*$|\s+\S|[{}[\]]|Node\.js v\d|Emitted 'error' event|\^+$)/;
/** A log line's time stamp, as the log writer puts it in front. */
const STAMP = /^\d{4}-\d\d-\d\dT[\d:.]+Z /;
/** How much of the end of a dead server's log is read. */
const LOG_TAIL_BYTES = 64 * 1024;

/**
 * Whether a dead server's log ends with the error of a database session ended under it (the
 * message, then nothing but the rest of the error's dump): then a reset (a swap ends the lane's
 * sessions) is the likely cause of its death. A line the app printed about such an error earlier
 * (a pool's 'error' listener that logs and goes on) does not count, nor does a death by exit or
 * crash printed after it.
 */
export async function endedSessionIn(logFile: string): Promise<boolean> {
  const file = await open(logFile, 'r').catch(() => undefined);
  if (!file) return false;
  try {
    const { size } = await file.stat();
    const length = Math.min(size, LOG_TAIL_BYTES);
    const { buffer } = await file.read(Buffer.alloc(length), 0, length, size - length);
    const lines = buffer.toString('utf8').split('\n').map((line) => line.replace(STAMP, ''));
    const last = lines.findLastIndex((line) => ENDED_SESSION.test(line));
    return last >= 0 && lines.slice(last + 1).every((line) => DUMP_LINE.test(line));
  } catch {
    return false;
  } finally {
    await file.close();
  }
}

/**
 * Waits until the lane's servers found dead have been noted and their restarts in progress have
 * ended (up again, or given up on), so a test starts on a healthy lane.
 */
export async function settleServers(running: RunningLane): Promise<void> {
  await Promise.all(running.servers.map((server) => (isProcessAlive(server.pid) ? undefined : Promise.race([server.exited, sleep(EXIT_WAIT_MS)]))));
  await Promise.allSettled([...(running.restarts?.inProgress.values() ?? [])]);
}
