import { mkdir, readFile, rename } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import lockfile from 'proper-lockfile';
import writeFileAtomic from 'write-file-atomic';
import { LanesError } from '../errors.js';
import { debugLogger, warn } from '../log.js';
import { assertRegularFileOrMissing, isFsError, mkdirCause, STATE_DIR_SETTING, unwritable } from './fs-errors.js';

const debug = debugLogger('state');

/**
 * Per state file (absolute path): the end of the chain of this process's updates. Updates of one
 * file in one process run one after the other, each starting the moment the previous one released
 * the cross-process lock, and only the first in line polls that lock. An entry is removed once
 * its chain ran out.
 */
const queues = new Map<string, Promise<void>>();

/** Every state document carries its kind and format version. */
export interface StateDocument {
  kind: string;
  version: number;
  updatedAt: string;
}

export interface StateFileSpec<T extends StateDocument> {
  /** e.g. `e2e-lanes/ports`: a file of another kind is treated as corrupt. */
  kind: string;
  /** Format version this code reads and writes. */
  version: number;
  /** A new, empty document. */
  empty(): T;
  /** Validates a parsed document of the right kind and version; throws a readable error if it is malformed. */
  parse(raw: Record<string, unknown>): T;
}

export interface StateFileOptions {
  /** How long to wait for the cross-process lock before giving up. @default 30_000 */
  lockTimeoutMs?: number;
  /**
   * Where the file's folder is configured, named in the hints of file-system errors.
   * @default 'option stateDir or E2E_LANES_STATE_DIR'
   * @internal
   */
  configuredBy?: string;
}

/**
 * A JSON state file shared by processes on one host. Every read-modify-write runs under a
 * cross-process lock (`proper-lockfile`) and is written atomically (temp file + rename), so
 * concurrent writers never lose each other's changes; within one process, updates of a file are
 * queued before they take that lock. A corrupt, truncated or foreign file is moved aside with a
 * warning and the state is rebuilt from empty. A state file that is a link, a folder or anything
 * else than a regular file is refused (`STATE_NOT_A_FILE`), and every file-system failure becomes
 * `STATE_UNWRITABLE` naming the path; a failed write leaves the recorded document as it was.
 */
export class StateFile<T extends StateDocument> {
  readonly path: string;
  readonly #spec: StateFileSpec<T>;
  readonly #lockTimeoutMs: number;
  readonly #queueKey: string;
  readonly #configuredBy: string;

  constructor(path: string, spec: StateFileSpec<T>, options: StateFileOptions = {}) {
    this.path = path;
    this.#queueKey = resolve(path);
    this.#spec = spec;
    this.#lockTimeoutMs = options.lockTimeoutMs ?? 30_000;
    this.#configuredBy = options.configuredBy ?? STATE_DIR_SETTING;
  }

  /** Reads the current document without the lock (a consistent snapshot, thanks to atomic writes). */
  async read(): Promise<T> {
    const outcome = await this.#load();
    return outcome.ok ? outcome.doc : this.#spec.empty();
  }

  /**
   * Runs `mutate` on the current document under the lock and writes the result atomically.
   * `mutate` changes the document in place; its return value is passed through. Updates of one file
   * by this process run one at a time, in call order; the time spent waiting for earlier ones counts
   * towards the lock timeout. `mutate` must not update the same file (that waits for itself until
   * the lock timeout).
   */
  async update<R>(mutate: (doc: T) => R | Promise<R>): Promise<R> {
    const started = Date.now();
    const key = this.#queueKey;
    const previous = queues.get(key);
    let finished!: () => void;
    const mine = new Promise<void>((resolve) => (finished = resolve));
    // The next caller waits for the earlier updates and this one, whether they succeed or fail.
    const tail = previous ? previous.then(() => mine) : mine;
    queues.set(key, tail);
    try {
      if (previous) await this.#waitInLine(previous, started);
      return await this.#updateLocked(mutate, started);
    } finally {
      finished();
      if (queues.get(key) === tail) queues.delete(key);
    }
  }

