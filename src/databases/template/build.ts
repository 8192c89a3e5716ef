/**
 * The template of an allocator: built once per hash (see hash.ts) under an advisory lock
 * that other builders wait on, under a temporary name, then sealed and renamed. What happens to
 * templates afterwards is in housekeeping.ts.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { escapeIdentifier, type Client } from 'pg';
import { REBUILT_TEMPLATES_ENV, TEMPLATE_WAIT_TIMEOUT_ENV } from '../../env-vars.js';
import { LanesError, isLanesError, messageOf } from '../../errors.js';
import { debugLogger, progress, warn } from '../../log.js';
import { connectClient, DEFAULT_CONNECT_TIMEOUT_MS, describeTarget, serverVersionNum, withClient, withDatabase } from '../../postgres/index.js';
import { currentHost, pidStartTime } from '../../state/owner.js';
import { databasesStartingWith, dropDatabase, findDatabase, retryEndingSessions, type DatabaseRow } from '../sql/catalog.js';
import { formatSeconds, progressIntervalMs } from './deadline.js';
import { advisoryUnlock, tryAdvisoryLock } from '../sql/advisory-lock.js';
import { advisoryLockHolders, describeHolder, type LockHolder } from '../sql/lock-wait.js';
import { MARK_TOOLKIT, writeMark, type DatabaseMark } from '../sql/marks.js';
import { runMigrations } from './migrations.js';
import { buildDatabaseName, templateDatabaseName } from '../sql/names.js';
import {
  DEFAULT_MIGRATION_TIMEOUT_MS,
  DEFAULT_SEED_TIMEOUT_MS,
  DEFAULT_TEMPLATE_WAIT_TIMEOUT_MS,
} from './template-options.js';
import { ensureTemplateOwner, finishBuildForOwner, prepareBuildForOwner, revokePublicSql } from '../sql/roles.js';
import { runSeed } from './seed.js';
import { takeSnapshot } from './snapshot.js';
import { computeTemplateHash, type TemplateInputs } from './hash.js';
import { dropAbandonedBuilds, templateLockKey } from './housekeeping.js';
import { toolkitVersion } from './version.js';

const debug = debugLogger('template');


/** A template ready to be cloned. */
import type { TemplateInfo } from '../types.js';

export type { TemplateInfo };

export interface EnsureTemplateOptions extends Omit<TemplateInputs, 'serverVersion' | 'adminRole'> {
  /** Admin URL; the advisory lock is taken in its database, so every caller must use the same one. */
  adminUrl: string;
  /** @default 'e2e' */
  prefix: string;
  /** Drop and rebuild even if it exists (once per run: see `E2E_LANES_REBUILT_TEMPLATES`). */
  rebuild?: boolean;
  connectTimeoutMs?: number;
  /**
   * The run building it: named in the builder's `application_name`, so that others waiting for
   * the template can say who they wait for.
   * @default none
   */
  runId?: string;
  /** Deadline of the seed. @default 600_000 */
  seedTimeoutMs?: number;
  /** Deadline of each migration file (or of the migrations command). @default 600_000 */
  migrationTimeoutMs?: number;
  /** How long to wait for another builder of the same template. @default 1_800_000 */
  templateWaitTimeoutMs?: number;
}

/** How often a waiting process tries the template's lock again. */
const LOCK_POLL_MS = 250;

/**
 * Makes sure the template for these inputs exists, building it if needed. Under a PostgreSQL
 * advisory lock: of several processes wanting the same template, exactly one builds it while the
 * others wait, then reuse it. It is built under a temporary name, sealed (`IS_TEMPLATE true
 * ALLOW_CONNECTIONS false`) and renamed only when complete, so a half-built template is never used;
 * on failure the temporary database is dropped (its sessions ended first). No step waits forever: the
 * seed, each migration and the wait for another builder have deadlines, and print a progress line
 * every 10 s while they run.
 * @throws {LanesError} `MIGRATION_FAILED`, `SEED_FAILED`, `TEMPLATE_BUILD_FAILED`, `POSTGRES_UNREACHABLE`,
 *   `SEED_TIMEOUT`, `MIGRATION_TIMEOUT`, `TEMPLATE_WAIT_TIMEOUT`.
 */
