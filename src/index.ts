// The public API of `e2e-lanes`, for suites with their own orchestration (docs/api.md lists every
// name; test/api.test.ts checks that the two agree). Playwright users import `e2e-lanes/playwright`.
export { LanesError, isLanesError, type LanesErrorCode, type LanesErrorOptions } from './errors.js';
export { redactUrl, redactText } from './redact.js';
export { PortAllocator, type PortAllocatorOptions, type PortAllocation, type PortEntry, type PortListing, type AllocateOptions } from './ports/index.js';
export {
  DatabaseAllocator,
  type DatabaseAllocatorOptions,
  type DatabaseAllocation,
  type DatabaseWorkerOptions,
  type DatabaseLaneOptions,
  type DatabaseEntry,
  type DatabaseListing,
  type DatabaseListOptions,
  type DatabaseReset,
  type ReapedDatabase,
  type TemplateInfo,
  type CommandStep,
  type CloneStrategy,
  type RegistryMode,
  type ResetStrategy,
} from './databases/index.js';
export { ensurePostgres, type EnsurePostgresOptions, type PostgresHandle, type EmbeddedPostgresOptions } from './postgres/index.js';
export { startServer, startServers, type ServerDefinition, type ServerContext, type StartedServer, type StartedServers, type StartServerOptions, type ServerExit } from './servers/index.js';
export { LaneManager, type Lane, type PrepareReport } from './lanes/lane-manager.js';
export type { LanesOptions, LaneDatabaseOptions } from './lanes/options/lane-options.js';
export type { ReapReport } from './lanes/reaping/reaper.js';
