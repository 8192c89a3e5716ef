/**
 * What `list()` shows: the lanes of the state file, and with `scope: 'server'` those of every
 * machine in the registry, each with its owner's liveness. Decisions only: no SQL, no files.
 * Private to the databases module.
 * @internal
 */
import type { DatabaseListing } from '../types.js';
import { judgeRow, type RegistryRow } from './registry.js';
import { rowToEntry } from './decisions.js';

/** A row of the registry as a listing, judged by its lease (and, on this host, its pid). */
export function rowListing(row: RegistryRow, adminUrl: string): DatabaseListing {
  const verdict = judgeRow(row);
  const entry = { ...rowToEntry(row, adminUrl), expiresAt: row.expiresAt };
  return verdict.alive ? { ...entry, alive: true } : { ...entry, alive: false, staleReason: verdict.reason };
}

/**
 * The registry's rows first (they speak for every machine), then the local entries it does not
 * know (allocated without the registry).
 */
export function mergeListings(local: readonly DatabaseListing[], rows: readonly RegistryRow[], adminUrl: string): DatabaseListing[] {
  const known = new Set(rows.map((row) => row.databaseName));
  return [...rows.map((row) => rowListing(row, adminUrl)), ...local.filter((entry) => !known.has(entry.databaseName))];
}
