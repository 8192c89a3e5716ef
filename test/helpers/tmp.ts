import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

/**
 * A fresh temporary folder, removed after the test, even a failed one, and after every other
 * `t.after` hook of the test: teardowns registered later (a lane manager's, an allocator's) still
 * write into it, and would otherwise create it again once removed. Node runs a test's `after`
 * hooks in the order they were added, including hooks added while they run, so the removal is
 * added from a hook.
 */
export async function tempDir(t: TestContext, prefix = 'e2e-lanes-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => {
    t.after(() => rm(dir, { recursive: true, force: true }));
  });
  return dir;
}
