/**
 * The removal protocol: which lane databases a release or reap drops, and how each goes — one
 * after the other, recorded ones under the state file's lock and (with the registry) under
 * their lane's lock, checked again once locked. Only names the allocator derives for a lane under
 * its own prefix are ever dropped; a database without the toolkit's mark is never touched.
 * Private to the databases module.
 * @internal
 */
import type { Client } from 'pg';
import { LanesError, messageOf } from '../errors.js';
import { debugLogger, warn } from '../log.js';
import { describeTarget, withDatabase } from '../postgres/index.js';
import { redactUrl } from '../redact.js';
import { currentHost, describeLane } from '../state/index.js';
import { databasesStartingWith, dropDatabase } from './sql/catalog.js';
import type { DatabaseEntry, ReapedDatabase } from './types.js';
import type { LaneRecords } from './records/lane-records.js';
import { markOwnerGone, markToEntry, parseMark, type DatabaseMark } from './sql/marks.js';
import { isLaneDatabaseOf } from './sql/names.js';
import { planRemoval, type RemovalPick, type RemovalTarget } from './records/decisions.js';
import { dropToolkitRole, laneRoleName, reapRoles } from './sql/roles.js';
import type { ServerAccess } from './sql/server-access.js';
import { dropAbandonedBuilds } from './template/housekeeping.js';

const debug = debugLogger('databases');

/** What the removal protocol works with. */
export interface RemovalContext {
  session: ServerAccess;
  records: LaneRecords;
  prefix: string;
}

/**
 * Drops and forgets the databases `pick` chooses, one after the other: the state file's entries
 * and the registry's rows (see {@link LaneRecords.remove}; with `wait: false` a lane someone
 * else is working on is skipped). Databases whose drop fails are kept and reported at the end.
 * @throws {LanesError} `DATABASE_DROP_FAILED` after trying all.
 */
export async function removeDatabases({ session, records, prefix }: RemovalContext, pick: RemovalPick, lock: { wait: boolean }): Promise<ReapedDatabase[]> {
  const failures: string[] = [];
  const removed = await records.ledger.remove(async (ledger) => {
    const rows = await records.rows({ prefix, ...(pick.runId !== undefined ? { runId: pick.runId } : {}) });
    if (rows.length === 0 && pick.ledger(ledger).length === 0) return { forget: [], value: [] };
    const { adminUrl } = await session.server();
    const drop = async (client: Client, target: RemovalTarget): Promise<boolean | undefined> => {
      if (!isLaneDatabaseOf(prefix, target.entry)) {
        const where = target.row ? `the lane registry of ${describeTarget(adminUrl)}` : records.ledger.path;
        warn(`not dropping database ${JSON.stringify(target.databaseName)} recorded for ${describeLane(target.entry)} in ${where}: this allocator never creates a database of that name. The entry was removed.`);
        return false;
      }
      try {
        const existed = await dropDatabase(client, target.databaseName);
        debug('dropped %s of %s', target.databaseName, describeLane(target.entry));
        await dropLaneRole(client, target.databaseName);
        return existed;
      } catch (error) {
        failures.push(`${target.databaseName}: ${messageOf(error)}`);
        return undefined;
      }
    };
    const gone = await session.withAdmin(async (client) => {
      const done: { target: RemovalTarget; dropped: boolean }[] = [];
      for (const target of planRemoval(ledger, rows, pick, adminUrl)) {
        const dropped = await records.remove(client, target, pick, lock, () => drop(client, target));
        if (dropped !== undefined) done.push({ target, dropped });
      }
      return done;
    });
    return {
      forget: gone.flatMap(({ target }) => target.ledger),
      value: gone.map(({ target, dropped }) => ({ entry: structuredClone(target.entry), reason: target.reason, dropped })),
    };
  });
  if (failures.length > 0) throw dropFailed(`Could not drop ${failures.length} database(s)`, failures, 'They stay recorded and are retried by the next release or `npx e2e-lanes gc`.');
  return removed;
}

