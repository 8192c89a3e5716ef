/**
 * Reaping what dead runs left in a state folder and on the database server: a run's setup and
 * `e2e-lanes gc` do it first.
 */
import type { DatabaseAllocator } from '../../databases/index.js';
import type { PortAllocator, PortEntry } from '../../ports/index.js';
import type { StaleEntry } from '../../state/index.js';
import { reapStaleLanes, type ReapReport } from './reaper.js';

/** What a reap of dead runs removed (or, with `dryRun`, would remove). */
export interface DeadRunsReport {
  lanes: ReapReport;
  ports: StaleEntry<PortEntry>[];
}

/**
 * Reaps what runs whose owner is dead (or whose lease expired, or whose warm time is up) left in a
 * state folder: their servers (recorded ones, and unrecorded orphans) and lanes, then their ports.
 * What a run's setup and `e2e-lanes gc` do first; with `dryRun`, nothing is changed.
 */
export async function reapDeadRuns(stores: { stateDir: string; ports: PortAllocator }, leaseMs: number, options: { dryRun?: boolean } = {}): Promise<DeadRunsReport> {
  const lanes = await reapStaleLanes(stores.stateDir, leaseMs, options);
  const ports = options.dryRun ? await stores.ports.listStale() : await stores.ports.reapStale();
  return { lanes, ports };
}

/**
 * Drops the lane databases of dead owners (on a shared server, other machines' whose lease
 * expired; and marked databases no record lists); resolves their names. With `dryRun`, only names them.
 */
export async function reapDeadDatabases(databases: DatabaseAllocator, options: { dryRun?: boolean } = {}): Promise<string[]> {
  if (!options.dryRun) return (await databases.reapStale()).filter((item) => item.dropped).map((item) => item.entry.databaseName);
  const names = (await databases.list({ scope: 'server' })).filter((entry) => !entry.alive).map((entry) => entry.databaseName);
  for (const item of await databases.listUnrecorded()) if (!names.includes(item.entry.databaseName)) names.push(item.entry.databaseName);
  return names;
}

