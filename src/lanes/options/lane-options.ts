import { KEEP_ENV } from '../../env-vars.js';
import { isEnvFileOption } from '../../env-files.js';
import { LanesError } from '../../errors.js';
import type { RunScopeOptions } from '../../state/index.js';
import type { DatabaseAllocatorOptions } from '../../databases/index.js';
import type { ServerDefinition } from '../../servers/index.js';
import { checkLaneHost } from '../../servers/options.js';
import { resolveReuse, type ReuseOptions } from './reuse-options.js';

/**
 * Options of the database half of a lane: those of DatabaseAllocator, less what the lanes set
 * themselves (state folder, run id, lease).
 */
export type LaneDatabaseOptions = Omit<DatabaseAllocatorOptions, 'stateDir' | 'runId' | 'leaseMs'>;

/** Everything a lane needs: its servers, ports and database. One object for `withLanes` and `e2e-lanes up`. */
export interface LanesOptions extends Omit<RunScopeOptions, 'runId'> {
  /**
   * The processes every lane runs. Each gets `PORT`, `<NAME>_PORT`, `<NAME>_URL` and `DATABASE_URL`.
   * @default []
   */
  servers?: ServerDefinition[];
  /**
   * Named ports of every lane.
   * @default the port names of the servers, or ['backend', 'frontend'] without servers
   */
  ports?: string[];
  /**
   * Inclusive range ports are taken from. Also `E2E_LANES_PORT_RANGE=3100-5500`.
   * @default [3100, 5500]
   */
  portRange?: [number, number];
  /**
   * The database of every lane; `false` runs lanes without a database.
   * @default { migrations: 'prisma/migrations' } on an embedded PostgreSQL
   */
  database?: LaneDatabaseOptions | false;
  /**
   * One lane per project, or one per worker (`parallelIndex`) of every project.
   * @default 'project'
   */
  isolation?: 'project' | 'worker';
  /**
   * Boot every selected project's lane in global setup, so boot failures show before any test.
   * @default false
   */
  eager?: boolean;
  /**
   * How many lanes to boot ahead of need, in the order of the projects: global setup starts the
   * first project's lane, and when a project's lane is first asked for, the lanes of the next
   * `prefetch` projects start booting, so they are up when Playwright moves on to those projects.
   * `0` boots each lane only when its first test asks for it. Per-worker lanes are never booted ahead.
   * @default 1
   */
  prefetch?: number;
  /**
   * How many lanes start their servers at once. Booting servers is mostly CPU work on cores that
   * also run the browsers, so lanes booted side by side slow each other down and the first test
   * waits for all of them; with a bound, the lane a test waits for boots first and is up sooner.
   * Ports and databases are not bound (they take milliseconds).
   * @default half the cores, at least 1
   */
  bootConcurrency?: number;
  /**
   * Which server's URL becomes Playwright's `baseURL`.
   * @default 'frontend' when such a server exists, else the last server with a port
   */
  baseURLServer?: string;
  /**
   * Keep lanes up after the run, for debugging: `true` keeps all, `'on-failure'` only those in which
   * a test failed. Also `E2E_LANES_KEEP=1` (or `on-failure`).
   * @default false
   */
  keep?: boolean | 'on-failure';
  /**
   * Keep the lanes warm between local runs: when a run ends its lanes stay up, and the next run of
   * the same config takes them over (no server boot), each lane's database put back to the
   * template first. Lanes unused for `idleMs` are stopped. Ignored on CI unless `force`. See
   * docs/fast-local-loop.md.
   * @default false (the docs show `reuse: !process.env.CI`)
   */
  reuse?: boolean | ReuseOptions;
  /**
   * Print servers' output to the console, prefixed `[project:server]`. Also `E2E_LANES_DEBUG=1`.
   * @default false
   */
  debug?: boolean;
  /**
   * `.env` file(s) the runner reads its own settings from (`E2E_LANES_DATABASE_URL`,
   * `E2E_LANES_PORT_RANGE`…), relative to the current folder; only `E2E_LANES_*` variables are
   * taken, and never over one already set. Servers have their own `envFile`.
   * @default none
   */
  envFile?: string | string[];
  /**
   * Let a Playwright `webServer` in the config run next to the lanes. Without it, global setup
   * refuses such a config (`CONFIG_INVALID`): that server runs once for the whole run, outside
   * every lane; its place is the `servers` option.
   * @default false
   */
  allowWebServer?: boolean;
  /**
   * How many earlier runs' server log folders (`<stateDir>/lanes/<run id>`) to keep: at the start
   * of a run, older ones are deleted. Folders of live and kept runs are never deleted and do not count.
   * @default 5
   */
  keepLogs?: number;
  /**
   * The host of the lanes' URLs, health checks and `baseURL`. `'localhost'` lets cookies set for
   * `domain: "localhost"` come back; `'127.0.0.1'` is for clients that take only the first address
   * of `localhost` (::1 on some systems) and do not fall back to 127.0.0.1. Servers listen on
   * 127.0.0.1 either way.
   * @default 'localhost'
   */
  host?: '127.0.0.1' | 'localhost';
}

