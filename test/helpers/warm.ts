import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { stateOf } from '../../src/cli/context.js';
import { tearDownRuns } from '../../src/lanes/teardown/run-records.js';
import { laneLedger, type LaneEntry } from '../../src/lanes/records/lane-ledger.js';
import { LaneManager } from '../../src/lanes/lane-manager.js';
import { RUN_ID_ENV } from '../../src/env-vars.js';
import { CONFIG_FILE, warmOptions, type WarmSetup } from '../fixtures/warm/options.js';
import { query } from '../databases/helpers.js';
import { tempDir } from './tmp.js';

const RUN = fileURLToPath(new URL('../fixtures/warm/run.ts', import.meta.url));

/** The environment of a new `playwright test` process: no run or owner inherited. */
function freshEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of Object.keys(env)) if (name.startsWith('E2E_LANES_')) delete env[name];
  return env;
}

/** A run in its own process that boots `projects` and leaves its lanes warm; resolves what it printed. */
export async function warmRun(setup: WarmSetup, projects: string[], options: { dirty?: boolean } = {}): Promise<{ runId: string; watchdogPid: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', RUN, JSON.stringify({ ...setup, mode: 'warm', projects, ...options })], { env: freshEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  const line = out.trim().split('\n').at(-1) ?? '';
  if (code !== 0 || !line.startsWith('{')) throw new Error(`the warm run failed (exit ${code}):\n${out}\n${err}`);
  return JSON.parse(line) as { runId: string; watchdogPid: number };
}

/** A run in its own process that takes a warm run over and hangs (to be SIGKILLed); resolves once it holds the lanes. */
export async function hangingRun(t: TestContext, setup: WarmSetup, projects: string[]): Promise<{ pid: number; runId: string; adopted: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', RUN, JSON.stringify({ ...setup, mode: 'adopt-and-hang', projects })], { env: freshEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => void child.kill('SIGKILL'));
  let out = '';
  let err = '';
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the run did not take over in 60 s:\n${out}\n${err}`)), 60_000);
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split('\n').find((candidate) => candidate.startsWith('{'));
      if (!line) return;
      clearTimeout(timer);
      resolve({ pid: child.pid!, ...(JSON.parse(line) as { runId: string; adopted: number }) });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the run exited (${code}) before it took over:\n${out}\n${err}`));
    });
  });
}

/** A manager in this process, as a new `playwright test` process gets it. */
export async function newRun(setup: WarmSetup): Promise<LaneManager> {
  delete process.env[RUN_ID_ENV];
  return LaneManager.reusing(warmOptions(setup), { configFile: CONFIG_FILE });
}

/** Tears down whatever the state folder still holds after the test (warm runs and their watchdogs included). */
export function downAfter(t: TestContext, setup: WarmSetup): void {
  t.after(async () => {
    const options = warmOptions(setup);
    await tearDownRuns(await stateOf(options, {}), { all: true }, options);
  });
}

export async function laneEntries(stateDir: string): Promise<LaneEntry[]> {
  return (await laneLedger(stateDir).read()).entries;
}

/** Waits until `check` holds, polling every 100 ms for at most `ms`. */
export async function until(what: string, check: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(100);
  }
}

/** Whether database `name` exists on the server of `adminUrl`. */
export async function databaseExists(adminUrl: string, name: string): Promise<boolean> {
  return (await query(adminUrl, 'SELECT 1 FROM pg_database WHERE datname = $1', [name])).length === 1;
}

/**
 * A state folder (removed after the test, with whatever it still holds) and a warm run of project
 * `shop` left by a run in its own process: its setup, what it printed, and its lane's entry.
 */
export async function startWarm(t: TestContext, db: { adminUrl: string; prefix: string }, extra: Partial<WarmSetup> = {}, options: { dirty?: boolean } = {}) {
  const stateDir = await tempDir(t);
  const setup: WarmSetup = { stateDir, adminUrl: db.adminUrl, prefix: db.prefix, ...extra };
  downAfter(t, setup);
  const first = await warmRun(setup, ['shop'], options);
  const [entry] = await laneEntries(stateDir);
  if (!entry) throw new Error('the warm run left no lane');
  return { stateDir, setup, first, entry };
}
