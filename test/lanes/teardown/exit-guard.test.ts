import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { ExitGuard } from '../../../src/lanes/teardown/exit-guard.js';
import { isPidAlive } from '../../../src/state/index.js';
import { killGroupsAfter } from '../../helpers/processes.js';
import { until } from '../../helpers/marked.js';
import { tempDir } from '../../helpers/tmp.js';

const GUARDED = `
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { ExitGuard } from ${JSON.stringify(new URL('../../../src/lanes/teardown/exit-guard.ts', import.meta.url).pathname)};
const [file, release] = process.argv.slice(1);
const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { detached: true, stdio: 'ignore' });
const guard = new ExitGuard('exit-guard-test');
guard.watch({ pid: child.pid, exited: new Promise(() => {}) });
if (release === 'release') guard.release();
writeFileSync(file, String(child.pid));
process.exit(0);
`;

async function guardedChild(t: import('node:test').TestContext, release: boolean): Promise<number> {
  const dir = await tempDir(t);
  const file = join(dir, 'pid');
  const parent = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', GUARDED, file, release ? 'release' : 'keep'], { stdio: 'inherit' });
  await new Promise((resolve) => parent.once('exit', resolve));
  const pid = Number(await readFile(file, 'utf8'));
  killGroupsAfter(t, () => [pid]);
  return pid;
}

test("a guarded server's process group is SIGKILLed when the process exits first", { timeout: 30_000 }, async (t) => {
  const pid = await guardedChild(t, false);
  await until('the guarded group is gone', () => !isPidAlive(pid));
});

test('released groups outlive the process (kept and warm lanes)', { timeout: 30_000 }, async (t) => {
  const pid = await guardedChild(t, true);
  assert.ok(isPidAlive(pid));
});

test('a group leaves the guard when its server exits', async () => {
  const guard = new ExitGuard('exit-guard-unit');
  let exit!: () => void;
  const exited = new Promise<void>((resolve) => (exit = resolve));
  guard.watch({ pid: 999_999, exited: exited as never });
  assert.deepEqual(guard.groups(), [999_999]);
  exit();
  await exited;
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(guard.groups(), []);
  guard.release();
});
