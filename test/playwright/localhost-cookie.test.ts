// A session cookie set for `domain: "localhost"` by a server that listens on 127.0.0.1: a real
// Chromium logs in through a lane's baseURL and must be logged in on the next page with the default
// host, and is not with `host: '127.0.0.1'` (a browser does not send a cookie of localhost to 127.0.0.1).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chromium, type Browser } from '@playwright/test';
import { LaneManager } from '../../src/lanes/lane-manager.js';
import type { LanesOptions } from '../../src/lanes/options/lane-options.js';
import { SYSTEM_CHROMIUM_ARGS, systemChromium } from '../../src/playwright/browser.js';
import { tempDir } from '../helpers/tmp.js';

const SERVER = new URL('../fixtures/servers/cookie-server.mjs', import.meta.url).pathname;

/** What /me shows after /login, in a fresh browser context, for a lane with `host`. */
async function afterLogin(t: import('node:test').TestContext, browser: Browser, host: LanesOptions['host']): Promise<{ baseURL: string | undefined; shown: string; cookies: string[] }> {
  const manager = new LaneManager({
    runId: `cookie-${Math.random().toString(36).slice(2, 8)}`,
    stateDir: await tempDir(t),
    portRange: [35_950, 35_989],
    servers: [{ name: 'web', command: [process.execPath, SERVER], health: '/health' }],
    database: false,
    ...(host === undefined ? {} : { host }),
  });
  t.after(() => manager.teardown({ keep: false }));
  const lane = await manager.ensureLane('cookies');
  const context = await browser.newContext({ ...(lane.baseURL ? { baseURL: lane.baseURL } : {}) });
  t.after(() => context.close());
  const page = await context.newPage();
  await page.goto('/login', { timeout: 10_000 });
  assert.equal(new URL(page.url()).pathname, '/me', 'the login sent the browser on to /me');
  const shown = (await page.locator('#sid').textContent({ timeout: 5_000 })) ?? '';
  const cookies = (await context.cookies()).map((cookie) => `${cookie.name}=${cookie.value}; ${cookie.domain}`);
  return { baseURL: lane.baseURL, shown, cookies };
}

test('a cookie set for domain "localhost" comes back through the lane\'s baseURL by default, not with host: \'127.0.0.1\'', { timeout: 90_000 }, async (t) => {
  const executablePath = systemChromium();
  const browser = await chromium.launch(executablePath ? { executablePath, args: [...SYSTEM_CHROMIUM_ARGS] } : {});
  t.after(() => browser.close());

  const byDefault = await afterLogin(t, browser, undefined);
  assert.match(byDefault.baseURL ?? '', /^http:\/\/localhost:\d+$/);
  assert.equal(byDefault.shown, 'sid: 1', 'logged in on the next page');
  assert.equal(byDefault.cookies.length, 1);
  assert.match(byDefault.cookies[0]!, /^sid=1; \.?localhost$/);

  const numeric = await afterLogin(t, browser, '127.0.0.1');
  assert.match(numeric.baseURL ?? '', /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(numeric.shown, 'sid: none', 'the browser dropped the cookie of localhost');
  assert.deepEqual(numeric.cookies, []);
});
