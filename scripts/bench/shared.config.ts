/**
 * Playwright config of the shared-mode run of part 4 (started by suite.ts): the same specs and
 * projects as playwright.config.ts, against ONE backend + frontend started by Playwright's
 * `webServer` on fixed free ports and ONE database, with `workers: 1`. `e2e-lanes/playwright` is
 * mapped to shared-fixtures.ts by tsconfig.shared.json.
 */
import { defineConfig, devices } from '@playwright/test';
import { playwrightChromium, systemChromium, SYSTEM_CHROMIUM_ARGS } from '../../src/playwright/browser.ts';
import { ROOT } from './context.ts';
import { sharedSettings, SUITE_PROJECTS } from './shared-mode.ts';

const shared = sharedSettings();
const backend = `http://127.0.0.1:${shared.backendPort}`;
const frontend = `http://127.0.0.1:${shared.frontendPort}`;
const node = `${JSON.stringify(process.execPath)} --import tsx`;
// The same browser choice as withLanes: Playwright's Chromium when installed, else the system one.
const systemBrowser = playwrightChromium() ? undefined : systemChromium();

export default defineConfig({
  testDir: '../../e2e',
  tsconfig: './tsconfig.shared.json',
  fullyParallel: true,
  workers: 1,
  forbidOnly: !!process.env.CI,
  reporter: 'list',
  use: {
    ...devices['Desktop Chrome'],
    trace: 'retain-on-failure',
    baseURL: frontend,
    ...(systemBrowser ? { launchOptions: { executablePath: systemBrowser, args: SYSTEM_CHROMIUM_ARGS } } : {}),
  },
  projects: SUITE_PROJECTS.map((name) => ({ name, testIgnore: ['**/per-worker.spec.ts', '**/fresh-*.spec.ts'] })),
  webServer: [
    {
      name: 'backend',
      command: `${node} demo/backend/server.ts`,
      cwd: ROOT,
      env: { PORT: String(shared.backendPort), DATABASE_URL: shared.databaseUrl },
      url: `${backend}/health`,
      reuseExistingServer: false,
      timeout: 60_000,
      gracefulShutdown: { signal: 'SIGTERM', timeout: 5_000 },
    },
    {
      name: 'frontend',
      command: `${node} demo/frontend/server.ts`,
      cwd: ROOT,
      env: { PORT: String(shared.frontendPort), BACKEND_URL: backend },
      url: `${frontend}/health`,
      reuseExistingServer: false,
      timeout: 60_000,
      gracefulShutdown: { signal: 'SIGTERM', timeout: 5_000 },
    },
  ],
});
