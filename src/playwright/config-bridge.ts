import type { LaneManager } from '../lanes/lane-manager.js';
import type { LanesOptions } from '../lanes/options/lane-options.js';
import type { ControlServer } from './control-server.js';

/**
 * State shared between the config file (evaluated by `withLanes`) and the global setup and
 * teardown, which Playwright runs in the same process. Kept on `globalThis` because Playwright
 * may load these files through different module loaders.
 */
interface ConfigBridge {
  options?: LanesOptions;
  /** The app's `DATABASE_URL` as the runner first saw it (for the line saying it is not used). */
  appDatabaseUrl?: string;
  /** Other variables that held a PostgreSQL URL and were pointed away from it. */
  redirectedEnv?: string[];
  active?: { manager: LaneManager; control: ControlServer; dispose(): Promise<void> };
}

/** Its key on `globalThis`, by which scripts/bench/variant.config.ts reaches it too: never change it. */
const KEY = Symbol.for('e2e-lanes.playwright.registry');

export function configBridge(): ConfigBridge {
  const holder = globalThis as unknown as Record<symbol, ConfigBridge | undefined>;
  return (holder[KEY] ??= {});
}
