import { setTimeout as sleep } from 'node:timers/promises';
import { warn } from '../log.js';
import { logSpaceProblem } from './output.js';
import { resolveServer } from './options.js';
import { isProcessAlive, killProcessGroup } from './process-group.js';
import { waitUntilHealthy } from './readiness.js';
import type { ServerContext, ServerDefinition, ServerExit, StartedServer, StartedServers, StartServerOptions } from './types.js';

/** A server process that is already running (started by an earlier run), as recorded. */
export interface RunningServerRecord {
  name: string;
  /** Process-group leader pid. */
  pid: number;
  logFile: string;
}

/** What {@link attachServers} found: the servers, or why they cannot be used. */
export type Attached = { ok: true; servers: StartedServers } | { ok: false; reason: string };

/** How long one health check of an attached server may take. */
const ATTACH_HEALTH_MS = 3_000;
/** How often an attached server's process is checked for life (it is not this process's child). */
const EXIT_POLL_MS = 250;

/**
 * Takes over servers an earlier run started and left running: each definition must have a
 * recorded process, alive (per `isOurs`, which checks the process's own marks) and answering its
 * health check now. The result behaves as `startServers` returns it: `stop()` ends the process
 * group with the definition's stop signal and timeout, `exited` settles when the process is gone.
 */
export async function attachServers(
  defs: readonly ServerDefinition[],
  ctx: ServerContext,
  records: readonly RunningServerRecord[],
  options: StartServerOptions & { isOurs: (pid: number) => boolean },
): Promise<Attached> {
  const started: StartedServer[] = [];
  for (const def of defs) {
    const record = records.find((candidate) => candidate.name === def.name);
    if (!record) return { ok: false, reason: `its server "${def.name}" was never started` };
    if (!isProcessAlive(record.pid) || !options.isOurs(record.pid)) return { ok: false, reason: `its server "${def.name}" (pid ${record.pid}) is gone` };
    const server = resolveServer(def, ctx, options);
    const exited = watchExit(record.pid);
    const readiness = await waitUntilHealthy({ url: server.healthUrl, timeout: ATTACH_HEALTH_MS, exited: exited.promise.then(() => ({ code: null, signal: null })) });
    if (readiness.kind !== 'healthy') {
      exited.stop();
      const problem = readiness.kind === 'exited' ? 'exited' : readiness.kind === 'unhealthy' ? `answers ${readiness.status}` : `does not answer its health check (${readiness.lastProblem})`;
      return { ok: false, reason: `its server "${def.name}" (pid ${record.pid}) ${problem}` };
    }
    if (server.url !== undefined) ctx.urls[def.name] = server.url;
    // It writes its log itself: a full device would cut the log short without anyone seeing it.
    const logProblem = logSpaceProblem(record.logFile);
    if (logProblem) warn(`${server.label} ${logProblem}.`);
    let stopping: Promise<void> | undefined;
    let stopped = false;
    const stop = (): Promise<void> =>
      (stopping ??= (async () => {
        stopped = true;
        await killProcessGroup(record.pid, { signal: server.stopSignal, timeout: server.stopTimeout });
        exited.stop();
      })());
    started.push({
      name: def.name,
      project: ctx.project,
      pid: record.pid,
      port: server.port,
      url: server.url,
      logFile: record.logFile,
      exited: exited.promise.then((): ServerExit => ({ code: null, signal: null, stopped })),
      logProblem: () => logSpaceProblem(record.logFile),
      stop,
      [Symbol.asyncDispose]: stop,
    });
  }
  const stopAll = async (): Promise<void> => {
    // Dependents first, as startServers stops them: the reverse of definition order.
    for (const server of [...started].reverse()) await server.stop();
  };
  return { ok: true, servers: Object.assign(started, { stopAll, [Symbol.asyncDispose]: stopAll }) };
}

/** A promise that settles when `pid` is gone (polled: it is not a child), and a way to stop polling. */
function watchExit(pid: number): { promise: Promise<void>; stop: () => void } {
  const controller = new AbortController();
  const promise = (async () => {
    while (!controller.signal.aborted && isProcessAlive(pid)) {
      await sleep(EXIT_POLL_MS, undefined, { signal: controller.signal, ref: false }).catch(() => undefined);
    }
  })();
  return { promise, stop: () => controller.abort() };
}
