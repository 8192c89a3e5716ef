/** What a lane knows when it starts its servers. */
export interface ServerContext {
  /** The Playwright project the lane belongs to, e.g. `'chromium-a'`. Used in labels and messages. */
  project: string;
  /** The lane's named ports, e.g. `{ backend: 4100, frontend: 4101 }`. */
  ports: Record<string, number>;
  /** The lane's `DATABASE_URL`. It contains a password: it is never logged, and its password is redacted from server logs. */
  databaseUrl?: string;
  /**
   * URLs of the servers that are up, by server name, e.g. `{ backend: 'http://localhost:4100' }`.
   * {@link startServers} fills it in as each server becomes healthy, so the `env` function of a
   * dependent server can read the URL of the server it depends on.
   */
  urls: Record<string, string>;
}

/** One process of a lane (e.g. a backend or a frontend) and how to tell that it is ready. */
export interface ServerDefinition {
  /** Unique name within the lane, e.g. `'backend'`. Names the log file (`<name>.log`) and the `dependsOn` target. */
  name: string;
  /**
   * The command. A string is run through the shell (`/bin/sh -c`); an array is `[file, ...args]`
   * and is run without a shell.
   */
  command: string | string[];
  /**
   * Working directory of the process.
   * @default process.cwd()
   */
  cwd?: string;
  /**
   * Extra environment variables, applied last (they override the lane's variables). A function
   * receives the lane's context, e.g. `({ urls }) => ({ API_URL: urls.backend })`.
   * @default {}
   */
  env?: Record<string, string> | ((ctx: ServerContext) => Record<string, string>);
  /**
   * `.env` file(s) whose variables the server gets, relative to `cwd`, later files winning. They
   * come after the inherited environment and before the lane's variables (`PORT`, `<NAME>_PORT`,
   * `<NAME>_URL`, `DATABASE_URL` and the other database variables), which always win: a file
   * that sets one of those gets a warning naming the file and the variable (never its value).
   * @default none
   */
  envFile?: string | string[];
  /**
   * Which named port of the lane (a key of {@link ServerContext.ports}) the process listens on. It gets it as `PORT`.
   * @default the server's `name`, if the lane has a port of that name; otherwise the server has no port
   */
  port?: string;
  /**
   * When the server counts as ready:
   * - an HTTP path, polled with GET on the server's URL and the path (`http://localhost:<port><health>`); any 2xx or 3xx answer means healthy;
   * - `'tcp'`: its port accepts TCP connections (a websocket or gRPC service, a worker with an admin port);
   * - `{ file }`: the file exists (relative to `cwd`; a server without a port can write it when ready);
   * - `false`: as soon as it is spawned.
   * @default '/'
   */
  health?: string | false | { file: string };
  /**
   * Milliseconds the server has to become healthy.
   * @default 60_000 (as Playwright's `webServer`)
   */
  timeout?: number;
  /**
   * Give up early on a server that is up but broken: once every health check for this many
   * milliseconds was answered with a 5xx, the start fails with `SERVER_UNHEALTHY` (with the last
   * answer's status and the start of its body) instead of waiting for `timeout`. Any other
   * outcome (connection refused, 2xx-4xx) starts the count again. `false` waits for `timeout`.
   * @default 5_000
   */
  unhealthyAfterMs?: number | false;
  /**
   * Names of servers of the same lane that must be healthy before this one starts.
   * @default []
   */
  dependsOn?: string[];
  /**
   * Signal sent to the process group to stop it gracefully.
   * @default 'SIGTERM'
   */
  stopSignal?: NodeJS.Signals;
  /**
   * Milliseconds to wait after `stopSignal` before the whole process group is killed with SIGKILL.
   * @default 5_000
   */
  stopTimeout?: number;
}

