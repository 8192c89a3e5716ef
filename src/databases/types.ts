/**
 * The types the parts of databases/ share: the records of lane databases (what the ledger file
 * stores, what the allocator returns and lists), the template, the resolved options and the words
 * they use. A leaf: it imports no module of databases/, so every group may import it.
 */
import type { EnsurePostgresOptions } from '../postgres/index.js';
import { ledgerSpec, type LedgerEntry } from '../state/index.js';

/** A template database, ready to clone. */
export interface TemplateInfo {
  /** e.g. `e2e_tpl_3f9a0c1b2d4e`. */
  name: string;
  /** 12 hex characters of SHA-256 over the template's inputs. */
  hash: string;
  /** True when this call built it; false when an existing one was reused. */
  built: boolean;
  /** Time spent in this call, waiting for another builder included. */
  durationMs: number;
}

/** The two ways to reset a lane's data (see fresh/swap-reset.ts and fresh/truncate-reset.ts). */
export type ResetStrategy = 'swap' | 'truncate';

/** The reset strategies, for option checks. */
export const RESET_STRATEGIES: readonly ResetStrategy[] = ['swap', 'truncate'];

/** How a database is cloned from its template (`CREATE DATABASE … STRATEGY`, PostgreSQL ≥ 15). */
export type CloneStrategy = 'wal_log' | 'file_copy';

/** Where lane ownership is recorded: in the server (`postgres`), or in the local state file only (`file`). */
export type RegistryMode = 'auto' | 'postgres' | 'file';

/** The database of one lane as stored in `allocated-databases.json` (URL with the password redacted). */
export interface DatabaseEntry extends LedgerEntry {
  databaseName: string;
  /** Connection URL with the password replaced by `***`. */
  databaseUrl: string;
  /** The template it was cloned from. */
  template: string;
  /** The Playwright shard of the run that allocated it, e.g. `2/4`. */
  shard?: string;
}

/** What `allocateDatabaseForProject` returns. */
export interface DatabaseAllocation {
  project: string;
  runId: string;
  worker?: number;
  databaseName: string;
  /** Full connection URL of the lane's database, password included: hand it to the lane's servers only. */
  databaseUrl: string;
  /** The template of this allocator (`built` tells whether this process built it). */
  template: TemplateInfo;
}

/** An entry as shown by `list()`: with its owner's liveness. */
export interface DatabaseListing extends DatabaseEntry {
  alive: boolean;
  /** Why the entry counts as stale, when it does. */
  staleReason?: string;
  /** End of the registry lease (server clock), for entries read from the registry. */
  expiresAt?: string;
}

/** An entry removed by `reapStale()`. */
export interface ReapedDatabase {
  entry: DatabaseEntry;
  reason: string;
  /** False when the database was not dropped because the allocator did not create it (or it was gone). */
  dropped: boolean;
  /**
   * `'build'`: an abandoned build database of a template (its `entry.project` names the template);
   * else a lane database.
   * @default 'lane'
   */
  kind?: 'lane' | 'build';
}

/** Which lane of a project a per-lane method of the allocator means: with per-worker lanes, the worker's. */
export interface DatabaseWorkerOptions {
  /** For per-worker lanes: the worker's parallel index. */
  worker?: number;
}

/** @deprecated use DatabaseWorkerOptions */
export type DatabaseLaneOptions = DatabaseWorkerOptions;

/** Options of {@link DatabaseAllocator.list}. */
export interface DatabaseListOptions {
  /**
   * `'host'`: the lanes recorded in this state folder. `'server'`: every lane of this prefix the
   * server's registry knows, from every machine (plus local entries it does not know); the same
   * as `'host'` without a registry.
   * @default 'host'
   */
  scope?: 'host' | 'server';
}

export const DATABASES_FILE = 'allocated-databases.json';
const DATABASES_KIND = 'e2e-lanes/databases';

/** The ledger `allocated-databases.json`: one entry per lane database of this state folder. */
export const databasesSpec = ledgerSpec<DatabaseEntry>(DATABASES_KIND, (raw) => {
  for (const field of ['databaseName', 'databaseUrl', 'template'] as const) {
    if (typeof raw[field] !== 'string') throw new Error(`an entry lacks "${field}"`);
  }
  return raw as unknown as DatabaseEntry;
});

/** What {@link DatabaseAllocator.resetDatabaseForProject} did. */
export interface DatabaseReset {
  databaseName: string;
  strategy: 'swap' | 'truncate';
  /** `pool`: a ready copy was renamed in; `clone`: none was ready; `truncate`: the tables were refilled in place. */
  source: 'pool' | 'clone' | 'truncate';
  durationMs: number;
}

/** Run any shell command instead of the built-in runner; it gets `DATABASE_URL` of the database being built. */
export interface CommandStep {
  /** e.g. `'npx prisma migrate deploy'`; run through the shell. */
  command: string;
  /**
   * Working folder of the command.
   * @default process.cwd()
   */
  cwd?: string;
  /**
   * Give up (and fail) after this many ms.
   * @default 600_000
   */
  timeoutMs?: number;
}

/** Every option of the allocator resolved to its final value (options.ts). */
export interface ResolvedDatabaseAllocatorOptions {
  adminUrl: string | undefined;
  migrations: string | CommandStep | false;
  seed: string | CommandStep | undefined;
  hashInputs: readonly string[];
  stateDir: string;
  runId: string;
  prefix: string;
  cloneStrategy: CloneStrategy;
  rebuild: boolean;
  leaseMs: number;
  connectTimeoutMs: number;
  embedded: EnsurePostgresOptions['embedded'];
  expectedConnections: number | undefined;
  registry: RegistryMode;
  reset: ResetStrategy;
  /** Undefined: the default (see `DatabaseAllocatorOptions.pool`). */
  pool: number | undefined;
  resetLockTimeoutMs: number;
  resetGraceMs: number;
  registryDatabase: string;
  seedTimeoutMs: number;
  migrationTimeoutMs: number;
  templateWaitTimeoutMs: number;
  laneRoles: boolean;
}
