import type { DatabaseListing } from '../databases/types.js';
import { isListening } from '../ports/probe.js';
import { currentHost, isPidAlive, judgeOwner, withLiveness } from '../state/index.js';
import { judgeProcess } from '../state/owner.js';
import { findStateProcesses } from '../lanes/reaping/orphans.js';
import { hostClaims, type HostClaims } from '../ports/host-claims.js';
import { debugLogger } from '../log.js';
import type { LaneEntry } from '../lanes/records/lane-ledger.js';
import { age, dim, green, red, span, table, yellow } from './format.js';
import type { stateFilesOf } from './context.js';

type StateFiles = ReturnType<typeof stateFilesOf>;

const debug = debugLogger('cli');

/** A state folder other than the one looked at, whose runs hold live port claims on this host. */
export interface OtherStateFolder {
  stateDir: string;
  runs: Array<{ runId: string; lanes: number }>;
}

/** One row of `status`: everything known about one lane. */
export interface LaneStatus {
  runId: string;
  project: string;
  worker?: number;
  ports: Record<string, number>;
  databaseName?: string;
  /** The role the lane's processes connect as (its own with lane roles, else the admin's), from its recorded URL. */
  role?: string;
  servers: Array<{ name: string; pid: number; port?: number; alive: boolean; listening: boolean }>;
  ownerPid: number;
  ownerHost: string;
  ownerAlive: boolean;
  staleReason?: string;
  kept: boolean;
  /** Warm lanes (option `reuse`): since when they wait for the next run, and when they stop (ISO 8601). */
  warm?: { since?: string; until: string };
  createdAt: string;
}

/** Joins the ports, databases and lanes ledgers into one row per lane. */
export async function collectStatus(state: StateFiles, options: { allMachines?: boolean } = {}): Promise<LaneStatus[]> {
  const listDatabases = async (): Promise<DatabaseListing[]> => {
    const ledger = state.databaseLedger;
    if (!ledger) return [];
    // This host's entries, as DatabaseAllocator.list() reads them, without loading the PostgreSQL client.
    if (!options.allMachines) return withLiveness((await ledger.file.read()).entries, ledger.leaseMs);
    const databases = await ledger.allocator();
    try {
      return await databases.list({ scope: 'server' });
    } finally {
      await databases.close();
    }
  };
  const [ports, databases, lanes] = await Promise.all([state.ports.list(), listDatabases(), state.lanes.read()]);
  const key = (entry: { runId: string; project: string; worker?: number }) => JSON.stringify([entry.runId, entry.project, entry.worker ?? null]);
  const rows = new Map<string, LaneStatus>();
  const row = (entry: { runId: string; project: string; worker?: number; owner: LaneEntry['owner'] }, alive: boolean, reason?: string) => {
    let found = rows.get(key(entry));
    if (!found) {
      found = {
        runId: entry.runId,
        project: entry.project,
        ports: {},
        servers: [],
        ownerPid: entry.owner.pid,
        ownerHost: entry.owner.host,
        ownerAlive: alive,
        kept: false,
        createdAt: entry.owner.createdAt,
        ...(entry.worker !== undefined ? { worker: entry.worker } : {}),
        ...(reason ? { staleReason: reason } : {}),
      };
      rows.set(key(entry), found);
    }
    return found;
  };
  for (const entry of ports) row(entry, entry.alive, entry.staleReason).ports = entry.ports;
  for (const entry of databases) {
    const target = row(entry, entry.alive, entry.staleReason);
    target.databaseName = entry.databaseName;
    const role = roleOf(entry.databaseUrl);
    if (role) target.role = role;
  }
  for (const entry of lanes.entries) {
    const verdict = judgeOwner(entry.owner, state.leaseMs);
    const target = row(entry, verdict.alive, verdict.alive ? undefined : verdict.reason);
    target.kept = entry.owner.kept === true;
    if (entry.owner.warmUntil !== undefined) target.warm = { until: entry.owner.warmUntil, ...(entry.warmSince ? { since: entry.warmSince } : {}) };
    target.servers = await Promise.all(
      entry.servers.map(async (server) => ({
        name: server.name,
        pid: server.pid,
        ...(server.port !== undefined ? { port: server.port } : {}),
        alive: isPidAlive(server.pid),
        listening: server.port !== undefined && (await isListening(server.port, { connectTimeoutMs: 1_000 })),
      })),
    );
  }
  // The state files are a cache: servers that carry this state folder's marks and that no file lists (records lost).
  const recorded = new Set([...rows.values()].flatMap((found) => found.servers.map((server) => server.pid)));
  for (const found of findStateProcesses(state.stateDir)) {
    if (recorded.has(found.pid) || found.pgid !== found.pid) continue;
    const owner = judgeProcess(found.owner ?? { pid: found.ownerPid });
    const key = JSON.stringify([found.runId, null, 'unrecorded']);
    const target = rows.get(key) ?? { runId: found.runId, project: '(not recorded)', ports: {}, servers: [], ownerPid: found.ownerPid, ownerHost: currentHost(), ownerAlive: owner.state !== 'gone', kept: false, createdAt: new Date().toISOString(), ...(owner.state === 'gone' ? { staleReason: owner.reason } : {}) };
    target.servers.push({ name: found.server, pid: found.pid, alive: true, listening: false });
    rows.set(key, target);
  }
  return [...rows.values()];
}

