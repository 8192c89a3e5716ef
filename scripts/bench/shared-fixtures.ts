/**
 * Stands in for `e2e-lanes/playwright` in the shared-mode run (mapped by tsconfig.shared.json), so
 * the specs run unchanged: the `lane` fixture describes the ONE shared server and database, and
 * resets that database to the seed when a worker starts (once per project with `workers: 1`).
 */
import { expect, test as base } from '@playwright/test';
import type { Lane } from '../../src/index.ts';
import { resetDatabase, sharedSettings } from './shared-mode.ts';

export const test = base.extend<object, { lane: Lane }>({
  lane: [
    // eslint-disable-next-line no-empty-pattern
    async ({}, use, workerInfo) => {
      const shared = sharedSettings();
      await resetDatabase(shared.databaseUrl);
      process.env.DATABASE_URL = shared.databaseUrl;
      const urls = { backend: `http://127.0.0.1:${shared.backendPort}`, frontend: `http://127.0.0.1:${shared.frontendPort}` };
      await use({
        runId: 'shared',
        project: workerInfo.project.name,
        ports: { backend: shared.backendPort, frontend: shared.frontendPort },
        urls,
        baseURL: urls.frontend,
        databaseName: shared.databaseName,
        databaseUrl: shared.databaseUrl,
        logFiles: {},
      });
    },
    { scope: 'worker', auto: true },
  ],
});

export { expect };
