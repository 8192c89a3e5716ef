import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, renameSync, statSync, unlinkSync, utimesSync, watch, writeFileSync, type FSWatcher } from 'node:fs';

import { basename, dirname, join } from 'node:path';
import { isLanesError, LanesError } from '../errors.js';
import { debugLogger } from '../log.js';
import { isFsError } from '../state/fs-errors.js';
import { isPidAlive, sameLane, type LaneKey, type LedgerDocument, type Owner, type StaleEntry, type StateFile } from '../state/index.js';
import { isOwner } from '../state/owner.js';
import { splitLive } from './liveness.js';
import type { AllocationTiming } from './timing.js';

const debug = debugLogger('ports');

// The requests' files are small and local: they are written, listed, read and removed with
// synchronous calls of microseconds each. Handing each to the thread pool and back costs more than
// the call, and costs most when a hundred processes allocate at once and every hand-off waits for a
// CPU; a commit, which holds the ledger's lock while it reads every waiting request, is the one part
// of an allocation that others wait for.

/** What a lane's recorded ports look like (the ledger's entries). */
interface LaneEntry extends LaneKey {
  owner: Owner;
  ports: Record<string, number>;
}

type Ledger<E extends LaneEntry> = StateFile<LedgerDocument<E>>;

/**
 * A request to record a lane's ports in the ledger: left next to it as a file, so that whichever
 * process holds the ledger's lock records every waiting request in its one write (group commit).
 */
export interface LaneRequest {
  id: string;
  /** The process waiting for the answer: a request of a dead process is dropped. */
  requester: number;
  key: LaneKey;
  names: string[];
  /** The owner of the lane, if it is new. */
  owner: Owner;
  /** Ports claimed host-wide for the lane's missing names, in order. */
  ports: number[];
}

/** The longest a waiter sleeps before looking again when no event woke it (see {@link recordLane}). */
const MAX_NAP_MS = 250;
/** When `proper-lockfile` (as the state file uses it) takes a lock over as stale. */
const STALE_LOCK_MS = 10_000;
/** A bound on the rounds of one wait (each ends with a file event or a nap). */
const MAX_ROUNDS = 100_000;

/**
 * Records `request` in `ledger` and resolves the lane as recorded, or undefined when its claimed
 * ports could not be used (a lane recorded meanwhile holds one): the caller claims again.
 *
 * Unless the lock is held right now, this process tries it once: if it gets it, it records its
 * request and every pending one (of processes waiting) in one write. If not, it writes its request
 * next to the ledger and sleeps until its request file changes (the kernel's file events wake it): gone
 * means recorded; touched means that a committer found more requests after its commit and hands the
 * next commit to this process, which tries the lock again. A nap of at most 250 ms covers a committer
 * that died, and a lock held by an update that hands nothing over (a heartbeat, a release). So under
 * contention one write serves many lanes, one waiter at a time wakes to commit, and nobody polls the
 * lock in back-off. A waiter whose request was recorded as asked knows its lane without reading the
 * ledger; otherwise the commit leaves it a note to read it.
 *
 * @param tryLedger the same file with a lock timeout of 0: one attempt, `STATE_LOCK_TIMEOUT` when taken.
 * @returns undefined also when the request could not be written (the caller records it itself).
 */
