import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { isLanesError } from '../../src/errors.js';
import { isProcessAlive, killProcessGroup } from '../../src/servers/index.js';
import { FIXTURES, freePort, isGone, readPidFile, reapPidFileAfter, tempDir } from './helpers.js';

/** A detached group like the one a dead run would have left: leader + grandchild, SIGTERM ignored. */
async function orphanGroup(t: TestContext, env: Record<string, string>): Promise<{ leader: number; grandchild: number }> {
  const pidFile = path.join(tempDir(t), 'grandchild.pid');
  reapPidFileAfter(t, pidFile);
  const leader = spawn(process.execPath, [path.join(FIXTURES, 'spawn-child.mjs')], {
    detached: true,
    stdio: 'ignore',
    env: { ...process.env, PORT: String(await freePort()), PID_FILE: pidFile, ...env },
  });
  leader.unref();
  assert.ok(leader.pid);
  const leaderPid = leader.pid;
  t.after(() => {
    try {
      process.kill(-leaderPid, 'SIGKILL');
    } catch {
      // already gone
    }
  });
  return { leader: leaderPid, grandchild: await readPidFile(pidFile) };
}

test('kills a process group recorded by a dead run, grandchildren included', async (t) => {
  const { leader, grandchild } = await orphanGroup(t, {});
  assert.ok(isProcessAlive(leader) && isProcessAlive(grandchild));
  assert.equal(await killProcessGroup(leader, { timeout: 2_000 }), true);
  assert.ok(isGone(leader) && isGone(grandchild));
  assert.equal(isProcessAlive(grandchild), false);
});

test('sends SIGKILL to the group when it outlives the timeout', async (t) => {
  const { leader, grandchild } = await orphanGroup(t, { IGNORE_SIGTERM: '1' });
  const started = Date.now();
  assert.equal(await killProcessGroup(leader, { signal: 'SIGTERM', timeout: 300 }), true);
  assert.ok(Date.now() - started >= 300);
  assert.ok(isGone(leader) && isGone(grandchild));
});

test('tolerates a group that is already gone', async (t) => {
  const { leader } = await orphanGroup(t, {});
  await killProcessGroup(leader, { timeout: 2_000 });
  assert.equal(await killProcessGroup(leader), true);
});

test('refuses to signal pid 0, 1 or its own process', async () => {
  for (const pid of [0, 1, -5, process.pid, Number.NaN]) {
    await assert.rejects(killProcessGroup(pid), (error) => isLanesError(error, 'INVALID_OPTION'));
  }
});

test('tells live processes from gone ones', () => {
  assert.equal(isProcessAlive(process.pid), true);
  assert.equal(isProcessAlive(0), false);
  assert.equal(isProcessAlive(2 ** 22 + 12_345), false);
});
