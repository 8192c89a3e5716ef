import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, openSync, closeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ci from 'ci-info';
import { LanesError } from '../errors.js';
import { PRIVATE_RUNNER_ENV, type ServerDefinition } from '../servers/index.js';
import { loopbackUrl } from '../servers/options.js';
import { OWNER_IDENTITY_ENV, OWNER_PID_ENV, RUN_ID_ENV, SERVER_MARK_ENV, WATCHDOG_ENV } from '../env-vars.js';
import { currentHost, handOverRunEntries, judgeOwner, newOwner, type Owner } from '../state/index.js';
import { identityOf } from '../state/identity.js';
import { changedVariables, listNames, serverEnvironment } from './environment.js';
import { laneLedger, type LaneEntry, type LaneFingerprint } from './lane-ledger.js';
import type { LanesOptions } from './options.js';

/** Options of `reuse`: how long warm lanes wait for the next run, and whether to keep them warm on CI. */
export interface ReuseOptions {
  /**
   * Warm lanes unused for this long are stopped (servers, databases, ports), even when no run
   * comes after: a small detached watchdog process does it.
   * @default 900_000 (15 minutes)
   */
  idleMs?: number;
  /**
   * Keep lanes warm on CI too (where `reuse` is otherwise ignored).
   * @default false
   */
  force?: boolean;
}

export const DEFAULT_IDLE_MS = 15 * 60_000;


/** A claim must leave at least this long before the warm lanes' deadline. */
const CLAIM_MARGIN_MS = 5_000;

/** `reuse` as resolved for this process: on or off, and why it is off when it was asked for. */
export interface ResolvedReuse {
  enabled: boolean;
  idleMs: number;
  /** Set when `reuse` was asked for but is off (on CI without `force`). */
  ignored?: string;
}

/** Resolves option `reuse` (validating it). */
export function resolveReuse(options: Pick<LanesOptions, 'reuse'>, isCI: boolean = ci.isCI): ResolvedReuse {
  const reuse = options.reuse;
  if (reuse === undefined || reuse === false) return { enabled: false, idleMs: DEFAULT_IDLE_MS };
  if (reuse !== true && (typeof reuse !== 'object' || reuse === null || Array.isArray(reuse))) {
    throw new LanesError('INVALID_OPTION', `Invalid reuse ${JSON.stringify(reuse)}.`, { hint: 'Use true, false, or { idleMs, force } (e.g. `reuse: !process.env.CI`).' });
  }
  const settings = reuse === true ? {} : reuse;
  const idleMs = settings.idleMs ?? DEFAULT_IDLE_MS;
  if (!(Number.isInteger(idleMs) && idleMs >= 1_000 && idleMs <= 7 * 24 * 3_600_000)) {
    throw new LanesError('INVALID_OPTION', `Invalid reuse.idleMs ${JSON.stringify(settings.idleMs)}.`, { hint: 'Use a whole number of milliseconds from 1000 to one week (the default is 900000, 15 minutes).' });
  }
  if (settings.force !== undefined && typeof settings.force !== 'boolean') {
    throw new LanesError('INVALID_OPTION', `Invalid reuse.force ${JSON.stringify(settings.force)}.`, { hint: 'Use true or false.' });
  }
  if (isCI && settings.force !== true) {
    return { enabled: false, idleMs, ignored: 'reuse is ignored on CI: lanes are torn down after the run (set `reuse: { force: true }` to keep them warm there too)' };
  }
  return { enabled: true, idleMs };
}

/**
 * What a warm lane must still match to be taken over: the config, the servers' definitions
 * (command, cwd, env, the rest) and port names, each as a short hash, and the environment each
 * server is started with, a short digest per variable (see serverEnvironment).
 */
export function laneFingerprint(options: LanesOptions, configKey: string, ctx: { project: string; ports: Record<string, number> }): LaneFingerprint {
  const servers: LaneFingerprint['servers'] = {};
  const urls: Record<string, string> = {};
  for (const server of options.servers ?? []) {
    const port = ctx.ports[server.port ?? server.name];
    if (port !== undefined) urls[server.name] = loopbackUrl(port, options.host);
  }
  for (const server of options.servers ?? []) {
    const { command, cwd, env, ...rest } = server;
    const configured = evaluateEnv(env, { project: ctx.project, ports: ctx.ports, urls: { ...urls }, databaseUrl: 'postgresql://lane-database' });
    servers[server.name] = {
      command: digest(command),
      cwd: digest(resolve(cwd ?? process.cwd())),
      env: digest(configured),
      rest: digest(rest),
      environment: serverEnvironment(server, { ports: ctx.ports, database: options.database !== false }, configured as Record<string, unknown> | undefined),
    };
  }
  return { config: configKey, servers, ports: digest(Object.keys(ctx.ports).sort()) };
}

const FIELD_NAMES: Record<Exclude<keyof LaneFingerprint['servers'][string], 'environment'>, string> = { command: 'command', cwd: 'cwd', env: 'env', rest: 'options' };

