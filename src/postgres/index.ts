export { ensurePostgres, formatVersion, MIN_SERVER_VERSION_NUM, type EnsurePostgresOptions, type PostgresHandle } from './ensure.js';
export { connectClient, connectWithRetry, withClient, serverVersionNum, DEFAULT_CONNECT_TIMEOUT_MS, type ConnectOptions } from './connect.js';
export {
  resolveAdminUrl,
  withDatabase,
  describeTarget,
  targetOf,
  parsePostgresUrl,
  APP_DATABASE_URL_ENV,
  ignoredAppDatabaseUrl,
  type PostgresTarget,
} from './url.js';
export { acquireEmbeddedPostgres, reapEmbeddedPostgres, releaseEmbeddedRuns, type EmbeddedPostgres, type EmbeddedReapResult } from './embedded.js';
export { type EmbeddedPostgresOptions, type AcquireEmbeddedPostgresOptions } from './options.js';
export { resolveBinaries, type PostgresBinaries } from './binaries.js';
export { defaultDataDir, REGISTRY_FILE } from './layout.js';
export type { EmbeddedUsersDocument, EmbeddedServerRecord, EmbeddedUser, PortLedgerRef } from './embedded-users.js';
