/**
 * The owner mark every database the toolkit creates carries on the server itself: a JSON
 * `COMMENT ON DATABASE` naming the toolkit, the kind of database, and the process that owns it.
 * With it, a database no ledger lists any more (a lost or truncated state file) can still be judged
 * and reaped; a database without it is never touched, whatever its name.
 * @internal
 */
import { escapeIdentifier, escapeLiteral, type Client } from 'pg';
import { messageOf } from '../../errors.js';
import { debugLogger } from '../../log.js';
import { withDatabase } from '../../postgres/url.js';
import { redactUrl } from '../../redact.js';
import { currentHost, processGone } from '../../state/owner.js';
import type { DatabaseEntry } from '../types.js';

const debug = debugLogger('databases');

export const MARK_TOOLKIT = 'e2e-lanes';

/** What a database is for. */
/** `pool`: a ready copy of a template, which belongs to its template and has no owner process. */
export type MarkKind = 'lane' | 'template' | 'build' | 'registry' | 'pool';

/** The JSON kept as the comment of a database the toolkit created. */
export interface DatabaseMark {
  toolkit: typeof MARK_TOOLKIT;
  kind: MarkKind;
  /** The run that owns it (lanes and build databases). */
  runId?: string;
  project?: string;
  worker?: number;
  host?: string;
  pid?: number;
  pidStart?: number;
  /** The PID namespace and boot of the owner: its pid is judged only where they match (see judgeProcess). */
  pidNs?: number;
  bootId?: string;
  /** When it was created (ISO 8601). */
  created: string;
  /** Kept for debugging after its run ended (`E2E_LANES_KEEP=1`): never reaped by its mark. */
  kept?: boolean;
  /** A warm run's lane (option `reuse`): its owner is the run's watchdog, alive until this moment (ISO 8601). */
  warmUntil?: string;
  /** Templates: the hash, build time and toolkit version. */
  hash?: string;
  builtAt?: string;
  toolkitVersion?: string;
}

/** The mark in a database comment, or undefined when the comment is not the toolkit's. */
export function parseMark(comment: string | null | undefined): DatabaseMark | undefined {
  if (!comment) return undefined;
  try {
    const parsed = JSON.parse(comment) as Partial<DatabaseMark> | null;
    if (typeof parsed !== 'object' || parsed === null || parsed.toolkit !== MARK_TOOLKIT || typeof parsed.kind !== 'string') return undefined;
    return parsed as DatabaseMark;
  } catch {
    return undefined;
  }
}

/** SQL that writes `mark` as the comment of database `name` (the caller must own it). */
export function markSql(name: string, mark: DatabaseMark): string {
  return `COMMENT ON DATABASE ${escapeIdentifier(name)} IS ${escapeLiteral(JSON.stringify(mark))}`;
}

/** Writes `mark` as the comment of database `name` (the caller must own it). */
export async function writeMark(client: Client, name: string, mark: DatabaseMark): Promise<void> {
  await client.query(markSql(name, mark));
}

/** The mark of a lane database: its lane and owner (`kept` by default as its entry says). */
export function laneMark(entry: DatabaseEntry, kept = entry.owner.kept === true): DatabaseMark {
  const mark: DatabaseMark = { toolkit: MARK_TOOLKIT, kind: 'lane', runId: entry.runId, project: entry.project, host: entry.owner.host, pid: entry.owner.pid, created: entry.owner.createdAt };
  if (entry.worker !== undefined) mark.worker = entry.worker;
  if (entry.owner.pidStart !== undefined) mark.pidStart = entry.owner.pidStart;
  if (entry.owner.pidNs !== undefined) mark.pidNs = entry.owner.pidNs;
  if (entry.owner.bootId !== undefined) mark.bootId = entry.owner.bootId;
  if (kept) mark.kept = true;
  if (entry.owner.warmUntil !== undefined) mark.warmUntil = entry.owner.warmUntil;
  return mark;
}

/**
 * Writes the marks of lane databases from their entries (`kept` to mark them kept whatever their
 * entries say). A mark that cannot be written is only logged: the entries still hold the truth.
 */
export async function markLanes(client: Client, entries: readonly DatabaseEntry[], options: { kept?: boolean } = {}): Promise<void> {
  for (const entry of entries) {
    await writeMark(client, entry.databaseName, laneMark(entry, options.kept ?? entry.owner.kept === true)).catch((error: unknown) =>
      debug('could not mark %s%s: %s', entry.databaseName, options.kept ? ' as kept' : '', messageOf(error)),
    );
  }
}

/** A lane mark in the shape of a ledger entry, or undefined when it lacks the lane or owner. */
export function markToEntry(databaseName: string, mark: DatabaseMark, adminUrl: string): DatabaseEntry | undefined {
  if (typeof mark.runId !== 'string' || typeof mark.project !== 'string' || typeof mark.host !== 'string' || typeof mark.pid !== 'number') return undefined;
  const entry: DatabaseEntry = {
    runId: mark.runId,
    project: mark.project,
    owner: { runId: mark.runId, pid: mark.pid, host: mark.host, createdAt: mark.created, heartbeatAt: mark.created },
    databaseName,
    databaseUrl: redactUrl(withDatabase(adminUrl, databaseName)),
    template: '',
  };
  if (typeof mark.worker === 'number') entry.worker = mark.worker;
  if (typeof mark.pidStart === 'number') entry.owner.pidStart = mark.pidStart;
  if (typeof mark.pidNs === 'number') entry.owner.pidNs = mark.pidNs;
  if (typeof mark.bootId === 'string') entry.owner.bootId = mark.bootId;
  return entry;
}

/**
 * Why the owner named by a mark is gone, or undefined when it may be alive: only a mark of this
 * host, boot and PID namespace can be judged (its pid is gone, or now belongs to another process); another host's owner is
 * judged by its registry lease, never by its mark. A kept database is never gone.
 */
export function markOwnerGone(mark: DatabaseMark, host = currentHost()): string | undefined {
  if (mark.kept) return undefined;
  if (typeof mark.warmUntil === 'string' && !(Date.now() < Date.parse(mark.warmUntil))) return `warm lane idle until ${mark.warmUntil}`;
  if (mark.host !== host || typeof mark.pid !== 'number') return undefined;
  return processGone({ pid: mark.pid, pidStart: mark.pidStart, pidNs: mark.pidNs, bootId: mark.bootId, host: mark.host });
}
