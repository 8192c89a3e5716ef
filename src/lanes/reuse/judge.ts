/**
 * Judges one lane of a warm run for the run that reuses the warm run: its config and servers'
 * definitions unchanged, its template the current one, its servers alive (by their marks) and
 * healthy, its database there and put back to the template. See docs/fast-local-loop.md.
 */
import type { DatabaseAllocator } from '../../databases/index.js';
import { messageOf } from '../../errors.js';
import { attachServers, type StartedServers } from '../../servers/index.js';
import type { LaneKey } from '../../state/index.js';
import type { Lane } from '../lane.js';
import type { LaneEntry } from '../records/lane-ledger.js';
import { baseServerName, type LanesOptions } from '../options/lane-options.js';
import { isServerOfRun } from '../reaping/process-marks.js';
import { fingerprintChange, laneFingerprint } from './fingerprint.js';

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
