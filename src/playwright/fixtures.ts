import { readFile, stat } from 'node:fs/promises';
import { test as base, expect } from '@playwright/test';
import { ISOLATION_ENV } from '../env-vars.js';
import { LanesError } from '../errors.js';
import type { ResetStrategy } from '../databases/types.js';
import type { Lane } from '../lanes/lane-manager.js';
import type { LaneUser } from '../lanes/use/lane-users.js';
import { describeExit, type LaneServerStatus } from '../lanes/server-status.js';
import { passwordOf, redactText, redactUrl } from '../redact.js';
import { reportTest, requestLane, requestReset, requestServerStatus } from './control-client.js';
import { showCode } from './show-code.js';
import { adoptLaneDatabase, publishedIsolation } from './worker-lane.js';
import { LANE_NOT_READY_URL, mentionsLaneNotReady } from '../postgres/app-env.js';

/** Fixtures and options e2e-lanes adds to every test. */
export interface LaneTestFixtures {
  /**
   * `'test'`: before each test starts, the lane's database is put back to exactly its template
   * (migrations + seed), while the lane's servers keep running; its name and URL do not change.
   * Set it in a project's `use`, or with `test.use({ laneReset: 'test' })` for a file or a group.
   * A lane whose tests reset it is never used by two tests at once: a project with it in its `use`
   * on more than one worker gets a lane per worker (unless `laneIsolation` says otherwise, which
   * setup refuses), and tests that still share a lane take turns on it.
   * @default 'never'
   */
  laneReset: 'never' | 'test';
  /**
   * How `laneReset` and `lane.resetDatabase()` reset: `'swap'` or `'truncate'` (see the
   * `database.reset` option).
   * @default the `database.reset` option of withLanes, else 'swap'
   */
  laneResetStrategy: ResetStrategy | undefined;
  /**
   * @internal Tells the runner this test uses its lane (resetting the data first with
   * `laneReset: 'test'`), so no other test resets the lane meanwhile.
   */
  _laneTest: void;
  /**
   * @internal Attaches the lane's server logs to the report of a failing test, and adds an error
   * naming every server of the lane that died during the run.
   */
  _laneLogs: void;
}

/** A lane as a test sees it: its facts, and a way to put its data back. */
export interface LaneHandle extends Lane {
  /**
   * Puts the lane's database back to exactly its template now (e.g. after a `beforeAll` that
   * wrote to the lane), while its servers keep running.
   * No test enters the lane while the reset runs.
   * @throws {LanesError} `LANE_RESET_CONFLICT` while another test uses the lane, `DATABASE_RESET_FAILED`.
   */
  resetDatabase(options?: { strategy?: ResetStrategy }): Promise<void>;
}

/** Worker-scoped fixtures and options e2e-lanes adds. */
export interface LaneWorkerFixtures {
  /** The lane of this worker's project (or of this worker, with per-worker isolation). */
  lane: LaneHandle;
  /**
   * One lane per project (shared by its workers), or one per worker. Set it per project with
   * `use: { laneIsolation: 'worker' }`.
   * @default the `isolation` option of withLanes, else 'project'
   */
  laneIsolation: 'project' | 'worker' | undefined;
}

/** Options e2e-lanes reads from a project's `use`: `defineConfig<{}, LaneConfigOptions>(…)`. */
export type LaneConfigOptions = Pick<LaneWorkerFixtures, 'laneIsolation'> & Partial<Pick<LaneTestFixtures, 'laneReset' | 'laneResetStrategy'>>;

