import { LEASE_MS_ENV, STATE_DIR_ENV } from '../env-vars.js';
import { LanesError } from '../errors.js';
import { resolve } from 'node:path';

/** The default state folder, relative to the current directory. */
export const DEFAULT_STATE_DIR = 'test-results';

/** The absolute state folder: the option, else `E2E_LANES_STATE_DIR`, else `./test-results`. */
export function resolveStateDir(explicit?: string): string {
  return resolve(explicit ?? process.env[STATE_DIR_ENV] ?? DEFAULT_STATE_DIR);
}

/** The default lease: an entry whose heartbeat is older than this is reaped. */
export const DEFAULT_LEASE_MS = 120_000;

/** Reads a positive duration in ms from an option or env var, rejecting nonsense with a clear message. */
export function resolveLeaseMs(explicit: number | undefined, envName = LEASE_MS_ENV): number {
  const raw = explicit ?? (process.env[envName] ? Number(process.env[envName]) : DEFAULT_LEASE_MS);
  if (!Number.isFinite(raw) || raw < 1_000) {
    throw new LanesError('INVALID_OPTION', `Invalid lease ${JSON.stringify(raw)} (option leaseMs or ${envName}).`, { hint: `Set option \`leaseMs\` (or ${envName}) to a number of milliseconds ≥ 1000.` });
  }
  return raw;
}

/**
 * Where a run's records live and how long a silent owner holds them: the options every allocator,
 * `LaneManager` and `withLanes` share, checked and defaulted here (`resolveStateDir`,
 * `resolveRunId`, `resolveLeaseMs`).
 */
export interface RunScopeOptions {
  /**
   * Folder of the state files (`allocated-*.json`) and the lanes' logs. Also `E2E_LANES_STATE_DIR`.
   * @default './test-results'
   */
  stateDir?: string;
  /**
   * The run the allocations belong to. Also `E2E_LANES_RUN_ID`.
   * @default derived on CI, else generated once per process; exported to `E2E_LANES_RUN_ID`
   */
  runId?: string;
  /**
   * An entry whose owner has not refreshed its heartbeat for this long is reaped (another host's
   * entries; on this host a dead owner's pid decides at once). Also `E2E_LANES_LEASE_MS`.
   * @default 120_000
   */
  leaseMs?: number;
}
