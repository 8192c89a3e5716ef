import type { FullConfig, FullProject } from '@playwright/test';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { CONTROL_TOKEN_ENV, CONTROL_URL_ENV, LANE_DATABASES_ENV, PROJECT_ISOLATION_ENV } from '../env-vars.js';
import { LanesError } from '../errors.js';
import { LaneManager } from '../lanes/lane-manager.js';
import { resolveLaneIsolation } from '../lanes/options/isolation.js';
import { keepLanes, type LanesOptions } from '../lanes/options/lane-options.js';
import { describeReap } from '../lanes/reaping/reaper.js';
import { progress, warn } from '../log.js';
import { ignoredAppDatabaseUrl } from '../postgres/index.js';
import { RUN_ID_ENV } from '../env-vars.js';
import { browserNotFound, playwrightChromium } from './browser.js';
import { startControlServer, type ControlServer } from './control-server.js';
import { LanePrefetcher } from './prefetch.js';
import { configBridge as registry } from './config-bridge.js';
import { showCode } from './show-code.js';
import { formatLaneDatabases } from './worker-lane.js';
import { describeForeignConnections, foreignRunnerConnections } from './runner-clients.js';

/**
 * Signals that end the runner without Playwright's teardown (it handles only SIGINT): a kill or a
 * CI timeout (SIGTERM), a closed terminal (SIGHUP). The runner tears the run down first.
 */
const TEARDOWN_SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGHUP'];

/**
 * The toolkit's global setup (added by `withLanes`): reaps what dead runs left, gets Postgres and
 * the template ready once, and starts the runner's lane service that workers ask for their lane.
 * With `eager`, it boots every selected project's lane right away; else it starts the first
 * project's lane in the background (`prefetch`). If anything fails, what was
 * started is torn down before the error is rethrown (with its code in front of the message).
 *
 * On Ctrl-C Playwright runs the global teardown while this setup may still be running: the
 * teardown closes the manager (no lane boots after that) and this setup stops where it is.
 */
