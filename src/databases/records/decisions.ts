/**
 * Who holds a lane database: the claim an allocation makes on a registry row, and which ledger
 * entries and registry rows a release or a reap removes. Decisions only: no SQL, no files.
 * @internal
 */
import { RUN_ID_ENV, SHARD_ENV } from '../../env-vars.js';
import { LanesError, messageOf } from '../../errors.js';
import { debugLogger, warn } from '../../log.js';
import { withDatabase } from '../../postgres/index.js';
import { redactUrl } from '../../redact.js';
import { currentHost, describeLane, formatShard, resolveShard, splitByLiveness, type LaneKey, type StaleEntry } from '../../state/index.js';
import type { DatabaseEntry } from '../types.js';
import { judgeRow, type RegistryRow } from './registry.js';

const debug = debugLogger('databases');

/** What an allocation does with the registry row of its database. */
export type Claim =
  /** No row yet: insert one owned by this process. */
  | 'insert'
  /** The row's owner is gone (dead pid on this host, or an expired lease): this process takes it over. */
  | 'take'
  /** A live owner of this run on this host holds it: renew its lease. */
  | 'renew';

/**
 * Decides the claim of a process on `host` using the state folder `stateDir` on the row of the
 * database of `key`. Processes of one run share the state folder; a live owner with another one is
 * another run that has the same run id.
 * @throws {LanesError} `RUN_ID_CONFLICT` when a live owner of another run holds the database: two
 *   machines (or two runs on one machine) use the same run id, or, with odds of 1 in 4 billion, two
 *   lanes' names collide.
 */
export function claimFor(row: RegistryRow | undefined, key: LaneKey, host: string, stateDir: string): Claim {
  if (!row) return 'insert';
  if (row.runId !== key.runId || row.project !== key.project || row.worker !== key.worker) {
    throw new LanesError(
      'RUN_ID_CONFLICT',
      `Database ${row.databaseName} of ${describeLane(key)} is registered to ${describeLane(row)} on ${row.host}: the two lanes' names collide.`,
      { hint: `Use another run id (${RUN_ID_ENV}) or prefix for this run.`, details: { databaseName: row.databaseName } },
    );
  }
  if (row.host === host) {
    if (!judgeRow(row, host).alive) return 'take';
    if (row.stateDir === undefined || row.stateDir === stateDir) return 'renew';
    throw new LanesError(
      'RUN_ID_CONFLICT',
      `Database ${row.databaseName} of ${describeLane(key)} is held by another run on this host with the same run id (pid ${row.pid}, state folder ${row.stateDir}), e.g. two \`playwright test\` at once in one CI job.`,
      {
        hint: `Give each of them its own run id (${RUN_ID_ENV}) or database prefix (option \`prefix\`), e.g. one per package of a monorepo.`,
        details: { databaseName: row.databaseName, pid: row.pid, stateDir: row.stateDir },
      },
    );
  }
  if (row.expired) return 'take';
  throw new LanesError(
    'RUN_ID_CONFLICT',
    `Database ${row.databaseName} of ${describeLane(key)} is held by host ${JSON.stringify(row.host)} (pid ${row.pid}${row.shard ? `, shard ${row.shard}` : ''}, lease until ${row.expiresAt}): two machines run with the same run id ${JSON.stringify(key.runId)}.`,
    {
      hint:
        `Give every machine its own run id: pass --shard=<i>/<n> to \`playwright test\` (or set ${SHARD_ENV}), or set ${RUN_ID_ENV}, ` +
        'e.g. `${{ github.run_id }}-${{ github.run_attempt }}-${{ strategy.job-index }}` in a GitHub Actions matrix.',
      details: { databaseName: row.databaseName, host: row.host, pid: row.pid },
    },
  );
}

/** How a release or reap chooses what to remove. */
export interface RemovalPick {
  /** Only rows of this run are read from the registry (all rows of the prefix otherwise). */
  runId?: string;
  /** The ledger entries to remove, each with the reason. */
  ledger(entries: DatabaseEntry[]): StaleEntry<DatabaseEntry>[];
  /** The reason to remove a registry row, or undefined to keep it. Asked again under the row's lock. */
  row(row: RegistryRow): string | undefined;
}

