import { readFile } from 'node:fs/promises';
import { test as base, expect } from '@playwright/test';
import type { Lane } from '../lanes/lane-manager.js';
import { requestLane } from './control-client.js';

/** Fixtures e2e-lanes adds to every test. */
export interface LaneTestFixtures {
  /** @internal Attaches the lane's server logs to the report of a failing test. */
  _laneLogs: void;
}

/** Worker-scoped fixtures and options e2e-lanes adds. */
export interface LaneWorkerFixtures {
  /** The lane of this worker's project (or of this worker, with per-worker isolation). */
  lane: Lane;
  /**
   * One lane per project (shared by its workers), or one per worker. Set it per project with
   * `use: { laneIsolation: 'worker' }`.
   * @default the `isolation` option of withLanes, else 'project'
   */
  laneIsolation: 'project' | 'worker' | undefined;
}

/** Options e2e-lanes reads from a project's `use`: `defineConfig<{}, LaneConfigOptions>(…)`. */
export type LaneConfigOptions = Pick<LaneWorkerFixtures, 'laneIsolation'>;

/** How many lines of each server log are attached to a failing test. */
const LOG_TAIL_LINES = 200;

/**
 * Playwright's `test` with lanes: a worker-scoped `lane` fixture, `baseURL` pointing at the lane's
 * base server, and `process.env.DATABASE_URL` pointing at the lane's database in every worker.
 */
export const test = base.extend<LaneTestFixtures, LaneWorkerFixtures>({
  laneIsolation: [undefined, { scope: 'worker', option: true }],
  lane: [
    async ({ laneIsolation }, use, workerInfo) => {
      const isolation = laneIsolation ?? (process.env.E2E_LANES_ISOLATION as 'project' | 'worker' | undefined) ?? 'project';
      const lane = await requestLane({
        project: workerInfo.project.name,
        ...(isolation === 'worker' ? { worker: workerInfo.parallelIndex } : {}),
      });
      if (lane.databaseUrl) process.env.DATABASE_URL = lane.databaseUrl;
      await use(lane);
    },
    { scope: 'worker', timeout: 180_000 },
  ],
  baseURL: async ({ lane, baseURL }, use) => {
    await use(lane.baseURL ?? baseURL);
  },
  _laneLogs: [
    async ({ lane }, use, testInfo) => {
      await use();
      if (testInfo.status === testInfo.expectedStatus) return;
      for (const [server, file] of Object.entries(lane.logFiles)) {
        const text = await readFile(file, 'utf8').catch((error: Error) => `(could not read ${file}: ${error.message})`);
        const tail = text.split('\n').slice(-LOG_TAIL_LINES - 1).join('\n');
        await testInfo.attach(`${server}.log`, { body: tail, contentType: 'text/plain' });
      }
    },
    { auto: true },
  ],
});

export { expect };