/** Earlier runs whose log folders are kept (see `keepLogs`). */
export const DEFAULT_KEEP_LOGS = 5;

/** Port names a lane needs for its servers. */
export function lanePortNames(options: LanesOptions): string[] {
  if (options.ports) return [...options.ports];
  const names = (options.servers ?? []).map((server) => server.port ?? server.name);
  return names.length > 0 ? [...new Set(names)] : ['backend', 'frontend'];
}

/** The server whose URL is the lane's `baseURL`, or undefined. */
export function baseServerName(options: LanesOptions): string | undefined {
  const servers = options.servers ?? [];
  if (options.baseURLServer !== undefined) {
    if (!servers.some((server) => server.name === options.baseURLServer)) {
      throw new LanesError('INVALID_OPTION', `baseURLServer ${JSON.stringify(options.baseURLServer)} is not the name of a server.`, {
        hint: `Use one of: ${servers.map((server) => server.name).join(', ') || '(no servers defined)'}.`,
      });
    }
    return options.baseURLServer;
  }
  if (servers.some((server) => server.name === 'frontend')) return 'frontend';
  return servers.filter((server) => server.health !== false).at(-1)?.name;
}

/** True when lanes stay up after the run. */
export function keepLanes(options: LanesOptions): boolean {
  return keepMode(options) !== 'never';
}

/** Which lanes stay up after the run: all, those in which a test failed, or none. */
export function keepMode(options: LanesOptions): 'always' | 'on-failure' | 'never' {
  const keep = options.keep ?? (process.env[KEEP_ENV] === '1' ? true : process.env[KEEP_ENV] === 'on-failure' ? 'on-failure' : false);
  return keep === 'on-failure' ? 'on-failure' : keep ? 'always' : 'never';
}

/** Rejects options that cannot work, naming the option. */
export function validateLanesOptions(options: LanesOptions): void {
  if (options.keep !== undefined && typeof options.keep !== 'boolean' && options.keep !== 'on-failure') {
    throw new LanesError('INVALID_OPTION', `Invalid keep ${JSON.stringify(options.keep)}.`, { hint: "Use true, false or 'on-failure'." });
  }
  resolveReuse(options);
  if (!isEnvFileOption(options.envFile)) {
    throw new LanesError('INVALID_OPTION', `Invalid envFile ${JSON.stringify(options.envFile)}.`, { hint: 'Option `envFile` takes a path or an array of paths, relative to the current folder.' });
  }
  if (options.isolation !== undefined && options.isolation !== 'project' && options.isolation !== 'worker') {
    throw new LanesError('INVALID_OPTION', `Invalid isolation ${JSON.stringify(options.isolation)}.`, { hint: "Use 'project' or 'worker'." });
  }
  if (options.prefetch !== undefined && !(Number.isInteger(options.prefetch) && options.prefetch >= 0)) {
    throw new LanesError('INVALID_OPTION', `Invalid prefetch ${JSON.stringify(options.prefetch)}.`, {
      hint: 'Use a whole number of lanes to boot ahead (0 boots each lane only when asked for; the default is 1).',
    });
  }
  if (options.bootConcurrency !== undefined && !(Number.isInteger(options.bootConcurrency) && options.bootConcurrency >= 1)) {
    throw new LanesError('INVALID_OPTION', `Invalid bootConcurrency ${JSON.stringify(options.bootConcurrency)}.`, {
      hint: 'Use a whole number of lanes that may start their servers at once, at least 1 (the default is half the cores).',
    });
  }
  if (options.keepLogs !== undefined && !(Number.isInteger(options.keepLogs) && options.keepLogs >= 0)) {
    throw new LanesError('INVALID_OPTION', `Invalid keepLogs ${JSON.stringify(options.keepLogs)}.`, {
      hint: `Use a whole number of earlier runs whose log folders to keep (0 keeps only live runs'; the default is ${DEFAULT_KEEP_LOGS}).`,
    });
  }
  checkLaneHost(options.host, 'host');
  if (options.allowWebServer !== undefined && typeof options.allowWebServer !== 'boolean') {
    throw new LanesError('INVALID_OPTION', `Invalid allowWebServer ${JSON.stringify(options.allowWebServer)}.`, { hint: 'Use true or false.' });
  }
  if (options.servers !== undefined && !Array.isArray(options.servers)) {
    throw new LanesError('INVALID_OPTION', 'Option `servers` must be an array of server definitions.');
  }
  const names = new Set<string>();
  for (const server of options.servers ?? []) {
    if (names.has(server.name)) {
      throw new LanesError('INVALID_OPTION', `Two servers are named ${JSON.stringify(server.name)}.`, { hint: 'Give every server a unique name.' });
    }
    names.add(server.name);
  }
  baseServerName(options);
}
