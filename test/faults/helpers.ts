/**
 * Shared machinery of the fault tests: spawn a real Playwright run (or the CLI) in a sandbox of its
 * own (state folder, output folder, port range), wait for conditions with deadlines, count what a
 * run left behind (server processes in /proc, rows of pg_database, ledger entries), and clean all of
 * it up after every test, even a failing one.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { after, before, type TestContext } from 'node:test';
import pg from 'pg';
import { acquireEmbeddedPostgres, defaultDataDir, resolveBinaries } from '../../src/postgres/index.js';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const SUITES_DIR = join(REPO_ROOT, 'test/fixtures/suites');
const PLAYWRIGHT_CLI = join(REPO_ROOT, 'node_modules/@playwright/test/cli.js');
const LANES_CLI = join(REPO_ROOT, 'bin/e2e-lanes.js');

/** The config file of a fixture suite, e.g. `suite('basic')`. */
export function suite(name: string): string {
  return join(SUITES_DIR, `${name}.config.ts`);
}

// ---------------------------------------------------------------------------------------------
// Waiting

/**
 * Polls `probe` until it returns a truthy value and resolves with it; rejects after `timeoutMs`
 * naming `what` (and the last probe error), or as soon as `abortIf` says so (e.g. the run exited).
 */
export async function waitFor<T>(
  what: string,
  probe: () => T | Promise<T>,
  options: { timeoutMs?: number; intervalMs?: number; abortIf?: () => string | undefined } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      lastError = error;
    }
    const abort = options.abortIf?.();
    if (abort !== undefined) throw new Error(`gave up waiting for ${what}: ${abort}`);
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${options.timeoutMs ?? 30_000} ms waiting for ${what}${lastError ? ` (last error: ${(lastError as Error).message})` : ''}`);
    }
    await sleep(options.intervalMs ?? 100);
  }
}

// ---------------------------------------------------------------------------------------------
// Processes

/** The end of a spawned process. */
export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Milliseconds from spawn to exit. */
  ms: number;
  /** True when the harness had to kill it at its deadline. */
  timedOut: boolean;
}

/** A process spawned by a test, in a process group of its own, with its output captured. */
export interface Spawned {
  child: ChildProcess;
  pid: number;
  /** stdout and stderr, interleaved as they arrived. */
  output(): string;
  exit: Promise<Exit>;
  /** True once it exited. */
  done(): boolean;
  /** Signals the process (default) or its whole process group (what a terminal's Ctrl-C does). */
  signal(signal: NodeJS.Signals, target?: 'process' | 'group'): void;
}

function spawnTracked(file: string, args: string[], options: { env: NodeJS.ProcessEnv; cwd?: string; timeoutMs: number }): Spawned {
  const started = Date.now();
  const child = spawn(file, args, { cwd: options.cwd ?? REPO_ROOT, env: options.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout!.on('data', (chunk: Buffer) => (text += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (text += chunk.toString()));
  let finished = false;
  let timedOut = false;
  const signalGroup = (signal: NodeJS.Signals): void => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      // already gone
    }
  };
  const timer = setTimeout(() => {
    timedOut = true;
    signalGroup('SIGKILL');
  }, options.timeoutMs);
  const exit = new Promise<Exit>((resolveExit) => {
    child.once('close', (code, signal) => {
      finished = true;
      clearTimeout(timer);
      resolveExit({ code, signal, ms: Date.now() - started, timedOut });
    });
  });
  return {
    child,
    pid: child.pid!,
    output: () => text,
    exit,
    done: () => finished,
    signal: (signal, target = 'process') => {
      if (finished) return;
      if (target === 'group') signalGroup(signal);
      else child.kill(signal);
    },
  };
}

/** A /proc view of one live process. */
interface ProcInfo {
  pid: number;
  pgid: number;
  state: string;
  env: Map<string, string>;
}

function procInfo(pid: number): ProcInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const env = new Map<string, string>();
    for (const pair of readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
      const eq = pair.indexOf('=');
      if (eq > 0) env.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    return { pid, state: fields[0] ?? '?', pgid: Number(fields[2]), env };
  } catch {
    return undefined;
  }
}

/** A lane server process found in /proc (independently of the toolkit's own bookkeeping). */
export interface ServerProcess {
  pid: number;
  pgid: number;
  server: string;
  runId: string;
  stateDir: string;
}

/**
 * Every live (non-zombie) lane server process on this host, i.e. every process whose environment
 * has `E2E_LANES_SERVER`, optionally only those of a state folder or of some runs.
 */
export function serverProcesses(filter: { stateDir?: string; runIds?: readonly string[] } = {}): ServerProcess[] {
  const found: ServerProcess[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const info = procInfo(Number(name));
    const server = info?.env.get('E2E_LANES_SERVER');
    if (!info || !server || info.state === 'Z' || info.state === 'X') continue;
    const item = { pid: info.pid, pgid: info.pgid, server, runId: info.env.get('E2E_LANES_RUN_ID') ?? '', stateDir: info.env.get('E2E_LANES_STATE_DIR') ?? '' };
    if (filter.stateDir !== undefined && item.stateDir !== filter.stateDir) continue;
    if (filter.runIds !== undefined && !filter.runIds.includes(item.runId)) continue;
    found.push(item);
  }
  return found;
}

/** Live processes of a process group (to check that a run's workers are gone too). */
export function groupMembers(pgid: number): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map((name) => procInfo(Number(name)))
    .filter((info): info is ProcInfo => info !== undefined && info.pgid === pgid && info.state !== 'Z' && info.state !== 'X')
    .map((info) => info.pid);
}

/** SIGKILLs the process groups of the given server processes and waits until they are gone. */
async function killServers(servers: readonly ServerProcess[]): Promise<void> {
  for (const server of servers) {
    try {
      process.kill(-server.pgid, 'SIGKILL');
    } catch {
      try {
        process.kill(server.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
  const pids = servers.map((server) => server.pid);
  await waitFor('killed servers to be gone', () => pids.every((pid) => !procInfo(pid) || procInfo(pid)!.state === 'Z'), { timeoutMs: 5_000 }).catch(() => undefined);
}

// ---------------------------------------------------------------------------------------------
// Postgres

/** The embedded Postgres every run of the repository shares (default data dir), held by the tests. */
export interface SharedPostgres {
  adminUrl: string;
  query<R extends pg.QueryResultRow = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]>;
  /** Names of every database whose name starts with `start`. */
  databasesStartingWith(start: string): Promise<string[]>;
  /** Drops databases (templates too), even while sessions are connected. */
  dropDatabases(names: readonly string[]): Promise<void>;
  release(): Promise<void>;
}

let shared: Promise<SharedPostgres> | undefined;
let sharedUsers = 0;

/**
 * Holds the shared embedded server for a whole test file (acquired before its first test, released
 * after its last); read `.server` inside tests.
 */
export function useSharedPostgres(): { readonly server: SharedPostgres } {
  let held: SharedPostgres | undefined;
  before(async () => {
    held = await sharedPostgres();
  });
  after(async () => {
    await held?.release();
  });
  return {
    get server(): SharedPostgres {
      if (!held) throw new Error('the shared PostgreSQL is not ready (use it inside tests)');
      return held;
    },
  };
}

/**
 * A reference to the embedded server that the fault runs use (the same default data dir as the
 * repository's own runs), so that it stays up between the runs of a test file. Release it in `after`.
 */
export async function sharedPostgres(): Promise<SharedPostgres> {
  sharedUsers++;
  shared ??= (async () => {
    const binaries = await resolveBinaries();
    const server = await acquireEmbeddedPostgres({
      dataDir: defaultDataDir(binaries.major, REPO_ROOT),
      stateDir: join(tmpdir(), 'e2e-lanes-faults-shared'),
      runId: `faults-holder-${process.pid}`,
    });
    const query = async <R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> => {
      const client = new pg.Client({ connectionString: server.adminUrl });
      await client.connect();
      try {
        return (await client.query<R>(sql, params)).rows;
      } finally {
        await client.end();
      }
    };
    return {
      adminUrl: server.adminUrl,
      query,
      databasesStartingWith: async (start: string) =>
        (await query<{ datname: string }>('SELECT datname FROM pg_database WHERE left(datname, $2) = $1 ORDER BY datname', [start, start.length])).map((row) => row.datname),
      dropDatabases: async (names: readonly string[]) => {
        for (const name of names) {
          const id = pg.escapeIdentifier(name);
          await query(`ALTER DATABASE ${id} WITH IS_TEMPLATE false`).catch(() => undefined);
          await query(`DROP DATABASE IF EXISTS ${id} WITH (FORCE)`);
        }
      },
      release: async () => {
        if (--sharedUsers > 0) return;
        shared = undefined;
        await server.release();
      },
    };
  })();
  return shared;
}

/** The part every database name of a run starts with: `<prefix>_<short run id>_` (see laneDatabaseName). */
export function runDatabasePrefix(prefix: string, runId: string): string {
  return `${prefix}_${(runId.toLowerCase().replace(/[^a-z0-9]/g, '').slice(-8) || 'run')}_`;
}

// ---------------------------------------------------------------------------------------------
// State files

export interface Entry {
  runId: string;
  project: string;
  worker?: number;
  status?: string;
  ports?: Record<string, number>;
  databaseName?: string;
  databaseUrl?: string;
  servers?: Array<{ name: string; pid: number; port?: number; logFile: string }>;
  /** Who holds it: `kept` marks a run kept after it ended. */
  owner: { pid: number; kept?: boolean; warmUntil?: string };
}

export type LedgerName = 'allocated-ports.json' | 'allocated-databases.json' | 'allocated-lanes.json';

/** Entries of a ledger (none when the file does not exist); throws when the file is not valid JSON. */
export function ledger(stateDir: string, file: LedgerName): Entry[] {
  const path = join(stateDir, file);
  if (!existsSync(path)) return [];
  return (JSON.parse(readFileSync(path, 'utf8')) as { entries: Entry[] }).entries;
}

/** Port entries of lanes (the embedded Postgres records its own port under the run 'embedded-postgres'). */
export function lanePortEntries(stateDir: string, runIds?: readonly string[]): Entry[] {
  return ledger(stateDir, 'allocated-ports.json').filter((entry) => entry.runId !== 'embedded-postgres' && (!runIds || runIds.includes(entry.runId)));
}

/** Everything a set of runs left behind, counted from /proc, pg_database and the three ledgers. */
export interface Leftovers {
  servers: ServerProcess[];
  databases: string[];
  ports: Entry[];
  databaseEntries: Entry[];
  lanes: Entry[];
}

export async function leftovers(box: Sandbox, runIds: readonly string[], prefix = 'faults'): Promise<Leftovers> {
  const pgServer = await sharedPostgres();
  try {
    const databases: string[] = [];
    for (const runId of runIds) databases.push(...(await pgServer.databasesStartingWith(runDatabasePrefix(prefix, runId))));
    const mine = (entry: Entry) => runIds.includes(entry.runId);
    return {
      servers: serverProcesses({ runIds }),
      databases,
      ports: lanePortEntries(box.stateDir, runIds),
      databaseEntries: ledger(box.stateDir, 'allocated-databases.json').filter(mine),
      lanes: ledger(box.stateDir, 'allocated-lanes.json').filter(mine),
    };
  } finally {
    await pgServer.release();
  }
}

/** A readable one-liner of leftovers for assertion messages. */
export function describeLeftovers(left: Leftovers): string {
  return JSON.stringify({
    servers: left.servers.map((server) => `${server.server}:${server.pid}`),
    databases: left.databases,
    ports: left.ports.map((entry) => entry.ports),
    databaseEntries: left.databaseEntries.map((entry) => entry.databaseName),
    lanes: left.lanes.map((entry) => `${entry.project}:${entry.status}`),
  });
}

export function isClean(left: Leftovers): boolean {
  return left.servers.length + left.databases.length + left.ports.length + left.databaseEntries.length + left.lanes.length === 0;
}

/**
 * Asserts that the runs left nothing behind (see {@link leftovers}); the failure names what
 * remained, after `what` (e.g. "the interrupted run left"), followed by `output` when given.
 */
export async function assertNothingLeft(box: Sandbox, runIds: readonly string[], options: { prefix?: string; what?: string; output?: string } = {}): Promise<void> {
  const left = await leftovers(box, runIds, options.prefix);
  const message = `${options.what ?? 'left behind'}: ${describeLeftovers(left)}${options.output === undefined ? '' : `\n${options.output}`}`;
  assert.ok(isClean(left), message);
}

// ---------------------------------------------------------------------------------------------
// Sandboxes and runs

/** One test's private world: its folder, state folder, port block and the runs it started. */
export interface Sandbox {
  dir: string;
  stateDir: string;
  portRange: readonly [number, number];
  /** Every run id used in this sandbox (for counting and cleanup). */
  runIds: string[];
  /** Database prefixes used in this sandbox (cleanup drops `<prefix>_<run>_…` of every run). */
  prefixes: Set<string>;
  /** Runs `fn` first when the sandbox is cleaned up (e.g. an in-process teardown that writes to the state folder). */
  defer(fn: () => unknown): void;
}

/**
 * A sandbox for one test, cleaned up when the test ends (pass or fail): every process group it
 * spawned is killed, every lane server of its state folder is killed, every database of its runs
 * is dropped, and its folder is removed.
 */
export async function sandbox(t: TestContext, options: { ports: readonly [number, number]; stateDir?: string; databases?: boolean }): Promise<Sandbox> {
  const dir = await mkdtemp(join(tmpdir(), 'e2e-lanes-faults-'));
  const stateDir = options.stateDir ?? join(dir, 'state');
  await mkdir(stateDir, { recursive: true });
  const deferred: Array<() => unknown> = [];
  const box: Sandbox = { dir, stateDir, portRange: options.ports, runIds: [], prefixes: new Set(['faults']), defer: (fn) => void deferred.push(fn) };
  t.after(async () => {
    for (const fn of deferred) await Promise.resolve(fn()).catch(() => undefined);
    // The whole group, even when its leader has exited: Playwright's workers can outlive their runner.
    for (const spawned of spawnedIn.get(box) ?? []) {
      try {
        process.kill(-spawned.pid, 'SIGKILL');
      } catch {
        // no member left
      }
      await Promise.race([spawned.exit, sleep(5_000)]);
      await waitFor(`process group ${spawned.pid} to be gone`, () => groupMembers(spawned.pid).length === 0, { timeoutMs: 5_000 }).catch(() => undefined);
    }
    await killServers(serverProcesses({ stateDir }));
    await killServers(serverProcesses({ runIds: box.runIds }));
    if (options.databases === false) return void (await rm(dir, { recursive: true, force: true, maxRetries: 5 }));
    const pgServer = await sharedPostgres();
    try {
      for (const runId of box.runIds) {
        for (const prefix of box.prefixes) {
          await pgServer.dropDatabases(await pgServer.databasesStartingWith(runDatabasePrefix(prefix, runId)));
        }
      }
    } finally {
      await pgServer.release();
    }
    await rm(dir, { recursive: true, force: true, maxRetries: 5 });
  });
  return box;
}

const spawnedIn = new WeakMap<Sandbox, Spawned[]>();

function track(box: Sandbox, spawned: Spawned): Spawned {
  const list = spawnedIn.get(box) ?? [];
  list.push(spawned);
  spawnedIn.set(box, list);
  return spawned;
}

/** A new run id whose last 8 characters are random (they make the database names of the run). */
export function newRunId(label = 'ft'): string {
  return `${label}-${randomBytes(4).toString('hex')}`;
}

/** The environment of a child: ours without anything e2e-lanes or Playwright would pick up, plus `extra`. */
function childEnv(extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(E2E_LANES_|PLAYWRIGHT_|PW_|TEST_WORKER_INDEX|TEST_PARALLEL_INDEX|FAULTS_|NODE_TEST_CONTEXT$)/.test(key) || key === 'DATABASE_URL' || key === 'CI') continue;
    env[key] = value;
  }
  for (const [key, value] of Object.entries(extra)) if (value !== undefined) env[key] = value;
  return env;
}

export interface RunOptions {
  /** Config file (see {@link suite}); absolute or relative to the repository. */
  config?: string;
  /** The run id (E2E_LANES_RUN_ID). @default a new one */
  runId?: string | false;
  /** Playwright's output folder name inside the sandbox. @default `output-<run id>` */
  output?: string;
  /** More env vars (FAULTS_*, E2E_LANES_DATABASE_URL, …). */
  env?: Record<string, string | undefined>;
  /** More CLI arguments. */
  args?: string[];
  /** Reporters. @default 'list,json' (the JSON report goes to `<sandbox>/<output>.json`) */
  reporter?: string;
  /** Hard deadline: the run's process group is SIGKILLed after it. @default 120_000 */
  timeoutMs?: number;
  /** A database prefix the run uses besides 'faults' (for cleanup). */
  prefix?: string;
}

/** A Playwright run started by a test. */
export interface PlaywrightRun extends Spawned {
  runId: string;
  outputDir: string;
  reportFile: string;
  /** The parsed JSON report (after the run ended). */
  report(): Promise<JsonReport>;
}

/**
 * Starts `playwright test` in the sandbox: own state folder, output folder, port range and run
 * id; the Playwright runner is the spawned process itself (no npx in between), in a group of its own.
 */
export function startPlaywright(box: Sandbox, options: RunOptions = {}): PlaywrightRun {
  const runId = options.runId === false ? '' : (options.runId ?? newRunId());
  if (runId) box.runIds.push(runId);
  if (options.prefix) box.prefixes.add(options.prefix);
  const name = options.output ?? `output-${runId || randomBytes(3).toString('hex')}`;
  const outputDir = join(box.dir, name);
  const reportFile = join(box.dir, `${name}.json`);
  const args = [PLAYWRIGHT_CLI, 'test', '--output', outputDir, `--reporter=${options.reporter ?? 'list,json'}`];
  if (options.config) args.push('--config', resolve(REPO_ROOT, options.config));
  args.push(...(options.args ?? []));
  const env = childEnv({
    E2E_LANES_STATE_DIR: box.stateDir,
    E2E_LANES_PORT_RANGE: box.portRange.join('-'),
    E2E_LANES_RUN_ID: runId || undefined,
    PLAYWRIGHT_JSON_OUTPUT_FILE: reportFile,
    FORCE_COLOR: '0',
    ...options.env,
  });
  const spawned = track(box, spawnTracked(process.execPath, args, { env, timeoutMs: options.timeoutMs ?? 120_000 }));
  return {
    ...spawned,
    runId,
    outputDir,
    reportFile,
    report: async () => JSON.parse(await readFile(reportFile, 'utf8')) as JsonReport,
  };
}

/** Runs the e2e-lanes CLI (`node bin/e2e-lanes.js …`) against the sandbox's state folder and waits for it. */
export async function runLanesCli(box: Sandbox, args: string[], options: { env?: Record<string, string | undefined>; timeoutMs?: number } = {}): Promise<Exit & { output: string }> {
  const env = childEnv({ E2E_LANES_STATE_DIR: box.stateDir, E2E_LANES_PORT_RANGE: box.portRange.join('-'), FORCE_COLOR: '0', ...options.env });
  const spawned = track(box, spawnTracked(process.execPath, [LANES_CLI, ...args, '--state-dir', box.stateDir], { env, timeoutMs: options.timeoutMs ?? 60_000 }));
  const exit = await spawned.exit;
  return { ...exit, output: spawned.output() };
}

/** Waits until the lanes ledger shows `count` lanes of the run 'up' (the lanes are booted and healthy). */
export function waitForLanesUp(box: Sandbox, run: PlaywrightRun, count: number, timeoutMs = 60_000): Promise<Entry[]> {
  return waitFor(
    `${count} lane(s) of run ${run.runId} to be up`,
    () => {
      const up = ledger(box.stateDir, 'allocated-lanes.json').filter((entry) => entry.runId === run.runId && entry.status === 'up');
      return up.length >= count ? up : undefined;
    },
    { timeoutMs, abortIf: () => (run.done() ? `the run exited early:\n${run.output()}` : undefined) },
  );
}

/** Fails with the run's output unless it exited with `code`. */
export function expectExit(exit: Exit, code: number | 'nonzero', output: string): void {
  const ok = code === 'nonzero' ? exit.code !== 0 && exit.code !== null : exit.code === code;
  if (!ok || exit.timedOut) {
    throw new Error(`expected exit ${code}, got code ${exit.code} signal ${exit.signal}${exit.timedOut ? ' (killed at its deadline)' : ''} after ${exit.ms} ms; output:\n${output}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Concurrent runs

