import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { exited } from '../helpers/processes.js';

const HOST_FIXTURE = fileURLToPath(new URL('./fixtures/host.ts', import.meta.url));

/** What a simulated machine printed once its lanes were allocated. */
export interface HostReady {
  runId: string;
  host: string;
  pid: number;
  registry: 'postgres' | 'file';
  template: { name: string; built: boolean };
  lanes: { project: string; databaseName: string }[];
}

/** A child process playing one machine (see fixtures/host.ts). */
export interface SimulatedHost {
  child: ChildProcess;
  ready: HostReady;
  /** Progress lines it printed (not JSON). */
  logs: string[];
  /** Sends a command (`reap`, `list`, `release`) and resolves its JSON answer. */
  ask<T = unknown>(command: 'reap' | 'list' | 'release'): Promise<T>;
  /** SIGKILLs it (no teardown runs) and waits until it is gone. */
  kill(): Promise<void>;
}

export interface StartHostOptions {
  /** `E2E_LANES_HOST` of the child; the real host name when undefined. */
  host?: string;
  /**
   * DatabaseAllocator options (JSON-safe); `adminUrl` is passed through the environment. Without
   * `stateDir`, the host gets a temporary one, removed after the test once the host is gone.
   */
  options: Record<string, unknown>;
  projects: string[];
  adminUrl: string;
  /** Extra command-line arguments Playwright would see, e.g. `--shard=2/4`. */
  argv?: string[];
  /** Extra environment (e.g. CI variables). The child gets no CI variables of this process. */
  env?: Record<string, string>;
}

/** Environment variables of this process a child may inherit: nothing about CI or e2e-lanes. */
const INHERITED = ['PATH', 'HOME', 'TMPDIR', 'TMP', 'TEMP', 'USER', 'LANG', 'SystemRoot', 'DEBUG', 'E2E_LANES_TEST_DATABASE_URL'];

/** Starts a simulated machine and resolves once it allocated its lanes; it is killed after the test. */
export async function startHost(t: TestContext, options: StartHostOptions): Promise<SimulatedHost> {
  const env: NodeJS.ProcessEnv = {};
  for (const name of INHERITED) if (process.env[name] !== undefined) env[name] = process.env[name];
  Object.assign(env, { FIXTURE_ADMIN_URL: options.adminUrl, ...(options.host ? { E2E_LANES_HOST: options.host } : {}), ...options.env });
  const ownDir = options.options.stateDir === undefined ? await mkdtemp(join(tmpdir(), 'e2e-lanes-host-')) : undefined;
  const allocatorOptions = { ...options.options, ...(ownDir ? { stateDir: ownDir } : {}) };
  const child = spawn(process.execPath, ['--import', 'tsx', HOST_FIXTURE, JSON.stringify(allocatorOptions), ...(options.argv ?? []), ...options.projects], {
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited(child);
    if (ownDir) await rm(ownDir, { recursive: true, force: true });
  });
  const logs: string[] = [];
  const answers: string[] = [];
  const waiting: Array<(line: string) => void> = [];
  let stderr = '';
  let buffer = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    for (let newline = buffer.indexOf('\n'); newline >= 0; newline = buffer.indexOf('\n')) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      if (!isJson(line)) logs.push(line);
      else if (waiting.length > 0) waiting.shift()!(line);
      else answers.push(line);
    }
  });
  const next = <T>(what: string): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`host ${options.host ?? '(real)'} gave no answer to ${what} within 60 s: ${stderr}`)), 60_000);
      const onExit = (code: number | null, signal: string | null): void => {
        clearTimeout(timer);
        reject(new Error(`host ${options.host ?? '(real)'} exited (${code ?? signal}) before answering ${what}: ${stderr}`));
      };
      child.once('exit', onExit);
      const take = (line: string): void => {
        clearTimeout(timer);
        child.off('exit', onExit);
        resolve(JSON.parse(line) as T);
      };
      const queued = answers.shift();
      if (queued !== undefined) take(queued);
      else waiting.push(take);
    });
  return next<HostReady>('its allocation').then((ready) => ({
    child,
    ready,
    logs,
    ask: <T>(command: string) => {
      child.stdin!.write(`${command}\n`);
      return next<T>(command);
    },
    kill: async () => {
      child.kill('SIGKILL');
      await exited(child);
    },
  }));
}

function isJson(line: string): boolean {
  try {
    JSON.parse(line);
    return true;
  } catch {
    return false;
  }
}