/** The test running in this worker now, as the runner knows it (set by `_laneTest`). */
let currentUser: LaneUser | undefined;
/** When the test running in this worker began entering its lane (set by `_laneTest`, before its reset). */
let testStartedAt: number | undefined;

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
      const isolation = laneIsolation ?? publishedIsolation(workerInfo.project.name) ?? (process.env[ISOLATION_ENV] as 'project' | 'worker' | undefined) ?? 'project';
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
      const where = { project: lane.project, ...(lane.worker !== undefined ? { worker: lane.worker } : {}) };
      const handle: LaneHandle = {
        ...lane,
        resetDatabase: async (options = {}) => {
          try {
            await requestReset({ ...where, ...(options.strategy ? { strategy: options.strategy } : {}), ...(currentUser ? { user: currentUser } : {}) });
          } catch (error) {
            throw showCode(error);
          }
        },
      };
      await use(handle);
    },
    { scope: 'worker', timeout: 180_000 },
  ],
  baseURL: async ({ lane, baseURL }, use) => {
    await use(lane.baseURL ?? baseURL);
  },
  laneReset: ['never', { option: true }],
  laneResetStrategy: [undefined, { option: true }],
  _laneTest: [
    async ({ lane, laneReset, laneResetStrategy }, use, testInfo) => {
      if (laneReset !== 'never' && laneReset !== 'test') {
        throw showCode(new LanesError('INVALID_OPTION', `Invalid laneReset ${JSON.stringify(laneReset)} in project ${JSON.stringify(lane.project)}.`, { hint: "Use 'never' or 'test'." }));
      }
      if (laneReset === 'test' && !lane.databaseName) {
        throw showCode(
          new LanesError('INVALID_OPTION', `laneReset: 'test' in project ${JSON.stringify(lane.project)}, but its lanes have no database (option \`database: false\`).`, {
            hint: 'Remove laneReset from that project, or give the lanes a database.',
          }),
        );
      }
      const where = { project: lane.project, ...(lane.worker !== undefined ? { worker: lane.worker } : {}) };
      const user: LaneUser = { pid: process.pid, testId: `${testInfo.testId}#${testInfo.retry}#${testInfo.repeatEachIndex}`, title: testInfo.titlePath.slice(1).join(' › ') };
      testStartedAt = Date.now();
      try {
        await reportTest({ ...where, phase: 'begin', user, reset: laneReset === 'test', ...(laneResetStrategy ? { strategy: laneResetStrategy } : {}) });
      } catch (error) {
        throw showCode(error);
      }
      currentUser = user;
      try {
        await use();
      } finally {
        currentUser = undefined;
        await reportTest({ ...where, phase: 'end', user, failed: testInfo.status !== testInfo.expectedStatus }).catch(() => undefined);
      }
    },
    { auto: true },
  ],
  _laneLogs: [
    async ({ lane }, use, testInfo) => {
      // Where each log stands when the test starts: a failing test gets the lines written since.
      const offsets = new Map(await Promise.all(Object.entries(lane.logFiles).map(async ([server, file]) => [server, (await stat(file).catch(() => undefined))?.size ?? 0] as const)));
      const setUpAt = Date.now();
      await use();
      // From the lane's entry (a server that dies of the test's reset counts), whichever fixture came first.
      const startedAt = Math.min(setUpAt, testStartedAt ?? setUpAt);
      const failed = testInfo.status !== testInfo.expectedStatus;
      // Asked first: the runner waits for a server it finds dead to finish writing its log.
      const servers = await requestServerStatus({ project: lane.project, ...(lane.worker !== undefined ? { worker: lane.worker } : {}) }).catch(() => undefined);
      // Servers that died while this test ran (restarted since or not) fail it, even if it passed;
      // a failed test also names those given up on earlier.
      const diedDuring = (server: LaneServerStatus): boolean => server.exit !== undefined && (server.diedAt === undefined || Date.parse(server.diedAt) >= startedAt);
      const dead = servers?.filter((server) => diedDuring(server) || (failed && server.exit && server.givenUp)) ?? [];
      if (!failed && dead.length === 0) return;
      // Redacted here too: a warm server whose log writer could not start writes its log itself.
      const password = lane.databaseUrl ? passwordOf(lane.databaseUrl) : undefined;
      for (const [server, current] of Object.entries(lane.logFiles)) {
        // A server restarted since: the log of the process that died (kept beside the new one).
        const file = dead.find((status) => status.name === server)?.logFile ?? current;
        // A log cut short (a full disk) says so at its end: its silence proves nothing.
        const problem = servers?.find((status) => status.name === server)?.logProblem;
        const body = (await logOfTest(file, offsets.get(server) ?? 0)) + (problem ? `\n[e2e-lanes] ${problem}\n` : '');
        await testInfo.attach(`${server}.log`, { body: redactText(body, password ? [password] : []), contentType: 'text/plain' });
      }
      await testInfo.attach('lane.json', { body: JSON.stringify(laneFacts(lane, servers), null, 2), contentType: 'application/json' });
      if (dead.length > 0) throw serversDied(lane, dead);
      if (testInfo.errors.some((error) => mentionsLaneNotReady(error.message) || mentionsLaneNotReady(error.stack))) throw laneNotReady(lane);
    },
    { auto: true },
  ],
});

