import { mkdir, readFile, rename } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import lockfile from 'proper-lockfile';
import writeFileAtomic from 'write-file-atomic';
import { LanesError } from '../errors.js';
import { debugLogger, warn } from '../log.js';

const debug = debugLogger('state');

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
}

/**
 * A JSON state file shared by processes on one host. Every read-modify-write runs under a
 * cross-process lock (`proper-lockfile`) and is written atomically (temp file + rename), so
 * concurrent writers never lose each other's changes. A corrupt, truncated or foreign file is
 * moved aside with a warning and the state is rebuilt from empty.
 */
export class StateFile<T extends StateDocument> {
  readonly path: string;
  readonly #spec: StateFileSpec<T>;
  readonly #lockTimeoutMs: number;

  constructor(path: string, spec: StateFileSpec<T>, options: StateFileOptions = {}) {
    this.path = path;
    this.#spec = spec;
    this.#lockTimeoutMs = options.lockTimeoutMs ?? 30_000;
  }

  /** Reads the current document without the lock (a consistent snapshot, thanks to atomic writes). */
  async read(): Promise<T> {
    const outcome = await this.#load();
    return outcome.ok ? outcome.doc : this.#spec.empty();
  }

  /**
   * Runs `mutate` on the current document under the lock and writes the result atomically.
   * `mutate` changes the document in place; its return value is passed through.
   */
  async update<R>(mutate: (doc: T) => R | Promise<R>): Promise<R> {
    const release = await this.#lock();
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

  async #lock(): Promise<() => Promise<void>> {
    await mkdir(dirname(this.path), { recursive: true });
    const started = Date.now();
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
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { ok: false };
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
    try {
      await writeFileAtomic(this.path, `${JSON.stringify(doc, null, 2)}\n`);
    } catch (error) {
      throw new LanesError('STATE_UNWRITABLE', `Could not write state file ${this.path}: ${(error as Error).message}`, {
        hint: 'Check that the state folder (option stateDir or E2E_LANES_STATE_DIR) exists and is writable.',
        cause: error,
      });
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
