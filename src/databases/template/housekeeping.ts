/**
 * Templates on the server, after their build: listing them, dropping all but the newest, and
 * dropping the build databases whose builder is gone. A template being built is never touched: its
 * builder holds the template's advisory lock. Private to the databases module.
 * @internal
 */
import type { Client } from 'pg';
import { LanesError } from '../../errors.js';
import { debugLogger } from '../../log.js';
import { connectClient } from '../../postgres/index.js';
import { currentHost } from '../../state/owner.js';
import { withAdvisoryLock } from '../sql/advisory-lock.js';
import { databasesStartingWith, dropDatabase, findDatabase, type DatabaseRow } from '../sql/catalog.js';
import { markOwnerGone, parseMark, type DatabaseMark } from '../sql/marks.js';
import { advisoryKey, isTemplateName } from '../sql/names.js';

const debug = debugLogger('template');

/** A template as found on the server. */
export interface TemplateListing {
  name: string;
  hash: string;
  /** When it was built (from the database comment), if known. */
  builtAt?: string;
  /** The e2e-lanes version that built it, if known. */
  toolkitVersion?: string;
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
    const exclude = new Set(options.exclude ?? []);
    const dropped: string[] = [];
    for (const { listing } of (await templatesOn(client, prefix)).slice(keep)) {
      if (exclude.has(listing.name)) continue;
      // A template whose lock is held is being (re)built right now.
      await withAdvisoryLock(client, templateLockKey(listing.name), { wait: false }, async () => {
        await dropDatabase(client, listing.name);
        dropped.push(listing.name);
      });
    }
    if (dropped.length > 0) debug('dropped old templates %o', dropped);
    return dropped;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Drops the build databases (`<prefix>_tpl_<hash>_build_<random>`, with the toolkit's mark) whose
 * builder is gone: the template's advisory lock is free (a live builder on any host holds it while
 * it builds) and, for a builder of this host, its pid is gone too (the drop ends their sessions).
 * Resolves the names dropped (with `dryRun`, those it would drop).
 */
export async function dropAbandonedBuilds(
  client: Client,
  prefix: string,
  options: { dryRun?: boolean } = {},
): Promise<{ name: string; template: string; mark: DatabaseMark }[]> {
  const dropped: { name: string; template: string; mark: DatabaseMark }[] = [];
  for (const row of await databasesStartingWith(client, `${prefix}_tpl_`)) {
    const match = /^(.+)_build_[0-9a-f]{8}$/.exec(row.name);
    const template = match?.[1];
    const mark = parseMark(row.comment);
    if (!template || !isTemplateName(prefix, template) || mark?.kind !== 'build') continue;
    if (mark.host === currentHost() && mark.pid !== undefined && markOwnerGone(mark) === undefined) continue; // its builder lives here
    // A template whose lock is held has its builder at work.
    await withAdvisoryLock(client, templateLockKey(template), { wait: false }, async () => {
      if (!(await findDatabase(client, row.name))) return;
      if (!options.dryRun) await dropDatabase(client, row.name);
      debug('dropped abandoned build database %s (builder pid %s on %s)', row.name, mark.pid, mark.host);
      dropped.push({ name: row.name, template, mark });
    });
  }
  return dropped;
}

/** The advisory lock key of a template, held by its builder while it builds (as text for `::int8`). */
export function templateLockKey(name: string): string {
  return advisoryKey(`template:${name}`);
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

function parseComment(comment: string | null): Record<string, unknown> {
  if (!comment) return {};
  try {
    const parsed: unknown = JSON.parse(comment);
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function timeout(options: { connectTimeoutMs?: number }): { timeoutMs?: number } {
  return options.connectTimeoutMs === undefined ? {} : { timeoutMs: options.connectTimeoutMs };
}
