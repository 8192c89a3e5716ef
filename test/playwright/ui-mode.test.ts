// Playwright's UI mode, driven as a person does: open the UI (served on loopback), Run all, Run all
// again, read the result, close the UI. One global setup serves both runs; each starts from the seed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { chromium } from '@playwright/test';
import getPort from 'get-port';
import { laneLedger } from '../../src/lanes/records/lane-ledger.js';
import { SYSTEM_CHROMIUM_ARGS, systemChromium } from '../../src/playwright/browser.js';
import { isInteractiveSession } from '../../src/playwright/global-setup.js';
import { REPO_ROOT, serverProcesses, suite } from '../faults/helpers.js';
import { tempDir } from '../helpers/tmp.js';

test('UI mode: lanes boot once for the session, every "Run all" starts from the seed, closing the UI tears them down', { timeout: 180_000 }, async (t) => {
  const stateDir = await tempDir(t);
  const port = await getPort({ host: '127.0.0.1' });
  const roundLog = join(stateDir, 'rounds.log');
  const env: NodeJS.ProcessEnv = { ...process.env, E2E_LANES_STATE_DIR: stateDir, FAULTS_PREFIX: `ui${process.pid}`, ROUND_LOG: roundLog };
  for (const name of Object.keys(env)) if (name.startsWith('E2E_LANES_') && name !== 'E2E_LANES_STATE_DIR' && name !== 'E2E_LANES_DATABASE_URL') delete env[name];
  const ui = spawn(process.execPath, [join(REPO_ROOT, 'node_modules/@playwright/test/cli.js'), 'test', '-c', suite('ui'), '--ui-host=127.0.0.1', `--ui-port=${port}`], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  ui.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  ui.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const gone = new Promise<void>((resolve) => ui.once('exit', () => resolve()));
  t.after(async () => {
    try {
      process.kill(-ui.pid!, 'SIGKILL');
    } catch {
      // gone
    }
    await gone;
  });
  for (let i = 0; i < 150 && !output.includes(`${port}`); i++) await sleep(200);
  assert.ok(output.includes(`${port}`), `the UI did not start:\n${output}`);

  const executablePath = systemChromium();
  const browser = await chromium.launch(executablePath ? { executablePath, args: [...SYSTEM_CHROMIUM_ARGS] } : {});
  t.after(() => browser.close());
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${port}`);
  const runAll = page.getByTitle('Run all').first();
  await runAll.waitFor({ timeout: 60_000 });
  const rounds: string[] = [];
  let pids: number[] | undefined;
  for (let round = 1; round <= 3; round++) {
    await runAll.click();
    // The spec logs each execution: the round's test ran once the log has `round` lines.
    for (let i = 0; i < 600 && (await readFile(roundLog, 'utf8').catch(() => '')).trim().split('\n').filter(Boolean).length < round; i++) await sleep(100);
    // Then the status line reads like "1/1 (100%) — 1 passed".
    await page.waitForFunction(() => /\d+\/\d+ \(100%\)/.test(document.body.innerText), null, { timeout: 30_000 }).catch(async (error: unknown) => {
      throw new Error(`round ${round} did not finish: ${String(error)}\nThe UI shows:\n${await page.evaluate(() => document.body.innerText)}\nOutput:\n${output}`);
    });
    rounds.push(/\d+\/\d+ \(\d+%\)[^\n]*/.exec(await page.evaluate(() => document.body.innerText))![0]);
    const [entry] = (await laneLedger(stateDir).read()).entries;
    assert.ok(entry, `the lane is up between runs (round ${round})`);
    const now = entry.servers.map((server) => server.pid);
    if (pids) assert.deepEqual(now, pids, 'the lane booted once for the whole session');
    pids = now;
  }
  assert.deepEqual((await readFile(roundLog, 'utf8')).trim().split('\n'), ['2', '2', '2'], 'every run saw the seed plus its own row');
  assert.deepEqual(rounds, ['1/1 (100%) — 1 passed', '1/1 (100%) — 1 passed', '1/1 (100%) — 1 passed']);

  await browser.close();
  process.kill(-ui.pid!, 'SIGINT');
  await Promise.race([gone, sleep(30_000)]);
  assert.notEqual(ui.exitCode ?? ui.signalCode, null, 'the UI process exits when closed');
  assert.deepEqual((await laneLedger(stateDir).read()).entries, [], `closing the UI tears the lanes down:\n${output}`);
  assert.deepEqual(serverProcesses({ stateDir }), []);
});

test('UI mode and the test server of the VS Code extension count as sessions of many runs; plain runs do not', () => {
  for (const argv of [['test', '--ui'], ['test', '--ui-host=127.0.0.1', '--ui-port=9323'], ['test-server', '-c', 'playwright.config.ts']]) {
    assert.equal(isInteractiveSession(['node', 'cli.js', ...argv]), true, argv.join(' '));
  }
  for (const argv of [['test'], ['test', 'e2e/ui.spec.ts'], ['test', '--project', 'ui-host']]) {
    assert.equal(isInteractiveSession(['node', 'cli.js', ...argv]), false, argv.join(' '));
  }
});
