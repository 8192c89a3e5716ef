import { randomBytes } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { mkdir, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { isLanesError, LanesError } from '../errors.js';
import { debugLogger } from '../log.js';
import { isFsError } from '../state/fs-errors.js';
import { isPidAlive, sameLane, splitByLiveness, type LaneKey, type LedgerDocument, type Owner, type StaleEntry, type StateFile } from '../state/index.js';
import { isOwner } from '../state/owner.js';

const debug = debugLogger('ports');

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

/** The longest a waiter sleeps before looking again when no event woke it. */
const MAX_NAP_MS = 250;
/** A bound on the rounds of one wait (each ends with a file event or a nap). */
const MAX_ROUNDS = 100_000;

/**
 * Records `request` in `ledger` and resolves the lane as recorded, or undefined when its claimed
 * ports could not be used (a lane recorded meanwhile holds one): the caller claims again.
 *
 * This process tries the lock once: if it gets it, it records its request and every pending one (of
 * processes waiting) in one write. If not, it writes its request next to the ledger and sleeps until
 * the lock is released or its request is taken (the kernel's file events wake it; a nap of at most
 * 250 ms covers a missed event), and tries again. So under contention one write serves many lanes,
 * and nobody sleeps in back-off while the lock is free.
 *
 * @param tryLedger the same file with a lock timeout of 0: one attempt, `STATE_LOCK_TIMEOUT` when taken.
 * @returns undefined also when the request could not be written (the caller records it itself).
 */
export async function recordLane<E extends LaneEntry>(
  ledger: Ledger<E>,
  tryLedger: Ledger<E>,
  request: Omit<LaneRequest, 'id' | 'requester'>,
  options: { leaseMs: number; timeoutMs: number; onReaped: (stale: StaleEntry<E>[]) => void },
): Promise<E | undefined | 'unwritten'> {
  const full: LaneRequest = { ...request, id: randomBytes(6).toString('hex'), requester: process.pid };
  const complete = (lane: E | undefined): E | undefined => (lane && request.names.every((name) => lane.ports[name] !== undefined) ? lane : undefined);
  // Uncontended, the lock is free: record at once (with whatever requests are waiting).
  const first = await commitPending(tryLedger, options, full);
  if (first) return complete(first.lane);

  const file = join(dirname(ledger.path), `${requestPrefix(ledger)}${full.id}.json`);
  // Written aside and renamed in, so a committer never reads half a request.
  const temp = join(dirname(ledger.path), `.${requestPrefix(ledger)}${full.id}.tmp`);
  try {
    await mkdir(dirname(file), { recursive: true });
    await writeFile(temp, JSON.stringify(full), { flag: 'wx' });
    await rename(temp, file);
  } catch (error) {
    await unlink(temp).catch(() => undefined); // a full disk leaves the file created, empty
    // The caller records the lane itself, and meets the same fault with its coded error.
    if ((error as NodeJS.ErrnoException).code !== undefined) return 'unwritten';
    throw error;
  }
  const started = Date.now();
  let failure: { error: unknown } | undefined;
  try {
    for (let round = 1; round <= MAX_ROUNDS && (await exists(file)); round++) {
      const committed = await commitPending(tryLedger, options, undefined, request.key);
      if (committed) return complete(committed.lane);
      if (Date.now() - started >= options.timeoutMs || round === MAX_ROUNDS) {
        throw new LanesError('STATE_LOCK_TIMEOUT', `Could not lock state file ${ledger.path} within ${Math.round((Date.now() - started) / 1000)} s (${round} attempts).`, {
          hint: `Another e2e-lanes process holds it, or a crashed one left ${ledger.path}.lock behind (it is taken over automatically after 10 s). Check that the folder is writable.`,
        });
      }
      await nextChange([file, `${ledger.path}.lock`], Math.min(MAX_NAP_MS, options.timeoutMs - (Date.now() - started)));
    }
  } catch (error) {
    failure = { error };
  } finally {
    // Gone already when a commit (another process's, or this one's) recorded it.
    const taken = await unlink(file).then(
      () => false,
      (error: unknown) => isFsError(error, 'ENOENT'),
    );
    if (failure && !taken) throw failure.error;
  }
  return complete((await ledger.read()).entries.find((entry) => sameLane(entry, request.key)));
}

/**
 * Takes the lock if it is free and records every pending request (and `own`, not written to a
 * file); resolves false when the lock was taken, else the lane of `own` (or of `key`) as recorded.
 * Requests are removed only once the ledger holding them is written.
 */
async function commitPending<E extends LaneEntry>(
  tryLedger: Ledger<E>,
  options: { leaseMs: number; onReaped: (stale: StaleEntry<E>[]) => void },
  own?: LaneRequest,
  key: LaneKey | undefined = own?.key,
): Promise<false | { lane: E | undefined }> {
  let done: { files: string[]; lane: E | undefined };
  try {
    done = await tryLedger.update(async (doc) => {
      const { live, stale } = splitByLiveness(doc.entries, options.leaseMs);
      options.onReaped(stale);
      doc.entries = live;
      const pending = await pendingRequests(tryLedger);
      for (const { request } of pending) if (request) apply(doc.entries, request);
      if (own) apply(doc.entries, own);
      const lane = key && doc.entries.find((entry) => sameLane(entry, key));
      return { files: pending.map((item) => item.file), lane: lane && structuredClone(lane) };
    });
  } catch (error) {
    if (isLanesError(error, 'STATE_LOCK_TIMEOUT')) return false;
    throw error;
  }
  await Promise.all(done.files.map((file) => unlink(file).catch(() => undefined)));
  return { lane: done.lane };
}

/** Records one request: its lane's missing names get its claimed ports, unless a lane holds one already. */
function apply<E extends LaneEntry>(entries: E[], request: LaneRequest): void {
  const now = new Date().toISOString();
  let lane = entries.find((entry) => sameLane(entry, request.key));
  const missing = request.names.filter((name) => lane?.ports[name] === undefined);
  if (missing.length > 0) {
    const taken = new Set(entries.flatMap((entry) => Object.values(entry.ports)));
    const usable = request.ports.filter((port) => !taken.has(port));
    if (usable.length < missing.length) return; // its requester claims again
    if (!lane) {
      lane = { ...request.key, owner: structuredClone(request.owner), ports: {} } as E;
      entries.push(lane);
    }
    missing.forEach((name, index) => {
      lane!.ports[name] = usable[index]!;
    });
    debug('recorded %o for %s', lane.ports, request.key.project);
  }
  lane!.owner.heartbeatAt = now;
}

/** The requests waiting next to the ledger (a request whose requester is gone comes without it, to be removed). */
async function pendingRequests(ledger: Ledger<LaneEntry>): Promise<{ file: string; request?: LaneRequest }[]> {
  const folder = dirname(ledger.path);
  const prefix = requestPrefix(ledger);
  const names = (await readdir(folder)).filter((name) => name.startsWith(prefix) && name.endsWith('.json'));
  const read = await Promise.all(
    names.map(async (name) => {
      const file = join(folder, name);
      return { file, request: await readFile(file, 'utf8').then(parseRequest, () => 'gone' as const) };
    }),
  );
  return read.flatMap(({ file, request }) => (request === 'gone' ? [] : [request && isPidAlive(request.requester) ? { file, request } : { file }]));
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

/** `allocated-ports.json.request-`: requests sit next to the ledger, named after it. */
function requestPrefix(ledger: { path: string }): string {
  return `${basename(ledger.path)}.request-`;
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    (error: unknown) => !isFsError(error, 'ENOENT'),
  );
}

/** Resolves when any of `paths` changes or goes away, or after `ms` (also at once when one is gone already). */
function nextChange(paths: readonly string[], ms: number): Promise<void> {
  return new Promise((resolve) => {
    const watchers: FSWatcher[] = [];
    let settled = false;
    const done = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      for (const watcher of watchers) watcher.close();
      resolve();
    };
    const timer = setTimeout(done, Math.max(1, ms));
    for (const path of paths) {
      try {
        const watcher = watch(path, { persistent: false }, done);
        watcher.on('error', done);
        watchers.push(watcher);
      } catch (error) {
        if (isFsError(error, 'ENOENT')) return done();
        // No file events here (too many watchers, a file system without them): the nap decides, made
        // short and random so that waiters do not all come back at once.
        clearTimeout(timer);
        for (const watcher of watchers) watcher.close();
        setTimeout(() => {
          settled = true;
          resolve();
        }, 2 + Math.random() * Math.min(ms, 20));
        return;
      }
    }
  });
}
