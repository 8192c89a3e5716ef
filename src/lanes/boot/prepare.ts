/**
 * A run's setup, once before its first lane boots: what dead runs left is reaped, old runs' log
 * folders are pruned, and PostgreSQL and the template are made ready (the entries of a warm run
 * being reused become this process's on the way).
 */
import type { DatabaseAllocator, TemplateInfo } from '../../databases/index.js';
import { debugLogger } from '../../log.js';
import type { PortAllocator } from '../../ports/index.js';
import { newOwner, type LedgerDocument, type StateFile } from '../../state/index.js';
import { DEFAULT_KEEP_LOGS } from '../options/lane-options.js';
import { reapDeadDatabases, reapDeadRuns } from '../reaping/dead-runs.js';
import type { ReapReport } from '../reaping/reaper.js';
import type { LaneEntry } from '../records/lane-ledger.js';
import { pruneLogDirs } from '../records/log-dir.js';

const debug = debugLogger('lanes');

/** What `prepare()` did. */
export interface PrepareReport {
  template?: TemplateInfo;
  /** Which PostgreSQL server the lanes' databases live on (no password); absent without databases. */
  postgres?: string;
  reaped: ReapReport;
}

/** What a run's setup needs of it. */
export interface PrepareContext {
  runId: string;
  stateDir: string;
  leaseMs: number;
  ledger: StateFile<LedgerDocument<LaneEntry>>;
  ports: PortAllocator;
  databases: DatabaseAllocator | undefined;
  /** Option `keepLogs`. */
  keepLogs: number | undefined;
  /** True when the run reuses a warm run: its ports and databases are handed over to this process. */
  reusesWarmRun: boolean;
}

/** Reaps what dead runs left behind, then makes sure Postgres and the template are ready. */
export async function prepareRun(ctx: PrepareContext): Promise<PrepareReport> {
  const { lanes: reaped } = await reapDeadRuns(ctx, ctx.leaseMs);
  // A warm run reused: its ports and databases become this process's too (its lanes already are).
  if (ctx.reusesWarmRun) await ctx.ports.handOverRun(ctx.runId, newOwner(ctx.runId));
  await pruneLogs(ctx);
  if (!ctx.databases) return { reaped };
  const template = await ctx.databases.prepare();
  if (ctx.reusesWarmRun) await ctx.databases.handOverRun(ctx.runId, newOwner(ctx.runId));
  await reapDeadDatabases(ctx.databases);
  await ctx.databases.dropStaleReadyCopies();
  return { reaped, template, postgres: await ctx.databases.describePostgres() };
}

/** Deletes old runs' log folders (see `keepLogs`); what is left in the ledgers after reaping is alive or kept. */
async function pruneLogs(ctx: PrepareContext): Promise<void> {
  const live = new Set<string>([ctx.runId]);
  for (const entry of (await ctx.ledger.read()).entries) live.add(entry.runId);
  for (const runId of await ctx.ports.runIds()) live.add(runId);
  const removed = await pruneLogDirs(ctx.stateDir, ctx.keepLogs ?? DEFAULT_KEEP_LOGS, live);
  if (removed.length > 0) debug('deleted the log folders of %d earlier run(s): %o', removed.length, removed);
}
