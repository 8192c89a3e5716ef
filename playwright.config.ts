import { availableParallelism } from 'node:os';
import { defineConfig, devices } from '@playwright/test';
import { withLanes, type LaneConfigOptions } from 'e2e-lanes/playwright';

const node = [process.execPath, '--import', 'tsx'];

export default withLanes(
  defineConfig<{}, LaneConfigOptions>({
    testDir: './e2e',
    fullyParallel: true,
    // One worker per core: the demo's tests keep the CPU busy (browser, servers), so more workers
    // than cores only add start-ups. At least two, so the per-worker project shows two lanes.
    workers: Math.max(2, availableParallelism()),
    forbidOnly: !!process.env.CI,
    reporter: [['list'], ['html', { open: 'never', outputFolder: 'test-results/report' }]],
    use: { ...devices['Desktop Chrome'], trace: 'retain-on-failure' },
    projects: [
      // One lane per project: its workers share the lane.
      ...['alpha', 'beta', 'gamma', 'delta'].map((name) => ({ name, testIgnore: ['**/per-worker.spec.ts', '**/fresh-*.spec.ts'] })),
      // One lane per worker.
      { name: 'per-worker', testMatch: '**/per-worker.spec.ts', use: { laneIsolation: 'worker' } },
      // Fresh data for every test: its tests run one after another in one lane, each from the seed.
      // (DEMO_LANE_RESET=never turns the resets off, to see these tests fail without them.)
      {
        name: 'fresh',
        testMatch: '**/fresh-*.spec.ts',
        workers: 1,
        repeatEach: 3,
        use: { laneReset: process.env.DEMO_LANE_RESET === 'never' ? ('never' as const) : ('test' as const) },
      },
    ],
  }),
  {
    servers: [
      { name: 'backend', command: [...node, 'demo/backend/server.ts'], health: '/health' },
      { name: 'frontend', command: [...node, 'demo/frontend/server.ts'], health: '/health' },
    ],
    database: { migrations: 'prisma/migrations', seed: 'prisma/seed.ts', hashInputs: ['prisma/seed-data.ts'] },
    // Warm lanes between local runs (docs/fast-local-loop.md): `DEMO_REUSE=1 npx playwright test …`.
    reuse: process.env.DEMO_REUSE === '1',
  },
);
