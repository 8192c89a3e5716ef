import { fileURLToPath } from 'node:url';
import { defineConfig, devices } from '@playwright/test';
import { withLanes, type LaneConfigOptions } from 'e2e-lanes/playwright';

// This folder: the servers run here, whatever folder `playwright test` is started from.
const app = fileURLToPath(new URL('.', import.meta.url));

export default withLanes(
  defineConfig<{}, LaneConfigOptions>({
    testDir: './e2e',
    fullyParallel: true,
    workers: 2,
    // Every test starts from the seed, in milliseconds (instead of `prisma migrate reset` in a beforeEach).
    use: { laneReset: 'test', trace: 'retain-on-failure' },
    // Two projects, two lanes, side by side; within a project the tests take turns (they reset its lane).
    projects: [
      { name: 'desktop', workers: 1, use: { ...devices['Desktop Chrome'] } },
      { name: 'mobile', workers: 1, use: { ...devices['Pixel 7'] } },
    ],
  }),
  {
    servers: [
      // The backend reads .env itself in development (`node --env-file=.env`); here the lane hands it the file.
      { name: 'backend', command: 'node --import tsx backend/server.ts', cwd: app, envFile: '.env', health: '/health' },
      // Vite loads .env by itself; the lane's PORT and BACKEND_URL, set in its environment, win.
      // --bypass-lock: Vite refuses a second dev server of the same project, and every lane runs one.
      { name: 'frontend', command: 'npx vite --bypass-lock', cwd: app },
    ],
    database: { migrations: `${app}prisma/migrations`, seed: `${app}prisma/seed.ts`, hashInputs: [`${app}prisma/seed-data.ts`] },
  },
);
