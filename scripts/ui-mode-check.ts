// Drives Playwright's UI mode the way a person does, for checks by hand: starts
// `playwright test --ui-host=127.0.0.1 --ui-port=<free port> [args…]`, opens the UI in Chromium,
// clicks "Run all" twice and prints what the UI shows after each round (tests done, failures).
// Usage: node --import tsx scripts/ui-mode-check.ts [playwright args…]   e.g. --project fresh
// With DEMO_LANE_RESET=never the demo's fresh project shows failures; with its laneReset, none.
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from '@playwright/test';
import getPort from 'get-port';
import { SYSTEM_CHROMIUM_ARGS, systemChromium } from '../src/playwright/browser.ts';

const port = await getPort({ host: '127.0.0.1' });
const ui = spawn(process.execPath, ['node_modules/@playwright/test/cli.js', 'test', '--ui-host=127.0.0.1', `--ui-port=${port}`, ...process.argv.slice(2)], {
  stdio: ['ignore', 'pipe', 'pipe'],
  detached: true,
});
let output = '';
ui.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
ui.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
let exitCode = 1;
try {
  for (let i = 0; i < 150 && !output.includes(String(port)); i++) await sleep(200);
  const executablePath = systemChromium();
  const browser = await chromium.launch({ ...(executablePath ? { executablePath, args: [...SYSTEM_CHROMIUM_ARGS] } : {}) });
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${port}`);
    await page.getByTitle('Run all').first().waitFor({ timeout: 30_000 });
    let failures = 0;
    for (const round of [1, 2]) {
      await page.getByTitle('Run all').first().click();
      await page.waitForTimeout(1_000);
      await page.waitForFunction(() => !document.body.innerText.includes('Running'), null, { timeout: 180_000 });
      const text = await page.evaluate(() => document.body.innerText);
      const done = /\d+\/\d+ \(\d+%\)/.exec(text)?.[0] ?? '?';
      const failed = Number(/(\d+) failed/.exec(text)?.[1] ?? 0);
      failures += failed;
      console.log(`round ${round}: ${done} done, ${failed} failed`);
    }
    exitCode = failures === 0 ? 0 : 1;
  } finally {
    await browser.close();
  }
} finally {
  try {
    process.kill(-ui.pid!, 'SIGINT');
  } catch {
    // gone
  }
  for (let i = 0; i < 50 && ui.exitCode === null && ui.signalCode === null; i++) await sleep(100);
  try {
    process.kill(-ui.pid!, 'SIGKILL');
  } catch {
    // gone
  }
  console.log(output.split('\n').filter((line) => line.startsWith('[e2e-lanes]')).join('\n'));
}
process.exit(exitCode);
