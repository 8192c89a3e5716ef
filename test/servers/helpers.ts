import { isPidAlive } from '../../src/state/owner.js';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import getPort from 'get-port';
import type { ServerContext, StartedServer } from '../../src/servers/index.js';

export const FIXTURES = fileURLToPath(new URL('../fixtures/servers/', import.meta.url));

/** `[node, fixture]`, run without a shell. */
export function nodeCommand(fixture: string): string[] {
  return [process.execPath, path.join(FIXTURES, fixture)];
}

/** `"node" "fixture"` as a shell string. */
export function shellCommand(fixture: string): string {
  return `"${process.execPath}" "${path.join(FIXTURES, fixture)}"`;
}

/** A free loopback port. */
export function freePort(): Promise<number> {
  return getPort({ host: '127.0.0.1' });
}

/** A fresh folder removed after the test. */
export function tempDir(t: TestContext): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'e2e-lanes-servers-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function laneContext(ports: Record<string, number>, extra: Partial<ServerContext> = {}): ServerContext {
  return { project: 'chromium-a', ports, urls: {}, ...extra };
}

/**
 * True when `pid` is gone: `kill(pid, 0)` fails, or (Linux) it is a zombie. Zombies count as gone
 * because where PID 1 does not reap orphans (containers without an init) a killed grandchild stays
 * a zombie forever, yet runs no code and holds no port.
 */
export function isGone(pid: number): boolean {
  return !isPidAlive(pid);
}

/** Waits until a fixture wrote its pid to `file`. */
export async function readPidFile(file: string, timeout = 5_000): Promise<number> {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    if (existsSync(file)) {
      const pid = Number(readFileSync(file, 'utf8'));
      if (Number.isInteger(pid) && pid > 0) return pid;
    }
    await sleep(20);
  }
  throw new Error(`no pid in ${file} after ${timeout} ms`);
}

/** SIGKILLs, after the test, whatever pid a fixture wrote to `file`, in case the test failed half-way. */
export function reapPidFileAfter(t: TestContext, file: string): void {
  t.after(() => {
    if (!existsSync(file)) return;
    const pid = Number(readFileSync(file, 'utf8'));
    if (Number.isInteger(pid) && pid > 1 && !isGone(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

/** Stops any server a test started, even when the test fails before its own `stop()`. */
export function stopAfter<T extends { stop?: () => Promise<void>; stopAll?: () => Promise<void> }>(t: TestContext, handle: T): T {
  t.after(() => (handle.stopAll ?? handle.stop)?.call(handle));
  return handle;
}

/** Expects `start` to fail; if it unexpectedly succeeds, stops what it started and fails the test. */
export async function startFailure(start: Promise<StartedServer | { stopAll(): Promise<void> }>): Promise<unknown> {
  let result: StartedServer | { stopAll(): Promise<void> };
  try {
    result = await start;
  } catch (error) {
    return error;
  }
  await ('stopAll' in result ? result.stopAll() : result.stop());
  throw new Error('expected the start to fail, but it succeeded');
}

/** GET without keep-alive (a pooled socket would delay the server's graceful close). */
export function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}
