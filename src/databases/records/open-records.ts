/**
 * Opening the records of an allocator, chosen once (option `registry`): the state file only
 * ({@link FileRecords}) or the registry in the server too ({@link RegistryRecords}).
 * Private to the databases module.
 * @internal
 */
import type { Client } from 'pg';
import { warn } from '../../log.js';
import { connectClient, describeTarget, resolveAdminUrl, withDatabase } from '../../postgres/index.js';
import type { ServerAccess } from '../sql/server-access.js';
import type { ResolvedDatabaseAllocatorOptions } from '../types.js';
import { FileRecords, type LaneRecords } from './lane-records.js';
import { LeaseKeeper } from './lease-keeper.js';
import type { DatabaseLedger } from './ledger.js';
import { checkRegistryPrivileges, ensureRegistry, ensureRegistryDatabase } from './registry.js';
import { RegistryRecords } from './registry-records.js';

/**
 * What option `registry` asks for: `'auto'` is `'postgres'` when an admin URL is given (option or
 * `E2E_LANES_DATABASE_URL`), `'file'` for the embedded server.
 */
export function requestedKind(options: Pick<ResolvedDatabaseAllocatorOptions, 'registry' | 'adminUrl'>): 'postgres' | 'file' {
  const mode = options.registry;
  return mode === 'postgres' || (mode === 'auto' && resolveAdminUrl(options.adminUrl) !== undefined) ? 'postgres' : 'file';
}

/**
 * The records of an allocator. For the registry, its database and table are created when
 * missing and the role's rights checked; from then on the session's maintenance connections go to
 * that database (its advisory locks are shared by every machine). Under `'auto'`, a role that may
 * not create or use the table falls back to the state file with a warning.
 * @throws {LanesError} `REGISTRY_FAILED`, `POSTGRES_UNREACHABLE`.
 */
export async function openLaneRecords(
  options: ResolvedDatabaseAllocatorOptions,
  session: ServerAccess,
  ledger: DatabaseLedger,
  shard: string | undefined,
): Promise<LaneRecords> {
  if (requestedKind(options) === 'file') return new FileRecords(ledger);
  const server = await session.server();
  const tableUrl = withDatabase(server.adminUrl, options.registryDatabase);
  const where = describeTarget(tableUrl);
  try {
    // Created over the admin URL's database, where nothing else is created; everything else happens in the registry's database.
    await session.withAdmin((client) => ensureRegistryDatabase(client, options.registryDatabase, describeTarget(server.adminUrl)));
    const client = await connectClient(tableUrl, { timeoutMs: options.connectTimeoutMs });
    try {
      await ensureRegistry(client, where);
      await checkRegistryPrivileges(client, where);
    } finally {
      await client.end().catch(() => undefined);
    }
  } catch (error) {
    // 'auto' must not fail a run whose role may create databases but not a schema: fall back to state files.
    if (options.registry !== 'auto' || (error as { cause?: { code?: string } }).cause?.code !== '42501') throw error;
    warn(
      `the role of ${describeTarget(server.adminUrl)} may not create the lane registry (permission denied), so lanes are recorded ` +
        "on this host only. Grant it CREATE on that database for CI shards to see each other's lanes, or set registry: 'file' to silence this.",
    );
    return new FileRecords(ledger);
  }
  session.maintainIn(tableUrl);
  const connect = (): Promise<Client> => connectClient(tableUrl, { timeoutMs: Math.min(options.connectTimeoutMs, options.leaseMs / 2) });
  return new RegistryRecords({ ledger, session, leases: new LeaseKeeper(connect, options.leaseMs), prefix: options.prefix, stateDir: options.stateDir, leaseMs: options.leaseMs, shard });
}
