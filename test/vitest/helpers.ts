import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import pg from 'pg';
import { killGroupsAfter } from '../helpers/processes.ts';

const root = new URL('../../', import.meta.url).pathname;

/** Vitest's command line, run by Node directly (no npx in between: a kill reaches Vitest itself). */
export const VITEST_BIN = join(root, 'node_modules/vitest/vitest.mjs');

/** The fixture suite of these tests and its config. */
export const SUITE_CONFIG = join(root, 'test/vitest/fixtures/suite/vitest.config.ts');

/** A run id of its own for one Vitest run (its databases are found by it). */
export function freshRunId(): string {
  return `vt${randomBytes(4).toString('hex')}`;
}

/** What a finished Vitest run printed, and how it ended. */
export interface VitestRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

/**
 * Runs `vitest run` with `args` in its own process group, bounded by `timeoutMs` (then the group is
 * SIGKILLed), and resolves how it ended with everything it printed.
 */
export function runVitest(t: TestContext, args: string[], env: NodeJS.ProcessEnv, options: { timeoutMs?: number } = {}): Promise<VitestRun> {
  return startVitest(t, args, env, options).finished;
}

/** Starts `vitest run` as {@link runVitest} does: its pid (and process group), and how it ends. */
export function startVitest(t: TestContext, args: string[], env: NodeJS.ProcessEnv, options: { timeoutMs?: number } = {}): { pid: number; finished: Promise<VitestRun> } {
  const child = spawn(process.execPath, [VITEST_BIN, 'run', ...args], {
    cwd: root,
    env: { ...process.env, E2E_LANES_QUIET: '', NO_COLOR: '1', FORCE_COLOR: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  killGroupsAfter(t, () => (child.pid ? [child.pid] : []));
  let output = '';
  const add = (chunk: Buffer): void => {
    output += chunk.toString();
  };
  child.stdout!.on('data', add);
  child.stderr!.on('data', add);
  const finished = new Promise<VitestRun>((resolve) => {
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    }, options.timeoutMs ?? 90_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output });
    });
  });
  return { pid: child.pid!, finished };
}

/** The databases and roles whose toolkit mark names run `runId` (lane databases, the ones swaps moved away, lane roles). */
export async function leftoversOf(adminUrl: string, runId: string): Promise<{ databases: string[]; roles: string[] }> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const needle = `%"runId":${JSON.stringify(runId)}%`;
    const databases = await client.query<{ name: string }>("SELECT datname AS name FROM pg_database WHERE shobj_description(oid, 'pg_database') LIKE $1 ORDER BY 1", [needle]);
    const roles = await client.query<{ name: string }>("SELECT rolname AS name FROM pg_roles WHERE shobj_description(oid, 'pg_authid') LIKE $1 ORDER BY 1", [needle]);
    return { databases: databases.rows.map((row) => row.name), roles: roles.rows.map((row) => row.name) };
  } finally {
    await client.end();
  }
}
