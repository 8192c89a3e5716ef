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
  type Owner,
  type LaneKey,
  type StaleEntry,
} from './state/index.js';
