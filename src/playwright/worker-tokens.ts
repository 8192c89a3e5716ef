import { randomBytes } from 'node:crypto';
import type { ChildProcess, ForkOptions } from 'node:child_process';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { CONTROL_TOKEN_ENV, DATABASE_URL_ENV } from '../env-vars.js';

/**
 * A token of the lane service for each Playwright worker, opening only the lanes of that worker's
 * project (and, for a per-worker lane, only its own slot's).
 *
 * Every process of the run runs as the same OS user, so a lane's server can read a worker's
 * environment. A token shared by the workers would let it ask for any lane of the run, password
 * included. So the runner gives each worker process it forks a token of its own, in that process's
 * environment only (never the runner's), and binds it to the project and parallel index that
 * Playwright's first message to the worker names. The token dies with the worker.
 */

/** What a worker's token opens: the lanes of one project, and of one worker slot. */
export interface WorkerScope {
  /** Playwright's id of the project: its name, with a number added to repeated names. */
  projectId: string;
  parallelIndex: number;
}

/** Playwright's worker entry script, as the runner forks it. */
const WORKER_ENTRY = /[\\/]playwright[\\/]lib[\\/]worker[\\/]workerProcessEntry\.js$/;

const KEY = Symbol.for('e2e-lanes.worker-tokens');

interface TokenStore {
  /** Tokens of live workers: their scope once Playwright told the worker its project, else null. */
  scopes: Map<string, WorkerScope | null>;
  installed: boolean;
}

function store(): TokenStore {
  const holder = globalThis as unknown as Record<symbol, TokenStore | undefined>;
  return (holder[KEY] ??= { scopes: new Map(), installed: false });
}

/**
 * What `token` opens: a scope, `'pending'` for a worker that has not been told its project yet, or
 * undefined for a token no live worker of this runner holds.
 */
export function scopeOfWorkerToken(token: string): WorkerScope | 'pending' | undefined {
  const scopes = store().scopes;
  if (!scopes.has(token)) return undefined;
  return scopes.get(token) ?? 'pending';
}

/**
 * In the runner: every Playwright worker forked from now on gets a token of its own in
 * {@link CONTROL_TOKEN_ENV}, bound to its project when Playwright sends it its `__init__` message
 * and forgotten when it exits, and does not get the admin URL ({@link DATABASE_URL_ENV}). Other
 * forks lose the token variable. Idempotent.
 */
export function installWorkerTokens(): void {
  const tokens = store();
  if (tokens.installed) return;
  tokens.installed = true;
  const childProcess = createRequire(import.meta.url)('node:child_process') as typeof import('node:child_process');
  const fork = childProcess.fork;
  childProcess.fork = function forkWithToken(this: unknown, modulePath: string | URL, ...rest: unknown[]): ChildProcess {
    const args = Array.isArray(rest[0]) ? (rest.shift() as readonly string[]) : [];
    const options: ForkOptions = { ...((rest[0] as ForkOptions | undefined) ?? {}) };
    const env: NodeJS.ProcessEnv = { ...(options.env ?? process.env) };
    delete env[CONTROL_TOKEN_ENV];
    const isWorker = WORKER_ENTRY.test(String(modulePath instanceof URL ? modulePath.pathname : modulePath));
    // The admin URL stays in the runner: a worker names its lane's URL from the lane databases
    // variable, and reaches everything else through the lane service.
    if (isWorker) delete env[DATABASE_URL_ENV];
    const token = isWorker ? randomBytes(24).toString('hex') : undefined;
    if (token) env[CONTROL_TOKEN_ENV] = token;
    const child = fork.call(this, modulePath, args, { ...options, env });
    if (!token) return child;
    tokens.scopes.set(token, null);
    child.once('exit', () => tokens.scopes.delete(token));
    const send = child.send;
    child.send = function sendNotingProject(this: ChildProcess, message: unknown, ...more: unknown[]): boolean {
      const init = message as { method?: unknown; params?: { runnerParams?: { projectId?: unknown; parallelIndex?: unknown } } } | null;
      const params = init?.method === '__init__' ? init.params?.runnerParams : undefined;
      if (params && typeof params.projectId === 'string' && Number.isInteger(params.parallelIndex) && tokens.scopes.get(token) === null) {
        tokens.scopes.set(token, { projectId: params.projectId, parallelIndex: params.parallelIndex as number });
      }
      return (send as (...all: unknown[]) => boolean).call(this, message, ...more);
    } as ChildProcess['send'];
    return child;
  } as typeof childProcess.fork;
  // `import { fork } from 'node:child_process'` too, not only `require('child_process').fork`.
  syncBuiltinESMExports();
}

/**
 * The names of the projects by Playwright's project ids: a project's id is its name, with the
 * first free number added to a repeated name (as Playwright assigns them).
 */
export function projectNamesById(names: readonly string[]): Map<string, string> {
  const byId = new Map<string, string>();
  for (const name of names) {
    for (let i = 0; i < names.length; i++) {
      const candidate = name + (i ? String(i) : '');
      if (byId.has(candidate)) continue;
      byId.set(candidate, name);
      break;
    }
  }
  return byId;
}
