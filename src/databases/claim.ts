/**
 * The claim protocol: how a lane gets its database, the same one every time the same lane asks,
 * from any process. The entry is recorded first, under the state file's lock, so that a crash
 * during the clone still leaves an entry for the reaper; the owner is claimed in the registry
 * (when used); the clone runs outside the state file's lock, so lanes clone side by side; and
 * the allocation stands only if no release removed the entry meanwhile. Private to the databases
 * module.
 * @internal
 */
import type { Client } from 'pg';
import { LanesError, messageOf } from '../errors.js';
import { debugLogger } from '../log.js';
import { describeTarget, withDatabase } from '../postgres/index.js';
import { describeLane, type LaneKey } from '../state/index.js';
import { cloneDatabase, findDatabase, isAlreadyThere, openDatabase } from './sql/catalog.js';
import type { CloneStrategy, DatabaseAllocation, DatabaseEntry, TemplateInfo } from './types.js';
import type { LaneRecords } from './records/lane-records.js';
import { laneMark, markLanes, markSql } from './sql/marks.js';
import { laneDatabaseName, templateHashOf } from './sql/names.js';
import { takeReadyCopy } from './fresh/ready-pool.js';
import { ensureLaneRole, laneRoleName, laneRolePassword, laneRoleSql, laneRoleUrl, runRoleSql } from './sql/roles.js';
import type { ServerAccess } from './sql/server-access.js';

const debug = debugLogger('databases');

/** How often an allocation starts over when its entry was released while it cloned. */
const ALLOCATE_ATTEMPTS = 3;

/** What the claim protocol works with. */
export interface ClaimContext {
  session: ServerAccess;
  records: LaneRecords;
  prefix: string;
  cloneStrategy: CloneStrategy;
  /** Called when a lane took a ready copy, so the pool is topped up again. */
  tookReadyCopy(): void;
  /** Lane roles (option `laneRoles`): the server's URL without credentials and the run's key; none: lanes use the admin URL. */
  roles?: { baseUrl: string; key: string } | undefined;
}

/**
 * The database of lane `key`, cloned from `template` (or a ready copy of it renamed) unless it
 * exists already; its entry's heartbeat and its registry lease are then kept fresh.
 * @throws {LanesError} `DATABASE_CREATE_FAILED`, `RUN_ID_CONFLICT`, `REGISTRY_FAILED`.
 */
export async function claimLane(context: ClaimContext, key: LaneKey, template: TemplateInfo): Promise<DatabaseAllocation> {
  const { session, records } = context;
  const { ledger } = records;
  const { adminUrl } = await session.server();
  const databaseName = laneDatabaseName(context.prefix, key);
  let entry: DatabaseEntry;
  for (let attempt = 1; ; attempt++) {
    // The recorded URL (password redacted) names the role the lane connects as.
    const recorded = await ledger.record(key, databaseName, template.name, context.roles ? laneRoleUrl(context.roles.baseUrl, context.roles.key, databaseName) : adminUrl);
    entry = recorded.entry;
    try {
      await session.withAdmin((client, version) =>
        records.claim(client, { key, databaseName, template: template.name }, () => create(context, client, version, recorded.entry, template.name, adminUrl)),
      );
    } catch (error) {
      if (recorded.added) {
        const exists = (): Promise<boolean> => session.withAdmin(async (client) => (await findDatabase(client, databaseName)) !== undefined).catch(() => false);
        await ledger.unrecord(entry, exists).catch((cleanup: unknown) => debug('could not forget %s after a failed clone: %s', databaseName, messageOf(cleanup)));
      }
      throw error;
    }
    // The database exists now. Unless a release removed the entry meanwhile (and maybe dropped the
    // database before it was created), the allocation stands; else it starts over.
    if (await ledger.holds(key, databaseName)) break;
    if (attempt >= ALLOCATE_ATTEMPTS) {
      throw new LanesError('DATABASE_CREATE_FAILED', `Database ${databaseName} of ${describeLane(key)} was released ${attempt} times while it was being created.`, {
        hint: 'Something releases this lane (e.g. `npx e2e-lanes down` or a teardown) while it boots: let the run finish first.',
        details: { databaseName, template: template.name },
      });
    }
    debug('%s of %s was released while it was created; allocating again', databaseName, describeLane(key));
  }
  ledger.keepAlive(key.runId);
  records.hold(databaseName);
  const databaseUrl = context.roles ? laneRoleUrl(context.roles.baseUrl, context.roles.key, entry.databaseName) : withDatabase(adminUrl, entry.databaseName);
  const allocation: DatabaseAllocation = { project: entry.project, runId: entry.runId, databaseName: entry.databaseName, databaseUrl, template };
  if (entry.worker !== undefined) allocation.worker = entry.worker;
  return allocation;
}