/**
 * What a failing test gets of a server's log: the lines written while it ran (from `offset`), or the
 * last lines when it wrote none; the first line says which, and where the whole log is.
 */
async function logOfTest(file: string, offset: number): Promise<string> {
  let text: Buffer;
  try {
    text = await readFile(file);
  } catch (error) {
    return `(could not read ${file}: ${(error as Error).message})`;
  }
  const during = text.subarray(Math.min(offset, text.length)).toString('utf8');
  if (during.trim() !== '') {
    const lines = during.split('\n');
    const shown = lines.length > LOG_TAIL_LINES * 5 ? lines.slice(-LOG_TAIL_LINES * 5) : lines;
    return `(lines written while this test ran${shown.length < lines.length ? `, the last ${shown.length - 1}` : ''}; whole log: ${file})\n${shown.join('\n')}`;
  }
  const tail = text.toString('utf8').split('\n').slice(-LOG_TAIL_LINES - 1).join('\n');
  return `(the server wrote nothing while this test ran; its last ${LOG_TAIL_LINES} lines; whole log: ${file})\n${tail}`;
}

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
    servers: (servers ?? []).map((server) => ({
      name: server.name,
      pid: server.pid,
      alive: !server.exit,
      ...(server.exit ? { exit: server.exit } : {}),
      ...(server.diedAt ? { diedAt: server.diedAt } : {}),
      ...(server.restarted ? { restarted: true } : {}),
      ...(server.givenUp ? { givenUp: true } : {}),
      logFile: server.logFile,
      ...(server.logProblem ? { logProblem: server.logProblem } : {}),
    })),
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
  const what = dead
    .map((server) => {
      const after = server.givenUp ? ` and was given up on after ${server.restarts ?? 0} restart(s) in this run` : server.restarted ? ' (restarted since)' : '';
      return `"${server.name}" (pid ${server.pid}) ${describeExit(server.exit!)}${after}`;
    })
    .join('; ');
  const later = dead.some((server) => server.givenUp)
    ? 'It kept dying, so it is not restarted again: later tests of this lane fail too until the run ends.'
    : 'e2e-lanes restarts it on the same ports (at most 3 times in a run): later tests of this lane run on the restarted server.';
  const logs = dead.map((server) => `${server.name}.log (full log: ${server.logFile})`).join(', ');
  return showCode(
    new LanesError('SERVER_EXITED', `The lane of project ${JSON.stringify(lane.project)} lost ${dead.length === 1 ? 'a server' : 'servers'} during the run: ${what}. See the attached ${logs}.`, {
      hint: dead.some((server) => server.afterSwap)
        ? `It died after the lane's database was swapped (its sessions ended by a reset). Likely causes, in order: an unhandled error on a connection the reset ended — a request still running when the grace (database.resetGraceMs) ran out, whose handler has no catch, or a pg.Pool without an 'error' listener (idle connections are ended at once); catch errors in request handlers and give the pool an 'error' listener. Or use database.reset: 'truncate' (or laneResetStrategy: 'truncate'), which ends no session. ${later}`
        : `The server died on its own (crash, exit, out of memory…): its log says why. ${later}`,
      details: { project: lane.project, servers: dead },
    }),
  );
}

export { expect };
