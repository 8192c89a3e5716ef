import type { TestProject } from 'vitest/node';
import { LanesError } from '../errors.js';
import { LaneManager } from '../lanes/lane-manager.js';
import { describeReap } from '../lanes/reaping/reaper.js';
import { debugLogger, progress } from '../log.js';
import { LANE_NOT_READY_URL, pointEnvAt } from '../postgres/app-env.js';
import { startControlServer, type ControlServer } from '../playwright/control-server.js';
import { showCode } from '../playwright/show-code.js';
import { completeAdminUrls } from '../playwright/worker-lane.js';
import { vitestBridge } from './bridge.js';
import { lanesOptionsOf, PROVIDED_KEY, type ProvidedLanes } from './options.js';

const debug = debugLogger('vitest');

/** The lane name of the workers of a Vitest project: its name, or `vitest`. @internal */
export function laneProjectName(project: Pick<TestProject, 'name'>): string {
  return project.name || 'vitest';
}

/**
 * The toolkit's global setup in Vitest (added by `withDatabases`), in the Vitest process: reaps
 * what dead runs left, gets PostgreSQL and the template ready (the ready pool filled for as many
 * databases as the run has workers), and starts the lane service the workers ask for their
 * database (and its resets) with a token given to them through `provide`: workers never see the
 * admin URL. A watch-mode re-run puts every worker's database back to the seed first. The
 * returned teardown drops the run's databases and roles; a Vitest that exits without it (SIGINT,
 * SIGTERM) has them dropped by a process the manager's exit hook starts (see lanes/reuse/exit-reaper.ts). If setup fails, what it started is
 * torn down before the error is rethrown (its code in front of the message).
 */
export default async function globalSetup(project: TestProject): Promise<() => Promise<void>> {
  const options = vitestBridge().options;
  if (!options) {
    throw showCode(
      new LanesError('CONFIG_INVALID', 'The e2e-lanes global setup for Vitest ran without options.', {
        hint: "Wrap your config with `withDatabases(config, options)` from 'e2e-lanes/vitest' in vitest.config.ts instead of adding the setup file by hand.",
      }),
    );
  }
  const name = laneProjectName(project);
  const active = vitestBridge().active;
  if (active !== undefined) {
    throw showCode(
      new LanesError('CONFIG_INVALID', `The e2e-lanes global setup for Vitest ran for project ${JSON.stringify(name)} while project ${JSON.stringify(active)} holds the run's databases: one Vitest project per run is supported.`, {
        hint: 'Run the suites that need databases as separate Vitest runs, each with a config of its own (without test.projects) wrapped with withDatabases.',
      }),
    );
  }
  vitestBridge().active = name;
  // Workers are Vitest's, not a project's: a project's config may leave maxWorkers out.
  const workers = Math.max(1, project.vitest.config.maxWorkers || project.config.maxWorkers || 1);
  // The admin URL keeps the parts it takes from PG*, which point away from every database below.
  const adminUrl = completeAdminUrls(options.database?.adminUrl);
  const lanes = lanesOptionsOf(adminUrl === undefined ? options : { ...options, database: { ...options.database, adminUrl } });
  let manager: LaneManager;
  try {
    manager = new LaneManager(lanes);
  } catch (error) {
    vitestBridge().active = undefined;
    throw showCode(error);
  }
  let control: ControlServer | undefined;
  const teardown = async (): Promise<void> => {
    vitestBridge().active = undefined;
    const started = Date.now();
    await control?.close();
    await manager.teardown();
    progress(`databases of run ${manager.runId} dropped in ${Date.now() - started} ms`);
  };
  try {
    const started = Date.now();
    manager.databases?.expectLanes(workers);
    const report = await manager.prepare();
    if (report.reaped.lanes.length > 0 || report.reaped.killedPids.length > 0) progress(describeReap(report.reaped));
    const template = report.template && !report.template.built ? `; template ${report.template.name} cached (no migrations run)` : '';
    if (report.postgres) progress(`${report.postgres}${template}`);
    control = await startControlServer(manager, { projects: [name], workers });
    const provided: ProvidedLanes = {
      url: control.url,
      token: control.token,
      project: name,
      reset: options.reset ?? 'never',
      strategy: manager.databases!.options.reset,
    };
    project.provide(PROVIDED_KEY as never, provided as never);
    // The Vitest process has no database of its own: a client created here (a global setup of the
    // config's own) or by a worker that did not run the setup file fails at once.
    pointEnvAt(LANE_NOT_READY_URL);
    project.onTestsRerun(async () => {
      // A re-run starts from the seed, like a new `vitest run`; no test runs meanwhile.
      for (const lane of await manager.lanes()) {
        const reset = await manager.resetLane(lane.project, { worker: lane.worker });
        debug('re-run: reset %s (worker %s) in %d ms', lane.databaseName, lane.worker, Math.round(reset.durationMs));
      }
    });
    progress(`ready in ${Date.now() - started} ms (run ${manager.runId}, a database per worker, up to ${workers})`);
  } catch (error) {
    await teardown().catch((failure: unknown) => debug('teardown after a failed setup failed: %O', failure));
    throw showCode(error);
  }
  return teardown;
}