/**
 * Clones the lane's database from the template (or renames a ready copy); a database of that
 * name that exists already (an earlier allocation, or one running at the same moment, which has
 * committed by then) is the one. Its mark names the lane's owner (renewed on every allocation, so
 * a takeover shows), for reapers that find no ledger listing it.
 * @throws {LanesError} `DATABASE_CREATE_FAILED`
 */
async function create(context: ClaimContext, client: Client, version: number, entry: DatabaseEntry, template: string, adminUrl: string): Promise<void> {
  const { databaseName } = entry;
  const roles = context.roles;
  // With a ready copy, its lane role, its grant and its mark come in the rename's own transaction:
  // one round trip and one commit for all of it.
  const role = roles ? laneRoleSql(databaseName, laneRolePassword(roles.key, laneRoleName(databaseName)), template, laneMark(entry), { grantDatabase: true }) : undefined;
  const then = [...(role ? [role] : []), markSql(databaseName, laneMark(entry))].join(';\n');
  try {
    const hash = templateHashOf(context.prefix, template);
    const copy = hash === undefined ? undefined : await runRoleSql(laneRoleName(databaseName), () => takeReadyCopy(client, context.prefix, hash, databaseName, then));
    if (copy !== undefined) {
      debug('took ready copy %s as %s for %s', copy, databaseName, describeLane(entry));
      context.tookReadyCopy();
      return;
    }
    // (False: a release racing the claim dropped it; left to the claim's own check, which starts over.)
    if (await cloneDatabase(client, databaseName, template, context.cloneStrategy, version)) debug('cloned %s from %s for %s', databaseName, template, describeLane(entry));
  } catch (error) {
    if (error instanceof LanesError) throw error; // a role of that name the toolkit did not create
    if (!isAlreadyThere(error)) throw createFailed(databaseName, template, adminUrl, error);
    debug('%s of %s exists already (%s)', databaseName, describeLane(entry), (error as { code?: string }).code);
    // Its creator may have died before opening it. (Gone meanwhile: the claim's check starts over.)
    await openDatabase(client, databaseName);
  }
  if (roles) await openToLaneRole(client, entry, template, roles.key);
  await markLanes(client, [entry]);
}

/**
 * Creates the lane's role and grants it its database, in one round trip. A release racing the
 * claim may have dropped the database meanwhile: left to the claim's own check (which starts over).
 */
async function openToLaneRole(client: Client, entry: DatabaseEntry, template: string, key: string): Promise<void> {
  const { databaseName } = entry;
  try {
    await ensureLaneRole(client, databaseName, laneRolePassword(key, laneRoleName(databaseName)), template, laneMark(entry), { grantDatabase: true });
  } catch (error) {
    if ((error as { code?: unknown }).code !== '3D000') throw error; // 3D000: the database was dropped meanwhile
  }
}

function createFailed(databaseName: string, template: string, adminUrl: string, error: unknown): LanesError {
  const code = (error as { code?: unknown } | null)?.code;
  const hint =
    code === '55006'
      ? `Something keeps connecting to template ${template}: servers must use the lane databases, never the template.`
      : code === '42501'
        ? 'The admin user needs the CREATEDB privilege (or be a superuser).'
        : `Check the server at ${describeTarget(adminUrl)} (disk space, max databases), then run again.`;
  return new LanesError('DATABASE_CREATE_FAILED', `Could not create database ${databaseName} from template ${template} on ${describeTarget(adminUrl)}: ${messageOf(error)}`, {
    hint,
    cause: error,
    details: { databaseName, template, code },
  });
}
