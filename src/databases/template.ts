import { randomBytes } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import pRetry, { AbortError } from 'p-retry';
import { setTimeout as sleep } from 'node:timers/promises';
import { escapeIdentifier, type Client } from 'pg';
import { REBUILT_TEMPLATES_ENV, TEMPLATE_WAIT_TIMEOUT_ENV } from '../env-vars.js';
import { LanesError, isLanesError, messageOf } from '../errors.js';
import { debugLogger, progress, warn } from '../log.js';
import { connectClient, DEFAULT_CONNECT_TIMEOUT_MS, describeTarget, serverVersionNum, withClient, withDatabase } from '../postgres/index.js';
import { currentHost, pidStartTime } from '../state/owner.js';
import { databasesStartingWith, dropDatabase, findDatabase, isInUse, terminateSessions, type DatabaseRow } from './admin.js';
import { displayPath } from './command.js';
import { formatSeconds, progressIntervalMs } from './deadline.js';
import { advisoryLockHolders, describeHolder, type LockHolder } from './lock-wait.js';
import { markOwnerGone, MARK_TOOLKIT, parseMark, writeMark, type DatabaseMark } from './marks.js';
import { readMigrations, runMigrations } from './migrations.js';
import { buildDatabaseName, isTemplateName, sha256Hex, templateDatabaseName } from './names.js';
import {
  DEFAULT_MIGRATION_TIMEOUT_MS,
  DEFAULT_SEED_TIMEOUT_MS,
  DEFAULT_TEMPLATE_WAIT_TIMEOUT_MS,
  type CommandStep,
} from './options.js';
import { runSeed } from './seed.js';
import { takeSnapshot } from './snapshot.js';
import { toolkitVersion } from './version.js';

const debug = debugLogger('template');

/** Everything a template's content depends on. */
export interface TemplateInputs {
  /** Migrations folder (absolute), command, or false. */
  migrations: string | CommandStep | false;
  /** Seed module path (absolute) or command. */
  seed?: string | CommandStep | undefined;
  /** More files or folders (absolute) whose content counts. */
  hashInputs?: readonly string[];
  /** `server_version_num` of the server: its major version counts. */
  serverVersion: number;
}

/** A template ready to be cloned. */
export interface TemplateInfo {
  /** e.g. `e2e_tpl_3f9a0c1b2d4e`. */
  name: string;
  /** 12 hex characters of SHA-256 over the template's inputs. */
  hash: string;
  /** True when this call built it; false when an existing one was reused. */
  built: boolean;
  /** Time spent in this call, waiting for another builder included. */
  durationMs: number;
}

