import { readFile } from 'node:fs/promises';
import { test as base, expect } from '@playwright/test';
import { LanesError } from '../errors.js';
import type { Lane } from '../lanes/lane-manager.js';
import { describeExit, type LaneServerStatus } from '../lanes/server-status.js';
import { passwordOf, redactText, redactUrl } from '../redact.js';
import { requestLane, requestServerStatus } from './control-client.js';
import { showCode } from './show-code.js';
import { adoptLaneDatabase } from './worker-lane.js';
import { LANE_NOT_READY_URL, mentionsLaneNotReady } from '../postgres/app-env.js';

/** Fixtures e2e-lanes adds to every test. */
export interface LaneTestFixtures {
  /**
   * @internal Attaches the lane's server logs to the report of a failing test, and adds an error
   * naming every server of the lane that died during the run.
   */
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
      const started = performance.now();
      const lane = await requestLane({
        project: workerInfo.project.name,
        ...(isolation === 'worker' ? { worker: workerInfo.parallelIndex } : {}),
      });
      try {
        adoptLaneDatabase(lane);
      } catch (error) {
        throw showCode(error);
      }
      // Where the time went, in the report and the trace: one titled step of the lane's boot.
      await base.step(laneStepTitle(lane, performance.now() - started), async () => undefined, { box: true });
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
      // Asked first: the runner waits for a server it finds dead to finish writing its log.
      const servers = await requestServerStatus({ project: lane.project, ...(lane.worker !== undefined ? { worker: lane.worker } : {}) }).catch(() => undefined);
      // Logs of kept lanes are written by the servers themselves, unredacted: redact here too.
      const password = lane.databaseUrl ? passwordOf(lane.databaseUrl) : undefined;
      for (const [server, file] of Object.entries(lane.logFiles)) {
        const text = await readFile(file, 'utf8').catch((error: Error) => `(could not read ${file}: ${error.message})`);
        const tail = text.split('\n').slice(-LOG_TAIL_LINES - 1).join('\n');
        await testInfo.attach(`${server}.log`, { body: redactText(tail, password ? [password] : []), contentType: 'text/plain' });
      }
      await testInfo.attach('lane.json', { body: JSON.stringify(laneFacts(lane, servers), null, 2), contentType: 'application/json' });
      const dead = servers?.filter((server) => server.exit) ?? [];
      if (dead.length > 0) throw serversDied(lane, dead);
      if (testInfo.errors.some((error) => mentionsLaneNotReady(error.message) || mentionsLaneNotReady(error.stack))) throw laneNotReady(lane);
    },
    { auto: true },
  ],
});

/** `lane "alpha": backend 3101, frontend 3102, database e2e_…, ready in 1.3 s`. */
function laneStepTitle(lane: Lane, waitedMs: number): string {
  const who = `lane ${JSON.stringify(lane.project)}${lane.worker !== undefined ? ` (worker ${lane.worker})` : ''}`;
  const ports = Object.entries(lane.ports).map(([name, port]) => `${name} ${port}`);
  const database = lane.databaseName ? [`database ${lane.databaseName}`] : [];
  return `${who}: ${[...ports, ...database].join(', ')}, ready in ${(waitedMs / 1000).toFixed(1)} s`;
}

/** What a failed test's `lane.json` says: where its lane was and how its servers were (no password). */
function laneFacts(lane: Lane, servers: LaneServerStatus[] | undefined): Record<string, unknown> {
  return {
    runId: lane.runId,
    project: lane.project,
    ...(lane.worker !== undefined ? { worker: lane.worker } : {}),
    ports: lane.ports,
    urls: lane.urls,
    ...(lane.baseURL ? { baseURL: lane.baseURL } : {}),
    ...(lane.databaseName ? { databaseName: lane.databaseName } : {}),
    ...(lane.databaseUrl ? { databaseUrl: redactUrl(lane.databaseUrl) } : {}),
    servers: (servers ?? []).map((server) => ({ name: server.name, pid: server.pid, alive: !server.exit, ...(server.exit ? { exit: server.exit } : {}), logFile: server.logFile })),
  };
}

/** The error added to a failed test whose database client was created before the lane was known. */
function laneNotReady(lane: Lane): LanesError {
  return showCode(
    new LanesError(
      'LANE_NOT_READY',
      `A database client in this test used ${LANE_NOT_READY_URL}: it was created before this worker knew its lane (project ${JSON.stringify(lane.project)}), so e2e-lanes pointed it at an address that cannot connect instead of at a database outside the lane.`,
      {
        hint: 'Create the client in a fixture or in the test from `lane.databaseUrl` (or process.env.DATABASE_URL read there); see docs/databases-in-tests.md.',
        details: { project: lane.project },
      },
    ),
  );
}

/** The error added to a failed test whose lane lost servers. */
function serversDied(lane: Lane, dead: LaneServerStatus[]): LanesError {
  const what = dead.map((server) => `"${server.name}" (pid ${server.pid}) ${describeExit(server.exit!)}`).join('; ');
  const logs = dead.map((server) => `${server.name}.log (full log: ${server.logFile})`).join(', ');
  return showCode(
    new LanesError('SERVER_EXITED', `The lane of project ${JSON.stringify(lane.project)} lost ${dead.length === 1 ? 'a server' : 'servers'} during the run: ${what}. See the attached ${logs}.`, {
      hint: 'The server died on its own (crash, exit, out of memory…): its log says why. Later tests of this lane fail too until the run ends.',
      details: { project: lane.project, servers: dead },
    }),
  );
}

export { expect };
