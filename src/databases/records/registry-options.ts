/**
 * The options of the registry: whether lanes are recorded in the server, and in which database.
 * Their defaults and checks, called from the one resolver (options.ts); loads no PostgreSQL client.
 */
import { REGISTRY_DATABASE_ENV, REGISTRY_ENV } from '../../env-vars.js';
import { LanesError } from '../../errors.js';
import type { RegistryMode } from '../types.js';

/**
 * The database the registry lives in by default: one the toolkit creates (with its mark) and
 * never drops, so nothing is ever created inside the database the admin URL names (often an
 * app's own), and every machine sharing the server agrees on where the registry and its advisory
 * locks are whatever database its admin URL names.
 */
export const DEFAULT_REGISTRY_DATABASE = 'e2e_lanes';

export function resolveRegistryMode(value: unknown): RegistryMode {
  const fromEnv = process.env[REGISTRY_ENV]?.trim();
  const chosen = value ?? (fromEnv || 'auto');
  if (chosen === 'auto' || chosen === 'postgres' || chosen === 'file') return chosen;
  throw new LanesError('INVALID_OPTION', `Invalid registry ${JSON.stringify(chosen)}${value === undefined ? ` (from ${REGISTRY_ENV})` : ''}.`, {
    hint: `Option \`registry\` (or ${REGISTRY_ENV}) takes 'auto', 'postgres' or 'file'.`,
  });
}

export function resolveRegistryDatabase(value: unknown): string {
  const fromEnv = process.env[REGISTRY_DATABASE_ENV]?.trim();
  const chosen = value ?? (fromEnv || DEFAULT_REGISTRY_DATABASE);
  if (typeof chosen === 'string' && /^[a-z_][a-z0-9_]{0,62}$/.test(chosen)) return chosen;
  throw new LanesError('INVALID_OPTION', `Invalid registryDatabase ${JSON.stringify(chosen)}${value === undefined ? ` (from ${REGISTRY_DATABASE_ENV})` : ''}.`, {
    hint: `Option \`registryDatabase\` (or ${REGISTRY_DATABASE_ENV}) takes a database name of lowercase letters, digits and underscores (at most 63), e.g. the default 'e2e_lanes'.`,
  });
}