export async function ensureTemplate(options: EnsureTemplateOptions): Promise<TemplateInfo> {
  const started = performance.now();
  const client = await connectClient(options.adminUrl, { ...timeout(options), applicationName: builderApplicationName(options.runId) });
  try {
    const serverVersion = await serverVersionNum(client);
    const adminRole = options.laneRoles ? (await client.query<{ user: string }>('SELECT current_user AS user')).rows[0]?.user : undefined;
    const hash = await computeTemplateHash({ ...options, serverVersion, ...(adminRole !== undefined ? { adminRole } : {}) });
    const name = templateDatabaseName(options.prefix, hash);
    const key = templateLockKey(name);
    await waitForTemplateLock(client, name, key, options.templateWaitTimeoutMs ?? DEFAULT_TEMPLATE_WAIT_TIMEOUT_MS);
    try {
      const built = await buildUnderLock(client, name, hash, options);
      const info: TemplateInfo = { name, hash, built, durationMs: performance.now() - started };
      if (built) progress(`template ${name} built in ${(info.durationMs / 1000).toFixed(1)} s`);
      else debug('template %s reused', name);
      return info;
    } finally {
      await advisoryUnlock(client, key);
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Takes the template's advisory lock, waiting at most `waitMs` for the process that holds it (a
 * progress line names it every 10 s).
 * @throws {LanesError} `TEMPLATE_WAIT_TIMEOUT` naming the holder.
 */
async function waitForTemplateLock(client: Client, name: string, key: string, waitMs: number): Promise<void> {
  const tryLock = (): Promise<boolean> => tryAdvisoryLock(client, key);
  if (await tryLock()) return;
  const started = performance.now();
  const holders = async (): Promise<string> => describeBuilders(await advisoryLockHolders(client, key).catch(() => []));
  let holder = await holders();
  progress(`waiting for another process to finish building template ${name} (${holder})…`);
  const interval = progressIntervalMs();
  let nextLine = started + interval;
  for (;;) {
    const now = performance.now();
    if (now - started >= waitMs) break;
    await sleep(Math.min(LOCK_POLL_MS, Math.max(1, started + waitMs - now)));
    if (await tryLock()) return;
    if (performance.now() >= nextLine) {
      holder = await holders();
      progress(`waiting for template ${name} (${holder}): ${formatSeconds(performance.now() - started)}…`);
      nextLine += interval;
    }
  }
  holder = await holders();
  throw new LanesError('TEMPLATE_WAIT_TIMEOUT', `Waited ${formatSeconds(waitMs)} for another process to finish building template ${name}; it is still ${holder}.`, {
    hint:
      `If that build is merely slow, raise option \`templateWaitTimeoutMs\` (or ${TEMPLATE_WAIT_TIMEOUT_ENV}); if it hangs, stop that process ` +
      '(its run id, host and pid are in its application_name), or end its session with pg_terminate_backend(<pid>).',
    details: { step: 'template wait', template: name, holder, timeoutMs: waitMs },
  });
}

/** The holders of a template's lock in words (their application_name names run, host and pid). */
function describeBuilders(holders: readonly LockHolder[]): string {
  if (holders.length === 0) return 'its holder could not be seen: another role, or it has just let go';
  return `held by ${holders.map(describeHolder).join('; ')}`;
}

/** `e2e-lanes build pid 123 host ci-7 run r2026…`, cut to the 63 bytes PostgreSQL keeps. */
export function builderApplicationName(runId: string | undefined, pid = process.pid, host = currentHost()): string {
  const name = `e2e-lanes build pid ${pid} host ${host}${runId ? ` run ${runId}` : ''}`;
  return Buffer.from(name).subarray(0, 63).toString('utf8').replace(/\uFFFD+$/, '');
}

async function buildUnderLock(client: Client, name: string, hash: string, options: EnsureTemplateOptions): Promise<boolean> {
  await dropAbandonedBuilds(client, options.prefix).catch((error: unknown) => debug('could not look for abandoned builds: %s', messageOf(error)));
  let existing = await findDatabase(client, name);
  if (existing && options.rebuild && !rebuiltInThisRun(name)) {
    debug('rebuild requested: dropping %s', name);
    await dropDatabase(client, name);
    existing = undefined;
  }
  if (existing && isSealed(existing)) return false;
  if (existing) {
    warn(`template ${name} exists but is not sealed as a template; rebuilding it.`);
    await dropDatabase(client, name);
  }
  // Only the holder of the lock builds: a leftover build database is an orphan of a crashed builder.
  for (const orphan of await databasesStartingWith(client, `${name}_build_`)) {
    if (!/^[0-9a-f]{8}$/.test(orphan.name.slice(name.length + 7))) continue; // not a name this toolkit gives
    debug('dropping orphan build database %s', orphan.name);
    await dropDatabase(client, orphan.name);
  }

  const build = buildDatabaseName(name, randomBytes(4).toString('hex'));
  try {
    await client.query(`CREATE DATABASE ${escapeIdentifier(build)}`);
  } catch (error) {
    throw new LanesError('TEMPLATE_BUILD_FAILED', `Could not create ${build} on ${describeTarget(options.adminUrl)}: ${messageOf(error)}`, {
      hint: 'The admin user needs the CREATEDB privilege (or be a superuser).',
      cause: error,
    });
  }
  try {
    await writeMark(client, build, buildMark(options.runId));
    const buildUrl = withDatabase(options.adminUrl, build);
    const connect = { timeoutMs: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS };
    // Lane roles: what the migrations and the seed create is the template owner role's (see roles.ts).
    const owner = options.laneRoles ? await ensureTemplateOwner(client, name, hash) : undefined;
    if (owner) await withClient(buildUrl, (buildClient) => prepareBuildForOwner(client, buildClient, build, owner), connect);
    if (options.migrations !== false) {
      await runMigrations(options.migrations, buildUrl, {
        connectTimeoutMs: options.connectTimeoutMs,
        timeoutMs: options.migrationTimeoutMs ?? DEFAULT_MIGRATION_TIMEOUT_MS,
        label: `migrating template ${name}`,
      });
    }
    if (options.seed !== undefined) {
      await runSeed(options.seed, buildUrl, { timeoutMs: options.seedTimeoutMs ?? DEFAULT_SEED_TIMEOUT_MS, label: `seeding template ${name}` });
    }
    // The rows the `truncate` reset puts back, kept in the template (so in every lane) in a schema of the toolkit's own.
    await withClient(buildUrl, (buildClient) => takeSnapshot(buildClient), connect);
    if (owner) await finishBuildForOwner(client, build, owner);
    await seal(client, build, name, hash);
  } catch (error) {
    // A seed given up on may still hold connections to the build database: the drop ends them.
    await dropDatabase(client, build).catch((dropError: unknown) => warn(`could not drop half-built ${build}: ${messageOf(dropError)}`));
    if (isLanesError(error)) throw error;
    throw new LanesError('TEMPLATE_BUILD_FAILED', `Building template ${name} failed: ${messageOf(error)}`, {
      hint: 'Run with DEBUG=e2e-lanes:* for details.',
      cause: error,
    });
  }
  if (options.rebuild) markRebuilt(name);
  return true;
}

/** Closes the build database to connections, marks it a template, and renames it to its final name. */
async function seal(client: Client, build: string, name: string, hash: string): Promise<void> {
  const id = escapeIdentifier(build);
  await client.query(`ALTER DATABASE ${id} WITH ALLOW_CONNECTIONS false;\n${revokePublicSql(build)}`);
  const builtAt = new Date().toISOString();
  await writeMark(client, build, { toolkit: MARK_TOOLKIT, kind: 'template', created: builtAt, hash, builtAt, toolkitVersion: toolkitVersion() });
  await client.query(`ALTER DATABASE ${id} WITH IS_TEMPLATE true`);
  // A seed that left a pool open must not block the rename.
  await retryEndingSessions(client, `ALTER DATABASE ${id} RENAME TO ${escapeIdentifier(name)}`, build, { endFirst: true });
}

/** The mark of a build database: the process building it (the holder of the template's lock). */
function buildMark(runId: string | undefined): DatabaseMark {
  const mark: DatabaseMark = { toolkit: MARK_TOOLKIT, kind: 'build', host: currentHost(), pid: process.pid, created: new Date().toISOString() };
  if (runId !== undefined) mark.runId = runId;
  const start = pidStartTime(process.pid);
  if (start !== undefined) mark.pidStart = start;
  return mark;
}

function isSealed(row: DatabaseRow): boolean {
  return row.isTemplate && !row.allowConnections;
}

function rebuiltInThisRun(name: string): boolean {
  return (process.env[REBUILT_TEMPLATES_ENV] ?? '').split(',').includes(name);
}

function markRebuilt(name: string): void {
  const names = new Set((process.env[REBUILT_TEMPLATES_ENV] ?? '').split(',').filter(Boolean));
  names.add(name);
  process.env[REBUILT_TEMPLATES_ENV] = [...names].join(',');
}

function timeout(options: { connectTimeoutMs?: number }): { timeoutMs?: number } {
  return options.connectTimeoutMs === undefined ? {} : { timeoutMs: options.connectTimeoutMs };
}
