export { withDatabases } from './config.js';
export { useDatabase, resetDatabase, test, type DatabaseFixtures, type WorkerDatabase } from './database.js';
export type { VitestLanesOptions, ResetMode } from './options.js';
export type { DatabaseReset, ResetStrategy } from '../databases/index.js';
export type { LaneDatabaseOptions } from '../lanes/options/lane-options.js';
