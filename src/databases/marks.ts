/**
 * The owner mark every database the toolkit creates carries on the server itself: a JSON
 * `COMMENT ON DATABASE` naming the toolkit, the kind of database, and the process that owns it.
 * With it, a database no ledger lists any more (a lost or truncated state file) can still be judged
 * and reaped; a database without it is never touched, whatever its name.
 * @internal
 */
import { escapeIdentifier, escapeLiteral, type Client } from 'pg';
import { currentHost, isPidAlive, pidStartTime } from '../state/owner.js';

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

/** Writes `mark` as the comment of database `name` (the caller must own it). */
export async function writeMark(client: Client, name: string, mark: DatabaseMark): Promise<void> {
  await client.query(`COMMENT ON DATABASE ${escapeIdentifier(name)} IS ${escapeLiteral(JSON.stringify(mark))}`);
}

/**
 * Why the owner named by a mark is gone, or undefined when it may be alive: only a mark of this
 * host can be judged (its pid is gone, or now belongs to another process); another host's owner is
 * judged by its registry lease, never by its mark. A kept database is never gone.
 */
export function markOwnerGone(mark: DatabaseMark, host = currentHost()): string | undefined {
  if (mark.kept) return undefined;
  if (typeof mark.warmUntil === 'string' && !(Date.now() < Date.parse(mark.warmUntil))) return `warm lane idle until ${mark.warmUntil}`;
  if (mark.host !== host || typeof mark.pid !== 'number') return undefined;
  if (!isPidAlive(mark.pid)) return `owner pid ${mark.pid} on ${mark.host} is gone`;
  if (mark.pidStart !== undefined) {
    const start = pidStartTime(mark.pid);
    if (start !== undefined && start !== mark.pidStart) return `owner pid ${mark.pid} now belongs to another process`;
  }
  return undefined;
}
