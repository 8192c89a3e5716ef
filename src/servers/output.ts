import { closeSync, createWriteStream, mkdirSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import createDebug from 'debug';
import { redactText } from '../redact.js';
import { isFsError, mkdirCause, unwritable } from '../state/fs-errors.js';

const log = createDebug('e2e-lanes:servers');

/** Lines kept in memory for error messages. */
export const TAIL_LINES = 30;
/** A line longer than this is cut, so a process that never prints "\n" cannot grow memory without bound. */
const MAX_LINE_CHARS = 16_384;

export interface OutputSinkOptions {
  logFile: string;
  /** `[project:name]`, the console prefix. */
  label: string;
  secrets: string[];
  /** Also print to the console. */
  debug: boolean;
  /** `'file'`: the server writes into the log file itself (see StartServerOptions.output). @default 'pipe' */
  output?: 'pipe' | 'file';
}

/** What to pass as a child's stdio: stdin ignored, then stdout and stderr. */
export type ChildStdio = ['ignore', 'pipe' | number, 'pipe' | number];

/**
 * Where a server's output goes: every line, redacted and prefixed with its time (ISO 8601, UTC), into
 * its log file (and the console with `debug`), the last {@link TAIL_LINES} kept for error messages.
 *
 * With `output: 'file'` the log file itself is the child's stdout and stderr (see {@link stdio}):
 * the child writes there directly, without redaction, and can outlive this process.
 */
export class OutputSink {
  readonly #options: OutputSinkOptions;
  readonly #file: ReturnType<typeof createWriteStream> | undefined;
  #fd: number | undefined;
  readonly #tail: string[] = [];
  readonly #flushers: Array<() => void> = [];
  #closed = false;

  constructor(options: OutputSinkOptions) {
    this.#options = options;
    const fd = openLog(options.logFile);
    if (options.output === 'file') {
      this.#fd = fd;
      return;
    }
    // Opened above, synchronously, so that a log that cannot be created fails the start with a coded error.
    this.#file = createWriteStream(options.logFile, { fd });
    this.#file.on('error', (error) => log('%s cannot write %s: %s', options.label, options.logFile, error.message));
  }

  /** The child's stdio: pipes this sink reads, or the log file's descriptor for both streams. */
  stdio(): ChildStdio {
    return this.#fd === undefined ? ['ignore', 'pipe', 'pipe'] : ['ignore', this.#fd, this.#fd];
  }

  /** Closes this process's copy of the log file's descriptor once the child holds its own. */
  spawned(): void {
    if (this.#fd === undefined) return;
    closeSync(this.#fd);
    this.#fd = undefined;
  }

  /** Reads `stream` line by line until it ends. */
  attach(stream: Readable | null, kind: 'stdout' | 'stderr'): void {
    if (!stream) return;
    const decoder = new StringDecoder('utf8');
    let partial = '';
    const flush = (): void => {
      partial += decoder.end();
      if (partial !== '') this.#line(partial, kind);
      partial = '';
    };
    stream.on('data', (chunk: Buffer) => {
      const lines = (partial + decoder.write(chunk)).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) this.#line(line, kind);
      if (partial.length > MAX_LINE_CHARS) {
        this.#line(partial, kind);
        partial = '';
      }
    });
    stream.once('end', flush);
    stream.on('error', (error) => log('%s %s error: %s', this.#options.label, kind, error.message));
    this.#flushers.push(flush);
  }

  /** The last lines of output, redacted, oldest first. */
  tail(): string[] {
    if (this.#file) return [...this.#tail];
    let text: string;
    try {
      text = readFileSync(this.#options.logFile, 'utf8');
    } catch {
      return [];
    }
    const lines = text.split('\n');
    if (lines.at(-1) === '') lines.pop();
    return lines.slice(-TAIL_LINES).map((line) => redactText(line.length > MAX_LINE_CHARS ? `${line.slice(0, MAX_LINE_CHARS)}…` : line, this.#options.secrets));
  }

  /** Resolves once every line received so far is written to the log file. */
  async flush(): Promise<void> {
    const file = this.#file;
    if (!file || this.#closed) return;
    await new Promise<void>((resolve) => file.write('', () => resolve()));
  }

  /** Flushes partial lines and closes the log file. Later output is dropped. */
  async close(): Promise<void> {
    if (this.#closed) return;
    for (const flush of this.#flushers) flush();
    this.#closed = true;
    if (this.#fd !== undefined) this.spawned();
    const file = this.#file;
    if (file) await new Promise<void>((resolve) => file.end(resolve));
  }

  #line(raw: string, kind: 'stdout' | 'stderr'): void {
    if (this.#closed) return;
    const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    const line = redactText(text.length > MAX_LINE_CHARS ? `${text.slice(0, MAX_LINE_CHARS)}…` : text, this.#options.secrets);
    // Every line of the log file carries its time, so a test's lines can be told from the others'.
    this.#file?.write(`${new Date().toISOString()} ${line}\n`);
    this.#tail.push(line);
    if (this.#tail.length > TAIL_LINES) this.#tail.shift();
    if (this.#options.debug) (kind === 'stdout' ? process.stdout : process.stderr).write(`${this.#options.label} ${line}\n`);
  }
}

/**
 * Creates the log's folder and opens the log for writing.
 * @throws {LanesError} `STATE_UNWRITABLE` naming the folder or file (permissions, read-only or full disk, a file in the way).
 */
function openLog(logFile: string): number {
  const folder = path.dirname(logFile);
  try {
    mkdirSync(folder, { recursive: true });
  } catch (error) {
    const cause = mkdirCause(error, folder);
    throw isFsError(cause) ? unwritable(cause, 'create log folder', folder) : cause;
  }
  try {
    return openSync(logFile, 'w');
  } catch (error) {
    throw isFsError(error) ? unwritable(error, 'open log file', logFile) : error;
  }
}
