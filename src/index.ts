export { LanesError, isLanesError, type LanesErrorCode, type LanesErrorOptions } from './errors.js';
export { redactUrl, redactText } from './redact.js';
export {
  PortAllocator,
  PORTS_FILE,
  DEFAULT_PORT_RANGE,
  DEFAULT_PORT_NAMES,
  isPortFree,
  type PortAllocatorOptions,
  type PortAllocation,
  type PortEntry,
  type PortListing,
  type AllocateOptions,
} from './ports/index.js';
export {
  StateFile,
  resolveRunId,
  resolveStateDir,
  claimRunOwnership,
  isPidAlive,
  RUN_ID_ENV,
  OWNER_PID_ENV,
  STATE_DIR_ENV,
  SHARD_ENV,
  ciRunId,
  resolveShard,
  type CiRunIdOptions,
  type Shard,
  type Owner,
  type LaneKey,
  type StaleEntry,
} from './state/index.js';
export {
  DatabaseAllocator,
  DATABASES_FILE,
  listTemplates,
  dropOldTemplates,
  readMigrations,
  applyMigrations,
  runMigrations,
  runSeed,
  computeTemplateHash,
  laneDatabaseName,
  type DatabaseAllocatorOptions,
  type DatabaseAllocation,
  type DatabaseEntry,
  type DatabaseListing,
  type DatabaseListOptions,
  type RegistryMode,
  type ReapedDatabase,
  type TemplateInfo,
  type CommandStep,
  type CloneStrategy,
} from './databases/index.js';
export {
  ensurePostgres,
  acquireEmbeddedPostgres,
  reapEmbeddedPostgres,
  releaseEmbeddedRuns,
  connectClient,
  withClient,
  withDatabase,
  describeTarget,
  resolveAdminUrl,
  type EnsurePostgresOptions,
  type PostgresHandle,
  type EmbeddedPostgresOptions,
  type EmbeddedPostgres,
} from './postgres/index.js';
export { startServer, startServers, killProcessGroup, type ServerDefinition, type ServerContext, type StartedServer, type StartedServers, type StartServerOptions, type ServerExit } from './servers/index.js';
export { LaneManager, type Lane, type PrepareReport } from './lanes/lane-manager.js';
export { reapStaleLanes, type ReapReport } from './lanes/reaper.js';
export type { LanesOptions, LaneDatabaseOptions } from './lanes/options.js';
