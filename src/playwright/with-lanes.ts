import { extname, isAbsolute, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PlaywrightTestConfig } from '@playwright/test';
import { ISOLATION_ENV, STATE_DIR_ENV } from '../env-vars.js';
import { loadRunnerSettings } from '../env-files.js';
import { LanesError } from '../errors.js';
import { validateLanesOptions, type LanesOptions } from '../lanes/options/lane-options.js';
import { claimRunOwnership, resolveRunId, resolveStateDir } from '../state/index.js';
import { playwrightChromium, systemChromium, SYSTEM_CHROMIUM_ARGS } from './browser.js';
import { configBridge } from './config-bridge.js';
import { guardRunnerEnv, installWorkerPreload, pointWorkerAtLane } from './worker-lane.js';
import { installWorkerTokens } from './worker-tokens.js';

// `.ts` when run from source, `.js` when run from the built package.
const EXT = extname(fileURLToPath(import.meta.url));
const SETUP = fileURLToPath(new URL(`./global-setup${EXT}`, import.meta.url));
const TEARDOWN = fileURLToPath(new URL(`./global-teardown${EXT}`, import.meta.url));

/** Options of {@link withLanes}: everything about the lanes (see LanesOptions). */
export type WithLanesOptions = LanesOptions;

/**
 * Returns `config` with lanes: the toolkit's global setup runs before the user's own and its global
 * teardown after the user's own; Playwright's output folder moves out of the way of the state files
 * (`test-results/output` unless set); a system Chromium is used when Playwright's own is not
 * installed. Everything else the user set is kept.
 *
 * Evaluated in the runner and in every worker: it only records options, and in the runner it fixes
 * the run id and makes the runner the owner of the run. The app's database variables never name a
 * database outside the lanes: in the runner `DATABASE_URL` names an address that cannot connect,
 * and in a worker it names the worker's lane database before any spec file loads.
 */
export function withLanes<T, W>(config: PlaywrightTestConfig<T, W>, options: WithLanesOptions = {}): PlaywrightTestConfig<T, W> {
  validateLanesOptions(options);
  configBridge().options = options;
  if (process.env.TEST_WORKER_INDEX === undefined) {
    // First: the runner's own settings may come from the files (the state folder, the run id…).
    loadRunnerSettings(options.envFile);
    resolveRunId();
    claimRunOwnership();
    if (options.isolation) process.env[ISOLATION_ENV] = options.isolation;
    const guarded = guardRunnerEnv(options);
    if (guarded.adminUrl !== undefined && options.database) configBridge().options = { ...options, database: { ...options.database, adminUrl: guarded.adminUrl } };
    configBridge().appDatabaseUrl ??= guarded.appDatabaseUrl;
    if (guarded.redirected.length > 0) configBridge().redirectedEnv = guarded.redirected;
    installWorkerPreload();
    installWorkerTokens();
  } else {
    // Before any spec file loads: clients created at import time reach this worker's lane.
    pointWorkerAtLane(config as PlaywrightTestConfig<unknown, unknown>, options);
  }
  const stateDir = resolveStateDir(options.stateDir);
  const outputDir = config.outputDir ?? resolve('test-results', 'output');
  for (const dir of [outputDir, ...(config.projects ?? []).map((project) => project.outputDir)]) {
    if (dir !== undefined && contains(resolve(dir), stateDir)) {
      throw new LanesError('CONFIG_INVALID', `Playwright's outputDir ${dir} contains the e2e-lanes state folder ${stateDir}; Playwright empties it at the start of every run.`, {
        hint: `Set outputDir to a subfolder such as 'test-results/output', or move the state with the stateDir option (or ${STATE_DIR_ENV}).`,
      });
    }
  }
  return {
    ...config,
    outputDir,
    globalSetup: [SETUP, ...toArray(config.globalSetup)],
    globalTeardown: [...toArray(config.globalTeardown), TEARDOWN],
    ...browserDefaults(config),
  };
}

function toArray(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

function contains(parent: string, child: string): boolean {
  const rel = relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

type LaunchLike = { executablePath?: string; args?: string[] };
type UseLike = { browserName?: string; channel?: string; launchOptions?: LaunchLike } | undefined;

/** Points Chromium projects at a system Chromium when Playwright's own is not installed. */
function browserDefaults<T, W>(config: PlaywrightTestConfig<T, W>): Pick<PlaywrightTestConfig<T, W>, 'use' | 'projects'> {
  if (playwrightChromium()) return {};
  const executablePath = systemChromium();
  if (!executablePath) return {}; // global setup reports BROWSER_NOT_FOUND with the fix
  const top = config.use as UseLike;
  const withSystemChromium = (use: UseLike): UseLike => {
    if (use?.channel || use?.launchOptions?.executablePath) return use;
    const launch = use?.launchOptions ?? {};
    return { ...use, launchOptions: { ...launch, executablePath, args: [...(launch.args ?? []), ...SYSTEM_CHROMIUM_ARGS] } };
  };
  const topIsChromium = (top?.browserName ?? 'chromium') === 'chromium';
  const result: Pick<PlaywrightTestConfig<T, W>, 'use' | 'projects'> = {
    use: (topIsChromium ? withSystemChromium(top) : top) as PlaywrightTestConfig<T, W>['use'],
  };
  if (config.projects) {
    result.projects = config.projects.map((project) => {
      const use = project.use as UseLike;
      const browser = use?.browserName ?? top?.browserName ?? 'chromium';
      if (browser === 'chromium') return use?.launchOptions ? { ...project, use: withSystemChromium(use) as typeof project.use } : project;
      // Another browser must not inherit the Chromium executable set at the top level.
      if (topIsChromium && !use?.launchOptions) return { ...project, use: { ...use, launchOptions: top?.launchOptions ?? {} } as typeof project.use };
      return project;
    });
  }
  return result;
}
