import { killProcessGroup } from '../servers/index.js';
import { isServerOfRun, killRunStragglers } from '../lanes/orphans.js';
import type { LanesOptions } from '../lanes/options.js';
import { releaseEmbeddedRuns } from '../postgres/index.js';
import { debugLogger } from '../log.js';

const debug = debugLogger('cli');
import type { CliState } from './context.js';

type State = CliState;

/** What `down` removed. */
export interface DownReport {
  runs: string[];
  killedPids: number[];
  databases: string[];
  ports: number;
}

/**
 * Tears down the lanes of the given runs (or of every run with `all`), whether their owner is
 * alive, dead or kept: servers, databases, ports, and the lanes' records.
 */
export async function tearDownRuns(state: State, which: { runs?: string[]; all?: boolean }, options: LanesOptions = {}): Promise<DownReport> {
  const known = new Set<string>();
  for (const entry of (await state.lanes.read()).entries) known.add(entry.runId);
  for (const entry of (await state.ports.file.read()).entries) known.add(entry.runId);
  for (const entry of (await state.databases?.list()) ?? []) known.add(entry.runId);
  const runs = which.all ? [...known] : (which.runs ?? []).filter((run) => known.has(run));
  const report: DownReport = { runs, killedPids: [], databases: [], ports: 0 };
  for (const runId of runs) {
    const lanes = await state.lanes.update((doc) => {
      const mine = doc.entries.filter((entry) => entry.runId === runId);
      doc.entries = doc.entries.filter((entry) => entry.runId !== runId);
      return mine;
    });
    for (const server of lanes.flatMap((lane) => lane.servers)) {
      if (!isServerOfRun(server.pid, runId)) continue;
      await killProcessGroup(server.pid, { timeout: 3_000 });
      report.killedPids.push(server.pid);
    }
    // Processes of the run that left their server's process group (they carry its marks).
    report.killedPids.push(...(await killRunStragglers(runId, { timeout: 3_000 })));
    if (state.databases) report.databases.push(...(await state.databases.releaseRun(runId)).map((entry) => entry.databaseName));
    report.ports += (await state.ports.releaseRun(runId)).length;
  }
  await state.databases?.close();
  // A kept run also kept its hold on the embedded server: let go of it (the last user stops it).
  // (Named runs count even when this state folder does not know them: their state may be gone.)
  const holders = which.all ? runs : (which.runs ?? []);
  if (holders.length > 0 && options.database !== false && state.databases?.registryKind() === 'file') {
    await releaseEmbeddedRuns(holders, { ...options.database?.embedded, stateDir: state.stateDir }).catch((error: unknown) => {
      debug('releasing the embedded server for %o failed: %O', holders, error);
    });
  }
  return report;
}