  /** Waits for this process's earlier updates of the file, within the lock timeout. */
  async #waitInLine(previous: Promise<void>, started: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), Math.max(0, started + this.#lockTimeoutMs - Date.now()));
    });
    try {
      if ((await Promise.race([previous, timedOut])) === 'timeout') {
        throw new LanesError('STATE_LOCK_TIMEOUT', `Could not lock state file ${this.path} within ${Math.round((Date.now() - started) / 1000)} s (earlier updates of this process still running).`, {
          hint: 'An update of this state file in this process takes too long, or updates the same file from inside its own update.',
        });
      }
    } finally {
      clearTimeout(timer);
    }
  }

  async #updateLocked<R>(mutate: (doc: T) => R | Promise<R>, started: number): Promise<R> {
    const release = await this.#lock(started);
    try {
      const outcome = await this.#load();
      let doc: T;
      if (outcome.ok) {
        doc = outcome.doc;
      } else {
        if (outcome.problem) await this.#quarantine(outcome.problem);
        doc = this.#spec.empty();
      }
      const before = JSON.stringify(doc);
      const result = await mutate(doc);
      if (JSON.stringify(doc) !== before || !outcome.ok) await this.#write(doc);
      return result;
    } finally {
      await release().catch((error: unknown) => debug('releasing lock on %s failed: %O', this.path, error));
    }
  }

  async #lock(started: number): Promise<() => Promise<void>> {
    try {
      await mkdir(dirname(this.path), { recursive: true });
    } catch (error) {
      const cause = mkdirCause(error, dirname(this.path));
      if (isFsError(cause)) throw unwritable(cause, 'create the state folder', dirname(this.path), this.#configuredBy);
      throw cause;
    }
    // The wait is this loop, not proper-lockfile's \`retries\` option: that option retries every
    // error, so a folder where the lock cannot be created (EACCES, EROFS, ENOSPC, ENOTDIR) would
    // wait out the whole timeout instead of failing at once with STATE_UNWRITABLE, and a wait that
    // ends by its \`maxRetryTime\` can end with an error that is not ELOCKED.
    const deadline = started + this.#lockTimeoutMs;
    let delay = 5;
    for (let attempt = 1; ; attempt++) {
      try {
        return await lockfile.lock(this.path, {
          realpath: false,
          stale: 10_000,
          onCompromised: (error) => warn(`lock on ${this.path} was compromised: ${error.message}`),
        });
      } catch (error) {
        // The lock is a folder next to the file: failing to create it is a file-system problem, not contention.
        if (isFsError(error)) throw unwritable(error, 'create the lock', `${this.path}.lock`, this.#configuredBy);
        if ((error as NodeJS.ErrnoException).code !== 'ELOCKED' || Date.now() >= deadline) {
          throw new LanesError(
            'STATE_LOCK_TIMEOUT',
            `Could not lock state file ${this.path} within ${Math.round((Date.now() - started) / 1000)} s (${attempt} attempts).`,
            {
              hint: `Another e2e-lanes process holds it, or a crashed one left ${this.path}.lock behind (it is taken over automatically after 10 s). Check that the folder is writable.`,
              cause: error,
            },
          );
        }
        await sleep(delay + Math.random() * delay);
        delay = Math.min(delay * 1.5, 100);
      }
    }
  }

  async #load(): Promise<{ ok: true; doc: T } | { ok: false; problem?: string }> {
    await assertRegularFileOrMissing(this.path, this.#configuredBy);
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { ok: false };
      if (isFsError(error)) throw unwritable(error, 'read state file', this.path, this.#configuredBy);
      throw error;
    }
    if (text.trim() === '') return { ok: false, problem: 'the file is empty' };
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (error) {
      return { ok: false, problem: `it is not valid JSON (${(error as Error).message})` };
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      return { ok: false, problem: 'it is not a JSON object' };
    }
    const record = raw as Record<string, unknown>;
    if (record.kind !== this.#spec.kind) {
      return { ok: false, problem: `its kind is ${JSON.stringify(record.kind)}, expected "${this.#spec.kind}"` };
    }
    if (record.version !== this.#spec.version) {
      return {
        ok: false,
        problem: `it has format version ${JSON.stringify(record.version)}, this e2e-lanes reads version ${this.#spec.version}`,
      };
    }
    try {
      return { ok: true, doc: this.#spec.parse(record) };
    } catch (error) {
      return { ok: false, problem: `its content is malformed (${(error as Error).message})` };
    }
  }

  async #quarantine(problem: string): Promise<void> {
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const aside = join(dirname(this.path), `${basename(this.path)}.corrupt-${stamp}`);
    try {
      await rename(this.path, aside);
      warn(`state file ${this.path} was unreadable: ${problem}. It was kept as ${aside} and the state was rebuilt.`);
    } catch (error) {
      warn(`state file ${this.path} was unreadable (${problem}) and could not be moved aside: ${(error as Error).message}`);
    }
  }

  async #write(doc: T): Promise<void> {
    doc.updatedAt = new Date().toISOString();
    // Checked again right before the write: write-file-atomic would follow a link put there meanwhile.
    await assertRegularFileOrMissing(this.path, this.#configuredBy);
    try {
      // No fsync: temp file + rename is still atomic against any process crash (readers see the old or
      // the new document, never a torn one). Only a power loss or kernel crash could lose the last
      // update, and then every owner it recorded is dead too and the next run reaps what remains.
      await writeFileAtomic(this.path, `${JSON.stringify(doc, null, 2)}\n`, { fsync: false });
    } catch (error) {
      // write-file-atomic removes its temp file on failure: the recorded document is unchanged.
      throw unwritable(error, 'write state file', this.path, this.#configuredBy);
    }
  }
}

/** Throws a readable error unless `value` is an array; used by `parse` functions. */
export function expectArray(value: unknown, field: string): unknown[] {
  if (!Array.isArray(value)) throw new Error(`"${field}" is not an array`);
  return value;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