export default async function globalSetup(config: FullConfig): Promise<void> {
  const options = registry().options;
  if (!options) {
    throw showCode(
      new LanesError('CONFIG_INVALID', 'The e2e-lanes global setup ran without options.', {
        hint: "Wrap your config with `withLanes(config, options)` from 'e2e-lanes/playwright' instead of adding the setup file by hand.",
      }),
    );
  }
  const projects = selectedProjects(config);
  let isolation: Map<string, 'project' | 'worker'>;
  try {
    assertNoWebServer(config, options.allowWebServer ?? false);
    assertBrowsers(projects);
    isolation = resolveIsolations(config, projects, options.isolation);
  } catch (error) {
    throw showCode(error);
  }
  const laneIsolation = (project: FullProject): 'project' | 'worker' => isolation.get(project.name) ?? 'project';

  let manager: LaneManager;
  try {
    manager = await LaneManager.reusing(options, { ...(config.configFile ? { configFile: config.configFile } : {}), resetEachRound: isInteractiveSession() });
  } catch (error) {
    throw showCode(error);
  }
  let control: ControlServer | undefined;
  let disposing: Promise<void> | undefined;
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    const code = 128 + (constants.signals[signal] ?? 15);
    // A second signal during the teardown: exit now (the exit hooks stop the servers and tear the rest down).
    if (signalled) return void process.exit(code);
    signalled = true;
    // Playwright does not handle these signals: clean up, then die of the signal as usual.
    const bound = setTimeout(() => process.exit(code), 30_000);
    void dispose().finally(() => {
      clearTimeout(bound);
      process.kill(process.pid, signal);
    });
  };
  // The handlers stay until the teardown is done: signal-exit (which execa and the exit hook of
  // the lanes load) ends the process with the signal as soon as no other handler is left.
  const dispose = (): Promise<void> =>
    (disposing ??= (async () => {
      try {
        await control?.close();
        await manager.teardown();
      } finally {
        for (const signal of TEARDOWN_SIGNALS) process.off(signal, onSignal);
      }
    })());
  for (const signal of TEARDOWN_SIGNALS) process.on(signal, onSignal);
  registry().active = { manager, get control() { return control!; }, dispose };

  try {
    const started = Date.now();
    // The ready copies kept for this run: one per lane it boots, at most 4 (unless `database.pool` says).
    const perWorker = projects.filter((project) => laneIsolation(project) === 'worker').length;
    // The lanes this run may use: one per project, one per worker of a per-worker project.
    const expected = projects.length - perWorker + perWorker * config.workers;
    manager.databases?.expectLanes(expected);
    const report = await manager.prepare();
    if (disposing) return; // interrupted: the teardown already ran
    if (manager.reuse.ignored) progress(manager.reuse.ignored);
    if (manager.reuse.enabled) {
      const report = await manager.reuseWarmLanes(projects.map((project) => project.name));
      if (disposing) return;
      // Workers name their lane's database from the run id: the warm run's, reused.
      process.env[RUN_ID_ENV] = manager.runId;
      const toBoot = Math.max(0, expected - report.reused.length);
      progress(
        report.reused.length > 0
          ? `reuse: ${report.reused.length} warm lane(s) of run ${manager.runId} reused (idle ${Math.round((report.idleMs ?? 0) / 1000)} s, data reset), ${toBoot} to boot`
          : `reuse: no warm lane to reuse${report.replaced.length > 0 ? ` (${report.replaced.length} not reused)` : ''}, ${toBoot} to boot`,
      );
    }
    const perProject = projects.filter((project) => laneIsolation(project) === 'project').map((project) => project.name);
    const ahead = options.eager ? 0 : (options.prefetch ?? 1);
    const prefetcher = ahead > 0 ? new LanePrefetcher(manager, perProject, ahead) : undefined;
    // The first lane boots while the rest of the setup runs (its servers are the slow part of a run's start).
    prefetcher?.start();
    if (report.reaped.lanes.length > 0 || report.reaped.killedPids.length > 0) {
      progress(describeReap(report.reaped));
    }
    // A build is announced by the allocator itself; say so when nothing had to be built.
    const template = report.template && !report.template.built ? `; template ${report.template.name} cached (no migrations run)` : '';
    if (report.postgres) progress(`${report.postgres}${template}`);
    if (manager.databases) {
      // Before any worker starts: workers name their lane's database from this (see worker-lane.ts).
      process.env[LANE_DATABASES_ENV] = formatLaneDatabases({ ...(await manager.databases.laneAccess()), prefix: manager.databases.prefix, runId: manager.runId });
      for (const line of appEnvNotices(options)) progress(line);
      // Before the user's global setup: a client the config created before withLanes ran is only seen, not redirected.
      const foreign = await foreignRunnerConnections(await manager.databases.adminUrl(), manager.databases.prefix).catch(() => []);
      const line = describeForeignConnections(foreign);
      if (line) warn(line);
    }
    control = await startControlServer(manager, { projects: projects.map((project) => project.name), configProjects: config.projects.map((project) => project.name), workers: config.workers, prefetcher });
    if (disposing) {
      await control.close();
      return;
    }
    // The URL only: each worker gets a token of its own when it is forked (worker-tokens.ts).
    process.env[CONTROL_URL_ENV] = control.url;
    delete process.env[CONTROL_TOKEN_ENV];
    if (options.eager) await Promise.all(perProject.map((project) => manager.ensureLane(project)));
    progress(`ready in ${Date.now() - started} ms (run ${manager.runId}${keepLanes(options) ? ', lanes kept after the run' : manager.reuse.enabled ? ', lanes kept warm after the run' : ''})`);
  } catch (error) {
    const interrupted = disposing !== undefined;
    await dispose().catch(() => undefined);
    // Torn down already: the global teardown must not report the teardown's own errors again.
    if (registry().active?.manager === manager) registry().active = undefined;
    if (interrupted) return;
    throw showCode(error);
  }
}

/**
 * True in Playwright's UI mode (`--ui`, `--ui-host`, `--ui-port`) and in the test server the VS
 * Code extension runs (`playwright test-server`): one global setup serves many runs, so each run
 * starts from the template (see LaneManager.startsRound).
 */
export function isInteractiveSession(argv: readonly string[] = process.argv): boolean {
  return argv.slice(2).some((arg) => arg === 'test-server' || arg === '--ui' || arg.startsWith('--ui-host') || arg.startsWith('--ui-port') || arg === 'run-test-mcp-server');
}

/** What global setup says about the app's own database variables (never their values' passwords). */
function appEnvNotices(options: LanesOptions): string[] {
  const lines: string[] = [];
  const ignored = ignoredAppDatabaseUrl(registry().appDatabaseUrl, options.database ? options.database.adminUrl : undefined);
  if (ignored) lines.push(ignored);
  const redirected = registry().redirectedEnv ?? [];
  if (redirected.length > 0) {
    lines.push(`${redirected.join(', ')} held PostgreSQL URLs: in lane servers and workers they name the lane's database, like DATABASE_URL.`);
  }
  return lines;
}

