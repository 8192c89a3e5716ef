import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ViteUserConfig } from 'vitest/config';
import { configBridge } from '../playwright/config-bridge.js';
import { lanesOptionsOf, validateVitestLanesOptions, type VitestLanesOptions } from './options.js';
import { vitestBridge } from './bridge.js';

// `.ts` when run from source, `.js` when run from the built package.
const EXT = extname(fileURLToPath(import.meta.url));
/** The global setup the config gets (runs in the Vitest process). */
export const GLOBAL_SETUP_FILE = fileURLToPath(new URL(`./global-setup${EXT}`, import.meta.url));
/** The setup file every test file runs first (in the worker, before the test file is imported). */
export const WORKER_SETUP_FILE = fileURLToPath(new URL(`./worker-setup${EXT}`, import.meta.url));
/**
 * The toolkit's own built modules, which Vitest loads natively instead of through Vite's
 * transforms. Vitest does that by itself for a package under `node_modules`, but not for one
 * linked from elsewhere (a workspace, `npm link`), where transforming the whole toolkit took
 * seconds of every run. From source (`.ts`), nothing is added: Node cannot load those alone.
 */
const OWN_MODULES = EXT === '.js' ? new RegExp(escapeRegExp(fileURLToPath(new URL('../', import.meta.url)))) : undefined;

/**
 * Returns the Vitest config with a database per worker: the toolkit's global setup runs before
 * the config's own (PostgreSQL, the template from `options.database`, the ready pool, reaping of
 * dead runs; its teardown drops what the run made), and its setup file runs before the config's
 * own in every test file, so `DATABASE_URL` (and the other URL and `PG*` variables) name the
 * worker's database before the test file and what it imports are loaded. Everything else the
 * config sets is kept.
 *
 * ```ts
 * export default withDatabases(defineConfig({ test: { include: ['test/**\/*.test.ts'] } }), {
 *   database: { migrations: 'prisma/migrations', seed: 'prisma/seed.ts' },
 *   reset: 'test',
 * });
 * ```
 * @throws {LanesError} `INVALID_OPTION` naming the option.
 */
export function withDatabases<T extends ViteUserConfig>(config: T, options: VitestLanesOptions = {}): T {
  validateVitestLanesOptions(options);
  vitestBridge().options = options;
  // So that `npx e2e-lanes status | gc | down --config vitest.config.ts` finds the same state.
  configBridge().options = lanesOptionsOf(options);
  const test = config.test ?? {};
  const deps = test.server?.deps ?? {};
  return {
    ...config,
    test: {
      ...test,
      globalSetup: [GLOBAL_SETUP_FILE, ...toArray(test.globalSetup)],
      setupFiles: [WORKER_SETUP_FILE, ...toArray(test.setupFiles)],
      ...(OWN_MODULES ? { server: { ...test.server, deps: { ...deps, external: [...(deps.external ?? []), OWN_MODULES] } } } : {}),
    },
  };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function toArray(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}
