import { DEFAULT_PREFIX, dropOldTemplates, listTemplates, templateHashOf } from '../databases/index.js';
import { reapDeadDatabases, reapDeadRuns } from '../lanes/reaping/dead-runs.js';
import type { LanesOptions } from '../lanes/options/lane-options.js';
import { ensurePostgres } from '../postgres/index.js';
import { describeLane } from '../state/index.js';
import type { CliState } from './context.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

type State = CliState;

/** What `gc` removed (or, with `dryRun`, would remove). */
export interface GcReport {
  lanes: string[];
  killedPids: number[];
  /** Each killed process with what it was and why (its owner is provably gone, or its lease expired). */
  killed: string[];
  databases: string[];
  ports: string[];
  templates: string[];
  /** Ready copies of templates that are gone. */
  readyCopies: string[];
}

/**
 * Reaps everything whose owner is dead or whose lease expired (server process groups, lane
 * databases, port entries) and drops all but the newest `keepTemplates` templates. With `dryRun`
 * it changes nothing and lists what the real run removes: when the embedded server has to be
 * started to look at its databases, it is started for the look alone, its port recorded in a
 * throw-away state folder (never in this one, whose stale entries an allocation would reap), and
 * stopped again unless another run joined it meanwhile.
 */
export async function collectGarbage(state: State, options: LanesOptions, gc: { dryRun: boolean; keepTemplates: number }): Promise<GcReport> {
  if (!gc.dryRun || options.database === false) return collect(state, options, gc);
  const scratch = await mkdtemp(join(tmpdir(), 'e2e-lanes-gc-look-'));
  try {
    const look = await holdServer(scratch, options);
    try {
      return await collect(state, options, gc);
    } finally {
      await look.release();
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

async function collect(state: State, options: LanesOptions, gc: { dryRun: boolean; keepTemplates: number }): Promise<GcReport> {
  // What a run's setup reaps first, then the databases (on a shared server also other machines' whose lease expired).
  const dead = await reapDeadRuns(state, state.leaseMs, { dryRun: gc.dryRun });
  const report: GcReport = {
    lanes: dead.lanes.lanes.map(({ entry, reason }) => `${describeLane(entry)}: ${reason}`),
    killedPids: dead.lanes.killedPids,
    killed: dead.lanes.killed.map(({ why }) => why),
    databases: [],
    ports: dead.ports.map(({ entry }) => `${Object.values(entry.ports).join(',')} of ${describeLane(entry)}`),
    templates: [],
    readyCopies: [],
  };
  if (state.databases) {
    try {
      report.databases = await reapDeadDatabases(state.databases, { dryRun: gc.dryRun });
    } finally {
      await state.databases.close();
    }
  }
  if (options.database !== false) {
    report.templates = await oldTemplates(state, options, gc);
    // After the templates: the copies of those just dropped go with them (a dry run counts them as gone).
    try {
      const copies = (await state.databases?.dropStaleReadyCopies({ dryRun: gc.dryRun })) ?? [];
      const prefix = (options.database || {}).prefix ?? DEFAULT_PREFIX;
      const dropping = new Set(report.templates.flatMap((name) => templateHashOf(prefix, name) ?? []));
      const more = gc.dryRun && dropping.size > 0 ? ((await state.databases?.readyCopiesOf([...dropping])) ?? []) : [];
      report.readyCopies = [...new Set([...copies, ...more])];
    } finally {
      await state.databases?.close();
    }
  }
  return report;
}

async function oldTemplates(state: State, options: LanesOptions, gc: { dryRun: boolean; keepTemplates: number }): Promise<string[]> {
  const database = options.database || {};
  const prefix = database.prefix ?? 'e2e';
  const server = await holdServer(state.stateDir, options);
  try {
    // Templates that live lanes of this state folder were cloned from stay: their runs may clone more.
    const inUse = ((await state.databases?.list()) ?? []).filter((entry) => entry.alive).map((entry) => entry.template);
    if (gc.dryRun) {
      return (await listTemplates(server.adminUrl, prefix))
        .slice(gc.keepTemplates)
        .map((template) => template.name)
        .filter((name) => !inUse.includes(name));
    }
    // Template builds hold their lock in the registry database when the server's registry is used.
    const lockingUrl = (await state.databases?.lockingUrl()) ?? server.adminUrl;
    return await dropOldTemplates(lockingUrl, prefix, gc.keepTemplates, { exclude: inUse });
  } finally {
    await state.databases?.close();
    await server.release();
  }
}

/** A hold on the lanes' PostgreSQL server (the embedded one started, with its port in `stateDir`, when it does not run). */
function holdServer(stateDir: string, options: LanesOptions): ReturnType<typeof ensurePostgres> {
  const database = options.database || {};
  return ensurePostgres({
    stateDir,
    runId: 'e2e-lanes-cli',
    ...(database.adminUrl !== undefined ? { adminUrl: database.adminUrl } : {}),
    ...(database.embedded !== undefined ? { embedded: database.embedded } : {}),
  });
}