/** One database to drop, with every record of it to forget. */
export interface RemovalTarget {
  databaseName: string;
  /** The entry reported to the caller: the ledger's, else one made from the registry row. */
  entry: DatabaseEntry;
  reason: string;
  /** Ledger entries of the database to forget (none when only the registry knew it). */
  ledger: DatabaseEntry[];
  /** The registry row to forget, when the registry knows the database. */
  row?: RegistryRow;
}

/**
 * The databases to drop. The registry, when there is one, decides for every database it knows: a
 * ledger entry whose database has a row that `pick.row` keeps is left alone (its owner holds it);
 * ledger entries without a row (allocated without the registry) are judged by the ledger alone.
 */
export function planRemoval(ledger: DatabaseEntry[], rows: RegistryRow[], pick: RemovalPick, adminUrl: string): RemovalTarget[] {
  const byName = new Map(rows.map((row) => [row.databaseName, row]));
  const targets = new Map<string, RemovalTarget>();
  for (const row of rows) {
    const reason = pick.row(row);
    if (reason !== undefined) targets.set(row.databaseName, { databaseName: row.databaseName, entry: rowToEntry(row, adminUrl), reason, ledger: [], row });
  }
  for (const { entry, reason } of pick.ledger(ledger)) {
    const target = targets.get(entry.databaseName);
    if (target) {
      if (target.ledger.length === 0) target.entry = entry;
      target.ledger.push(entry);
    } else if (!byName.has(entry.databaseName)) {
      targets.set(entry.databaseName, { databaseName: entry.databaseName, entry, reason, ledger: [entry] });
    }
  }
  return [...targets.values()];
}

/** A registry row in the shape of a ledger entry (URL with the password redacted). */
export function rowToEntry(row: RegistryRow, adminUrl: string): DatabaseEntry {
  const entry: DatabaseEntry = {
    runId: row.runId,
    project: row.project,
    owner: { runId: row.runId, pid: row.pid, host: row.host, createdAt: row.createdAt, heartbeatAt: row.heartbeatAt },
    databaseName: row.databaseName,
    databaseUrl: redactUrl(withDatabase(adminUrl, row.databaseName)),
    template: row.template,
  };
  if (row.worker !== undefined) entry.worker = row.worker;
  if (row.shard !== undefined) entry.shard = row.shard;
  if (row.pidStart !== undefined) entry.owner.pidStart = row.pidStart;
  if (row.pidNs !== undefined) entry.owner.pidNs = row.pidNs;
  if (row.bootId !== undefined) entry.owner.bootId = row.bootId;
  return entry;
}

/**
 * How a release of lanes of `runId` from the state folder `stateDir` chooses: the lanes of the run
 * that this run holds (this host, this state folder), and those whose owner is gone. A lane that a
 * live owner of another run with the same id holds (another host, or another state folder) stays.
 */
export function releasing(runId: string, stateDir: string, matches: (lane: LaneKey) => boolean): RemovalPick {
  return {
    runId,
    ledger: (entries) => entries.filter(matches).map((entry) => ({ entry, reason: 'released' })),
    row: (row) => {
      if (!matches(row)) return undefined;
      if (row.host === currentHost() && (row.stateDir === undefined || row.stateDir === stateDir)) return 'released';
      const verdict = judgeRow(row);
      if (!verdict.alive) return `released (${verdict.reason})`;
      debug('not releasing %s: pid %d on %s holds it (state folder %s, lease until %s)', row.databaseName, row.pid, row.host, row.stateDir, row.expiresAt);
      return undefined;
    },
  };
}

/**
 * How a reap chooses: the entries and rows whose owner is gone (dead pid on this host, or an
 * expired heartbeat or lease), of any run.
 */
export function reaping(leaseMs: number): RemovalPick {
  return {
    ledger: (entries) => splitByLiveness(entries, leaseMs).stale,
    row: (row) => {
      const verdict = judgeRow(row);
      return verdict.alive ? undefined : verdict.reason;
    },
  };
}

/** Why a row counts as stale, for messages. */
export function staleReason(row: RegistryRow): string {
  const verdict = judgeRow(row);
  return verdict.alive ? 'its owner is gone' : verdict.reason;
}

/** The shard of this process as recorded with its lanes (e.g. `2/4`), or undefined; a malformed E2E_LANES_SHARD is warned about and ignored. */
export function currentShard(): string | undefined {
  try {
    const shard = resolveShard();
    return shard && formatShard(shard);
  } catch (error) {
    warn(`no shard recorded with the lanes: ${messageOf(error)}`);
    return undefined;
  }
}