/** `{ project: ports }` and databases of every lane a run announced ("lane project "x" … up in …: backend 6500, database …"). */
export function announcedLanes(run: PlaywrightRun): Array<{ project: string; ports: number[]; database: string | undefined }> {
  return [...run.output().matchAll(/lane project ("(?:[^"\\]|\\.)*")(?: \(worker \d+\))? of run \S+ up in \d+ ms: (.*)$/gm)].map((match) => ({
    project: JSON.parse(match[1]!) as string,
    ports: [...match[2]!.matchAll(/\b[a-z]+ (\d+)\b/g)].map((port) => Number(port[1])),
    database: /database (\S+)/.exec(match[2]!)?.[1],
  }));
}

/**
 * Watches the ledgers of a state folder while runs go on: every snapshot must show each port and
 * each database held by one lane at most. (A port may be handed out again after its lane ended.)
 */
export function watchForCollisions(stateDir: string): { stop(): Promise<{ snapshots: number; collisions: string[] }> } {
  const collisions: string[] = [];
  let snapshots = 0;
  let running = true;
  const check = (): void => {
    const holders = new Map<string, string>();
    const see = (what: string, holder: string): void => {
      const other = holders.get(what);
      if (other !== undefined && other !== holder) collisions.push(`${what} held by ${other} and ${holder}`);
      holders.set(what, holder);
    };
    for (const entry of ledger(stateDir, 'allocated-ports.json')) {
      for (const port of Object.values(entry.ports ?? {})) see(`port ${port}`, `${entry.runId}/${entry.project}`);
    }
    for (const entry of ledger(stateDir, 'allocated-databases.json')) see(`database ${entry.databaseName}`, `${entry.runId}/${entry.project}`);
    snapshots++;
  };
  const loop = (async () => {
    while (running) {
      try {
        check();
      } catch (error) {
        collisions.push(`unreadable state file: ${(error as Error).message}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { snapshots, collisions };
    },
  };
}

/** Fails unless every database name the runs announced is distinct (names embed the run id). */
export function assertDistinctDatabases(runs: PlaywrightRun[]): void {
  const databases = runs.flatMap((run) => announcedLanes(run).map((lane) => lane.database));
  assert.equal(new Set(databases).size, databases.length, `a database was handed out twice: ${databases.join(', ')}`);
}

/** The three ledgers are valid JSON and no state file was ever found corrupt (nothing was quarantined). */
export function assertStateFilesValid(stateDir: string, output: string): void {
  for (const file of ['allocated-ports.json', 'allocated-databases.json', 'allocated-lanes.json'] as const) {
    assert.doesNotThrow(() => ledger(stateDir, file), `${file} is valid JSON`);
  }
  assert.deepEqual(readdirSync(stateDir).filter((name) => name.includes('.corrupt-')), [], 'no state file was quarantined');
  assert.doesNotMatch(output, /was unreadable|was compromised|STATE_LOCK_TIMEOUT/);
}

// ---------------------------------------------------------------------------------------------
// JSON report

export interface JsonAttachment {
  name: string;
  contentType: string;
  path?: string;
  body?: string;
}

export interface JsonResult {
  status: string;
  errors: Array<{ message?: string }>;
  attachments: JsonAttachment[];
  stdout: Array<{ text?: string }>;
  stderr: Array<{ text?: string }>;
}

export interface JsonReport {
  suites: JsonSuite[];
  errors: Array<{ message?: string }>;
  stats: { expected: number; unexpected: number; flaky: number; skipped: number };
}

interface JsonSuite {
  title: string;
  specs: Array<{ title: string; tests: Array<{ projectName: string; results: JsonResult[] }> }>;
  suites?: JsonSuite[];
}

/** Every test of a report with its project and results. */
export function reportTests(report: JsonReport): Array<{ title: string; project: string; results: JsonResult[] }> {
  const out: Array<{ title: string; project: string; results: JsonResult[] }> = [];
  const walk = (suites: JsonSuite[]): void => {
    for (const item of suites) {
      for (const spec of item.specs) for (const test of spec.tests) out.push({ title: spec.title, project: test.projectName, results: test.results });
      walk(item.suites ?? []);
    }
  };
  walk(report.suites);
  return out;
}

/** The text of an attachment (inline body, or the file it points at). */
export async function attachmentText(attachment: JsonAttachment): Promise<string> {
  if (attachment.body !== undefined) return Buffer.from(attachment.body, 'base64').toString('utf8');
  if (attachment.path) return readFile(attachment.path, 'utf8');
  return '';
}
