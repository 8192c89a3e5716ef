import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import createDebug from 'debug';
import { PORT_RANGE_ENV } from '../env-vars.js';
import { LanesError } from '../errors.js';
import { findPortInUse } from '../ports/probe.js';
import { redactText } from '../redact.js';
import { resolveServer, type ResolvedServer } from './options.js';
import { OutputSink, TAIL_LINES } from './output.js';
import { killProcessGroup } from './process-group.js';
import { waitUntilHealthy, type ExitInfo, type Readiness } from './readiness.js';
import type { ServerContext, ServerDefinition, ServerExit, StartedServer, StartServerOptions } from './types.js';

const log = createDebug('e2e-lanes:servers');

/** How long to wait for the output pipes to drain once the process group is gone. */
const DRAIN_MS = 1_000;

/**
 * Starts one server of a lane in its own process group and waits until it is healthy.
 *
 * Fails with `SERVER_PORT_IN_USE` if something already listens on its port, `SERVER_EXITED` if the
 * process ends first, `SERVER_START_TIMEOUT` if health never answers 2xx/3xx in time; in every case
 * the process group is killed before the promise rejects.
 */
export async function startServer(def: ServerDefinition, ctx: ServerContext, options: StartServerOptions): Promise<StartedServer> {
  const server = resolveServer(def, ctx, options);
  options.signal?.throwIfAborted();
  if (server.port !== undefined && !server.adopt) await assertPortFree(server, server.port);
  options.signal?.throwIfAborted();

  const sink = new OutputSink(server);
  let child: ChildProcess;
  try {
    child = spawnGroup(server, sink);
  } finally {
    sink.spawned();
  }
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.on('error', (error) => resolve({ code: null, signal: null, error }));
  });
  const closed = once(child, 'close').then(() => {}, () => {});
  sink.attach(child.stdout, 'stdout');
  sink.attach(child.stderr, 'stderr');

  const pid = child.pid;
  if (pid === undefined) {
    const exit = await exited;
    await sink.close();
    throw startFailure(server, { kind: 'exited', polls: 0, exit }, sink.tail());
  }
  log('%s spawned pid %d: %s', server.label, pid, redactText(describeCommand(server), server.secrets));
  void exited.then(({ code, signal }) => log('%s pid %d exited (code %s, signal %s)', server.label, pid, code, signal));

  let stopping: Promise<void> | undefined;
  // Settles once the process is gone and what it printed is in the log file (grandchildren that
  // keep the pipes open are waited for at most DRAIN_MS).
  const ended: Promise<ServerExit> = exited.then(async ({ code, signal }) => {
    const stopped = stopping !== undefined;
    await Promise.race([closed, sleep(DRAIN_MS)]);
    await sink.flush();
    return { code, signal, stopped };
  });
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await killProcessGroup(pid, { signal: server.stopSignal, timeout: server.stopTimeout });
      await Promise.race([closed, sleep(DRAIN_MS)]);
      await sink.close();
      log('%s stopped', server.label);
    })());

  let readiness: Readiness;
  const boot = booting.enter();
  try {
    readiness = await waitUntilHealthy({ url: server.healthUrl, timeout: server.timeout, unhealthyAfter: server.unhealthyAfterMs, exited, signal: options.signal });
  } catch (error) {
    boot.leave();
    await stop();
    throw error;
  }
  const crowd = boot.leave();
  if (readiness.kind !== 'healthy') {
    await stop();
    throw startFailure(server, readiness, sink.tail(), pid, crowd);
  }
  log('%s healthy after %d poll(s)', server.label, readiness.polls);

  return {
    name: server.name,
    project: server.project,
    pid,
    port: server.port,
    url: server.url,
    logFile: server.logFile,
    exited: ended,
    logProblem: () => sink.problem(),
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/**
 * How many servers of this process are waiting to become healthy, and the most that were at once
 * while one server waited: a timeout on a crowded machine says so. @internal
 */
const booting = (() => {
  let now = 0;
  const watchers = new Set<{ most: number }>();
  return {
    enter(): { leave(): number } {
      now++;
      const mine = { most: now };
      for (const watcher of watchers) watcher.most = Math.max(watcher.most, now);
      watchers.add(mine);
      let left = false;
      return {
        leave(): number {
          if (!left) {
            left = true;
            now--;
            watchers.delete(mine);
          }
          return mine.most;
        },
      };
    },
  };
})();

/** @internal */
async function assertPortFree(server: ResolvedServer, port: number): Promise<void> {
  const inUse = await findPortInUse(port);
  if (!inUse) return;
  throw new LanesError(
    'SERVER_PORT_IN_USE',
    `Port ${port} of server "${server.name}" for project "${server.project}" is already in use (${inUse.host}:${port} ${inUse.how}); it was not started.`,
    {
      hint: `Stop the process that holds port ${port} (e.g. \`lsof -i :${port}\`), or run \`npx e2e-lanes gc\` if it is left over from an earlier run.`,
      details: { project: server.project, server: server.name, port, host: inUse.host },
    },
  );
}

/**
 * Spawns in a new process group, stdin ignored, without holding the parent's event loop; stdout
 * and stderr are pipes to `sink`, or with `output: 'file'` to its detached log writer. @internal
 */
function spawnGroup(server: ResolvedServer, sink: OutputSink): ChildProcess {
  const child = spawn(server.file, server.args, {
    cwd: server.cwd,
    env: server.env,
    shell: server.shell,
    detached: true,
    stdio: sink.stdio(),
  });
  child.unref();
  for (const stream of [child.stdout, child.stderr]) {
    (stream as unknown as { unref?: () => void } | null)?.unref?.();
  }
  return child;
}

/**
 * Whether the log shows that binding `port` failed: a line with EADDRINUSE that names the port, or
 * is followed within a few lines by one that does (Node prints the error's `port: N` below it). @internal
 */
function bindFailed(tail: string[], port: number): boolean {
  const names = new RegExp(`(?<!\\d)${port}(?!\\d)`);
  return tail.some((line, index) => line.includes('EADDRINUSE') && tail.slice(index, index + BIND_ERROR_LINES).some((near) => names.test(near)));
}

/** How many lines from an EADDRINUSE line on may name the port. */
const BIND_ERROR_LINES = 10;

/** @internal */
function describeCommand(server: ResolvedServer): string {
  return [server.file, ...server.args].join(' ');
}

/** What a server's readiness waited for, in words, and what to check. */
function describeReadiness(target: string | undefined): { what: string; check: string } {
  if (target?.startsWith('tcp://')) {
    const { hostname, port } = new URL(target);
    return { what: `accept TCP connections on ${hostname}:${port}`, check: `Check that the server listens on ${hostname} at the port it gets as PORT (${port})` };
  }
  if (target?.startsWith('file://')) {
    const file = fileURLToPath(target);
    return { what: `create ${file}`, check: `Check that the server writes ${file} when it is ready (health: { file } is relative to its cwd)` };
  }
  const port = target ? new URL(target).port : '?';
  return { what: `answer GET ${target} with 2xx/3xx`, check: `Check that the server listens on 127.0.0.1 at the port it gets as PORT (${port}) and that GET ${target} answers 2xx/3xx` };
}

/** The error for a server that did not become healthy. @internal */
function startFailure(server: ResolvedServer, readiness: Exclude<Readiness, { kind: 'healthy' }>, tail: string[], pid?: number, crowd = 1): LanesError {
  const who = `Server "${server.name}" for project "${server.project}"`;
  const polled = server.healthUrl === undefined ? '' : ` (waited to ${describeReadiness(server.healthUrl).what})`;
  const logPart = `${tail.length === 0 ? 'Its log is empty.' : `Last ${Math.min(tail.length, TAIL_LINES)} log lines:\n${tail.map((line) => `  | ${line}`).join('\n')}`}\nLog: ${server.logFile}`;
  const details = { project: server.project, server: server.name, url: server.healthUrl, logFile: server.logFile, pid, polls: readiness.polls };

  if (readiness.kind === 'timeout') {
    const seconds = server.timeout / 1000;
    const awaited = describeReadiness(server.healthUrl);
    const cores = availableParallelism();
    const load = `${crowd} server${crowd === 1 ? ' was' : 's were'} starting at once on ${cores} core${cores === 1 ? '' : 's'}`;
    const message = `${who} did not ${awaited.what} within ${seconds} s (last attempt: ${readiness.lastProblem}; ${readiness.polls} polls; ${load}).\n${logPart}`;
    const notFound = /^answered HTTP 404\b/.test(readiness.lastProblem)
      ? `It is up but answers 404 at ${server.healthUrl}: set \`health\` of "${server.name}" to a path it serves with 2xx/3xx, or \`health: 'tcp'\` for a server with no such GET route. `
      : '';
    const slow = crowd > cores ? `fewer servers booting at once (fewer \`workers\`, or \`reuse\` locally) or a higher \`timeout\` of "${server.name}"` : `a higher \`timeout\` of "${server.name}"`;
    return new LanesError('SERVER_START_TIMEOUT', redactText(message, server.secrets), {
      hint: `${notFound}${awaited.check}; if it is only slow, ${slow} helps.`,
      details: { ...details, timeout: server.timeout, lastProblem: readiness.lastProblem, startingAtOnce: crowd, cores },
    });
  }

  if (readiness.kind === 'unhealthy') {
    const seconds = Math.round(readiness.forMs / 100) / 10;
    const body = readiness.body.trim() === '' ? 'an empty body' : `body ${JSON.stringify(readiness.body.trim())}`;
    const message = `${who} answered GET ${server.healthUrl} with nothing but 5xx for ${seconds} s (${readiness.polls} polls); last answer: HTTP ${readiness.status}, ${body}. Gave up before its timeout of ${server.timeout / 1000} s.\n${logPart}`;
    return new LanesError('SERVER_UNHEALTHY', redactText(message, server.secrets), {
      hint: `The server is up but its health path fails: fix the error in its log (a 5xx is a bug, not a slow start). If it answers 5xx for a while on purpose while it warms up, raise \`unhealthyAfterMs\` of "${server.name}" or set it to false.`,
      details: { ...details, status: readiness.status, body: redactText(readiness.body, server.secrets), unhealthyForMs: readiness.forMs },
    });
  }

  const { code, signal, error } = readiness.exit;
  if (!error && server.port !== undefined && bindFailed(tail, server.port)) {
    return new LanesError(
      'SERVER_PORT_IN_USE',
      redactText(`Port ${server.port} of server "${server.name}" for project "${server.project}" was taken by another process after it was checked: the server exited (${signal ?? `code ${code}`}) and its log shows EADDRINUSE on port ${server.port}.\n${logPart}`, server.secrets),
      {
        hint: `Another process bound port ${server.port} between the check and the server's own bind; a lane retries with new ports. If it keeps happening, keep other programs out of the port range (\`portRange\`, ${PORT_RANGE_ENV}).`,
        details: { ...details, port: server.port, exitCode: code, signal },
      },
    );
  }
  const how = error
    ? `could not be started (${error.message})`
    : signal
      ? `was killed by ${signal} before it was healthy`
      : `exited with code ${code} before it was healthy`;
  return new LanesError('SERVER_EXITED', redactText(`${who} ${how}${polled}.\n${logPart}`, server.secrets), {
    hint: `Check \`command\` and \`cwd\` of "${server.name}" (${server.cwd}) and the log above; run the command by hand with the same environment to see why it stops.`,
    cause: error,
    details: { ...details, exitCode: code, signal },
  });
}