export async function recordLane<E extends LaneEntry>(
  ledger: Ledger<E>,
  tryLedger: Ledger<E>,
  request: Omit<LaneRequest, 'id' | 'requester'>,
  options: { leaseMs: number; timeoutMs: number; onReaped: (stale: StaleEntry<E>[]) => void; timing?: AllocationTiming },
): Promise<E | undefined | 'unwritten'> {
  const full: LaneRequest = { ...request, id: randomBytes(6).toString('hex'), requester: process.pid };
  const complete = (lane: E | undefined): E | undefined => (lane && request.names.every((name) => lane.ports[name] !== undefined) ? lane : undefined);
  // Uncontended, the lock is free: record at once (with whatever requests are waiting). A lock held
  // right now (and not stale) is not tried: its holder, or the waiter it wakes, records this request.
  const first = !lockHeld(ledger) && (await commitAndHandOver(tryLedger, options, full));
  if (first) return complete(first.lane);

  const file = join(dirname(ledger.path), `${requestPrefix(ledger)}${full.requester}-${full.id}.json`);
  // Written aside and renamed in, so a committer never reads half a request.
  const temp = join(dirname(ledger.path), `.${requestPrefix(ledger)}${full.requester}-${full.id}.tmp`);
  try {
    writeFileSync(temp, JSON.stringify(full), { flag: 'wx' });
    renameSync(temp, file);
  } catch (error) {
    quietly(() => unlinkSync(temp)); // a full disk leaves the file created, empty
    // The caller records the lane itself, and meets the same fault with its coded error.
    if ((error as NodeJS.ErrnoException).code !== undefined) return 'unwritten';
    throw error;
  }
  const started = Date.now();
  let failure: { error: unknown } | undefined;
  let mine: { lane: E | undefined } | undefined;
  try {
    for (let round = 1; round <= MAX_ROUNDS; round++) {
      const seen = modifiedAt(file);
      if (seen === 'gone') break;
      mine = (await commitAndHandOver(tryLedger, options, undefined, request.key)) || undefined;
      if (mine) break;
      if (Date.now() - started >= options.timeoutMs || round === MAX_ROUNDS) {
        throw new LanesError('STATE_LOCK_TIMEOUT', `Could not lock state file ${ledger.path} within ${Math.round((Date.now() - started) / 1000)} s (${round} attempts).`, {
          hint: `Another e2e-lanes process holds it, or a crashed one left ${ledger.path}.lock behind (it is taken over automatically after 10 s). Check that the folder is writable.`,
        });
      }
      if (options.timing) options.timing.waits++;
      // Only this request's file is watched: it goes when a commit recorded it, and is touched when a
      // committer hands the next commit over. Waking every waiter at each release of the lock would
      // have them all race for it (and all but one lose) every time.
      await nextChange(file, seen, Math.min(MAX_NAP_MS, options.timeoutMs - (Date.now() - started)));
    }
  } catch (error) {
    failure = { error };
  } finally {
    // Gone already when a commit (another process's, or this one's) recorded it.
    const taken = removed(file) === 'missing';
    if (failure && !taken) throw failure.error;
  }
  // The note a commit left when it recorded the request otherwise than asked (this process's own
  // commit included): then the ledger tells; else the lane is as asked.
  const look = removed(rereadFile(file)) !== 'missing';
  if (mine) return complete(mine.lane);
  if (request.ports.length === request.names.length && !look) return { ...request.key, owner: request.owner, ports: Object.fromEntries(request.names.map((name, index) => [name, request.ports[index]!])) } as E;
  return complete((await ledger.read()).entries.find((entry) => sameLane(entry, request.key)));
}

/**
 * {@link commitPending}, then, if requests arrived meanwhile, wakes one of their waiters (touching its
 * request file) to commit them. Waiters do not watch the lock: a request written while the lock was
 * held is recorded by the waiter so woken, or by whoever took the lock after it was written (that one
 * lists the requests once it holds the lock). A committer does not commit again itself: its own
 * answer would wait for commits made for others.
 */
async function commitAndHandOver<E extends LaneEntry>(
  tryLedger: Ledger<E>,
  options: { leaseMs: number; onReaped: (stale: StaleEntry<E>[]) => void; timing?: AllocationTiming },
  own?: LaneRequest,
  key: LaneKey | undefined = own?.key,
): Promise<false | { lane: E | undefined }> {
  const committed = await commitPending(tryLedger, options, own, key);
  if (!committed) return false;
  // Two, in case one's requester died (its nap still covers it).
  const next = pendingRequestFiles(tryLedger).slice(0, 2);
  const now = new Date();
  for (const file of next) quietly(() => utimesSync(file, now, now));
  return committed;
}

/**
 * Takes the lock if it is free and records every pending request (and `own`, not written to a
 * file); resolves false when the lock was taken, else the lane of `own` (or of `key`) as recorded.
 * Requests are removed only once the ledger holding them is written.
 */
