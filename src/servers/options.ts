import { constants } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { LanesError } from '../errors.js';
import { readEnvFiles, isEnvFileOption, type EnvFile } from '../env-files.js';
import { warn } from '../log.js';
import { pointEnvAt } from '../postgres/app-env.js';
import { passwordOf } from '../redact.js';
import { PRIVATE_RUNNER_ENV } from './private-env.js';
import type { ServerContext, ServerDefinition, StartServerOptions } from './types.js';

/** The defaults of {@link ServerDefinition}, in one place. */
export const SERVER_DEFAULTS = {
  health: '/',
  timeout: 60_000,
  stopSignal: 'SIGTERM',
  stopTimeout: 5_000,
  unhealthyAfterMs: 5_000,
} as const satisfies Partial<ServerDefinition>;

/** A definition with every default applied and its environment computed. */
export interface ResolvedServer {
  name: string;
  project: string;
  /** `[project:name]`, the console prefix and the label in messages. */
  label: string;
  file: string;
  args: string[];
  shell: boolean;
  cwd: string;
  env: Record<string, string>;
  port: number | undefined;
  url: string | undefined;
  healthUrl: string | undefined;
  timeout: number;
  /** Give up after this long of 5xx answers only; undefined: never before `timeout`. */
  unhealthyAfterMs: number | undefined;
  stopSignal: NodeJS.Signals;
  stopTimeout: number;
  logFile: string;
  debug: boolean;
  secrets: string[];
  adopt: boolean;
  output: 'pipe' | 'file';
}

/** Host names lane URLs may use. */
export const LANE_HOSTS = ['localhost', '127.0.0.1'] as const;
export type LaneHost = (typeof LANE_HOSTS)[number];

/**
 * The host of lane URLs when none is configured: `localhost`, so that cookies an app sets for
 * `domain: "localhost"` come back. Servers still listen on 127.0.0.1, which `localhost` reaches
 * whichever family it resolves to first: browsers and Node's HTTP clients (Node 20 and later) try
 * every address of a name, and a refused ::1 falls back to 127.0.0.1 at once.
 */
export const DEFAULT_LANE_HOST: LaneHost = 'localhost';

/** `http://localhost:<port>` by default, or `http://127.0.0.1:<port>`. */
export function loopbackUrl(port: number, host: LaneHost = DEFAULT_LANE_HOST): string {
  return `http://${host}:${port}`;
}

/** Rejects a host that lane URLs cannot use, naming `where` it is configured; undefined is the default. */
export function checkLaneHost(host: unknown, where: string): LaneHost {
  if (host === undefined) return DEFAULT_LANE_HOST;
  if (typeof host === 'string' && (LANE_HOSTS as readonly string[]).includes(host)) return host as LaneHost;
  throw new LanesError('INVALID_OPTION', `Invalid ${where} ${JSON.stringify(host)}.`, {
    hint: "Use 'localhost' (the default) or '127.0.0.1' (for clients that do not fall back from ::1 to 127.0.0.1); servers must listen on 127.0.0.1 either way.",
  });
}

/** `api-v2` → `API_V2`, the stem of `<NAME>_PORT` and `<NAME>_URL`. */
export function envName(name: string): string {
  return name.toUpperCase().replace(/[^A-Z0-9]/g, '_');
}

/**
 * Checks what can be checked before anything starts (everything except the `env` function) and
 * returns the port of the definition. Throws `INVALID_OPTION` naming the bad option.
 */
