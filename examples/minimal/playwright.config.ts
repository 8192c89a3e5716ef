import { defineConfig } from '@playwright/test';
import { withLanes } from 'e2e-lanes/playwright';

export default withLanes(
  defineConfig({
    testDir: './e2e',
    fullyParallel: true,
    projects: [{ name: 'first' }, { name: 'second' }],
  }),
  {
    servers: [
      { name: 'backend', command: 'node --import tsx demo/backend/server.ts', health: '/health' },
      { name: 'frontend', command: 'node --import tsx demo/frontend/server.ts', health: '/health', dependsOn: ['backend'] },
    ],
    database: { migrations: 'prisma/migrations', seed: 'prisma/seed.ts' },
  },
);
