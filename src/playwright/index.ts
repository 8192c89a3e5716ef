export { withLanes, type WithLanesOptions } from './with-lanes.js';
export { test, expect, type LaneTestFixtures, type LaneWorkerFixtures, type LaneConfigOptions, type LaneHandle } from './fixtures.js';
export type { Lane } from '../lanes/lane-manager.js';
export type { LanesOptions, LaneDatabaseOptions } from '../lanes/options/lane-options.js';
export type { ServerDefinition, ServerContext } from '../servers/index.js';
