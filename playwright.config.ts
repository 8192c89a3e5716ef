import { defineConfig, devices } from '@playwright/test';
import { withLanes } from 'e2e-lanes/playwright';

const node = [process.execPath, '--import', 'tsx'];

export default withLanes(
  defineConfig({
    testDir: './e2e',
    fullyParallel: true,
    workers: 4,
    forbidOnly: !!process.env.CI,
    reporter: [['list'], ['html', { open: 'never', outputFolder: 'test-results/report' }]],
    use: { ...devices['Desktop Chrome'], trace: 'retain-on-failure' },
    projects: [{ name: 'alpha' }, { name: 'beta' }, { name: 'gamma' }, { name: 'delta' }],
  }),
  {
    servers: [
      { name: 'backend', command: [...node, 'demo/backend/server.ts'], health: '/health' },
      { name: 'frontend', command: [...node, 'demo/frontend/server.ts'], health: '/health', dependsOn: ['backend'] },
    ],
    database: { migrations: 'prisma/migrations', seed: 'prisma/seed.ts' },
  },
);
