import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DATABASES_FILE, databasesSpec } from '../databases/types.js';
import { resolveDatabaseAllocatorOptions } from '../databases/options.js';
import { LanesError, messageOf } from '../errors.js';
import { laneLedger } from '../lanes/records/lane-ledger.js';
import { lanePortNames, type LanesOptions } from '../lanes/options/lane-options.js';
import { PortAllocator } from '../ports/index.js';
import { resolveLeaseMs, resolveStateDir, StateFile } from '../state/index.js';

// The PostgreSQL client, tsx and the database allocator are loaded only by the commands that use
// them (dynamic imports below), so that `status` and `--help` answer quickly.

/** The config files Playwright looks for, in its order. */
const CONFIG_EXTENSIONS = ['.ts', '.js', '.mts', '.mjs', '.cts', '.cjs'];

/** The run id the CLI's allocators carry; it never allocates anything for itself. */
const CLI_RUN_ID = 'e2e-lanes-cli';

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
  const [{ importDefault }, { configBridge }] = await Promise.all([import('../user-module.js'), import('../playwright/config-bridge.js')]);
  let config: { projects?: Array<{ name?: string }> } | undefined;
  try {
    config = (await importDefault(file)) as typeof config;
  } catch (error) {
    throw new LanesError('CONFIG_INVALID', `Config file ${file} could not be loaded: ${messageOf(error)}`, {
      hint: 'Check that `npx playwright test --list` loads it; pass another file with --config.',
      cause: error,
    });
  }
  const options = configBridge().options;
  if (!options) {
    throw new LanesError('CONFIG_INVALID', `${file} does not use withLanes().`, {
      hint: "Wrap the exported config with `withLanes(config, options)` from 'e2e-lanes/playwright', or pass another file with --config.",
    });
  }
  const projects = (config?.projects ?? []).map((project) => project.name ?? '');
  return { options, file, projects };
}

/**
 * The state files of a state folder, as the CLI reads them (for any run), without PostgreSQL:
 * the ports allocator, the lanes ledger, and the databases ledger of this host (`undefined` when
 * the config turns databases off) with a way to open the database allocator when a command needs
 * the server. The database options are validated here, as the allocator validates them.
 */
export function stateFilesOf(options: LanesOptions, global: GlobalOptions) {
  const stateDir = resolveStateDir(global.stateDir ?? options.stateDir);
  const leaseMs = resolveLeaseMs(options.leaseMs);
  const common = { stateDir, leaseMs, runId: CLI_RUN_ID };
  const database = options.database === false ? undefined : { ...options.database, ...common };
  const resolved = database && resolveDatabaseAllocatorOptions(database);
  return {
    stateDir,
    leaseMs,
    ports: new PortAllocator({ ...common, names: lanePortNames(options), ...(options.portRange ? { range: options.portRange } : {}) }),
    lanes: laneLedger(stateDir),
    databaseLedger: database &&
      resolved && {
        file: new StateFile(join(resolved.stateDir, DATABASES_FILE), databasesSpec),
        leaseMs: resolved.leaseMs,
        allocator: async () => new (await import('../databases/database-allocator.js')).DatabaseAllocator(database),
      },
  };
}

/** The state files plus the database allocator of a state folder, as the CLI mends them (for any run). */
export async function stateOf(options: LanesOptions, global: GlobalOptions) {
  const files = stateFilesOf(options, global);
  return { ...files, databases: await files.databaseLedger?.allocator() };
}

/** What the CLI's commands work on. */
export type CliState = Awaited<ReturnType<typeof stateOf>>;
