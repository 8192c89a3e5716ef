/**
 * Judges one lane of a warm run for the run that reuses the warm run: its config and servers'
 * definitions unchanged, its template the current one, its servers alive (by their marks) and
 * healthy, its database there and put back to the template. See docs/fast-local-loop.md.
 */
import type { DatabaseAllocator } from '../../databases/index.js';
import { messageOf } from '../../errors.js';
import { warn } from '../../log.js';
import { attachServers, type StartedServers } from '../../servers/index.js';
import { describeLane, type LaneKey } from '../../state/index.js';
import type { Lane } from '../lane.js';
import type { LaneEntry } from '../records/lane-ledger.js';
import { baseServerName, type LanesOptions } from '../options/lane-options.js';
import { isServerOfRun } from '../reaping/process-marks.js';
import { stopRecordedServers } from '../teardown/run-records.js';
import { fingerprintChange, laneFingerprint } from './fingerprint.js';
import { emptyReuseReport, type ReusedRun, type ReuseReport } from './warm-run.js';

/** What a judgement needs of the run. */
export interface ReuseContext {
  runId: string;
  options: LanesOptions;
  /** The config of this run (see LaneFingerprint.config). */
  configKey: string;
  databases: DatabaseAllocator | undefined;
}

/**
 * The lane and its attached servers, its data reset, or why it cannot serve this run (then
 * nothing of it was changed; the caller tears it down).
 */
export async function judgeWarmLane(ctx: ReuseContext, key: LaneKey, entry: LaneEntry, template: string | undefined): Promise<{ lane: Lane; servers: StartedServers } | { reason: string }> {
  const { options, databases } = ctx;
  const fingerprint = laneFingerprint(options, ctx.configKey, { project: key.project, ports: entry.ports });
  const unfit = fingerprintChange(entry.fingerprint, fingerprint) ?? (entry.status !== 'up' ? 'it never finished booting' : undefined);
  if (unfit) return { reason: unfit };
  if (databases && template !== entry.template) return { reason: 'the template changed (migrations or seed)' };
  const worker = key.worker !== undefined ? { worker: key.worker } : {};
  const lane: Lane = { runId: ctx.runId, project: key.project, ports: entry.ports, urls: {}, logFiles: {}, ...worker };
  if (databases && entry.databaseName) {
    lane.databaseName = entry.databaseName;
    const recorded = await databases.allocation(key.project, worker);
    if (!recorded) return { reason: `its database ${entry.databaseName} is not recorded any more` };
    if (!recorded.exists) return { reason: `its database ${entry.databaseName} is gone` };
    lane.databaseUrl = recorded.databaseUrl;
  }
  const serverCtx = { project: key.project, ports: entry.ports, urls: lane.urls, ...(lane.databaseUrl ? { databaseUrl: lane.databaseUrl } : {}) };
  const attached = await attachServers(options.servers ?? [], serverCtx, entry.servers, {
    logDir: entry.logDir,
    ...(options.host ? { host: options.host } : {}),
    isOurs: (pid) => isServerOfRun(pid, ctx.runId),
  });
  if (!attached.ok) return { reason: attached.reason };
  if (databases) {
    try {
      await databases.resetDatabaseForProject(key.project, worker);
    } catch (error) {
      return { reason: /does not exist/.test(messageOf(error)) ? `its database ${entry.databaseName} is gone` : `its database could not be reset (${messageOf(error).split('\n')[0]})` };
    }
  }
  for (const server of attached.servers) lane.logFiles[server.name] = server.logFile;
  const base = baseServerName(options);
  if (base && lane.urls[base]) lane.baseURL = lane.urls[base];
  return { lane, servers: attached.servers };
}

/**
 * Judges the lanes of `projects` in the warm run this process reserved, all at once: a lane fit
 * for reuse (its data reset) goes to `reused`; any other is torn down (its servers by their marks,
 * they are not this process's children; its records by `forget`) with one line saying why, and
 * boots afresh when asked for. Lanes of other projects stay as they are, for a later run.
 */
export async function reuseWarmRunLanes(
  ctx: ReuseContext,
  warmRun: ReusedRun,
  projects: readonly string[],
  template: string | undefined,
  hooks: { reused(key: LaneKey, judged: { lane: Lane; servers: StartedServers }): void; forget(key: LaneKey): Promise<void> },
): Promise<ReuseReport> {
  const report = emptyReuseReport(ctx.runId);
  const since = warmRun.entries.map((entry) => entry.warmSince).filter((at): at is string => at !== undefined).sort()[0];
  if (since) report.idleMs = Math.max(0, Date.now() - Date.parse(since));
  await Promise.all(
    warmRun.entries.filter((entry) => projects.includes(entry.project)).map(async (entry) => {
      const key: LaneKey = { runId: ctx.runId, project: entry.project, ...(entry.worker !== undefined ? { worker: entry.worker } : {}) };
      const judged = await judgeWarmLane(ctx, key, entry, template);
      if ('reason' in judged) {
        warn(`lane ${describeLane(key)} not reused: ${judged.reason}; it boots afresh`);
        await stopRecordedServers(entry.servers, ctx.runId);
        await hooks.forget(key);
        report.replaced.push({ project: key.project, ...(key.worker !== undefined ? { worker: key.worker } : {}), reason: judged.reason });
        return;
      }
      hooks.reused(key, judged);
      report.reused.push(judged.lane);
    }),
  );
  return report;
}
