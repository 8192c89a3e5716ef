import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { spawnWatchdog } from '../../../src/lanes/reuse/watchdog.js';
import { isPidAlive } from '../../../src/state/index.js';
import { killGroupsAfter } from '../../helpers/processes.js';
import { until } from '../../helpers/marked.js';
import { tempDir } from '../../helpers/tmp.js';

test('a watchdog whose run has no lanes (reused or torn down) exits at once and says so in its log', { timeout: 30_000 }, async (t) => {
  const stateDir = await tempDir(t);
  const runId = `watchdog-${process.pid}`;
  const pid = spawnWatchdog({ stateDir, runId, fromPid: process.pid, leaseMs: 60_000, database: false });
  killGroupsAfter(t, () => [pid]);
  await until('the watchdog exits', () => !isPidAlive(pid), 20_000);
  const log = await readFile(join(stateDir, 'lanes', runId, 'watchdog.log'), 'utf8');
  assert.match(log, new RegExp(`the lanes of run ${runId} were reused or torn down: exiting`));
});

test('the watchdog process without its settings watches nothing and exits with 2; the CLI entry starts the same process', { timeout: 30_000 }, async () => {
  for (const script of ['../../../src/lanes/reuse/watchdog-process.ts', '../../../src/cli/watchdog.ts']) {
    const env = { ...process.env };
    delete env.E2E_LANES_WATCHDOG;
    const child = spawn(process.execPath, ['--import', 'tsx', new URL(script, import.meta.url).pathname], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 2, script);
    assert.match(out, /E2E_LANES_WATCHDOG is not set: nothing to watch/);
  }
});