async function commitPending<E extends LaneEntry>(
  tryLedger: Ledger<E>,
  options: { leaseMs: number; onReaped: (stale: StaleEntry<E>[]) => void; timing?: AllocationTiming },
  own?: LaneRequest,
  key: LaneKey | undefined = own?.key,
): Promise<false | { lane: E | undefined }> {
  let done: { files: { file: string; asked: boolean }[]; stale: string[]; lane: E | undefined };
  const { timing } = options;
  let locked = 0;
  try {
    done = await tryLedger.update(async (doc) => {
      locked = performance.now();
      const { live, stale } = splitLive(doc.entries, options.leaseMs);
      options.onReaped(stale);
      doc.entries = live;
      const { requests: pending, stale: notes } = pendingRequests(tryLedger);
      const taken = heldPorts(doc.entries);
      const files = pending.map(({ file, request }) => ({ file, asked: request ? apply(doc.entries, request, taken) : true }));
      if (own) apply(doc.entries, own, taken);
      const lane = key && doc.entries.find((entry) => sameLane(entry, key));
      if (timing) [timing.commits, timing.committed] = [timing.commits + 1, timing.committed + pending.length + (own ? 1 : 0)];
      return { files, stale: notes, lane: lane && structuredClone(lane) };
    });
    // The write and the lock's release included.
    if (timing) timing.locked += performance.now() - locked;
  } catch (error) {
    if (isLanesError(error, 'STATE_LOCK_TIMEOUT')) return false;
    throw error;
  }
  // A request recorded otherwise than asked (its lane was there already, or its ports were taken)
  // leaves a note for its waiter to read the ledger; the others' waiters know their lane as asked.
  for (const { file, asked } of done.files) quietly(() => (asked ? unlinkSync(file) : renameSync(file, rereadFile(file))));
  for (const file of done.stale) quietly(() => unlinkSync(file));
  return { lane: done.lane };
}

/**
 * Records one request: its lane's missing names get its claimed ports, unless a lane holds one
 * already. True when the lane was recorded exactly as asked: new, with the request's ports.
 */
function apply<E extends LaneEntry>(entries: E[], request: LaneRequest, taken = heldPorts(entries)): boolean {
  const now = new Date().toISOString();
  let lane = entries.find((entry) => sameLane(entry, request.key));
  const missing = request.names.filter((name) => lane?.ports[name] === undefined);
  if (missing.length > 0) {
    const usable = request.ports.filter((port) => !taken.has(port));
    if (usable.length < missing.length) return false; // its requester claims again
    const asked = !lane && usable.length === request.ports.length;
    if (!lane) {
      lane = { ...request.key, owner: structuredClone(request.owner), ports: {} } as E;
      entries.push(lane);
    }
    missing.forEach((name, index) => {
      lane!.ports[name] = usable[index]!;
      taken.add(usable[index]!);
    });
    debug('recorded %o for %s', lane.ports, request.key.project);
    lane.owner.heartbeatAt = now;
    return asked;
  }
  lane!.owner.heartbeatAt = now;
  return false;
}

/** Every port the lanes hold. */
function heldPorts(entries: readonly LaneEntry[]): Set<number> {
  return new Set(entries.flatMap((entry) => Object.values(entry.ports)));
}

/** The files of the requests waiting next to the ledger. */
function pendingRequestFiles(ledger: Ledger<LaneEntry>): string[] {
  return listRequests(ledger).requests;
}

/** The files of the requests waiting next to the ledger, and the notes left for waiters. */
function listRequests(ledger: Ledger<LaneEntry>): { requests: string[]; notes: string[] } {
  const folder = dirname(ledger.path);
  const name = basename(ledger.path);
  const requests: string[] = [];
  const notes: string[] = [];
  for (const entry of readdirSync(folder)) {
    if (!entry.endsWith('.json')) continue;
    if (entry.startsWith(`${name}.request-`)) requests.push(join(folder, entry));
    else if (entry.startsWith(`${name}.reread-`)) notes.push(join(folder, entry));
  }
  return { requests, notes };
}

/**
 * The requests waiting next to the ledger (a request whose requester is gone comes without it, to be
 * removed), and the notes left for waiters that are gone (to be removed).
 */
