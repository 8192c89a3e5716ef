/**
 * A role per lane (option `laneRoles`): every lane database is reached with a login role of that
 * lane alone, which can do everything an app does in its own database and nothing anywhere else.
 *
 * - Ownership is decided before the template is built: a NOLOGIN **template owner** role
 *   (`<template>_owner`) owns every object the migrations and the seed create (the admin's sessions
 *   in the build database run as that role), and the public schema. A clone carries its objects
 *   *with their owners*, so a lane role that is a member of the owner role (INHERIT) has owner
 *   rights on everything of its clone at once: no per-table work when a ready copy is renamed in.
 * - `CONNECT` and `TEMPORARY` are revoked from PUBLIC on templates, ready copies and lane databases
 *   and granted on a lane database to its lane role only; the owner role holds `CONNECT` on no
 *   database (it is checked against inherited roles too).
 * - A lane role is named like its lane database (unique across machines like it), carries the
 *   toolkit's mark as `COMMENT ON ROLE`, and is dropped with its database; roles without the mark
 *   are never altered or dropped.
 * - Its password is derived, never stored: HMAC of the lane's role name under a per-run key, itself
 *   an HMAC of the admin's password (or a random key of this process when the admin URL has none).
 *   The runner and the workers of a run (which name their lane's URL before their spec files load)
 *   hold the run's key; servers get only their own lane's URL.
 * Private to the databases module.
 * @internal
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { escapeIdentifier, escapeLiteral, type Client, type DatabaseError } from 'pg';
import { LanesError, messageOf } from '../../errors.js';
import { debugLogger } from '../../log.js';
import { parsePostgresUrl, withDatabase } from '../../postgres/url.js';
import { passwordOf } from '../../redact.js';
import { currentHost } from '../../state/owner.js';
import { isConcurrentlyUpdated } from './catalog.js';
import { MARK_TOOLKIT, markOwnerGone, parseMark, type DatabaseMark } from './marks.js';
import { isLaneDatabaseOf, laneDatabaseName, type DatabaseNameKey } from './names.js';

const debug = debugLogger('databases:roles');

/**
 * PBKDF2 rounds of the SCRAM verifier the toolkit computes for a lane role. The password is 256
 * random bits (nothing to guess), and the verifier is readable by superusers only: more rounds
 * would only slow every connection of the app (each one runs them again on both sides).
 */
const SCRAM_ITERATIONS = 64;

/** What a database needs granted so that only its lane role reaches it. */
const LANE_PRIVILEGES = 'CONNECT, TEMPORARY, CREATE';

/** The lane role of a lane database: the same name (roles and databases are separate namespaces). */
export function laneRoleName(databaseName: string): string {
  return databaseName;
}

/** The NOLOGIN role owning every object of a template (and so of its clones). */
export function templateOwnerName(template: string): string {
  return `${template}_owner`;
}

/**
 * The secret of admin URLs without a password: `PGPASSWORD` as this process first saw it (what the
 * admin connections then use), else a random key of this process (lanes taken over by a later run
 * then get new passwords: with `trust` authentication they are not checked anyway).
 */
let processSecret: string | undefined;

/**
 * The key the passwords of a run's lane roles are derived from: the same for every process of the
 * run that knows the admin's password (so a later run taking warm lanes over derives the same).
 */
export function laneRoleKey(adminUrl: string, runId: string): string {
  const secret = passwordOf(adminUrl) ?? (processSecret ??= process.env.PGPASSWORD || randomBytes(32).toString('base64url'));
  return createHmac('sha256', secret).update(`e2e-lanes lane roles 1 ${runId}`).digest('base64url');
}

/** The password of lane role `role` under the run's key: 43 URL-safe characters. */
export function laneRolePassword(roleKey: string, role: string): string {
  return createHmac('sha256', roleKey).update(role).digest('base64url');
}

/** The URL of the server of `adminUrl` without its user and password, for naming lane URLs. */
export function serverBaseUrl(adminUrl: string): string {
  const parsed = parsePostgresUrl(adminUrl);
  parsed.username = '';
  parsed.password = '';
  return parsed.toString();
}

/** The URL a lane's processes use: its role, its password, its database, on the server of `baseUrl`. */
export function laneRoleUrl(baseUrl: string, roleKey: string, databaseName: string): string {
  const role = laneRoleName(databaseName);
  const parsed = new URL(withDatabase(baseUrl, databaseName));
  parsed.username = encodeURIComponent(role);
  parsed.password = laneRolePassword(roleKey, role);
  return parsed.toString();
}

