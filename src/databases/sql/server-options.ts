/**
 * The options of SQL on the server: how databases are cloned, and whether each lane has a role of
 * its own. Their defaults and checks, called from the one resolver (options.ts); loads no
 * PostgreSQL client.
 */
import { LanesError } from '../../errors.js';
import type { CloneStrategy } from '../types.js';

export const DEFAULT_CLONE_STRATEGY: CloneStrategy = 'wal_log';

export function resolveCloneStrategy(value: unknown): CloneStrategy {
  if (value === undefined) return DEFAULT_CLONE_STRATEGY;
  if (value === 'wal_log' || value === 'file_copy') return value;
  throw new LanesError('INVALID_OPTION', `Invalid cloneStrategy ${JSON.stringify(value)}.`, { hint: "Option `cloneStrategy` takes 'wal_log' or 'file_copy'." });
}

export function resolveLaneRoles(value: unknown): boolean {
  if (value === undefined) return true;
  if (typeof value === 'boolean') return value;
  throw new LanesError('INVALID_OPTION', `Invalid database laneRoles ${JSON.stringify(value)}.`, { hint: 'Option `database.laneRoles` takes true (the default: a role per lane) or false (lanes connect as the admin role).' });
}