/**
 * The projects this invocation runs, in the order of the config: those `--project` selected
 * (Playwright ≥ 1.50 passes them as `config.filteredProjects`), plus the projects they depend on
 * and their teardown projects, which Playwright runs too. @internal
 */
export function selectedProjects(config: FullConfig): FullProject[] {
  const filtered = (config as FullConfig & { filteredProjects?: FullProject[] }).filteredProjects;
  if (!filtered) return config.projects;
  const byName = new Map(config.projects.map((project) => [project.name, project]));
  const chosen = new Set<string>();
  const add = (name: string): void => {
    const project = byName.get(name);
    if (!project || chosen.has(name)) return;
    chosen.add(name);
    for (const dependency of project.dependencies ?? []) add(dependency);
    if (project.teardown) add(project.teardown);
  };
  for (const project of filtered) add(project.name);
  return config.projects.filter((project) => chosen.has(project.name));
}

/**
 * Refuses a Playwright `webServer` left in the config: Playwright starts it once, outside any lane
 * (on its own port, against whatever database its environment names), next to the lanes' servers.
 */
function assertNoWebServer(config: FullConfig, allowed: boolean): void {
  if (allowed) return;
  // A single webServer is `config.webServer`; an array is only kept on Playwright's internal config.
  const internal = Object.getOwnPropertySymbols(config).find((symbol) => symbol.description === 'configInternalSymbol');
  const kept = internal ? (config as unknown as Record<symbol, { webServers?: Array<{ command?: string }> }>)[internal]?.webServers : undefined;
  const servers = kept && kept.length > 0 ? kept : config.webServer ? [config.webServer] : [];
  if (servers.length === 0) return;
  const commands = servers.map((server) => JSON.stringify(server.command ?? '(no command)')).join(', ');
  throw new LanesError('CONFIG_INVALID', `The Playwright config has a \`webServer\` (${commands}) besides the lanes: Playwright starts it once for the whole run, outside every lane, on its own port and against the database of its own environment.`, {
    hint: 'Move it into the `servers` option of withLanes (e.g. `servers: [{ name: \'frontend\', command: \'npm run start\', health: \'/\' }]`) and remove `webServer`; to keep it anyway next to the lanes, set `allowWebServer: true`.',
  });
}

/**
 * The lanes of every project of the run (see resolveLaneIsolation), published for the workers
 * before any starts; one line for each project whose lanes became per worker.
 */
function resolveIsolations(config: FullConfig, projects: FullProject[], fallback: 'project' | 'worker' | undefined): Map<string, 'project' | 'worker'> {
  const resolved = new Map<string, 'project' | 'worker'>();
  for (const project of projects) {
    const use = project.use as { laneIsolation?: 'project' | 'worker'; laneReset?: unknown };
    const { isolation, notice } = resolveLaneIsolation({
      project: project.name,
      isolation: use.laneIsolation ?? fallback,
      isolationSource: use.laneIsolation === undefined ? 'isolation' : 'laneIsolation',
      laneReset: use.laneReset,
      workers: projectWorkers(config, project),
    });
    resolved.set(project.name, isolation);
    if (notice) progress(notice);
  }
  process.env[PROJECT_ISOLATION_ENV] = JSON.stringify(Object.fromEntries(resolved));
  return resolved;
}

/** How many workers may run a project's tests at once: the config's, or fewer with the project's own `workers`. */
function projectWorkers(config: FullConfig, project: FullProject): number {
  // A project's own `workers` is only kept on Playwright's internal config.
  const internal = Object.getOwnPropertySymbols(config).find((symbol) => symbol.description === 'configInternalSymbol');
  const projects = internal ? (config as unknown as Record<symbol, { projects?: Array<{ project?: FullProject; workers?: number }> }>)[internal]?.projects : undefined;
  const own = projects?.find((candidate) => candidate.project === project)?.workers;
  return typeof own === 'number' && own > 0 ? Math.min(own, config.workers) : config.workers;
}

/** Fails early, with the install command, when a Chromium project has no browser to run. */
function assertBrowsers(projects: FullProject[]): void {
  for (const project of projects) {
    const use = project.use as { browserName?: string; channel?: string; launchOptions?: { executablePath?: string } };
    if ((use.browserName ?? 'chromium') !== 'chromium' || use.channel) continue;
    const path = use.launchOptions?.executablePath;
    if (path ? !existsSync(path) : !playwrightChromium()) throw browserNotFound();
  }
}