/**
 * The server is a source of truth too: drops the databases of this prefix that carry the
 * toolkit's lane mark, are listed in neither the state file nor the registry (a lost or
 * truncated state file, another state folder's run that died), and whose marked owner is gone
 * (this host: pid gone or reused; another host's are judged only by their lease, so never here).
 * Also drops abandoned build databases of templates. Runs under the state file's lock, so an
 * allocation of this state folder never races it. With `dryRun`, only says what it would drop.
 * With `releasing`, the marked lane databases of those runs on this host go too, whatever their
 * owner (`down` of runs whose records were lost).
 * @throws {LanesError} `DATABASE_DROP_FAILED` after trying all.
 */
export async function reapUnrecorded({ session, records, prefix }: RemovalContext, options: { dryRun?: boolean; releasing?: readonly string[] } = {}): Promise<ReapedDatabase[]> {
  const { adminUrl } = await session.server();
  const failures: string[] = [];
  const dryRun = options.dryRun === true;
  const reaped = await records.ledger.inspect(
    async (entries) => {
      const known = new Set(entries.map((entry) => entry.databaseName));
      for (const row of await records.rows({ prefix })) known.add(row.databaseName);
      return session.withAdmin(async (client) => {
        const found: ReapedDatabase[] = [];
        for (const row of await databasesStartingWith(client, `${prefix}_`)) {
          const mark = parseMark(row.comment);
          if (mark?.kind !== 'lane' || known.has(row.name)) continue;
          const entry = markToEntry(row.name, mark, adminUrl);
          if (!entry || !isLaneDatabaseOf(prefix, entry)) continue;
          const released = options.releasing?.includes(entry.runId) === true && mark.host === currentHost();
          const gone = released ? `run ${entry.runId} is torn down` : markOwnerGone(mark);
          if (!gone) continue;
          try {
            await records.removeUnrecorded(client, row.name, async () => {
              if (!dryRun) {
                await dropDatabase(client, row.name);
                await dropLaneRole(client, row.name);
              }
              found.push({ entry, reason: `no ledger lists it and ${gone}`, dropped: !dryRun });
            });
          } catch (error) {
            failures.push(`${row.name}: ${messageOf(error)}`);
          }
        }
        for (const role of await reapRoles(client, prefix, { dryRun }).catch((error: unknown) => {
          debug('could not look for roles left behind: %s', messageOf(error));
          return [];
        })) {
          debug('%s role %s: %s', role.dropped ? 'dropped' : 'would drop', role.role, role.reason);
        }
        for (const build of await dropAbandonedBuilds(client, prefix, { dryRun })) {
          found.push({ entry: buildToEntry(build.name, build.template, build.mark, adminUrl), reason: `abandoned build of template ${build.template}: its builder is gone`, dropped: !dryRun, kind: 'build' });
        }
        return found;
      });
    },
    { readOnly: dryRun },
  );
  if (failures.length > 0) throw dropFailed(`Could not drop ${failures.length} database(s) of dead owners`, failures, 'They keep their mark and are retried by the next run or `npx e2e-lanes gc`.');
  return reaped;
}

/**
 * Drops the lane role of a dropped lane database (when the toolkit made one). A role that cannot be
 * dropped now is left to the reaper (it keeps its mark).
 */
async function dropLaneRole(client: Client, databaseName: string): Promise<void> {
  await dropToolkitRole(client, laneRoleName(databaseName)).catch((error: unknown) => warn(`could not drop role ${laneRoleName(databaseName)} of database ${databaseName}: ${messageOf(error)}; the next run or \`npx e2e-lanes gc\` tries again.`));
}

/** An abandoned build database in the shape of a ledger entry (project: the template it was building). */
function buildToEntry(databaseName: string, template: string, mark: DatabaseMark, adminUrl: string): DatabaseEntry {
  const runId = mark.runId ?? 'unknown';
  return {
    runId,
    project: `template build ${template}`,
    owner: { runId, pid: mark.pid ?? 0, host: mark.host ?? 'unknown', createdAt: mark.created, heartbeatAt: mark.created },
    databaseName,
    databaseUrl: redactUrl(withDatabase(adminUrl, databaseName)),
    template,
  };
}

function dropFailed(what: string, failures: string[], retried: string): LanesError {
  return new LanesError('DATABASE_DROP_FAILED', `${what}: ${failures.join('; ')}`, {
    hint: `${retried} Check that the admin user owns them.`,
    details: { failures },
  });
}
