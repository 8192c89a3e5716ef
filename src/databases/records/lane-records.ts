/**
 * Where an allocator records its lanes and their owners, chosen once per allocator (option
 * `registry`): the state file only ({@link FileRecords}), or the owner table in the server plus the
 * state file ({@link TableRecords}), which lets machines sharing the server see and reap each
 * other's lanes. The claim and removal protocols speak to {@link LaneRecords} alone; with the state
 * file only, every step on the server's side is a no-op. Private to the databases module.
 * @internal
 */
import type { Client } from 'pg';
import { warn } from '../../log.js';
import { connectClient, describeTarget, resolveAdminUrl, withDatabase } from '../../postgres/index.js';
import type { LaneKey, Owner } from '../../state/index.js';
import type { DatabaseLedger } from './ledger.js';
import { LeaseKeeper } from './lease-keeper.js';
import type { ResolvedDatabaseAllocatorOptions } from '../types.js';
import { checkRegistryPrivileges, ensureRegistry, ensureRegistryDatabase, type RegistryRow } from './registry.js';
import type { RemovalPick, RemovalTarget } from './decisions.js';
import type { PostgresSession } from '../sql/server-access.js';
import { TableRecords } from './registry-records.js';

/** The lane an allocation claims. */
export interface LaneClaim {
  key: LaneKey;
  databaseName: string;
  /** The template it is cloned from. */
  template: string;
}

export interface LaneRecords {
  /** `'postgres'`: the owner table and the state file; `'file'`: the state file only. */
  readonly kind: 'postgres' | 'file';
  /** The state file, in both kinds. */
  readonly ledger: DatabaseLedger;
  /**
   * Records this process as the owner of the lane before `create` makes its database (so a crash
   * right after still leaves a record to reap), under the lane's lock; undoes a record it added
   * when `create` fails.
   * @throws {LanesError} `RUN_ID_CONFLICT` when a live owner of another run holds the lane; `REGISTRY_FAILED`.
   */
  claim(client: Client, lane: LaneClaim, create: () => Promise<void>): Promise<void>;
  /** Keeps this process's claim on an allocated lane alive while the process lives. */
  hold(databaseName: string): void;
  /**
   * Gives the rows of these databases to `owner`: a warm run's watchdog (the lease lasts until its
   * deadline, this process stops renewing it), or this process taking a warm run over (it holds them).
   */
  handOver(client: Client, databaseNames: readonly string[], owner: Owner): Promise<void>;
  /**
   * The owner table's rows of `prefix` (and of one run), from every machine; none with the state file only.
   * @throws {LanesError} `REGISTRY_FAILED`
   */
  rows(filter: { prefix: string; runId?: string }): Promise<RegistryRow[]>;
  /**
   * Drops one database a release or reap chose and forgets its row: under the lane's lock, once
   * `pick` still chooses the row (with `wait: false`, a lane someone else is working on is
   * skipped). Resolves what `drop` resolved: whether the database existed, or undefined when it was kept.
   */
  remove(client: Client, target: RemovalTarget, pick: RemovalPick, lock: { wait: boolean }, drop: () => Promise<boolean | undefined>): Promise<boolean | undefined>;
  /**
   * Runs `drop` for a database that neither the state file nor the owner table listed, unless the
   * owner table knows it by now (or someone else holds its lock).
   */
  removeUnrecorded(client: Client, databaseName: string, drop: () => Promise<void>): Promise<void>;
}

/** The state file is the only record: nothing on the server's side. */
export class FileRecords implements LaneRecords {
  readonly kind = 'file';
  readonly ledger: DatabaseLedger;

  constructor(ledger: DatabaseLedger) {
    this.ledger = ledger;
  }

  claim(_client: Client, _lane: LaneClaim, create: () => Promise<void>): Promise<void> {
    return create();
  }

  hold(): void {}

  handOver(): Promise<void> {
    return Promise.resolve();
  }

  rows(): Promise<RegistryRow[]> {
    return Promise.resolve([]);
  }

  remove(_client: Client, _target: RemovalTarget, _pick: RemovalPick, _lock: { wait: boolean }, drop: () => Promise<boolean | undefined>): Promise<boolean | undefined> {
    return drop();
  }

  removeUnrecorded(_client: Client, _databaseName: string, drop: () => Promise<void>): Promise<void> {
    return drop();
  }
}

/**
 * What option `registry` asks for: `'auto'` is `'postgres'` when an admin URL is given (option or
 * `E2E_LANES_DATABASE_URL`), `'file'` for the embedded server.
 */
export function requestedKind(options: Pick<ResolvedDatabaseAllocatorOptions, 'registry' | 'adminUrl'>): 'postgres' | 'file' {
  const mode = options.registry;
  return mode === 'postgres' || (mode === 'auto' && resolveAdminUrl(options.adminUrl) !== undefined) ? 'postgres' : 'file';
}

/**
 * The records of an allocator. For the owner table, its database and table are created when
 * missing and the role's rights checked; from then on the session's maintenance connections go to
 * that database (its advisory locks are shared by every machine). Under `'auto'`, a role that may
 * not create or use the table falls back to the state file with a warning.
 * @throws {LanesError} `REGISTRY_FAILED`, `POSTGRES_UNREACHABLE`.
 */
export async function openLaneRecords(
  options: ResolvedDatabaseAllocatorOptions,
  session: PostgresSession,
  ledger: DatabaseLedger,
  shard: string | undefined,
): Promise<LaneRecords> {
  if (requestedKind(options) === 'file') return new FileRecords(ledger);
  const server = await session.server();
  const tableUrl = withDatabase(server.adminUrl, options.registryDatabase);
  const where = describeTarget(tableUrl);
  try {
    // Created over the admin URL's database, where nothing else is created; everything else happens in the owner table's database.
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
  return new TableRecords({ ledger, session, leases: new LeaseKeeper(connect, options.leaseMs), prefix: options.prefix, stateDir: options.stateDir, leaseMs: options.leaseMs, shard });
}
