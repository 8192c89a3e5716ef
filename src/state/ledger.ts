import { LanesError } from '../errors.js';
import { isOwner, judgeOwner, type Owner } from './owner.js';
import { expectArray, type StateDocument, type StateFileSpec } from './state-file.js';

/** The identity of a lane: one project (and optionally one worker) of one run. */
export interface LaneKey {
  runId: string;
  project: string;
  /** Set only for per-worker lanes (`isolation: 'worker'`). */
  worker?: number;
}

/** An entry of a ledger: something a lane holds, with its owner. */
export interface LedgerEntry extends LaneKey {
  owner: Owner;
}

/** A state document that is a list of owned entries. */
export interface LedgerDocument<E extends LedgerEntry> extends StateDocument {
  entries: E[];
}

/** A stale entry and why it was judged stale. */
export interface StaleEntry<E> {
  entry: E;
  reason: string;
}

/** The spec of a ledger file of the given kind, validating each entry with `parseEntry`. */
export function ledgerSpec<E extends LedgerEntry>(
  kind: string,
  parseEntry: (raw: Record<string, unknown>) => E,
): StateFileSpec<LedgerDocument<E>> {
  const version = 1;
  return {
    kind,
    version,
    empty: () => ({ kind, version, updatedAt: new Date().toISOString(), entries: [] }),
    parse: (raw) => ({
      kind,
      version,
      updatedAt: String(raw.updatedAt ?? ''),
      entries: expectArray(raw.entries, 'entries').map((item, index) => {
        if (typeof item !== 'object' || item === null) throw new Error(`entries[${index}] is not an object`);
        const entry = item as Record<string, unknown>;
        if (typeof entry.runId !== 'string' || typeof entry.project !== 'string' || !isOwner(entry.owner)) {
          throw new Error(`entries[${index}] lacks runId, project or owner`);
        }
        if (entry.worker !== undefined && typeof entry.worker !== 'number') {
          throw new Error(`entries[${index}].worker is not a number`);
        }
        return parseEntry(entry);
      }),
    }),
  };
}

/** True when `entry` belongs to the lane `key`. */
export function sameLane(entry: LaneKey, key: LaneKey): boolean {
  return entry.runId === key.runId && entry.project === key.project && entry.worker === key.worker;
}

/** A readable label for messages: `project "auth" (worker 2) of run r2026…`. */
export function describeLane(key: LaneKey): string {
  const worker = key.worker === undefined ? '' : ` (worker ${key.worker})`;
  return `project ${JSON.stringify(key.project)}${worker} of run ${key.runId}`;
}

/** Splits entries into those whose owner is alive and those to reap. */
export function splitByLiveness<E extends LedgerEntry>(
  entries: readonly E[],
  leaseMs: number,
  now = Date.now(),
): { live: E[]; stale: StaleEntry<E>[] } {
  const live: E[] = [];
  const stale: StaleEntry<E>[] = [];
  const verdicts = new Map<string, ReturnType<typeof judgeOwner>>();
  for (const entry of entries) {
    // Everything judgeOwner reads of the owner: a reused pid (another start time, namespace or boot) is another owner.
    const { host, pid, pidStart, pidNs, bootId, heartbeatAt, kept, warmUntil } = entry.owner;
    const id = JSON.stringify([host, pid, pidStart, pidNs, bootId, heartbeatAt, kept === true, warmUntil]);
    let verdict = verdicts.get(id);
    if (!verdict) {
      verdict = judgeOwner(entry.owner, leaseMs, now);
      verdicts.set(id, verdict);
    }
    if (verdict.alive) live.push(entry);
    else stale.push({ entry, reason: verdict.reason });
  }
  return { live, stale };
}

/** An entry with its owner's liveness, as `list()` methods show it. */
export type WithLiveness<E> = E & { alive: boolean; staleReason?: string };

/** Marks every entry alive or stale (with the reason), without changing anything. */
export function withLiveness<E extends LedgerEntry>(entries: readonly E[], leaseMs: number, now = Date.now()): WithLiveness<E>[] {
  const reasons = new Map(splitByLiveness(entries, leaseMs, now).stale.map((item) => [item.entry, item.reason]));
  return entries.map((entry) => {
    const reason = reasons.get(entry);
    return reason === undefined ? { ...entry, alive: true } : { ...entry, alive: false, staleReason: reason };
  });
}

/** Marks every entry of `runId` as kept (see {@link Owner.kept}); returns how many. */
export function keepRunEntries(entries: readonly LedgerEntry[], runId: string): number {
  let kept = 0;
  for (const entry of entries) {
    if (entry.runId === runId) {
      entry.owner.kept = true;
      kept++;
    }
  }
  return kept;
}

/**
 * Gives every entry of `runId` to `owner` (a copy each: the warm run's watchdog, or the run that
 * takes a warm run over); returns how many.
 */
export function handOverRunEntries(entries: readonly LedgerEntry[], runId: string, owner: Owner): number {
  let count = 0;
  for (const entry of entries) {
    if (entry.runId !== runId) continue;
    entry.owner = { ...owner, runId };
    count++;
  }
  return count;
}

/** Refreshes the heartbeat of every entry of `runId`; returns how many were touched. */
export function touchRun(entries: readonly LedgerEntry[], runId: string, now = new Date()): number {
  let touched = 0;
  for (const entry of entries) {
    if (entry.runId === runId) {
      entry.owner.heartbeatAt = now.toISOString();
      touched++;
    }
  }
  return touched;
}

/** The longest project name accepted, in Unicode code points (what a person counts as characters). */
export const MAX_PROJECT_NAME_LENGTH = 512;

/**
 * Accepts any project name Playwright accepts that can be stored safely: a non-empty string of at
 * most 512 characters (Unicode code points, so `🚀` counts once) without NUL or other control
 * characters. Everything else is rejected. The limit is about display: the name never becomes an
 * identifier or a file name as it is (database names and log folders use a bounded slug and a hash).
 */
export function validateProjectName(project: unknown): string {
  if (typeof project !== 'string' || project.trim() === '') {
    throw new LanesError('INVALID_PROJECT_NAME', `Invalid project name ${JSON.stringify(project)}: it must be a non-empty string.`, {
      hint: 'Give every Playwright project a `name` in playwright.config.ts.',
    });
  }
  const length = codePoints(project);
  if (length > MAX_PROJECT_NAME_LENGTH) {
    throw new LanesError(
      'INVALID_PROJECT_NAME',
      `Project name of ${length} characters (Unicode code points) is too long (at most ${MAX_PROJECT_NAME_LENGTH}): ${JSON.stringify([...project].slice(0, 40).join(''))}…`,
      { hint: 'Use a shorter project name.' },
    );
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(project) || !project.isWellFormed()) {
    throw new LanesError('INVALID_PROJECT_NAME', `Project name ${JSON.stringify(project)} contains control characters or broken unicode.`, {
      hint: 'Use printable characters only in project names.',
    });
  }
  return project;
}

/** The number of Unicode code points of `text` (a lone surrogate counts as one). */
function codePoints(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}