export interface EnsureTemplateOptions extends Omit<TemplateInputs, 'serverVersion'> {
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

/** A template as found on the server. */
export interface TemplateListing {
  name: string;
  hash: string;
  /** When it was built (from the database comment), if known. */
  builtAt?: string;
  /** The e2e-lanes version that built it, if known. */
  toolkitVersion?: string;
}

/**
 * The hash of a template: SHA-256 over the sorted migration names and contents (or the command),
 * the seed module's content (or command), the extra hash inputs, the PostgreSQL major version and
 * the e2e-lanes version. Paths are left out, so every checkout of a project agrees.
 */
export async function computeTemplateHash(inputs: TemplateInputs): Promise<string> {
  // 2: templates keep a snapshot of their rows (see snapshot.ts).
  const parts: string[] = ['e2e-lanes template 2', `toolkit ${toolkitVersion()}`, `postgres ${Math.floor(inputs.serverVersion / 10000)}`];
  const { migrations, seed } = inputs;
  if (migrations === false) parts.push('migrations none');
  else if (typeof migrations === 'string') for (const m of await readMigrations(migrations)) parts.push(`migration ${m.name} ${m.checksum}`);
  else parts.push(`migrations command ${migrations.command}`);
  if (seed === undefined) parts.push('seed none');
  else if (typeof seed === 'string') parts.push(`seed module ${sha256Hex(await readInput(seed, 'seed'))}`);
  else parts.push(`seed command ${seed.command}`);
  for (const input of inputs.hashInputs ?? []) parts.push(...(await hashInput(input)));
  return sha256Hex(parts.join('\n')).slice(0, 12);
}

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
    const hash = await computeTemplateHash({ ...options, serverVersion });
    const name = templateDatabaseName(options.prefix, hash);
    const key = lockKey(name);
    await waitForTemplateLock(client, name, key, options.templateWaitTimeoutMs ?? DEFAULT_TEMPLATE_WAIT_TIMEOUT_MS);
    try {
      const built = await buildUnderLock(client, name, hash, serverVersion, options);
      const info: TemplateInfo = { name, hash, built, durationMs: performance.now() - started };
      if (built) progress(`template ${name} built in ${(info.durationMs / 1000).toFixed(1)} s`);
      else debug('template %s reused', name);
      return info;
    } finally {
      await client.query('SELECT pg_advisory_unlock($1::int8)', [key]).catch(() => undefined);
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Templates of `prefix` on the server at `adminUrl`, newest first. */
export async function listTemplates(adminUrl: string, prefix: string, options: { connectTimeoutMs?: number } = {}): Promise<TemplateListing[]> {
  const client = await connectClient(adminUrl, timeout(options));
  try {
    return (await templatesOn(client, prefix)).map(({ listing }) => listing);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Drops all but the `keep` newest templates of `prefix` (never those named in `exclude`, nor one
 * being built right now). Resolves the names dropped.
 */
export async function dropOldTemplates(
  adminUrl: string,
  prefix: string,
  keep = 3,
  options: { exclude?: readonly string[]; connectTimeoutMs?: number } = {},
): Promise<string[]> {
  if (!Number.isInteger(keep) || keep < 0) throw new LanesError('INVALID_OPTION', `Invalid keep ${JSON.stringify(keep)}.`, { hint: 'Pass a whole number ≥ 0.' });
  const client = await connectClient(adminUrl, timeout(options));
  try {
    const serverVersion = await serverVersionNum(client);
    const exclude = new Set(options.exclude ?? []);
    const dropped: string[] = [];
    for (const { listing } of (await templatesOn(client, prefix)).slice(keep)) {
      if (exclude.has(listing.name)) continue;
      const key = lockKey(listing.name);
      const locked = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1::int8) AS ok', [key]);
      if (!locked.rows[0]?.ok) continue; // being (re)built right now
      try {
        await dropDatabase(client, listing.name, serverVersion);
        dropped.push(listing.name);
      } finally {
        await client.query('SELECT pg_advisory_unlock($1::int8)', [key]);
      }
    }
    if (dropped.length > 0) debug('dropped old templates %o', dropped);
    return dropped;
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
  const tryLock = async (): Promise<boolean> => (await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1::int8) AS ok', [key])).rows[0]?.ok === true;
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

async function buildUnderLock(client: Client, name: string, hash: string, serverVersion: number, options: EnsureTemplateOptions): Promise<boolean> {
  await dropAbandonedBuilds(client, options.prefix, serverVersion).catch((error: unknown) => debug('could not look for abandoned builds: %s', messageOf(error)));
  let existing = await findDatabase(client, name);
  if (existing && options.rebuild && !rebuiltInThisRun(name)) {
    debug('rebuild requested: dropping %s', name);
    await dropDatabase(client, name, serverVersion);
    existing = undefined;
  }
  if (existing && isSealed(existing)) return false;
  if (existing) {
    warn(`template ${name} exists but is not sealed as a template; rebuilding it.`);
    await dropDatabase(client, name, serverVersion);
  }
  // Only the holder of the lock builds: a leftover build database is an orphan of a crashed builder.
  for (const orphan of await databasesStartingWith(client, `${name}_build_`)) {
    if (!/^[0-9a-f]{8}$/.test(orphan.name.slice(name.length + 7))) continue; // not a name this toolkit gives
    debug('dropping orphan build database %s', orphan.name);
    await dropDatabase(client, orphan.name, serverVersion);
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
    await withClient(buildUrl, (buildClient) => takeSnapshot(buildClient), { timeoutMs: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS });
    await seal(client, build, name, hash);
  } catch (error) {
    // A seed given up on may still hold connections to the build database: end them, then drop it.
    await terminateSessions(client, build).catch(() => undefined);
    await dropDatabase(client, build, serverVersion).catch((dropError: unknown) => warn(`could not drop half-built ${build}: ${messageOf(dropError)}`));
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
  await client.query(`ALTER DATABASE ${id} WITH ALLOW_CONNECTIONS false`);
  const builtAt = new Date().toISOString();
  await writeMark(client, build, { toolkit: MARK_TOOLKIT, kind: 'template', created: builtAt, hash, builtAt, toolkitVersion: toolkitVersion() });
  await client.query(`ALTER DATABASE ${id} WITH IS_TEMPLATE true`);
  await pRetry(
    async () => {
      // A seed that left a pool open must not block the rename.
      await terminateSessions(client, build);
      try {
        await client.query(`ALTER DATABASE ${id} RENAME TO ${escapeIdentifier(name)}`);
      } catch (error) {
        if (isInUse(error)) throw error;
        throw new AbortError(error as Error);
      }
    },
    { retries: 5, factor: 2, minTimeout: 100, maxTimeout: 1_000 },
  );
}

/** The mark of a build database: the process building it (the holder of the template's lock). */
function buildMark(runId: string | undefined): DatabaseMark {
  const mark: DatabaseMark = { toolkit: MARK_TOOLKIT, kind: 'build', host: currentHost(), pid: process.pid, created: new Date().toISOString() };
  if (runId !== undefined) mark.runId = runId;
  const start = pidStartTime(process.pid);
  if (start !== undefined) mark.pidStart = start;
  return mark;
}

/**
 * Drops the build databases (`<prefix>_tpl_<hash>_build_<random>`, with the toolkit's mark) whose
 * builder is gone: the template's advisory lock is free (a live builder on any host holds it while
 * it builds) and, for a builder of this host, its pid is gone too. Their sessions are ended first.
 * Resolves the names dropped (with `dryRun`, those it would drop).
 */
export async function dropAbandonedBuilds(
  client: Client,
  prefix: string,
  serverVersion: number,
  options: { dryRun?: boolean } = {},
): Promise<{ name: string; template: string; mark: DatabaseMark }[]> {
  const dropped: { name: string; template: string; mark: DatabaseMark }[] = [];
  for (const row of await databasesStartingWith(client, `${prefix}_tpl_`)) {
    const match = /^(.+)_build_[0-9a-f]{8}$/.exec(row.name);
    const template = match?.[1];
    const mark = parseMark(row.comment);
    if (!template || !isTemplateName(prefix, template) || mark?.kind !== 'build') continue;
    if (mark.host === currentHost() && mark.pid !== undefined && markOwnerGone(mark) === undefined) continue; // its builder lives here
    const key = lockKey(template);
    const locked = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1::int8) AS ok', [key]);
    if (!locked.rows[0]?.ok) continue; // its builder is at work
    try {
      if (!(await findDatabase(client, row.name))) continue;
      if (!options.dryRun) {
        await terminateSessions(client, row.name);
        await dropDatabase(client, row.name, serverVersion);
      }
      debug('dropped abandoned build database %s (builder pid %s on %s)', row.name, mark.pid, mark.host);
      dropped.push({ name: row.name, template, mark });
    } finally {
      await client.query('SELECT pg_advisory_unlock($1::int8)', [key]).catch(() => undefined);
    }
  }
  return dropped;
}

async function templatesOn(client: Client, prefix: string): Promise<{ row: DatabaseRow; listing: TemplateListing }[]> {
  const rows = (await databasesStartingWith(client, `${prefix}_tpl_`)).filter((row) => isTemplateName(prefix, row.name) && row.isTemplate);
  const found = rows.map((row) => {
    const meta = parseComment(row.comment);
    const listing: TemplateListing = { name: row.name, hash: row.name.slice(prefix.length + 5) };
    if (typeof meta.builtAt === 'string') listing.builtAt = meta.builtAt;
    if (typeof meta.toolkitVersion === 'string') listing.toolkitVersion = meta.toolkitVersion;
    return { row, listing };
  });
  // Newest first: by build time when known, else by oid (creation order).
  return found.sort((a, b) => (b.listing.builtAt ?? '').localeCompare(a.listing.builtAt ?? '') || b.row.oid - a.row.oid);
}

function isSealed(row: DatabaseRow): boolean {
  return row.isTemplate && !row.allowConnections;
}

/** A signed 64-bit advisory lock key derived from the template name, as text for `::int8`. */
function lockKey(name: string): string {
  return BigInt.asIntN(64, BigInt(`0x${sha256Hex(`e2e-lanes:template:${name}`).slice(0, 16)}`)).toString();
}

function rebuiltInThisRun(name: string): boolean {
  return (process.env[REBUILT_TEMPLATES_ENV] ?? '').split(',').includes(name);
}

function markRebuilt(name: string): void {
  const names = new Set((process.env[REBUILT_TEMPLATES_ENV] ?? '').split(',').filter(Boolean));
  names.add(name);
  process.env[REBUILT_TEMPLATES_ENV] = [...names].join(',');
}

function parseComment(comment: string | null): Record<string, unknown> {
  if (!comment) return {};
  try {
    const parsed: unknown = JSON.parse(comment);
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

async function readInput(path: string, option: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    throw new LanesError('INVALID_OPTION', `${displayPath(path)} (option \`${option}\`) could not be read: ${messageOf(error)}`, {
      hint: `Fix option \`${option}\`: paths are relative to the current folder.`,
      cause: error,
    });
  }
}

/** Lines for one hash input: a file's content, or every file of a folder with its relative path. */
async function hashInput(path: string): Promise<string[]> {
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    throw new LanesError('INVALID_OPTION', `Hash input ${displayPath(path)} does not exist.`, { hint: 'Fix option `hashInputs`.', cause: error });
  }
  if (!info.isDirectory()) return [`input ${sha256Hex(await readInput(path, 'hashInputs'))}`];
  const files = (await readdir(path, { recursive: true, withFileTypes: true }))
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name))
    .sort();
  const lines = [`input folder ${files.length}`];
  for (const file of files) lines.push(`input ${relative(path, file).split('\\').join('/')} ${sha256Hex(await readInput(file, 'hashInputs'))}`);
  return lines;
}

function timeout(options: { connectTimeoutMs?: number }): { timeoutMs?: number } {
  return options.connectTimeoutMs === undefined ? {} : { timeoutMs: options.connectTimeoutMs };
}