function pendingRequests(ledger: Ledger<LaneEntry>): { requests: { file: string; request?: LaneRequest }[]; stale: string[] } {
  const { requests: files, notes } = listRequests(ledger);
  const read = files.map((file) => {
    try {
      return { file, request: parseRequest(readFileSync(file, 'utf8')) };
    } catch {
      return { file, request: 'gone' as const };
    }
  });
  const requests = read.flatMap(({ file, request }) => (request === 'gone' ? [] : [request && isPidAlive(request.requester) ? { file, request } : { file }]));
  const stale = notes.filter((file) => !isPidAlive(Number(/\.reread-(\d+)-/.exec(file)?.[1])));
  return { requests, stale };
}

function parseRequest(text: string): LaneRequest | undefined {
  try {
    const raw = JSON.parse(text) as Partial<LaneRequest>;
    const key = raw.key as Partial<LaneKey> | undefined;
    const valid =
      typeof raw.requester === 'number' &&
      typeof key?.runId === 'string' &&
      typeof key.project === 'string' &&
      (key.worker === undefined || typeof key.worker === 'number') &&
      Array.isArray(raw.names) &&
      raw.names.every((name) => typeof name === 'string') &&
      Array.isArray(raw.ports) &&
      raw.ports.every((port) => Number.isInteger(port)) &&
      isOwner(raw.owner);
    return valid ? (raw as LaneRequest) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The note a commit leaves for the waiter of `requestFile` when it recorded the request otherwise
 * than asked: `allocated-ports.json.reread-<pid>-<id>.json`.
 */
function rereadFile(requestFile: string): string {
  return requestFile.replace(/\.request-(\d+)-([0-9a-f]+)\.json$/, '.reread-$1-$2.json');
}

/** `allocated-ports.json.request-`: requests sit next to the ledger, named after it. */
function requestPrefix(ledger: { path: string }): string {
  return `${basename(ledger.path)}.request-`;
}

/**
 * Whether the ledger's lock is held right now by a live holder (`proper-lockfile` keeps the lock
 * folder's modification time fresh; one older than its 10 s is stale and gets taken over).
 */
function lockHeld(ledger: { path: string }): boolean {
  const lock = statSync(`${ledger.path}.lock`, { throwIfNoEntry: false });
  return lock !== undefined && Date.now() - lock.mtimeMs < STALE_LOCK_MS;
}

/** The modification time of `file`, `gone` when it does not exist, undefined when it cannot be told. */
function modifiedAt(file: string): number | 'gone' | undefined {
  try {
    return statSync(file).mtimeMs;
  } catch (error) {
    return isFsError(error, 'ENOENT') ? 'gone' : undefined;
  }
}

/** Removes `file`: `missing` when it was not there. */
function removed(file: string): 'removed' | 'missing' | 'failed' {
  try {
    unlinkSync(file);
    return 'removed';
  } catch (error) {
    return isFsError(error, 'ENOENT') ? 'missing' : 'failed';
  }
}

/** Runs `fn`, ignoring its error (a file removed meanwhile, say). */
function quietly(fn: () => void): void {
  try {
    fn();
  } catch {
    // nothing to do
  }
}

/**
 * Resolves when `file` changes or goes away, or after `ms`; also at once when it is gone already or
 * was modified since `seen` (a change just before the watch began).
 */
function nextChange(file: string, seen: number | undefined, ms: number): Promise<void> {
  return new Promise((resolve) => {
    let settled = false;
    let watcher: FSWatcher | undefined;
    const done = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      watcher?.close();
      resolve();
    };
    const timer = setTimeout(done, Math.max(1, ms));
    try {
      watcher = watch(file, { persistent: false }, done);
      watcher.on('error', done);
    } catch (error) {
      if (isFsError(error, 'ENOENT')) return done();
      // No file events here (too many watchers, a file system without them): the nap decides, made
      // short and random so that waiters do not all come back at once.
      clearTimeout(timer);
      setTimeout(() => {
        settled = true;
        resolve();
      }, 2 + Math.random() * Math.min(ms, 20));
      return;
    }
    const now = modifiedAt(file);
    if (now === 'gone' || (now !== undefined && seen !== undefined && now !== seen)) done();
  });
}