export function checkDefinition(def: ServerDefinition, ctx: ServerContext): { port: number | undefined } {
  const where = `server ${JSON.stringify(def?.name)} of project "${ctx?.project}"`;
  const invalid = (message: string, hint?: string): LanesError =>
    new LanesError('INVALID_OPTION', `Invalid ${where}: ${message}`, hint === undefined ? {} : { hint });

  if (typeof ctx?.project !== 'string' || typeof ctx.ports !== 'object' || ctx.ports === null || typeof ctx.urls !== 'object' || ctx.urls === null) {
    throw invalid('the context needs `project` (string), `ports` and `urls` (objects).');
  }
  if (typeof def?.name !== 'string' || !/^[A-Za-z0-9][\w.-]*$/.test(def.name)) {
    throw invalid('`name` must be a non-empty name of letters, digits, ".", "_" or "-" (it names the log file).');
  }
  const command = def.command;
  const commandOk = typeof command === 'string'
    ? command.trim() !== ''
    : Array.isArray(command) && command.length > 0 && command.every((part) => typeof part === 'string') && command[0] !== '';
  if (!commandOk) throw invalid('`command` must be a non-empty string (run by the shell) or a non-empty [file, ...args] array.');
  if (def.env !== undefined && typeof def.env !== 'function' && (typeof def.env !== 'object' || def.env === null)) {
    throw invalid('`env` must be an object of strings or a function of the context returning one.');
  }
  if (!isEnvFileOption(def.envFile)) throw invalid('`envFile` must be a path or an array of paths (relative to `cwd`).');
  const health = def.health;
  const fileHealth = typeof health === 'object' && health !== null;
  if (fileHealth ? typeof health.file !== 'string' || health.file === '' : health !== undefined && health !== false && (typeof health !== 'string' || (health !== 'tcp' && !health.startsWith('/')))) {
    throw invalid(`\`health\` must be an HTTP path starting with "/", 'tcp', { file: '<path>' } or false, got ${JSON.stringify(def.health)}.`);
  }
  if (def.timeout !== undefined && !(Number.isFinite(def.timeout) && def.timeout > 0)) {
    throw invalid(`\`timeout\` must be a number of milliseconds > 0, got ${String(def.timeout)}.`);
  }
  if (def.unhealthyAfterMs !== undefined && def.unhealthyAfterMs !== false && !(Number.isFinite(def.unhealthyAfterMs) && def.unhealthyAfterMs > 0)) {
    throw invalid(`\`unhealthyAfterMs\` must be a number of milliseconds > 0 or false, got ${String(def.unhealthyAfterMs)}.`);
  }
  if (def.stopTimeout !== undefined && !(Number.isFinite(def.stopTimeout) && def.stopTimeout >= 0)) {
    throw invalid(`\`stopTimeout\` must be a number of milliseconds ≥ 0, got ${String(def.stopTimeout)}.`);
  }
  if (def.stopSignal !== undefined && !(def.stopSignal in constants.signals)) {
    throw invalid(`\`stopSignal\` must be a signal name such as "SIGTERM", got ${JSON.stringify(def.stopSignal)}.`);
  }
  if (def.dependsOn !== undefined && !(Array.isArray(def.dependsOn) && def.dependsOn.every((dep) => typeof dep === 'string'))) {
    throw invalid('`dependsOn` must be an array of server names.');
  }

  const portName = def.port ?? (Object.hasOwn(ctx.ports, def.name) ? def.name : undefined);
  const port = portName === undefined ? undefined : ctx.ports[portName];
  if (portName !== undefined && !Object.hasOwn(ctx.ports, portName)) {
    throw invalid(`\`port\` names "${portName}", but the lane's ports are ${JSON.stringify(Object.keys(ctx.ports))}.`);
  }
  if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65_536)) {
    throw invalid(`the lane's port "${portName}" is ${String(port)}, not a TCP port.`);
  }
  if (port === undefined && def.health !== false && !fileHealth) {
    throw invalid(
      'it has no port, so its health cannot be polled.',
      `Give the lane a port named "${def.name}", set \`port\` to one of the lane's port names, or set \`health\` to { file: '<path>' } or false.`,
    );
  }
  return { port };
}

