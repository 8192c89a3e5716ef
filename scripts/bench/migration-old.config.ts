/**
 * Playwright config of the old-way run of part 7 (started by migration.ts): the specs and projects
 * of examples/vite-prisma/playwright.config.ts against ONE backend and ONE Vite server started by
 * Playwright's `webServer` and ONE database named by DATABASE_URL, with `workers: 1`.
 * `e2e-lanes/playwright` is mapped to migration-old-fixtures.ts by tsconfig.migration-old.json.
 */
import { defineConfig, devices } from '@playwright/test';
import { playwrightChromium, systemChromium, SYSTEM_CHROMIUM_ARGS } from '../../src/playwright/browser.ts';
import { databaseUrlOf, EXAMPLE, oldWaySettings } from './migration-old.ts';

const settings = oldWaySettings();
const backend = `http://127.0.0.1:${settings.backendPort}`;
const frontend = `http://127.0.0.1:${settings.frontendPort}`;
// What the developer's .env gives every process of the old way: the one database.
const databaseUrl = databaseUrlOf(settings.adminUrl, settings.database);
process.env.DATABASE_URL = databaseUrl;
// The same browser choice as withLanes: Playwright's Chromium when installed, else the system one.
const systemBrowser = playwrightChromium() ? undefined : systemChromium();

export default defineConfig({
  testDir: '../../examples/vite-prisma/e2e',
  tsconfig: './tsconfig.migration-old.json',
  fullyParallel: true,
  workers: 1,
  reporter: 'list',
  use: {
    trace: 'retain-on-failure',
    baseURL: frontend,
    ...(systemBrowser ? { launchOptions: { executablePath: systemBrowser, args: SYSTEM_CHROMIUM_ARGS } } : {}),
  },
  projects: [
    { name: 'desktop', use: { ...devices['Desktop Chrome'] } },
    { name: 'mobile', use: { ...devices['Pixel 7'] } },
  ],
  webServer: [
    {
      name: 'backend',
      command: 'node --import tsx backend/server.ts',
      cwd: EXAMPLE,
      env: { PORT: String(settings.backendPort), DATABASE_URL: databaseUrl },
      url: `${backend}/health`,
      reuseExistingServer: false,
      timeout: 60_000,
      gracefulShutdown: { signal: 'SIGTERM', timeout: 5_000 },
    },
    {
      name: 'frontend',
      command: 'npx vite --bypass-lock',
      cwd: EXAMPLE,
      env: { PORT: String(settings.frontendPort), BACKEND_URL: backend },
      url: frontend,
      reuseExistingServer: false,
      timeout: 60_000,
      gracefulShutdown: { signal: 'SIGTERM', timeout: 5_000 },
    },
  ],
});
