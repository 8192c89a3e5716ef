/**
 * Stands in for `e2e-lanes/playwright` in the old-way run of part 7 (mapped by
 * tsconfig.migration-old.json), so the example's specs run unchanged: the `lane` fixture describes
 * the ONE server pair and database, and before every test the database is dropped, migrated and
 * seeded again (the `beforeEach(resetDatabase)` of a suite that runs `prisma migrate reset`).
 */
import { expect, test as base } from '@playwright/test';
import type { Lane } from '../../src/index.ts';
import { databaseUrlOf, migrateReset, oldWaySettings } from './migration-old.ts';

const settings = oldWaySettings();

export const test = base.extend<{ resetBeforeEach: void }, { lane: Lane }>({
  lane: [
    // eslint-disable-next-line no-empty-pattern
    async ({}, use, workerInfo) => {
      const urls = { backend: `http://127.0.0.1:${settings.backendPort}`, frontend: `http://127.0.0.1:${settings.frontendPort}` };
      await use({
        runId: 'old-way',
        project: workerInfo.project.name,
        ports: { backend: settings.backendPort, frontend: settings.frontendPort },
        urls,
        baseURL: urls.frontend,
        databaseName: settings.database,
        databaseUrl: databaseUrlOf(settings.adminUrl, settings.database),
        logFiles: {},
      });
    },
    { scope: 'worker' },
  ],
  resetBeforeEach: [
    async ({}, use) => {
      await migrateReset(settings);
      await use();
    },
    { auto: true },
  ],
});

export { expect };