/** Options of {@link startServer} and {@link startServers}. */
export interface StartServerOptions {
  /** Folder of the log files (`<logDir>/<name>.log`). Created if missing. Required. */
  logDir: string;
  /**
   * Also print each output line to the console, prefixed `[project:name]`.
   * @default false
   */
  debug?: boolean;
  /**
   * Strings to replace with `***` in every logged line. The password of
   * {@link ServerContext.databaseUrl} is always added.
   * @default []
   */
  secrets?: string[];
  /**
   * Aborts starting: the process group is killed and the promise rejects with the signal's reason.
   * It has no effect once the server is started; use `stop()` then.
   * @default undefined
   */
  signal?: AbortSignal;
  /**
   * Skip the "port already in use" check. Only for a caller that knows the port is held by its own
   * lane's recorded process group (e.g. it is being replaced); nothing checks that claim. Without it,
   * a port someone already listens on fails with `SERVER_PORT_IN_USE`: a foreign server is never reused.
   * @default false
   */
  adopt?: boolean;
  /**
   * Where the server's stdout and stderr go.
   * - `'pipe'`: this process reads them line by line: each line is redacted (see `secrets`), written
   *   to the log file, kept for error messages and, with `debug`, printed. The server cannot outlive
   *   this process: once it is gone, the server's next write fails (EPIPE).
   * - `'file'`: the log file is opened and handed to the server as its stdout and stderr, so the
   *   server writes there itself and can outlive this process (lanes kept after their run).
   *   **Nothing is redacted then** and `debug` prints nothing: what the server prints, secrets
   *   included, lands in the log file as is. Error messages still show the log's last lines, redacted.
   * @default 'pipe'
   */
  output?: 'pipe' | 'file';
  /**
   * The host of the server's URL, its health check and the `<NAME>_URL` variables. `'localhost'`
   * lets cookies set for `domain: "localhost"` come back; `'127.0.0.1'` is for clients that take
   * only the first address of `localhost` (::1 on some systems) and do not fall back to 127.0.0.1.
   * The server listens on 127.0.0.1 either way (`localhost` reaches it).
   * @default 'localhost'
   */
  host?: '127.0.0.1' | 'localhost';
}

/** How a started server's process ended. */
export interface ServerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when `stop()` ended it; false when it died by itself (or was killed by someone else). */
  stopped: boolean;
}

/** A running server. It owns its process group: `stop()` (or `await using`) ends every process in it. */
export interface StartedServer extends AsyncDisposable {
  /** The definition's name. */
  readonly name: string;
  /** The project of the lane. */
  readonly project: string;
  /** Pid of the process-group leader (the spawned process); the group id is the same number. */
  readonly pid: number;
  /** The port it listens on, or `undefined` for a server without a port. */
  readonly port: number | undefined;
  /** `http://localhost:<port>` (or `http://127.0.0.1:<port>` with `host: '127.0.0.1'`), or `undefined` for a server without a port. */
  readonly url: string | undefined;
  /** Absolute path of its log file. */
  readonly logFile: string;
  /**
   * Settles when the server's process has exited, for whatever reason, and its output has been
   * written to the log file (waiting at most about a second for grandchildren holding the pipes).
   */
  readonly exited: Promise<ServerExit>;
  /**
   * Why its log file is incomplete (it could not be written from some time on, or the device that
   * holds it is full), in words; undefined while it is whole.
   */
  logProblem(): string | undefined;
  /** Sends `stopSignal` to the group, waits up to `stopTimeout`, then SIGKILLs the group. Idempotent. */
  stop(): Promise<void>;
  /** Same as {@link StartedServer.stop}. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** The servers of a lane, in definition order, plus a way to stop them all. */
export type StartedServers = StartedServer[] & {
  /** Stops the servers in reverse dependency order (dependents first; independent ones in parallel). Idempotent. */
  stopAll(): Promise<void>;
  /** Same as `stopAll()`. */
  [Symbol.asyncDispose](): Promise<void>;
};

/** Options of {@link killProcessGroup}. */
export interface KillProcessGroupOptions {
  /**
   * The first, graceful signal.
   * @default 'SIGTERM'
   */
  signal?: NodeJS.Signals;
  /**
   * Milliseconds to wait for the group to be gone after `signal`, before SIGKILL.
   * @default 5_000
   */
  timeout?: number;
}