/**
 * The state folders other than `stateDir` whose lanes run on this host, from the host-wide port
 * claims (live ones only), with their runs and how many lanes each holds. A folder that cannot be
 * read yields none: this only points the way.
 */
export async function otherStateFolders(stateDir: string, leaseMs: number, claims: HostClaims = hostClaims()): Promise<OtherStateFolder[]> {
  let found;
  try {
    found = await claims.list();
  } catch (error) {
    debug('could not read the host-wide port claims: %O', error);
    return [];
  }
  const folders = new Map<string, Map<string, Set<string>>>();
  for (const claim of found) {
    if (claim.stateDir === stateDir || !judgeOwner(claim.owner, leaseMs).alive) continue;
    const runs = folders.get(claim.stateDir) ?? new Map<string, Set<string>>();
    folders.set(claim.stateDir, runs);
    const lanes = runs.get(claim.runId) ?? new Set<string>();
    runs.set(claim.runId, lanes);
    lanes.add(JSON.stringify([claim.project, claim.worker ?? null]));
  }
  return [...folders.entries()]
    .map(([folder, runs]) => ({ stateDir: folder, runs: [...runs.entries()].map(([runId, lanes]) => ({ runId, lanes: lanes.size })) }))
    .sort((a, b) => a.stateDir.localeCompare(b.stateDir));
}

/**
 * The `status` table. With no lanes, and lanes of other state folders running on this host
 * (`elsewhere`), it says where to look.
 */
export function formatStatus(rows: LaneStatus[], where: { stateDir?: string; elsewhere?: OtherStateFolder[] } = {}): string {
  if (rows.length === 0) {
    if (!where.elsewhere?.length) return 'No lanes.';
    return [
      `No lanes.${where.stateDir ? ` (state folder ${where.stateDir})` : ''}`,
      'Lanes of other state folders run on this host:',
      ...where.elsewhere.map(
        (folder) =>
          `  ${folder.stateDir} (${folder.runs.map((run) => `run ${run.runId}, ${run.lanes} lane${run.lanes === 1 ? '' : 's'}`).join('; ')}) — run \`npx e2e-lanes status --state-dir ${folder.stateDir}\``,
      ),
    ].join('\n');
  }
  return table(
    ['RUN', 'PROJECT', 'PORTS', 'DATABASE', 'ROLE', 'SERVERS', 'OWNER', 'AGE'],
    rows.map((row) => [
      row.runId,
      row.worker === undefined ? row.project : `${row.project} #${row.worker}`,
      Object.entries(row.ports).map(([name, port]) => `${name}:${port}`).join(' ') || dim('-'),
      row.databaseName ?? dim('-'),
      row.role ?? dim('-'),
      row.servers.map((server) => `${server.name}:${server.pid} ${server.listening ? green('healthy') : server.alive ? yellow('not listening') : red('dead')}`).join(', ') || dim('-'),
      `${row.ownerPid}@${row.ownerHost} ${row.kept ? yellow('kept') : row.warm && row.ownerAlive ? yellow(describeWarm(row.warm)) : row.ownerAlive ? green('alive') : red(`dead${row.staleReason ? ` (${row.staleReason})` : ''}`)}`,
      age(row.createdAt),
    ]),
  );
}

/** The user of a recorded (redacted) database URL, or undefined. */
function roleOf(url: string): string | undefined {
  try {
    return decodeURIComponent(new URL(url).username) || undefined;
  } catch {
    return undefined;
  }
}

/** `warm, idle 2m, stops in 13m` (or `stopping` once the deadline passed). */
function describeWarm(warm: { since?: string; until: string }, now = Date.now()): string {
  const left = Date.parse(warm.until) - now;
  const idle = warm.since ? `, idle ${age(warm.since, now)}` : '';
  return `warm${idle}, ${left > 0 ? `stops in ${span(left)}` : 'stopping'}`;
}