/** How the processes of a run name lane URLs: the server's URL and the run's key (lane roles), or the admin URL (`roleKey` absent). */
export interface LaneAccess {
  baseUrl: string;
  roleKey?: string;
}

/**
 * The URL of a lane's database, known before the lane boots (its name depends on the key alone), so
 * a worker can point its clients at it before its spec files load: its lane role's, or with no
 * `roleKey`, the admin's.
 */
export function laneDatabaseUrl(access: LaneAccess, prefix: string, key: DatabaseNameKey): string {
  const databaseName = laneDatabaseName(prefix, key);
  return access.roleKey === undefined ? withDatabase(access.baseUrl, databaseName) : laneRoleUrl(access.baseUrl, access.roleKey, databaseName);
}

/** The mark a role of the toolkit carries. `kind`: `lane` for lane roles, `template` for template owners. */
export function roleMark(kind: 'lane' | 'template', fields: Omit<DatabaseMark, 'toolkit' | 'kind' | 'created'>): DatabaseMark {
  return { toolkit: MARK_TOOLKIT, kind, created: new Date().toISOString(), ...fields };
}

/** A SCRAM-SHA-256 verifier of `password` (PostgreSQL stores it as it is and never sees the password). */
export function scramVerifier(password: string, iterations = SCRAM_ITERATIONS): string {
  const salt = randomBytes(16);
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/** The mark of a role, or undefined (no role, or not one the toolkit created). */
async function roleMarkOf(client: Client, role: string): Promise<{ exists: boolean; mark: DatabaseMark | undefined }> {
  const { rows } = await client.query<{ comment: string | null }>(
    "SELECT shobj_description(oid, 'pg_authid') AS comment FROM pg_roles WHERE rolname = $1",
    [role],
  );
  return { exists: rows.length > 0, mark: parseMark(rows[0]?.comment) };
}

function notOurs(role: string): LanesError {
  return new LanesError('DATABASE_CREATE_FAILED', `A role named ${role} exists on the server but e2e-lanes did not create it (it has no e2e-lanes mark), so it is left alone.`, {
    hint: 'Drop or rename that role, or use another `database.prefix`.',
    details: { role },
  });
}

/** How often a role's statements are tried when other processes change the same role or database at once. */
const RACE_ATTEMPTS = 5;

/** SQLSTATE of the refusal to touch a role without the toolkit's mark (a class of the toolkit's own). */
const NOT_OURS_SQLSTATE = 'EL001';

/**
 * SQL that creates the role `role` (NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS, the defaults),
 * or takes an existing role of the toolkit, with `attributes` (LOGIN and its password, or NOLOGIN),
 * marked with `mark`; then the statements of `then`. Meant for one transaction: the mark is checked
 * on the server, so a role without it is refused (SQLSTATE {@link NOT_OURS_SQLSTATE}) before
 * anything is changed. Run it with {@link runRoleSql}.
 */
function roleSql(role: string, attributes: string, mark: DatabaseMark, then: string[] = []): string {
  const id = escapeIdentifier(role);
  const name = escapeLiteral(role);
  const create = `DO $e2e_lanes$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ${name}) THEN
    CREATE ROLE ${id};
    COMMENT ON ROLE ${id} IS ${escapeLiteral(JSON.stringify(mark))};
  ELSIF coalesce(shobj_description((SELECT oid FROM pg_roles WHERE rolname = ${name}), 'pg_authid'), '') NOT LIKE ${escapeLiteral(`{"toolkit":"${MARK_TOOLKIT}",%`)} THEN
    RAISE EXCEPTION 'role % has no e2e-lanes mark', ${name} USING ERRCODE = '${NOT_OURS_SQLSTATE}';
  END IF;
END $e2e_lanes$`;
  // CREATE ROLE's defaults are NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION INHERIT;
  // naming them again would need superuser for some (a CREATEROLE admin may not even say NOBYPASSRLS).
  return [create, `ALTER ROLE ${id} WITH ${attributes}`, ...then].join(';\n');
}

/**
 * Runs `run` (SQL of {@link roleSql} for `role`, maybe with more statements in its transaction)
 * until it is not raced: another process claiming the same lane at the same moment created the role
 * (42710, 23505) or granted the same privilege ("tuple concurrently updated"); again, after a moment.
 * @throws {LanesError} `DATABASE_CREATE_FAILED` for a role of that name the toolkit did not create.
 */
export async function runRoleSql<T>(role: string, run: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (error) {
      const code = (error as Partial<DatabaseError>).code;
      if (code === NOT_OURS_SQLSTATE) throw notOurs(role);
      const raced = code === '42710' || code === '23505' || isConcurrentlyUpdated(error);
      if (!raced || attempt >= RACE_ATTEMPTS) throw error;
      await sleep(Math.random() * 10 * attempt);
    }
  }
}

/** {@link roleSql} run in one round trip, one transaction, again when raced. */
async function ensureRole(client: Client, role: string, attributes: string, mark: DatabaseMark, then: string[] = []): Promise<void> {
  await runRoleSql(role, () => client.query(roleSql(role, attributes, mark, then)));
}

/**
 * The template owner role of `template`, NOLOGIN, created when missing. A non-superuser admin
 * (CREATEROLE) is made a member so that its sessions in the build database may act as it.
 */
export async function ensureTemplateOwner(client: Client, template: string, hash: string): Promise<string> {
  const owner = templateOwnerName(template);
  await ensureRole(client, owner, 'NOLOGIN PASSWORD NULL', roleMark('template', { hash, host: currentHost() }));
  const superuser = (await client.query<{ on: string }>("SELECT current_setting('is_superuser') AS on")).rows[0]?.on === 'on';
  if (!superuser) await client.query(`GRANT ${escapeIdentifier(owner)} TO CURRENT_USER`).catch((error: unknown) => debug('could not join %s: %s', owner, messageOf(error)));
  return owner;
}

/**
 * Makes the build database `build` of a template act as its owner role: PUBLIC loses its
 * privileges, the owner role may create schemas, owns the public schema (over `buildClient`, a
 * session of the admin in it), and every later session of the admin in it runs as the owner
 * role (`ALTER ROLE … IN DATABASE … SET role`), so whatever migrations and seed create is the owner's.
 */
export async function prepareBuildForOwner(client: Client, buildClient: Client, build: string, owner: string): Promise<void> {
  const db = escapeIdentifier(build);
  const role = escapeIdentifier(owner);
  await client.query(`REVOKE ALL ON DATABASE ${db} FROM PUBLIC;\nGRANT CREATE ON DATABASE ${db} TO ${role}`);
  await buildClient.query(`ALTER SCHEMA public OWNER TO ${role}`);
  await client.query(`ALTER ROLE CURRENT_USER IN DATABASE ${db} SET role = ${escapeLiteral(owner)}`);
}

/** Undoes the build-time settings of {@link prepareBuildForOwner}: the owner role keeps no privilege on the database. */
export async function finishBuildForOwner(client: Client, build: string, owner: string): Promise<void> {
  const db = escapeIdentifier(build);
  await client.query(`ALTER ROLE CURRENT_USER IN DATABASE ${db} RESET role;\nREVOKE ALL ON DATABASE ${db} FROM ${escapeIdentifier(owner)}`);
}

/**
 * SQL that creates the lane role of `databaseName` or brings it back to what it must be (LOGIN with
 * its password, a member of the template's owner role), marked with its lane's `mark`; with
 * `grantDatabase`, also gives it its database (see {@link laneAccessSql}). For one transaction: a
 * lane's boot runs it in the transaction that renames a ready copy in. Run it with {@link runRoleSql}.
 */
export function laneRoleSql(databaseName: string, password: string, template: string, mark: DatabaseMark, options: { grantDatabase?: boolean } = {}): string {
  return roleSql(laneRoleName(databaseName), `LOGIN PASSWORD ${escapeLiteral(scramVerifier(password))}`, { ...mark, kind: 'lane' }, [
    `GRANT ${escapeIdentifier(templateOwnerName(template))} TO ${escapeIdentifier(laneRoleName(databaseName))}`,
    ...(options.grantDatabase ? [laneAccessSql(databaseName)] : []),
  ]);
}

/**
 * The lane role of `databaseName` (see {@link laneRoleSql}), in its own round trip and transaction,
 * whose commit does not wait for its WAL flush (a server crash right after it may lose the role;
 * every claim of the lane creates it again).
 * @throws {LanesError} `DATABASE_CREATE_FAILED` for a role of that name the toolkit did not create.
 */
export async function ensureLaneRole(client: Client, databaseName: string, password: string, template: string, mark: DatabaseMark, options: { grantDatabase?: boolean } = {}): Promise<void> {
  const sql = `SET LOCAL synchronous_commit = off;\n${laneRoleSql(databaseName, password, template, mark, options)}`;
  await runRoleSql(laneRoleName(databaseName), () => client.query(sql));
}

/** SQL that closes database `name` to PUBLIC. */
export function revokePublicSql(name: string): string {
  return `REVOKE ALL ON DATABASE ${escapeIdentifier(name)} FROM PUBLIC`;
}

/** SQL that closes database `name` to PUBLIC and opens it to its lane role only. */
export function laneAccessSql(name: string): string {
  return `${revokePublicSql(name)};\nGRANT ${LANE_PRIVILEGES} ON DATABASE ${escapeIdentifier(name)} TO ${escapeIdentifier(laneRoleName(name))}`;
}

/**
 * Drops the role of the toolkit called `role` if it exists and carries the mark (a role without it
 * is never touched). Resolves whether it was dropped. Its sessions must be gone (its database
 * dropped first).
 */
export async function dropToolkitRole(client: Client, role: string): Promise<boolean> {
  const found = await roleMarkOf(client, role);
  if (!found.exists) return false;
  if (!found.mark) {
    debug('not dropping role %s: it has no e2e-lanes mark', role);
    return false;
  }
  await client.query(`DROP ROLE IF EXISTS ${escapeIdentifier(role)}`);
  debug('dropped role %s', role);
  return true;
}

/** A role of the toolkit found by {@link reapRoles}. */
export interface ReapedRole {
  role: string;
  reason: string;
  dropped: boolean;
}

/**
 * Drops the marked roles of `prefix` left behind: lane roles whose database is gone and whose
 * marked owner is gone too (judged as database marks are), and template owner roles whose template
 * and build databases are gone and that own nothing any more (a drop refused because lanes still
 * hold their objects is left for later). With `dryRun`, only says what it would drop.
 */
export async function reapRoles(client: Client, prefix: string, options: { dryRun?: boolean } = {}): Promise<ReapedRole[]> {
  const { rows } = await client.query<{ role: string; comment: string | null }>(
    "SELECT rolname AS role, shobj_description(oid, 'pg_authid') AS comment FROM pg_roles WHERE left(rolname, $2) = $1 ORDER BY oid",
    [`${prefix}_`, prefix.length + 1],
  );
  const databases = (await client.query<{ name: string }>('SELECT datname AS name FROM pg_database WHERE left(datname, $2) = $1', [`${prefix}_`, prefix.length + 1])).rows.map(
    (row) => row.name,
  );
  const names = new Set(databases);
  const reaped: ReapedRole[] = [];
  for (const row of rows) {
    const mark = parseMark(row.comment);
    if (!mark) continue;
    let reason: string | undefined;
    if (mark.kind === 'lane') {
      if (names.has(row.role) || typeof mark.runId !== 'string' || typeof mark.project !== 'string') continue;
      const entry = { runId: mark.runId, project: mark.project, databaseName: row.role, ...(typeof mark.worker === 'number' ? { worker: mark.worker } : {}) };
      if (!isLaneDatabaseOf(prefix, entry)) continue;
      const gone = markOwnerGone(mark);
      if (!gone) continue;
      reason = `its lane database is gone and ${gone}`;
    } else if (mark.kind === 'template') {
      // `<template>_owner`: its template `<template>` and builds `<template>_build_…` are gone.
      const template = row.role.slice(0, -'_owner'.length);
      if (!row.role.endsWith('_owner') || names.has(template) || databases.some((name) => name.startsWith(`${template}_build_`))) continue;
      reason = 'its template is gone';
    } else continue;
    if (options.dryRun) {
      reaped.push({ role: row.role, reason, dropped: false });
      continue;
    }
    try {
      await client.query(`DROP ROLE IF EXISTS ${escapeIdentifier(row.role)}`);
      reaped.push({ role: row.role, reason, dropped: true });
    } catch (error) {
      // 2BP01: it still owns objects (a template owner whose clones live on): later.
      debug('could not drop role %s yet: %s', row.role, messageOf(error));
    }
  }
  return reaped;
}

/**
 * Fails when the admin role can create no roles (a managed server without CREATEROLE), naming the
 * opt-out.
 * @throws {LanesError} `LANE_ROLES_UNAVAILABLE`
 */
export async function checkCanCreateRoles(client: Client, where: string): Promise<void> {
  const { rows } = await client.query<{ user: string; superuser: boolean; createrole: boolean }>(
    'SELECT rolname AS user, rolsuper AS superuser, rolcreaterole AS createrole FROM pg_roles WHERE rolname = current_user',
  );
  const row = rows[0];
  if (row?.superuser || row?.createrole) return;
  throw new LanesError('LANE_ROLES_UNAVAILABLE', `The admin role ${row?.user ?? '(unknown)'} of ${where} may not create roles (neither SUPERUSER nor CREATEROLE), so lanes cannot each get a role of their own.`, {
    hint: 'Give the admin role CREATEROLE (ALTER ROLE … CREATEROLE), or set `database.laneRoles: false` to let every lane connect as the admin role (its URL can then reach every database of the server).',
    details: { user: row?.user },
  });
}
