/**
 * The end of a run in the process that owns it, when its lanes are neither kept nor left warm:
 * every server stopped (those of its lanes, those of lanes it reserved for reuse but did not use,
 * and what left their groups), its databases dropped, its ports released, its lanes' records
 * removed.
 */
import type { DatabaseAllocator } from '../../databases/index.js';
import { debugLogger } from '../../log.js';
import type { PortAllocator } from '../../ports/index.js';
import { resolveOwnerPid, stopKeepingAlive, type LedgerDocument, type StateFile } from '../../state/index.js';
import type { LaneEntry } from '../records/lane-ledger.js';
import { stopRecordedServers } from './run-records.js';
import { killRunStragglers } from './stragglers.js';

const debug = debugLogger('lanes');

/** What the teardown of a run needs of the process that owns it. */
export interface OwnRun {
  runId: string;
  ledger: StateFile<LedgerDocument<LaneEntry>>;
  ports: PortAllocator;
  databases: DatabaseAllocator | undefined;
  /** Whether the database server was reached (else no database is dropped). */
  prepared: boolean;
  /** The servers of the run's lanes this process started or reused. */
  servers: ReadonlyArray<{ stopAll(): Promise<void> }>;
  /** Whether the lane of `entry` is one of those (its servers are stopped through them). */
  isUp(entry: LaneEntry): boolean;
  /** Called once every server was stopped: the run's lanes are gone. */
  lanesGone(): void;
}

/**
 * Stops and releases everything of the run, going on past failures.
 * @throws the first error, once everything was tried
 */
export async function tearDownOwnRun(run: OwnRun): Promise<void> {
  const errors: unknown[] = [];
  const collect = (result: PromiseSettledResult<unknown>): void => {
    if (result.status === 'rejected') errors.push(result.reason);
  };
  (await Promise.allSettled(run.servers.map((servers) => servers.stopAll()))).forEach(collect);
  // Lanes of a warm run reused but not used by this run: their servers are not this process's children.
  for (const entry of (await run.ledger.read().catch(() => ({ entries: [] as LaneEntry[] }))).entries) {
    if (entry.runId !== run.runId || run.isUp(entry)) continue;
    collect(await settle(stopRecordedServers(entry.servers, run.runId)));
  }
  run.lanesGone();
  // Servers are stopped "with everything they spawned": also what left their process groups.
  const stragglers = await settle(killRunStragglers(run.runId, { ownerPid: resolveOwnerPid() }));
  collect(stragglers);
  if (stragglers.status === 'fulfilled' && stragglers.value.length > 0) {
    debug('killed %d process(es) of run %s that had left their server\'s process group: %o', stragglers.value.length, run.runId, stragglers.value);
  }
  if (run.databases) {
    if (run.prepared) collect(await settle(run.databases.releaseRun(run.runId)));
    collect(await settle(run.databases.close()));
  }
  collect(await settle(run.ports.releaseRun(run.runId)));
  collect(await settle(run.ledger.update((doc) => void (doc.entries = doc.entries.filter((entry) => entry.runId !== run.runId)))));
  stopKeepingAlive(run.ledger, run.runId);
  if (errors.length > 0) throw errors[0];
}

async function settle<T>(promise: Promise<T>): Promise<PromiseSettledResult<T>> {
  const [result] = await Promise.allSettled([promise]);
  return result!;
}
