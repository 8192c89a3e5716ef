import { DATABASE_URL_ENV } from '../env-vars.js';
import { LanesError } from '../errors.js';
import { debugLogger } from '../log.js';
import { serverVersionNum, withClient } from './connect.js';
import { acquireEmbeddedPostgres, type ServerHold } from './embedded.js';
import type { EmbeddedPostgresOptions } from './options.js';
import { describeTarget, resolveAdminUrlSource, targetOf } from './url.js';

const debug = debugLogger('postgres');

/** The oldest server accepted: lanes are dropped with `DROP DATABASE … WITH (FORCE)` (PostgreSQL 13). */
export const MIN_SERVER_VERSION_NUM = 130000;

/** Options of {@link ensurePostgres}. */
export interface EnsurePostgresOptions {
  /**
   * Admin URL of an existing server (a role that may create databases), used as is.
   * @default `E2E_LANES_DATABASE_URL`, else the shared embedded server (`DATABASE_URL` is never used: it names the app's database)
   */
  adminUrl?: string;
  /**
   * Options of the embedded server, used when no admin URL is set.
   * @default {}
   */
  embedded?: EmbeddedPostgresOptions;
  /**
   * Folder of the state files; the embedded server's port is recorded in its port ledger.
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
   * Deadline in ms for connecting to the server, retries included.
   * @default 10_000
   */
  connectTimeoutMs?: number;
}

/** The PostgreSQL server of a run: a given one or the shared embedded one. */
export interface PostgresHandle extends ServerHold {
  /** True when this is the shared embedded server. */
  readonly embedded: boolean;
  /** Which server this is, for people (never the password), e.g. `PostgreSQL 18.4, embedded, on 127.0.0.1:5433 (started by this run)`. */
  readonly description: string;
}

/**
 * The PostgreSQL server to create lane databases on: the given admin URL (`adminUrl`, then
 * `E2E_LANES_DATABASE_URL`) after checking that it answers, else the embedded
 * server shared by every run on this host. A given URL never starts the embedded server.
 *
 * @throws {LanesError} `POSTGRES_UNREACHABLE` when the given server does not answer in time;
 *   `POSTGRES_UNSUPPORTED` when it is older than PostgreSQL 13; the embedded server's codes otherwise.
 */
export async function ensurePostgres(options: EnsurePostgresOptions = {}): Promise<PostgresHandle> {
  const given = resolveAdminUrlSource(options.adminUrl);
  const adminUrl = given?.url;
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  if (given !== undefined && adminUrl !== undefined) {
    const version = await withClient(adminUrl, serverVersionNum, { timeoutMs: connectTimeoutMs });
    assertSupported(version, describeTarget(adminUrl));
    debug('using PostgreSQL %d at %s', version, describeTarget(adminUrl));
    const release = async (): Promise<void> => undefined;
    const description = `PostgreSQL ${formatVersion(version)} at ${describeTarget(adminUrl)} (from ${given.source})`;
    return { adminUrl, embedded: false, version, description, release, keep: release, [Symbol.asyncDispose]: release };
  }
  const server = await acquireEmbeddedPostgres({
    ...options.embedded,
    ...(options.stateDir !== undefined && { stateDir: options.stateDir }),
    ...(options.runId !== undefined && { runId: options.runId }),
    connectTimeoutMs,
  });
  try {
    assertSupported(server.version, `the embedded server (${server.dataDir})`);
  } catch (error) {
    await server.release();
    throw error;
  }
  const { host, port } = targetOf(server.adminUrl);
  const description = `PostgreSQL ${formatVersion(server.version)}, embedded, on ${host}:${port} (${server.started ? 'started by this run' : 'already running, shared'})`;
  return { adminUrl: server.adminUrl, embedded: true, version: server.version, description, release: server.release, keep: server.keep, [Symbol.asyncDispose]: server.release };
}

function assertSupported(version: number, where: string): void {
  if (version >= MIN_SERVER_VERSION_NUM) return;
  throw new LanesError('POSTGRES_UNSUPPORTED', `PostgreSQL at ${where} is version ${formatVersion(version)}; e2e-lanes needs 13 or newer.`, {
    hint: `Upgrade the server, point ${DATABASE_URL_ENV} at a newer one, or unset it to use the embedded server.`,
    details: { version },
  });
}

/** `150018` → `15.18`; `90624` → `9.6.24`. */
export function formatVersion(versionNum: number): string {
  if (versionNum >= 100000) return `${Math.floor(versionNum / 10000)}.${versionNum % 10000}`;
  return `${Math.floor(versionNum / 10000)}.${Math.floor(versionNum / 100) % 100}.${versionNum % 100}`;
}
