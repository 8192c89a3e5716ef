export { StateFile, type StateDocument, type StateFileSpec, type StateFileOptions } from './state-file.js';
export {
  type Owner,
  type OwnerVerdict,
  resolveRunId,
  generateRunId,
  validateRunId,
  resolveOwnerPid,
  claimRunOwnership,
  newOwner,
  sameOwner,
  isPidAlive,
  judgeOwner,
  judgeProcess,
  processGone,
  currentHost,
} from './owner.js';
export {
  type ProcessIdentity,
  type ProcessRecord,
  type ProcessVerdict,
  identityOf,
  currentBootId,
  pidNamespaceOf,
  pidNotJudgeable,
} from './identity.js';
export {
  type LaneKey,
  type LedgerEntry,
  type LedgerDocument,
  type StaleEntry,
  ledgerSpec,
  sameLane,
  describeLane,
  splitByLiveness,
  withLiveness,
  keepRunEntries,
  handOverRunEntries,
  type WithLiveness,
  validateProjectName,
} from './ledger.js';
export { ciRunId, composeRunId, resolveShard, parseShard, formatShard, CI_VENDORS_WITH_RUN_IDS, type Shard, type CiRunIdOptions } from './ci.js';
export { keepAlive, stopKeepingAlive, beatAll, type Refreshable } from './heartbeat.js';
export { resolveStateDir, resolveLeaseMs, DEFAULT_STATE_DIR, DEFAULT_LEASE_MS, type RunScopeOptions } from './paths.js';
