export { DatabaseAllocator } from './database-allocator.js';
export {
  DATABASES_FILE,
  type DatabaseAllocation,
  type DatabaseEntry,
  type DatabaseListing,
  type DatabaseWorkerOptions,
  type DatabaseLaneOptions,
  type DatabaseListOptions,
  type ReapedDatabase,
  type DatabaseReset,
} from './types.js';
export { RESET_STRATEGIES, type ResetStrategy } from './types.js';
export { DEFAULT_REGISTRY_DATABASE, REGISTRY_SCHEMA, REGISTRY_TABLE, REGISTRY_DDL, type RegistryMode, type RegistryRow } from './records/registry.js';
export {
  type DatabaseAllocatorOptions,
  type CommandStep,
  type CloneStrategy,
  DEFAULT_MIGRATIONS_DIR,
  DEFAULT_CLONE_STRATEGY,
} from './options.js';
export {
  applyMigrations,
  runMigrations,
  readMigrations,
  checksumMatches,
  lineAndColumn,
  MIGRATIONS_TABLE,
  type MigrationFile,
  type MigrateResult,
  type MigrateOptions,
} from './template/migrations.js';
export { runSeed, type SeedContext, type SeedFunction, type RunSeedOptions } from './template/seed.js';
export { ensureTemplate, type TemplateInfo, type EnsureTemplateOptions } from './template/build.js';
export { computeTemplateHash, type TemplateInputs } from './template/hash.js';
export { listTemplates, dropOldTemplates, type TemplateListing } from './template/housekeeping.js';
export {
  laneDatabaseName,
  templateDatabaseName,
  templateHashOf,
  validatePrefix,
  slugify,
  DEFAULT_PREFIX,
  MAX_DATABASE_NAME_BYTES,
  type DatabaseNameKey,
} from './sql/names.js';
