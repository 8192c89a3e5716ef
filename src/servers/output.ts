import { createWriteStream, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import createDebug from 'debug';
import { redactText } from '../redact.js';

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
}

/**
 * Where a server's output goes: every line, redacted, into its log file (and the console with
 * `debug`), the last {@link TAIL_LINES} kept for error messages.
 */
export class OutputSink {
  readonly #options: OutputSinkOptions;
  readonly #file: ReturnType<typeof createWriteStream>;
  readonly #tail: string[] = [];
  readonly #flushers: Array<() => void> = [];
  #closed = false;

  constructor(options: OutputSinkOptions) {
    this.#options = options;
    mkdirSync(path.dirname(options.logFile), { recursive: true });
    this.#file = createWriteStream(options.logFile, { flags: 'w' });
    this.#file.on('error', (error) => log('%s cannot write %s: %s', options.label, options.logFile, error.message));
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
    return [...this.#tail];
  }

  /** Flushes partial lines and closes the log file. Later output is dropped. */
  async close(): Promise<void> {
    if (this.#closed) return;
    for (const flush of this.#flushers) flush();
    this.#closed = true;
    await new Promise<void>((resolve) => this.#file.end(resolve));
  }

  #line(raw: string, kind: 'stdout' | 'stderr'): void {
    if (this.#closed) return;
    const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    const line = redactText(text.length > MAX_LINE_CHARS ? `${text.slice(0, MAX_LINE_CHARS)}…` : text, this.#options.secrets);
    this.#file.write(`${line}\n`);
    this.#tail.push(line);
    if (this.#tail.length > TAIL_LINES) this.#tail.shift();
    if (this.#options.debug) (kind === 'stdout' ? process.stdout : process.stderr).write(`${this.#options.label} ${line}\n`);
  }
}
