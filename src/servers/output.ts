import { appendFileSync, closeSync, createWriteStream, mkdirSync, openSync, readFileSync, statfsSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { StringDecoder } from 'node:string_decoder';
import createDebug from 'debug';
import { LOG_WRITER_SECRETS_ENV } from '../env-vars.js';
import { formatLanesMessage, type LanesError } from '../errors.js';
import { warn } from '../log.js';
import { redactText } from '../redact.js';
import { isFsError, mkdirCause, unwritable } from '../state/fs-errors.js';

const log = createDebug('e2e-lanes:servers');

/** Lines kept in memory for error messages. */
export const TAIL_LINES = 30;
/** A line longer than this is cut, so a process that never prints "\n" cannot grow memory without bound. */
export const MAX_LINE_CHARS = 16_384;
/** The time a log line starts with (ISO 8601, UTC). */
const LINE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z /;

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
export type ChildStdio = ['ignore', 'pipe' | number | Writable, 'pipe' | number | Writable];

/**
 * Where a server's output goes: every line, redacted and prefixed with its time (ISO 8601, UTC), into
 * its log file (and the console with `debug`), the last {@link TAIL_LINES} kept for error messages.
 *
 * With `output: 'file'` the server must be able to outlive this process: its stdout and stderr go
 * to a detached log writer process (log-writer.ts) that writes the log file as this sink does (times,
 * redaction) and ends when the server's output ends. Should that process not start, the log file
 * itself is the child's stdout and stderr (without times or redaction).
 */
export class OutputSink {
  readonly #options: OutputSinkOptions;
  readonly #file: ReturnType<typeof createWriteStream> | undefined;
  #fd: number | undefined;
  #writer: ChildProcess | undefined;
  readonly #tail: string[] = [];
  readonly #flushers: Array<() => void> = [];
  #closed = false;
  /** Why the log file stopped taking lines, and since when (its later lines are lost). */
  #writeFailure: { error: LanesError; since: string } | undefined;

  constructor(options: OutputSinkOptions) {
    this.#options = options;
    const fd = openLog(options.logFile);
    if (options.output === 'file') {
      this.#fd = fd;
      this.#writer = startLogWriter(fd, options.secrets, options.label);
      return;
    }
    // Opened above, synchronously, so that a log that cannot be created fails the start with a coded error.
    this.#file = createWriteStream(options.logFile, { fd });
    this.#file.on('error', (error) => this.#failed(error));
  }

  /**
   * Why the log file is incomplete, in words, or undefined while it is whole: it could not be
   * written from some time on (full disk, quota, I/O error). With `output: 'file'` the server
   * writes it itself, so only a full device is seen (see {@link logSpaceProblem}).
   */
  problem(): string | undefined {
    if (this.#writeFailure) return `${this.#options.logFile} is incomplete: nothing was written to it from ${this.#writeFailure.since} on (${formatLanesMessage(this.#writeFailure.error, { withCode: true }).split('\n')[0]})`;
    return this.#file ? undefined : logSpaceProblem(this.#options.logFile);
  }

  /** The child's stdio: pipes this sink reads, or the log file's descriptor for both streams. */
  stdio(): ChildStdio {
    const into = this.#writer?.stdin ?? this.#fd;
    return into === undefined ? ['ignore', 'pipe', 'pipe'] : ['ignore', into, into];
  }

  /** Closes this process's copy of the log file's descriptor once the child holds its own. */
  spawned(): void {
    // The writer's input is held by the child now: this process lets go of it, and of the writer.
    this.#writer?.stdin?.destroy();
    this.#writer?.unref();
    this.#writer = undefined;
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

  /**
   * The last lines of output, redacted, oldest first; when the log file is incomplete, a last line
   * says so (see {@link problem}), so every message that quotes the tail says it too.
   */
  tail(): string[] {
    const problem = this.problem();
    const note = problem ? [`[e2e-lanes] ${problem}`] : [];
    if (this.#file) return [...this.#tail, ...note];
    let text: string;
    try {
      text = readFileSync(this.#options.logFile, 'utf8');
    } catch {
      return [];
    }
    const lines = text.split('\n');
    if (lines.at(-1) === '') lines.pop();
    return [...lines.slice(-TAIL_LINES).map((timed) => timed.replace(LINE_TIME, '')).map((line) => redactText(line.length > MAX_LINE_CHARS ? `${line.slice(0, MAX_LINE_CHARS)}…` : line, this.#options.secrets)), ...note];
  }

  /** Resolves once every line received so far is written to the log file. */
  async flush(): Promise<void> {
    const file = this.#file;
    if (!file || this.#closed) return;
    await new Promise<void>((resolve) => file.write('', () => resolve()));
  }

  /**
   * Flushes partial lines and closes the log file. Later output is dropped. A log that could not
   * be written gets a last line that says so, when there is room for it by then.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    for (const flush of this.#flushers) flush();
    this.#closed = true;
    if (this.#fd !== undefined) this.spawned();
    const file = this.#file;
    if (file) await new Promise<void>((resolve) => file.end(() => resolve()));
    if (this.#writeFailure) {
      try {
        appendFileSync(this.#options.logFile, `${new Date().toISOString()} [e2e-lanes] ${this.problem()}\n`);
      } catch {
        // still no room: the warning and the error messages said it
      }
    }
  }

  /** The log file stopped taking lines: say so once, with the code, and keep the tail in memory. */
  #failed(error: Error): void {
    log('%s cannot write %s: %s', this.#options.label, this.#options.logFile, error.message);
    if (this.#writeFailure) return;
    this.#writeFailure = { error: unwritable(error, 'write log file', this.#options.logFile), since: new Date().toISOString() };
    warn(`${this.#options.label} ${formatLanesMessage(this.#writeFailure.error, { withCode: true })}\nThe server's later output is not in its log (its last ${TAIL_LINES} lines are kept for error messages).`);
  }

  #line(raw: string, kind: 'stdout' | 'stderr'): void {
    if (this.#closed) return;
    const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    const line = redactText(text.length > MAX_LINE_CHARS ? `${text.slice(0, MAX_LINE_CHARS)}…` : text, this.#options.secrets);
    // Every line of the log file carries its time, so a test's lines can be told from the others'.
    if (!this.#writeFailure) this.#file?.write(`${new Date().toISOString()} ${line}\n`);
    this.#tail.push(line);
    if (this.#tail.length > TAIL_LINES) this.#tail.shift();
    if (this.#options.debug) (kind === 'stdout' ? process.stdout : process.stderr).write(`${this.#options.label} ${line}\n`);
  }
}

/**
 * Why a log file that a server writes itself (kept and warm lanes) may be incomplete: the device
 * that holds it is full. Undefined when there is room, or when it cannot be told.
 */
export function logSpaceProblem(logFile: string): string | undefined {
  try {
    const stats = statfsSync(path.dirname(logFile));
    if (stats.bavail > 0) return undefined;
    return `${logFile} may be incomplete: the device that holds it is full (no space left, ENOSPC), so the server's writes to it fail; free space there (\`df -h ${path.dirname(logFile)}\`)`;
  } catch {
    return undefined;
  }
}

/**
 * Starts the detached log writer of a server that may outlive this process: its stdout is the log
 * file (`fd`), its stdin the pipe the server will write to. It gets none of the runner's environment
 * but the secrets to redact, and no marks of a lane server (the orphan hunt leaves it alone); it
 * ends when the server's output ends. Undefined when it cannot be started.
 */
function startLogWriter(fd: number, secrets: string[], label: string): ChildProcess | undefined {
  const here = fileURLToPath(import.meta.url);
  const fromSource = here.endsWith('.ts');
  const script = path.join(path.dirname(here), fromSource ? 'log-writer.ts' : 'log-writer.js');
  const loader = fromSource ? ['--import', import.meta.resolve('tsx')] : [];
  try {
    const writer = spawn(process.execPath, [...loader, script], {
      detached: true,
      stdio: ['pipe', fd, 'ignore'],
      env: { ...(process.env.PATH ? { PATH: process.env.PATH } : {}), [LOG_WRITER_SECRETS_ENV]: JSON.stringify(secrets) },
    });
    if (writer.pid === undefined) {
      log('%s: the log writer could not be started', label);
      return undefined;
    }
    writer.on('error', (error) => log('%s log writer: %s', label, error.message));
    writer.stdin?.on('error', (error) => log('%s log writer input: %s', label, error.message));
    return writer;
  } catch (error) {
    log('%s: the log writer could not be started: %O', label, error);
    return undefined;
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