/** Why a warm lane recorded with `recorded` cannot serve a run that wants `current`, or undefined. */
export function fingerprintChange(recorded: LaneFingerprint | undefined, current: LaneFingerprint): string | undefined {
  if (!recorded) return 'it was recorded without a fingerprint';
  if (recorded.ports !== current.ports) return 'its port names changed';
  const before = Object.keys(recorded.servers);
  const after = Object.keys(current.servers);
  const added = after.filter((name) => !before.includes(name));
  const removed = before.filter((name) => !after.includes(name));
  if (added.length > 0) return `a server was added (${added.map((name) => JSON.stringify(name)).join(', ')})`;
  if (removed.length > 0) return `a server was removed (${removed.map((name) => JSON.stringify(name)).join(', ')})`;
  for (const name of after) {
    for (const field of Object.keys(FIELD_NAMES) as Array<keyof typeof FIELD_NAMES>) {
      if (recorded.servers[name]![field] !== current.servers[name]![field]) return `the ${name}'s ${FIELD_NAMES[field]} changed`;
    }
    const before = recorded.servers[name]!.environment;
    if (!before) return `its ${name} was recorded without its environment`;
    const changed = changedVariables(before, current.servers[name]!.environment ?? {});
    if (changed.length > 0) return `the ${name}'s environment changed (${listNames(changed)})`;
  }
  return undefined;
}

/** A warm run taken over by this process: its id and its lanes as they were recorded. */
export interface ClaimedRun {
  runId: string;
  entries: LaneEntry[];
}

/**
 * Takes over the newest warm run of `configKey` in the state folder, if any: under the lanes
 * ledger's lock its lanes become this process's (so no other run can take them), and it resolves
 * them; the caller hands the run's ports and databases over next. Runs whose watchdog is gone or
 * whose deadline is (about to be) past are not taken.
 */
export async function claimWarmRun(stateDir: string, configKey: string, leaseMs: number, now = Date.now()): Promise<ClaimedRun | undefined> {
  return laneLedger(stateDir).update((doc) => {
    const runs = new Map<string, { until: number; entries: LaneEntry[] }>();
    const unfit = new Set<string>();
    for (const entry of doc.entries) {
      const until = entry.owner.warmUntil === undefined ? Number.NaN : Date.parse(entry.owner.warmUntil);
      const fit = entry.fingerprint?.config === configKey && until - now >= CLAIM_MARGIN_MS && judgeOwner(entry.owner, leaseMs, now).alive;
      if (!fit) {
        unfit.add(entry.runId);
        continue;
      }
      const run = runs.get(entry.runId) ?? { until, entries: [] };
      run.entries.push(entry);
      runs.set(entry.runId, run);
    }
    // Every lane of a run is handed over at once: a run with any other lane is not warm.
    const [runId] = [...runs].filter(([id]) => !unfit.has(id)).sort((a, b) => b[1].until - a[1].until)[0] ?? [];
    if (runId === undefined) return undefined;
    const entries = structuredClone(runs.get(runId)!.entries);
    handOverRunEntries(doc.entries, runId, newOwner(runId));
    for (const entry of doc.entries) if (entry.runId === runId) delete entry.warmSince;
    return { runId, entries };
  });
}

/** The owner of a warm run's entries: its watchdog, until `idleMs` from now. */
export function warmOwner(runId: string, watchdogPid: number, idleMs: number, now = new Date()): Owner {
  const owner: Owner = { runId, pid: watchdogPid, host: currentHost(), createdAt: now.toISOString(), heartbeatAt: now.toISOString(), warmUntil: new Date(now.getTime() + idleMs).toISOString() };
  return Object.assign(owner, identityOf(watchdogPid));
}

/** What a watchdog process is told (JSON in {@link WATCHDOG_ENV}). */
export interface WatchdogSettings {
  stateDir: string;
  runId: string;
  /** The run's process, which hands the lanes over to the watchdog once it runs. */
  fromPid: number;
  leaseMs: number;
  /** The lanes' database options (what `down` needs to reach the server; no functions). */
  database: LanesOptions['database'];
  portRange?: [number, number];
}

/**
 * Starts the detached watchdog of a warm run: it outlives this process and the terminal (its own
 * session), and when the run's lanes are still its own at their deadline it tears them down as
 * `e2e-lanes down` does; it exits as soon as another run takes them over or they are gone.
 * @returns its pid
 */
export function spawnWatchdog(settings: WatchdogSettings): number {
  const here = fileURLToPath(import.meta.url);
  const fromSource = here.endsWith('.ts');
  const script = join(here, '..', '..', 'cli', fromSource ? 'watchdog.ts' : 'watchdog.js');
  const loader = fromSource ? ['--import', import.meta.resolve('tsx')] : [];
  const logDir = join(settings.stateDir, 'lanes', settings.runId);
  mkdirSync(logDir, { recursive: true });
  const log = openSync(join(logDir, 'watchdog.log'), 'a');
  const env: NodeJS.ProcessEnv = { ...process.env, [WATCHDOG_ENV]: JSON.stringify(settings) };
  // Not a server of the run, and none of the runner's secrets.
  for (const name of [...PRIVATE_RUNNER_ENV, RUN_ID_ENV, OWNER_PID_ENV, OWNER_IDENTITY_ENV, SERVER_MARK_ENV, 'NODE_OPTIONS']) delete env[name];
  try {
    const child = spawn(process.execPath, [...loader, script], { detached: true, stdio: ['ignore', log, log], env, cwd: process.cwd() });
    if (child.pid === undefined) throw new Error(`the watchdog process could not be started (${process.execPath} ${script})`);
    child.unref();
    return child.pid;
  } finally {
    closeSync(log);
  }
}

function evaluateEnv(env: ServerDefinition['env'], ctx: Parameters<Extract<ServerDefinition['env'], (...args: never[]) => unknown>>[0]): unknown {
  try {
    const value = typeof env === 'function' ? env(ctx) : env;
    return value && Object.fromEntries(Object.entries(value).sort(([a], [b]) => a.localeCompare(b)));
  } catch (error) {
    return { error: String(error) };
  }
}

function digest(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value ?? null)).digest('hex').slice(0, 12);
}