/** Applies every default, computes the environment, and checks the options. */
export function resolveServer(def: ServerDefinition, ctx: ServerContext, options: StartServerOptions): ResolvedServer {
  const { port } = checkDefinition(def, ctx);
  if (typeof options?.logDir !== 'string' || options.logDir === '') {
    throw new LanesError('INVALID_OPTION', `Invalid options for server "${def.name}" of project "${ctx.project}": \`logDir\` must be a folder path.`);
  }
  const host = checkLaneHost(options.host, `\`host\` of server "${def.name}" for project "${ctx.project}":`);
  if (options.output !== undefined && options.output !== 'pipe' && options.output !== 'file') {
    throw new LanesError('INVALID_OPTION', `Invalid options for server "${def.name}" of project "${ctx.project}": \`output\` must be 'pipe' or 'file', got ${JSON.stringify(options.output)}.`);
  }
  const [file, ...args] = typeof def.command === 'string' ? [def.command] : def.command;
  const health = def.health ?? SERVER_DEFAULTS.health;
  const url = port === undefined ? undefined : loopbackUrl(port, host);
  const databasePassword = ctx.databaseUrl === undefined ? undefined : passwordOf(ctx.databaseUrl);
  return {
    name: def.name,
    project: ctx.project,
    label: `[${ctx.project}:${def.name}]`,
    file: file ?? '',
    args,
    shell: typeof def.command === 'string',
    cwd: path.resolve(def.cwd ?? process.cwd()),
    env: buildEnv(def, ctx, port, host),
    port,
    url,
    healthUrl: readinessTarget(health, url, port, host, path.resolve(def.cwd ?? process.cwd())),
    timeout: def.timeout ?? SERVER_DEFAULTS.timeout,
    unhealthyAfterMs: def.unhealthyAfterMs === false ? undefined : (def.unhealthyAfterMs ?? SERVER_DEFAULTS.unhealthyAfterMs),
    stopSignal: def.stopSignal ?? SERVER_DEFAULTS.stopSignal,
    stopTimeout: def.stopTimeout ?? SERVER_DEFAULTS.stopTimeout,
    logFile: path.resolve(options.logDir, `${def.name}.log`),
    debug: options.debug ?? false,
    secrets: [...(options.secrets ?? []), ...(databasePassword === undefined ? [] : [databasePassword])],
    adopt: options.adopt ?? false,
    output: options.output ?? 'pipe',
  };
}

/**
 * What readiness polls, as a URL: `http://…/path` (GET), `tcp://host:port` (a connection), or
 * `file:///…` (the file exists); undefined for `health: false`.
 */
function readinessTarget(health: NonNullable<ServerDefinition['health']>, url: string | undefined, port: number | undefined, host: LaneHost, cwd: string): string | undefined {
  if (health === false) return undefined;
  if (typeof health === 'object') return pathToFileURL(path.resolve(cwd, health.file)).href;
  if (url === undefined || port === undefined) return undefined;
  return health === 'tcp' ? `tcp://${host}:${port}` : url + health;
}

const warnedOverrides = new Set<string>();

/** One warning per server and file that sets variables the lane sets itself (names only, never values). */
function warnOverridden(def: ServerDefinition, ctx: ServerContext, files: EnvFile[], laneNames: ReadonlySet<string>): void {
  for (const file of files) {
    const names = Object.keys(file.values).filter((name) => laneNames.has(name)).sort();
    const key = `${def.name}\0${file.path}`;
    if (names.length === 0 || warnedOverrides.has(key)) continue;
    warnedOverrides.add(key);
    warn(`${file.path} (envFile of server "${def.name}", project "${ctx.project}") sets ${names.join(', ')}: the lane's own values win.`);
  }
}

/**
 * The process environment: the parent's (less {@link PRIVATE_RUNNER_ENV}), then the `envFile`s, then
 * `PORT`, `<NAME>_PORT` / `<NAME>_URL` for every named port of the lane, the lane's database
 * (`DATABASE_URL`, the `PG*` parts, and every other variable that held a PostgreSQL URL: see
 * pointEnvAt), then the definition's `env`. @internal
 */
function buildEnv(def: ServerDefinition, ctx: ServerContext, port: number | undefined, host: LaneHost): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !PRIVATE_RUNNER_ENV.includes(key)) env[key] = value;
  }
  const files = readEnvFiles(def.envFile, path.resolve(def.cwd ?? process.cwd()), `server "${def.name}" envFile`);
  for (const file of files) Object.assign(env, file.values);
  const laneNames = new Set(Object.keys(ctx.ports).flatMap((name) => [`${envName(name)}_PORT`, `${envName(name)}_URL`]));
  if (port !== undefined) laneNames.add('PORT');
  for (const [name, lanePort] of Object.entries(ctx.ports)) {
    env[`${envName(name)}_PORT`] = String(lanePort);
    env[`${envName(name)}_URL`] = loopbackUrl(lanePort, host);
  }
  if (port !== undefined) env.PORT = String(port);
  if (ctx.databaseUrl !== undefined) for (const name of Object.keys(pointEnvAt(ctx.databaseUrl, env).set)) laneNames.add(name);
  warnOverridden(def, ctx, files, laneNames);
  const extra = typeof def.env === 'function' ? def.env(ctx) : (def.env ?? {});
  for (const [key, value] of Object.entries(extra)) {
    if (typeof value !== 'string') {
      throw new LanesError('INVALID_OPTION', `Invalid server "${def.name}" of project "${ctx.project}": \`env.${key}\` must be a string, got ${typeof value}.`);
    }
    env[key] = value;
  }
  return env;
}
