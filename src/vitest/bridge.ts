import type { VitestLanesOptions } from './options.js';

/**
 * What the config (evaluated by `withDatabases`) hands the global setup, which Vitest runs in the
 * same process: kept on `globalThis`, since the config and the setup may be loaded through
 * different module loaders (the config bundled, the setup through Vite's module runner).
 * @internal
 */
interface VitestBridge {
  options?: VitestLanesOptions;
  /** The Vitest project whose global setup holds the run's databases, until its teardown. */
  active?: string;
}

const KEY = Symbol.for('e2e-lanes.vitest.registry');

export function vitestBridge(): VitestBridge {
  const holder = globalThis as unknown as Record<symbol, VitestBridge | undefined>;
  return (holder[KEY] ??= {});
}
