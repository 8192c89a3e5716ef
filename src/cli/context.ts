import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { DatabaseAllocator } from '../databases/index.js';
import { LanesError, messageOf } from '../errors.js';
import { laneLedger } from '../lanes/lane-ledger.js';
import { lanePortNames, type LanesOptions } from '../lanes/options.js';
import { PortAllocator } from '../ports/index.js';
import { registry } from '../playwright/registry.js';
import { resolveLeaseMs, resolveStateDir } from '../state/index.js';
import { importDefault } from '../user-module.js';

/** The config files Playwright looks for, in its order. */
const CONFIG_EXTENSIONS = ['.ts', '.js', '.mts', '.mjs', '.cts', '.cjs'];

/** Options every command takes. */
export interface GlobalOptions {
  config?: string;
  stateDir?: string;
}

/**
 * Loads the lanes options from a Playwright config that uses `withLanes`: the given file, or the
 * `playwright.config.{ts,js,mts,mjs,cts,cjs}` Playwright would pick in the current folder. It is
 * loaded as Playwright loads it, in ES module and CommonJS packages alike. Without one, defaults
 * apply.
 */
export async function loadLanesOptions(configFile: string | undefined): Promise<{ options: LanesOptions; file?: string; projects?: string[] }> {
  const file = configFile ? resolve(configFile) : CONFIG_EXTENSIONS.map((extension) => resolve(`playwright.config${extension}`)).find(existsSync);
  if (!file) return { options: {} };
  if (!existsSync(file)) {
    throw new LanesError('CONFIG_INVALID', `Config file ${file} does not exist.`, { hint: 'Pass an existing file with --config.' });
  }
  let config: { projects?: Array<{ name?: string }> } | undefined;
  try {
    config = (await importDefault(file)) as typeof config;
  } catch (error) {
    throw new LanesError('CONFIG_INVALID', `Config file ${file} could not be loaded: ${messageOf(error)}`, {
      hint: 'Check that `npx playwright test --list` loads it; pass another file with --config.',
      cause: error,
    });
  }
  const options = registry().options;
  if (!options) {
    throw new LanesError('CONFIG_INVALID', `${file} does not use withLanes().`, {
      hint: "Wrap the exported config with `withLanes(config, options)` from 'e2e-lanes/playwright', or pass another file with --config.",
    });
  }
  const projects = (config?.projects ?? []).map((project) => project.name ?? '');
  return { options, file, projects };
}

/** The allocators and ledgers of a state folder, as the CLI uses them (for any run). */
export function stateOf(options: LanesOptions, global: GlobalOptions) {
  const stateDir = resolveStateDir(global.stateDir ?? options.stateDir);
  const leaseMs = resolveLeaseMs(options.leaseMs);
  const runId = 'e2e-lanes-cli';
  const common = { stateDir, leaseMs, runId };
  return {
    stateDir,
    leaseMs,
    ports: new PortAllocator({ ...common, names: lanePortNames(options), ...(options.portRange ? { range: options.portRange } : {}) }),
    databases: options.database === false ? undefined : new DatabaseAllocator({ ...options.database, ...common }),
    lanes: laneLedger(stateDir),
  };
}
