import { createHash } from 'node:crypto';
import { LanesError } from '../errors.js';
import { debugLogger, warn } from '../log.js';
import { logTail, postmasterState } from './cluster.js';

const debug = debugLogger('postgres');

/**
 * The embedded servers this process relies on, watched while it holds them: when a postmaster dies
 * mid-run, every later connection to its address with its credentials (the run's own connections;
 * a server of another data folder has another password) fails at once with `EMBEDDED_POSTGRES_DIED` (and
 * the tail of its log) instead of retrying until its deadline, and a connection that reaches a
 * different cluster on the same address (another suite's server that took the freed port) is
 * refused before it is used.
 */

/** How often the postmaster is looked at (a read of /proc on Linux). */
const POLL_MS = 250;

/** What is known of one watched server. */
export interface WatchedServer {
  /** `127.0.0.1:<port>`. */
  readonly address: string;
  /** `system_identifier` of the cluster (pg_control_system()), as text. */
  readonly systemIdentifier: string;
  /**
   * A signal for one use (a connection and its retries), aborted when the server dies, and the
   * function that ends the use. Each use gets its own signal: many uses at once waiting on one
   * shared signal would add a listener each (Node warns past 10, `MaxListenersExceededWarning`).
   */
  use(): { signal: AbortSignal; done(): void };
  /** The error every later use gets, once the server died. */
  died(): LanesError | undefined;
}

interface Entry extends WatchedServer {
  users: number;
  stop(): void;
}

const watched = new Map<string, Entry>();

/** The facts of an embedded server to watch. */
export interface WatchTarget {
  port: number;
  /** The superuser's password: connections with it are the ones that rely on this server. */
  password: string;
  postmasterPid: number;
  dataDir: string;
  logFile: string;
  systemIdentifier: string;
}

/**
 * Starts watching an embedded server (or counts one more holder of a watch already running).
 * Returns the function that stops this holder's watch; the last one stops the timer.
 */
export function watchEmbeddedServer(target: WatchTarget): () => void {
  const key = keyOf('127.0.0.1', target.port, target.password);
  const existing = watched.get(key);
  if (existing && existing.systemIdentifier === target.systemIdentifier && !existing.died()) {
    existing.users++;
    return once(() => unwatch(key, existing));
  }
  existing?.stop();
  /** The signals of the uses under way: aborted with the server's death. */
  const uses = new Set<AbortController>();
  let death: LanesError | undefined;
  let checking = false;
  const timer = setInterval(() => {
    if (checking || death) return;
    checking = true;
    void postmasterState(target.postmasterPid, target.dataDir)
      .then(async (state) => {
        if (state === 'running' || death) return;
        const tail = await logTail(target.logFile, 0, 20);
        death = new LanesError(
          'EMBEDDED_POSTGRES_DIED',
          `The embedded PostgreSQL server (pid ${target.postmasterPid}, port ${target.port}, ${target.dataDir}) died during the run` +
            `${state === 'foreign' ? ' (its pid now belongs to another process)' : ''}: nothing of this run can use it any more.` +
            `${tail ? `\nLast lines of ${target.logFile}:\n${tail}` : ''}`,
          {
            hint: `Something stopped or killed it (out of memory, a manual kill, a full disk: its log says which). Run the tests again: the next run starts it anew and reaps what this run left.`,
            details: { pid: target.postmasterPid, port: target.port, dataDir: target.dataDir, logFile: target.logFile },
          },
        );
        warn(death.shortMessage);
        for (const use of uses) use.abort(death);
        uses.clear();
        clearInterval(timer);
      })
      .catch((error: unknown) => debug('watching the embedded server %d failed: %O', target.postmasterPid, error))
      .finally(() => {
        checking = false;
      });
  }, POLL_MS);
  timer.unref();
  const entry: Entry = {
    address: addressOf('127.0.0.1', target.port),
    systemIdentifier: target.systemIdentifier,
    use: () => {
      const controller = new AbortController();
      if (death) controller.abort(death);
      else uses.add(controller);
      return { signal: controller.signal, done: () => void uses.delete(controller) };
    },
    died: () => death,
    users: 1,
    stop: () => clearInterval(timer),
  };
  watched.set(key, entry);
  return once(() => unwatch(key, entry));
}

/**
 * Forgets the watch of a server at `port` that died, so that a server started or joined anew on
 * that port (a later run in the same process) can be connected to; handles of the dead one keep
 * failing with its error.
 */
export function forgetDeadServer(port: number, password: string): void {
  const key = keyOf('127.0.0.1', port, password);
  if (watched.get(key)?.died()) watched.delete(key);
}

/** The watched server a connection to `host:port` with `password` relies on, if this process watches one. */
export function watchedServerAt(host: string, port: number, password: string | undefined): WatchedServer | undefined {
  return password === undefined ? undefined : watched.get(keyOf(host, port, password));
}

/** The error for a connection that reached another cluster than the watched one at its address. */
export function foreignServer(server: WatchedServer, found: string): LanesError {
  return new LanesError(
    'EMBEDDED_POSTGRES_DIED',
    `The PostgreSQL server now answering on ${server.address} is not the embedded server of this run (system identifier ${found}, expected ${server.systemIdentifier}): the run's server is gone and another took its port. Nothing was done on it.`,
    { hint: 'Run the tests again: the next run starts its own server anew and reaps what this run left.', details: { address: server.address } },
  );
}

function unwatch(key: string, entry: Entry): void {
  if (--entry.users > 0) return;
  entry.stop();
  if (watched.get(key) === entry) watched.delete(key);
}

/** The map key: the address and a digest of the password (never the password itself). */
function keyOf(host: string, port: number, password: string): string {
  return `${addressOf(host, port)}\0${createHash('sha256').update(password).digest('hex')}`;
}

function addressOf(host: string, port: number): string {
  const normalized = host === 'localhost' || host === '::1' || host === '[::1]' ? '127.0.0.1' : host;
  return `${normalized}:${port}`;
}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}
