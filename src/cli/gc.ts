import { dropOldTemplates, listTemplates } from '../databases/index.js';
import { reapStaleLanes } from '../lanes/reaper.js';
import type { LanesOptions } from '../lanes/options.js';
import { ensurePostgres } from '../postgres/index.js';
import { splitByLiveness, describeLane } from '../state/index.js';
import type { CliState } from './context.js';

type State = CliState;

/** What `gc` removed (or, with `dryRun`, would remove). */
export interface GcReport {
  lanes: string[];
  killedPids: number[];
  databases: string[];
  ports: string[];
  templates: string[];
}

/**
 * Reaps everything whose owner is dead or whose lease expired (server process groups, lane
 * databases, port entries) and drops all but the newest `keepTemplates` templates.
 */
export async function collectGarbage(state: State, options: LanesOptions, gc: { dryRun: boolean; keepTemplates: number }): Promise<GcReport> {
  const lanes = await reapStaleLanes(state.stateDir, state.leaseMs, { dryRun: gc.dryRun });
  const report: GcReport = {
    lanes: lanes.lanes.map(({ entry, reason }) => `${describeLane(entry)}: ${reason}`),
    killedPids: lanes.killedPids,
    databases: [],
    ports: [],
    templates: [],
  };
  if (gc.dryRun) {
    const ports = splitByLiveness((await state.ports.file.read()).entries, state.leaseMs).stale;
    report.ports = ports.map(({ entry }) => `${Object.values(entry.ports).join(',')} of ${describeLane(entry)}`);
    // On a shared server, the registry also knows other machines' lanes whose lease expired.
    try {
      const databases = (await state.databases?.list({ scope: 'server' })) ?? [];
      report.databases = databases.filter((entry) => !entry.alive).map((entry) => entry.databaseName);
    } finally {
      await state.databases?.close();
    }
  } else {
    report.ports = (await state.ports.reapStale()).map(({ entry }) => `${Object.values(entry.ports).join(',')} of ${describeLane(entry)}`);
    if (state.databases) {
      try {
        report.databases = (await state.databases.reapStale()).filter((item) => item.dropped).map((item) => item.entry.databaseName);
      } finally {
        await state.databases.close();
      }
    }
  }
  if (options.database !== false) report.templates = await oldTemplates(state, options, gc);
  return report;
}

async function oldTemplates(state: State, options: LanesOptions, gc: { dryRun: boolean; keepTemplates: number }): Promise<string[]> {
  const database = options.database || {};
  const prefix = database.prefix ?? 'e2e';
  const server = await ensurePostgres({
    stateDir: state.stateDir,
    runId: 'e2e-lanes-cli',
    ...(database.adminUrl !== undefined ? { adminUrl: database.adminUrl } : {}),
    ...(database.embedded !== undefined ? { embedded: database.embedded } : {}),
  });
  try {
    // Templates that live lanes of this state folder were cloned from stay: their runs may clone more.
    const inUse = ((await state.databases?.list()) ?? []).filter((entry) => entry.alive).map((entry) => entry.template);
    if (gc.dryRun) {
      return (await listTemplates(server.adminUrl, prefix))
        .slice(gc.keepTemplates)
        .map((template) => template.name)
        .filter((name) => !inUse.includes(name));
    }
    return await dropOldTemplates(server.adminUrl, prefix, gc.keepTemplates, { exclude: inUse });
  } finally {
    await server.release();
  }
}
