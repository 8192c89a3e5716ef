import { isPidAlive } from '../../src/state/owner.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { TEST_POSTGRES_ROOT } from '../helpers/postgres.js';
import { reapEmbeddedPostgres, type AcquireEmbeddedPostgresOptions, type EmbeddedUsersDocument } from '../../src/postgres/index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FIXTURE = fileURLToPath(new URL('./fixtures/acquire-embedded.ts', import.meta.url));

/** A fresh folder under the system temp folder, removed after the test (after every `t.after` added later). */
export function tempDir(t: TestContext, prefix = 'e2e-lanes-pg-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  // Node runs `after` hooks in the order they were added, hooks added while they run included.
  t.after(() => {
    t.after(() => rmSync(dir, { recursive: true, force: true }));
  });
  return dir;
}

/** Options for a server private to one test, and `own()` to release a handle even when the test fails. */
export type PrivateServer = AcquireEmbeddedPostgresOptions & {
  dataDir: string;
  stateDir: string;
  /** Releases `handle` at the end of the test, before the server is stopped and its folder removed. */
  own<T extends { release(): Promise<void> }>(handle: T): T;
};

/**
 * Options for an embedded server private to one test: its own data dir and users file. After
 * the test (even a failed one) owned handles are released, every user left is reaped, the server
 * is stopped and the folder removed.
 */
export function privateServer(t: TestContext, runId = 'test'): PrivateServer {
  const dir = mkdtempSync(join(tmpdir(), 'e2e-lanes-pg-'));
  chmodSync(dir, 0o755); // mkdtemp makes it 0700: the user `postgres` (when we are root) must reach it
  const owned: Array<{ release(): Promise<void> }> = [];
  // One port ledger for every test server on this host (as for lanes of one project): concurrent
  // starts get distinct ports instead of racing for the lowest free one.
  const options = { dataDir: join(dir, 'postgres'), stateDir: join(TEST_POSTGRES_ROOT, 'state'), runId };
  t.after(async () => {
    for (const handle of owned) await handle.release().catch(() => undefined);
    await reapEmbeddedPostgres({ ...options, leaseMs: 1_000 }).catch(() => undefined);
    // A handle the test did not release keeps its user alive: stop the server anyway.
    const pid = postmasterPidOf(options.dataDir);
    if (pid !== undefined && !isGone(pid)) {
      process.kill(pid, 'SIGQUIT');
      if (!(await waitFor(() => isGone(pid), 5_000))) process.kill(pid, 'SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    ...options,
    own: (handle) => {
      owned.push(handle);
      return handle;
    },
  };
}

/** The users file (`embedded-postgres.json`) next to a data dir. */
export function readEmbeddedUsers(dataDir: string): EmbeddedUsersDocument {
  return JSON.parse(readFileSync(join(dataDir, '..', 'embedded-postgres.json'), 'utf8')) as EmbeddedUsersDocument;
}

/** The pid in `<dataDir>/postmaster.pid`, if any. */
export function postmasterPidOf(dataDir: string): number | undefined {
  try {
    return Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return undefined;
  }
}

/** True when `pid` no longer runs: it does not exist or is a zombie waiting for init to reap it. */
export function isGone(pid: number): boolean {
  return !isPidAlive(pid);
}

/** The numeric user id a process runs as (Linux). */
export function uidOf(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((candidate) => candidate.startsWith('Uid:'));
  return Number(line?.split(/\s+/)[1]);
}

/** Polls `predicate` until it holds or `timeoutMs` passes; resolves whether it held. */
export async function waitFor(predicate: () => boolean, timeoutMs = 5_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) return false;
    await sleep(25);
  }
  return true;
}

/** What the fixture prints once it holds the server. */
export interface RunInfo {
  port: number;
  postmasterPid: number;
  started: boolean;
  adminUrl: string;
}

/** A child process that acquired the embedded server, driven through stdin. */
export interface ChildRun {
  child: ChildProcess;
  info: RunInfo;
  /** Sends `release` and waits for the acknowledgement. */
  release(): Promise<void>;
  /** SIGKILLs the run (no teardown) and waits for it to exit. */
  kill(): Promise<void>;
}

/**
 * Starts a run in a child process that acquires the embedded server with `options`; killed after
 * the test. `detached` puts it in its own process group, like a run started from a terminal.
 */
export async function spawnRun(t: TestContext, options: AcquireEmbeddedPostgresOptions, spawnOptions: { detached?: boolean } = {}): Promise<ChildRun> {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, JSON.stringify(options)], {
    cwd: ROOT,
    detached: spawnOptions.detached ?? false,
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, E2E_LANES_OWNER_PID: '' },
  });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const first = JSON.parse(await nextLine(lines)) as RunInfo & { error?: string };
  if (first.error) throw new Error(`the child run failed: ${first.error}`);
  return {
    child,
    info: first,
    release: async () => {
      child.stdin!.write('release\n');
      const line = await nextLine(lines);
      if (line !== 'released') throw new Error(`unexpected answer ${line}`);
    },
    kill: async () => {
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    },
  };
}

async function nextLine(lines: AsyncIterator<string>): Promise<string> {
  const next = await lines.next();
  if (next.done) throw new Error('the child run ended without answering');
  return next.value as string;
}
